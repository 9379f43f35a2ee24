"""Fixtures: the real dogpiled binary on 127.0.0.1:0, clients and regions.

The daemon path comes from DOGPILED_BIN (CTest sets it), else
build/server/dogpiled under the repository root. The package under test is
this checkout's python/, with stubs regenerated when the .proto files are
newer.
"""
import os
import sys
import uuid

import pytest

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO_DIR = os.path.dirname(PYTHON_DIR)
sys.path.insert(0, PYTHON_DIR)
# Child processes (multiprocessing, subprocess) import the same checkout.
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (PYTHON_DIR, os.path.dirname(os.path.abspath(__file__)),
                os.environ.get("PYTHONPATH")) if p)

import build_stubs  # noqa: E402

if build_stubs.is_stale(PYTHON_DIR):
    build_stubs.generate(PYTHON_DIR)

import dogpiled  # noqa: E402
import support  # noqa: E402


@pytest.fixture(scope="session")
def daemon(tmp_path_factory):
    """One daemon for the suite; tests keep apart by registry name."""
    d = support.Daemon(str(tmp_path_factory.mktemp("dogpiled")))
    try:
        yield d.start()
    finally:
        d.stop()


@pytest.fixture
def restartable_daemon(tmp_path):
    """A daemon of the test's own, which it may restart."""
    d = support.Daemon(str(tmp_path))
    try:
        yield d.start()
    finally:
        d.stop()


@pytest.fixture
def registry():
    return "t-" + uuid.uuid4().hex[:12]


@pytest.fixture
def clients(daemon):
    """clients(**kw) makes a Client (one session each), closed afterwards."""
    made = []

    def make(**kw):
        c = dogpiled.Client(daemon.address, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close(timeout=5)


@pytest.fixture
def regions(daemon, registry):
    """regions(**kw) makes a region on the "dogpiled" backend (one session
    each, all on the test's registry), closed afterwards."""
    made = []

    def make(expiration_time=None, fleet=True, **arguments):
        region = support.region_on(daemon.address, registry, expiration_time,
                                   fleet, **arguments)
        made.append(region)
        return region
    yield make
    for region in made:
        region.backend.close()
