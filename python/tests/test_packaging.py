"""The package installs with pip from a checkout, offline, stubs included,
and dogpile.cache finds the backend through its entry point."""
import os
import shutil
import subprocess
import sys

import conftest

IGNORED = shutil.ignore_patterns("build", "*.egg-info", "__pycache__",
                                 ".pytest_cache", "*_pb2*.py", "tests")


def test_pip_installs_offline_and_registers_the_backend(tmp_path, daemon,
                                                        registry):
    # A copy, so the build neither litters the checkout nor reuses its
    # generated stubs.
    checkout = tmp_path / "checkout"
    shutil.copytree(conftest.PYTHON_DIR, checkout / "python", ignore=IGNORED)
    shutil.copytree(os.path.join(conftest.REPO_DIR, "proto"),
                    checkout / "proto")
    site = tmp_path / "site"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-build-isolation",
         "--no-index", "--no-deps", "--disable-pip-version-check",
         "--target", str(site), str(checkout / "python")],
        capture_output=True, text=True, timeout=120)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert (site / "dogpiled" / "v1" / "dogpile_pb2_grpc.py").exists()

    # Only the installed copy is importable, and nobody imports
    # dogpiled.cache: the "dogpile.cache" entry point must find it.
    script = (
        "import sys\n"
        "from dogpile.cache import make_region\n"
        "region = make_region().configure('dogpiled', arguments={\n"
        f"    'address': {daemon.address!r}, 'registry': {registry!r}}})\n"
        "region.set('k', 'installed')\n"
        "print(region.get('k'), sys.modules['dogpiled'].__file__)\n"
        "region.backend.close()\n")
    env = dict(os.environ, PYTHONPATH=str(site))
    run = subprocess.run([sys.executable, "-c", script], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=60)
    assert run.returncode == 0, run.stderr
    value, module = run.stdout.split()
    assert value == "installed"
    assert module.startswith(str(site))
