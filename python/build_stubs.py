"""Generates the dogpiled.v1 gRPC stubs from proto/ with the system protoc.

setup.py (build_py), python/CMakeLists.txt and the tests all call this, so
they agree on how stubs are made. It uses protoc with grpc_python_plugin
because Debian's python3-grpc-tools bundles a protoc too old for Debian's
protobuf runtime.

    /usr/bin/python3 python/build_stubs.py            # into python/ (in place)
    /usr/bin/python3 python/build_stubs.py --out DIR  # into DIR/dogpiled/v1
"""
import argparse
import glob
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_PROTO_DIR = os.environ.get(
    "DOGPILED_PROTO_DIR", os.path.join(os.path.dirname(HERE), "proto"))
PACKAGE_DIR = os.path.join("dogpiled", "v1")
# google/rpc/status.proto and error_details.proto, from Debian's
# golang-github-gogo-googleapis-dev. They become a descriptor set that
# dogpiled.errors loads into a private pool (generated google.rpc modules
# would clash with googleapis-common-protos in the same process).
GOOGLEAPIS_DIR = os.environ.get(
    "GOOGLEAPIS_PROTO_DIR", "/usr/share/gocode/src/github.com/gogo/googleapis")
RPC_PROTOS = ["google/rpc/status.proto", "google/rpc/error_details.proto"]
RPC_DESCRIPTORS = "google_rpc.desc"


def proto_files(proto_dir):
    """The .proto files, relative to proto_dir, as protoc wants them."""
    found = sorted(glob.glob(os.path.join(proto_dir, PACKAGE_DIR, "*.proto")))
    if not found:
        raise RuntimeError(
            f"no .proto files in {os.path.join(proto_dir, PACKAGE_DIR)}; "
            "build from a dogpiled checkout or set DOGPILED_PROTO_DIR")
    return [os.path.relpath(p, proto_dir) for p in found]


def outputs(proto_dir, out_dir):
    names = []
    for proto in proto_files(proto_dir):
        stem = os.path.splitext(os.path.basename(proto))[0]
        names += [f"{stem}_pb2.py", f"{stem}_pb2_grpc.py"]
    names.append(RPC_DESCRIPTORS)
    return [os.path.join(out_dir, PACKAGE_DIR, n) for n in names]


def is_stale(out_dir, proto_dir=DEFAULT_PROTO_DIR):
    newest = max(os.path.getmtime(os.path.join(proto_dir, p))
                 for p in proto_files(proto_dir))
    return any(not os.path.exists(o) or os.path.getmtime(o) < newest
               for o in outputs(proto_dir, out_dir))


def _tool(explicit, env, name, package):
    path = explicit or os.environ.get(env) or shutil.which(name)
    if not path or not os.path.exists(path):
        raise RuntimeError(f"{name} not found (set {env} or apt-get install "
                           f"{package})")
    return path


def generate(out_dir, proto_dir=DEFAULT_PROTO_DIR, protoc=None, plugin=None):
    """Writes out_dir/dogpiled/v1/*_pb2*.py; returns the paths written."""
    protos = proto_files(proto_dir)
    protoc = _tool(protoc, "PROTOC", "protoc", "protobuf-compiler")
    plugin = _tool(plugin, "GRPC_PYTHON_PLUGIN", "grpc_python_plugin",
                   "protobuf-compiler-grpc")
    target = os.path.join(out_dir, PACKAGE_DIR)
    os.makedirs(target, exist_ok=True)
    # Generate beside the target and rename, so a concurrent import never
    # sees a half-written module.
    with tempfile.TemporaryDirectory(dir=target, prefix=".gen-") as tmp:
        run = subprocess.run(
            [protoc, f"-I{proto_dir}", f"--python_out={tmp}",
             f"--grpc_python_out={tmp}",
             f"--plugin=protoc-gen-grpc_python={plugin}", *protos],
            capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"protoc failed:\n{run.stderr}")
        if not os.path.exists(os.path.join(GOOGLEAPIS_DIR, RPC_PROTOS[0])):
            raise RuntimeError(
                f"{RPC_PROTOS[0]} not found under {GOOGLEAPIS_DIR} (set "
                "GOOGLEAPIS_PROTO_DIR or apt-get install "
                "golang-github-gogo-googleapis-dev)")
        run = subprocess.run(
            [protoc, f"-I{GOOGLEAPIS_DIR}", "--include_imports",
             "--descriptor_set_out="
             f"{os.path.join(tmp, PACKAGE_DIR, RPC_DESCRIPTORS)}",
             *RPC_PROTOS], capture_output=True, text=True)
        if run.returncode != 0:
            raise RuntimeError(f"protoc failed:\n{run.stderr}")
        written = []
        for path in outputs(proto_dir, out_dir):
            os.replace(os.path.join(tmp, PACKAGE_DIR, os.path.basename(path)),
                       path)
            written.append(path)
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=HERE,
                        help="folder that receives dogpiled/v1/ (default: "
                             "python/, in place)")
    parser.add_argument("--proto-dir", default=DEFAULT_PROTO_DIR)
    parser.add_argument("--protoc")
    parser.add_argument("--plugin", help="path of grpc_python_plugin")
    parser.add_argument("--if-stale", action="store_true",
                        help="do nothing when the stubs are newer than the "
                             ".proto files")
    args = parser.parse_args(argv)
    try:
        if args.if_stale and not is_stale(args.out, args.proto_dir):
            return 0
        generate(args.out, args.proto_dir, args.protoc, args.plugin)
    except RuntimeError as e:
        print(f"build_stubs: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
