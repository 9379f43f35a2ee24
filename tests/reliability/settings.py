"""Paths and run lengths shared by the reliability suites.

Mode: CTest sets DOGPILED_QUICK=1 (CI-sized runs); unset means the full
runs. QUICK=0, which scripts/test.sh documents for the long modes, also
asks for the full runs. Any length can be set outright with the variables
read by seconds().
"""
import os
import pathlib
import sys

HERE = pathlib.Path(__file__).resolve().parent
INTEGRATION = HERE.parent / "integration"
if str(INTEGRATION) not in sys.path:
    sys.path.insert(0, str(INTEGRATION))  # harness: stubs and Daemon

# Debian's interpreter has grpcio; the first python3 on PATH may not.
PYTHON = "/usr/bin/python3"


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
