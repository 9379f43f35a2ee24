#!/usr/bin/env bash
# Proves the installed package works for another project: installs the
# build tree into a scratch prefix, builds examples/ against that prefix
# only (find_package(dogpiled)), and runs the example against a daemon.
#
#   examples/build-installed.sh BUILD_DIR DOGPILED_BINARY
set -euo pipefail

build_dir=$(cd "$1" && pwd)
daemon=$2
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d "${TMPDIR:-/tmp}/dogpiled-install-XXXXXX")
daemon_pid=""
cleanup() {
  if [ -n "$daemon_pid" ]; then
    kill -TERM "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
  fi
  rm -rf "$scratch"
}
trap cleanup EXIT

cmake --install "$build_dir" --prefix "$scratch/prefix" >/dev/null
test -f "$scratch/prefix/include/dogpiled/dogpile.h"
# Nothing of gRPC or protobuf may leak into the public headers.
if grep -rlE '#include <(grpc|grpcpp|google/protobuf)' \
    "$scratch/prefix/include/dogpiled"; then
  echo "public headers include gRPC or protobuf" >&2
  exit 1
fi

# Same compiler and flags as the installed build (a sanitizer build's
# library needs its runtime in the program too).
cache_value() {
  sed -n "s/^$1:[A-Z]*=//p" "$build_dir/CMakeCache.txt"
}
settings=(
  -DCMAKE_PREFIX_PATH="$scratch/prefix"
  -DCMAKE_CXX_COMPILER="$(cache_value CMAKE_CXX_COMPILER)"
  -DCMAKE_CXX_FLAGS="$(cache_value CMAKE_CXX_FLAGS)"
  -DCMAKE_EXE_LINKER_FLAGS="$(cache_value CMAKE_EXE_LINKER_FLAGS)"
)
if command -v ccache >/dev/null; then
  settings+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$here" -B "$scratch/example" "${settings[@]}" >/dev/null
cmake --build "$scratch/example" -j1 >/dev/null

"$daemon" --listen 127.0.0.1:0 --port-file "$scratch/port" \
  --state-dir "$scratch" --log-level warn --metrics-listen '' &
daemon_pid=$!
# The port file is written whole (by rename). 60 s only bounds a daemon that
# never starts: a loaded machine may take seconds.
for _ in $(seq 600); do
  [ -s "$scratch/port" ] && break
  kill -0 "$daemon_pid" 2>/dev/null || { echo "dogpiled died" >&2; exit 1; }
  sleep 0.1
done
[ -s "$scratch/port" ] || { echo "dogpiled wrote no port file in 60 s" >&2; exit 1; }
target="127.0.0.1:$(cat "$scratch/port")"

out=$("$scratch/example/hello_dogpile" "$target")
echo "$out"
grep -qx "hello from the creator" <<<"$out"
grep -q "holding write lock" <<<"$out"
# The installed dogpilectl runs from the prefix too, and sees the value.
"$scratch/prefix/bin/dogpilectl" --target "$target" get examples greeting \
  | grep -qx "hello from the creator"
echo "example built from the installed package: OK"
