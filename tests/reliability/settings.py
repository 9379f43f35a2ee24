"""Paths and run lengths shared by the reliability suites.

Mode: CTest sets DOGPILED_QUICK=1 (CI-sized runs); unset means the full
runs. QUICK=0, which scripts/test.sh documents for the long modes, also
asks for the full runs. Any length can be set outright with the variables
read by seconds().
"""
import os
import pathlib
import runpy
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# Given relative to where the test started, they must still hold in the
# workers, which run in this folder: they inherit the absolute paths.
for _variable in ("DOGPILED_BIN", "DOGPILED_PY_STUBS"):
    if os.environ.get(_variable):
        os.environ[_variable] = os.path.abspath(os.environ[_variable])
INTEGRATION = HERE.parent / "integration"
if str(INTEGRATION) not in sys.path:
    sys.path.insert(0, str(INTEGRATION))  # harness: stubs and Daemon

# Debian's interpreter has grpcio; the first python3 on PATH may not.
PYTHON = "/usr/bin/python3"
REPLICATION = HERE.parent / "replication"


def use_python_client():
    """Makes this checkout's Python client (python/dogpiled: its
    GroupChannel follows a group's leader) importable, ahead of the bare
    stubs: tests/replication/conftest.py does that (and regenerates its
    stubs when the .proto files are newer), so it is run here rather than
    copied. Call it before the harness is imported, whose `dogpiled.v1`
    imports then resolve inside the client's package."""
    runpy.run_path(str(REPLICATION / "conftest.py"))
    client = pathlib.Path(sys.modules["dogpiled"].__file__).resolve().parent
    if client != ROOT / "python" / "dogpiled":
        raise RuntimeError(f"dogpiled was imported from {client} before the Python client: "
                           "call settings.use_python_client() before importing harness")
    if str(REPLICATION) not in sys.path:
        sys.path.append(str(REPLICATION))  # test_group: Group


def quick():
    if os.environ.get("QUICK") == "0":
        return False
    return os.environ.get("DOGPILED_QUICK") == "1"


def seconds(variable, quick_default, full_default):
    """A run length: $variable if set, else the default for the mode."""
    value = os.environ.get(variable)
    if value:
        return float(value)
    return quick_default if quick() else full_default
