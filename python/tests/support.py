"""Helpers for the tests, and the code their child processes run.

Children are started with multiprocessing's "spawn" method (a fresh
/usr/bin/python3: gRPC channels do not survive fork) and import this module.
"""
import multiprocessing
import os
import signal
import subprocess
import threading
import time

from dogpile.cache import make_region
from dogpile.cache.api import NO_VALUE

import dogpiled.cache
from dogpiled.errors import _rpc_types

SPAWN = multiprocessing.get_context("spawn")
DOGPILED_BIN = os.environ.get("DOGPILED_BIN", os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "build", "server", "dogpiled"))
# How long a child waits for the parent before giving up (tests stay bounded).
CHILD_PATIENCE = 30
# Bounds on waits for things that normally take milliseconds: wide, so a
# loaded machine only makes a test slower; only a real hang reaches them.
START_TIMEOUT_S = 60


class DaemonError(RuntimeError):
    """The daemon binary is missing, or did not start."""


# A pytest killed outright must not leave a daemon behind: setpriv sets
# PR_SET_PDEATHSIG and execs the daemon (same pid). Not a preexec_fn: that
# runs Python in the forked child, where gRPC's client threads left its
# mutexes mid-operation, and the child aborted now and then ("Mutex::Fer
# with pending CondVar queueing") before it could exec.
_DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "TERM"]


class Daemon:
    """One dogpiled process; stop() on every exit path."""

    def __init__(self, state_dir, *flags, listen="127.0.0.1:0"):
        if not os.access(DOGPILED_BIN, os.X_OK):
            raise DaemonError(f"no dogpiled binary at {DOGPILED_BIN}: build "
                              "it or set DOGPILED_BIN")
        self.state_dir = state_dir
        self.flags = flags
        self.listen = listen
        self.proc = None
        self.address = None

    def start(self):
        port_file = os.path.join(self.state_dir, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        self.log = open(os.path.join(self.state_dir, "dogpiled.log"), "ab")
        # The suite scrapes no metrics, and a fixed metrics port would clash
        # with any other daemon on the machine.
        env = dict(os.environ, DOGPILED_METRICS_LISTEN="")
        self.proc = subprocess.Popen(
            [*_DIE_WITH_PARENT, DOGPILED_BIN, "--listen", self.listen,
             "--port-file", port_file, "--state-dir", self.state_dir,
             *self.flags],
            stdout=self.log, stderr=subprocess.STDOUT, env=env)
        # The port file (written by rename, so whole) is the daemon's
        # "serving" signal.
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise DaemonError(f"dogpiled exited with "
                                  f"{self.proc.returncode}; see "
                                  f"{self.log.name}")
            try:
                with open(port_file) as f:
                    port = f.read()
            except FileNotFoundError:
                port = ""
            if port.endswith("\n"):
                self.address = f"127.0.0.1:{port.strip()}"
                return self
            time.sleep(0.01)
        self.stop()
        raise DaemonError(f"dogpiled did not write its port within {START_TIMEOUT_S} s")

    def restart(self):
        """Stops and starts again on the same port and state."""
        self.stop()
        self.listen = self.address
        return self.start()

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        self.proc = None


def wait_until(predicate, timeout=20.0, what="condition"):
    """For state only visible by asking, such as the daemon's gauges."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def region_on(address, registry, expiration_time=None, fleet=True,
              **arguments):
    """A region on the "dogpiled" backend, invalidated fleet-wide unless
    `fleet` is false. Waits are bounded, so a bug fails instead of hanging."""
    arguments.setdefault("lock_wait_timeout", CHILD_PATIENCE / 3)
    region = make_region()
    region.configure(
        "dogpiled", expiration_time=expiration_time,
        arguments=dict(arguments, address=address, registry=registry),
        region_invalidator=(dogpiled.cache.FleetInvalidation(region)
                            if fleet else None))
    return region


def mutex_region(kind, address, registry, **arguments):
    """A region whose get_mutex() is the kind under test: "creator" (the
    dogpiled backend) or "write_lock" (DogpiledLockProxy over memory)."""
    arguments.setdefault("lock_wait_timeout", CHILD_PATIENCE / 3)
    if kind == "creator":
        return region_on(address, registry, **arguments)
    region = make_region()
    region.configure("dogpile.cache.memory", wrap=[
        dogpiled.cache.DogpiledLockProxy(address=address, registry=registry,
                                         **arguments)])
    return region


def start(target, *args):
    proc = SPAWN.Process(target=target, args=args, daemon=True)
    proc.start()
    return proc


def printable(value):
    return "NO_VALUE" if value is NO_VALUE else value


# --- Child processes --------------------------------------------------------

def hold_mutex(kind, address, registry, key, session_ttl, held, release):
    """Takes the mutex of `key`, sets `held`, waits for `release`."""
    region = mutex_region(kind, address, registry, session_ttl=session_ttl)
    mutex = region.backend.get_mutex(key)
    assert mutex.acquire(False)
    held.set()
    release.wait(CHILD_PATIENCE)
    mutex.release()
    region.backend.close()


def get_or_create_once(address, registry, key, dbm_file, start_line,
                       creating, go, creations, results):
    """One region.get_or_create(); its creator counts itself, announces
    itself and waits for `go`. With a `dbm_file`, values live in that file
    and only the lock in dogpiled (DogpiledLockProxy)."""
    if dbm_file:
        region = make_region().configure(
            "dogpile.cache.dbm", expiration_time=60,
            arguments={"filename": dbm_file},
            wrap=[dogpiled.cache.DogpiledLockProxy(
                address=address, registry=registry,
                lock_wait_timeout=CHILD_PATIENCE / 3)])
    else:
        region = region_on(address, registry, expiration_time=60)

    def creator():
        with creations.get_lock():
            creations.value += 1
        creating.set()
        go.wait(CHILD_PATIENCE)
        return f"made by pid {os.getpid()}"

    start_line.wait(CHILD_PATIENCE)
    results.put(region.get_or_create(key, creator))
    region.backend.close()


def region_commands(address, registry, key, commands, results):
    """Runs region calls the parent sends ("get", "get_or_create",
    "get_ignoring_expiration") and reports what came back."""
    region = region_on(address, registry, expiration_time=60)
    made = 0

    def creator():
        nonlocal made
        made += 1
        return f"child value {made}"

    while True:
        command = commands.get(timeout=CHILD_PATIENCE)
        if command == "stop":
            break
        if command == "get":
            results.put(printable(region.get(key)))
        elif command == "get_ignoring_expiration":
            results.put(printable(region.get(key, ignore_expiration=True)))
        elif command == "get_or_create":
            results.put(region.get_or_create(key, creator))
    region.backend.close()


def error_trailer(code, reason, metadata):
    """The trailer a daemon's refusal carries: a google.rpc.Status with an
    ErrorInfo of `reason` and `metadata` (for fake daemons)."""
    status_cls, info_cls, _ = _rpc_types()
    status = status_cls(code=code.value[0])
    detail = status.details.add()
    detail.type_url = "type.googleapis.com/google.rpc.ErrorInfo"
    detail.value = info_cls(reason=reason, domain="dogpiled",
                            metadata=metadata).SerializeToString()
    return (("grpc-status-details-bin", status.SerializeToString()),)


def eventually(condition, timeout=5.0):
    """Polls `condition` until it holds or `timeout` passes. Only for states
    the daemon alone can tell (a call parked on it), which no event
    announces."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        threading.Event().wait(0.005)
    return True
