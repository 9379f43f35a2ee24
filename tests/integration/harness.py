"""Starts the real dogpiled binary on a free loopback port for a test.

The daemon binds 127.0.0.1:0 and writes the port it got to --port-file;
Daemon.stop() always runs (fixtures use it in a finally), so no test leaves a
process behind.
"""
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time

import grpc

ROOT = pathlib.Path(__file__).resolve().parents[2]
STUBS = pathlib.Path(os.environ.get("DOGPILED_PY_STUBS", ROOT / "build" / "python_stubs"))
sys.path.insert(0, str(STUBS))

from dogpiled.v1 import admin_pb2, admin_pb2_grpc  # noqa: E402
from dogpiled.v1 import dogpile_pb2, dogpile_pb2_grpc  # noqa: E402
from dogpiled.v1 import rwmutex_pb2, rwmutex_pb2_grpc  # noqa: E402
from dogpiled.v1 import sessions_pb2, sessions_pb2_grpc  # noqa: E402

BINARY = os.environ.get("DOGPILED_BIN", str(ROOT / "build" / "server" / "dogpiled"))
# Generous: start-up takes milliseconds, but a sanitizer build on a loaded
# machine can take seconds, and only a daemon that never starts waits it out.
START_TIMEOUT_S = 60

FRESH = dogpile_pb2.AcquireResponse.OUTCOME_FRESH
STALE = dogpile_pb2.AcquireResponse.OUTCOME_STALE
CREATE = dogpile_pb2.AcquireResponse.OUTCOME_CREATE
NOT_READY = dogpile_pb2.AcquireResponse.OUTCOME_NOT_READY
READ = rwmutex_pb2.LockRequest.MODE_READ
WRITE = rwmutex_pb2.LockRequest.MODE_WRITE


def as_key(key):
    """Keys are bytes on the wire (dogpile.proto); tests may write text."""
    return key.encode() if isinstance(key, str) else key


class Daemon:
    """One dogpiled process plus stubs on one channel."""

    def __init__(self, *args, state_dir=None, listen="127.0.0.1:0"):
        self.listen = listen  # a fixed port lets clients outlive a restart
        self._tmp = tempfile.TemporaryDirectory(prefix="dogpiled-test-")
        self.state_dir = state_dir or os.path.join(self._tmp.name, "state")
        self.args = list(args)
        self.proc = None
        self.channel = None

    def start(self):
        port_file = os.path.join(self._tmp.name, "port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        if getattr(self, "log", None) is not None:
            self.log.close()  # a restarted daemon appends to the same log
        self.log = open(os.path.join(self._tmp.name, "log"), "ab")
        self.proc = subprocess.Popen(
            [BINARY, "--listen", self.listen, "--port-file", port_file,
             "--state-dir", self.state_dir, "--log-level", "warn",
             # metrics off unless a test asks: the default port is fixed, and
             # daemons of tests that run side by side would fight for it
             "--metrics-listen", "", *self.args],
            stdout=self.log, stderr=subprocess.STDOUT)
        # Ready means both: the port file is written (atomically, by
        # rename) and SIGTERM is caught, so a stop right after start is the
        # graceful one. The daemon writes the file a moment before it
        # installs its handler. The deadline only bounds a daemon that never
        # comes up; a loaded machine just takes longer.
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (os.path.exists(port_file) and catches(self.proc.pid, signal.SIGTERM)):
            if self.proc.poll() is not None:
                raise RuntimeError(f"dogpiled exited with {self.proc.returncode}: "
                                   f"{self.read_log()}")
            if time.monotonic() > deadline:
                self.proc.kill()
                self.proc.wait()
                raise RuntimeError(f"dogpiled was not ready in {START_TIMEOUT_S} s: "
                                   f"{self.read_log()[-2000:]}")
            time.sleep(0.01)
        self.port = int(open(port_file).read())
        self.target = f"127.0.0.1:{self.port}"
        self.channel = grpc.insecure_channel(self.target)
        self.sessions = sessions_pb2_grpc.SessionsStub(self.channel)
        self.dogpile = dogpile_pb2_grpc.DogpileStub(self.channel)
        self.rw = rwmutex_pb2_grpc.RWMutexStub(self.channel)
        self.admin = admin_pb2_grpc.AdminStub(self.channel)
        return self

    def read_log(self):
        return open(os.path.join(self._tmp.name, "log"), "rb").read().decode(errors="replace")

    def stop(self, sig=signal.SIGTERM, timeout=15):
        """Stops the process; returns its exit code."""
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise

    def cleanup(self):
        try:
            self.stop()
        finally:
            self._tmp.cleanup()

    # --- conveniences -------------------------------------------------
    def open(self, ttl_ms=0, name="test"):
        return self.sessions.Open(sessions_pb2.OpenRequest(ttl_ms=ttl_ms, client_name=name)).session_id

    def acquire(self, session_id, key=b"k", registry="reg", expire_ms=60_000,
                wait_timeout_ms=0, **kw):
        return dogpile_pb2.AcquireRequest(registry=registry, key=as_key(key), session_id=session_id,
                                          expire_ms=expire_ms,
                                          wait_timeout_ms=wait_timeout_ms, **kw)

    def publish(self, session_id, token, value, key=b"k", registry="reg", **kw):
        return self.dogpile.Publish(dogpile_pb2.PublishRequest(
            registry=registry, key=as_key(key), session_id=session_id, token=token,
            value=value, **kw))

    def stats(self):
        return self.admin.Stats(admin_pb2.StatsRequest())

    def threads(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
        raise RuntimeError("no Threads line")

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS line")


def catches(pid, sig):
    """Whether process `pid` has a handler installed for `sig` (the SigCgt
    mask in /proc), i.e. the signal would not take the default action."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (sig - 1) & 1)
    except FileNotFoundError:
        pass
    return False


def wait_until(predicate, timeout=10.0, what="condition"):
    """Polls a cheap predicate (a Stats read, not the behaviour under test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")
