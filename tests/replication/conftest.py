"""The group tests drive the daemons with this checkout's Python package
(python/, stubs regenerated when the .proto files are newer), imported
before the integration harness, whose `dogpiled.v1` imports then resolve
inside it rather than in the bare stubs."""
import pathlib
import sys

PYTHON_DIR = pathlib.Path(__file__).resolve().parents[2] / "python"
sys.path.insert(0, str(PYTHON_DIR))

import build_stubs  # noqa: E402

if build_stubs.is_stale(str(PYTHON_DIR)):
    build_stubs.generate(str(PYTHON_DIR))

import dogpiled  # noqa: E402,F401
