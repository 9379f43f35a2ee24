"""The Prometheus endpoint: scraped over HTTP after known traffic.

Every number is what the traffic below must produce, and must also agree
with Admin.Stats, which reads the same counters.
"""
import re
import signal
import socket
import subprocess
import time
import urllib.request

import grpc
import pytest

from harness import (BINARY, CREATE, FRESH, NOT_READY, READ, START_TIMEOUT_S, STALE, WRITE,
                     catches, dogpile_pb2, rwmutex_pb2, wait_until)

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(port):
    """Returns ({(name, labels): value}, {name: type}) from GET /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as reply:
        assert reply.status == 200
        assert reply.headers["Content-Type"].startswith("text/plain")
        text = reply.read().decode()
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            types[name] = kind
        elif line and not line.startswith("#"):
            m = SAMPLE.match(line)
            assert m, f"unparsable line: {line!r}"
            labels = frozenset(LABEL.findall(m.group(2) or ""))
            samples[(m.group(1), labels)] = float(m.group(3))
    return samples, types


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


@pytest.fixture
def metered(make_daemon, tmp_path):
    port_file = tmp_path / "metrics-port"
    d = make_daemon("--metrics-listen", "127.0.0.1:0", "--metrics-port-file", str(port_file),
                    "--memory-budget-bytes", "2000")
    d.metrics_port = int(port_file.read_text())
    return d


def test_metrics_after_known_traffic(metered):
    d = metered
    a, b = d.open(60_000, "a"), d.open(60_000, "b")
    samples, types = scrape(d.metrics_port)
    assert value(samples, "dogpiled_sessions") == 2
    assert value(samples, "dogpiled_acquires_total", outcome="create") == 0

    # k1: a creates, b is told NOT_READY, then parks until a publishes.
    t1 = d.dogpile.Acquire(d.acquire(a, "k1", registry="m"))
    assert t1.outcome == CREATE
    assert d.dogpile.Acquire(d.acquire(b, "k1", registry="m")).outcome == NOT_READY
    parked = d.dogpile.Acquire.future(d.acquire(b, "k1", registry="m", wait_timeout_ms=10_000))
    wait_until(lambda: d.stats().waiters == 1, what="the waiter to park")
    samples, _ = scrape(d.metrics_port)
    assert value(samples, "dogpiled_parked_waiters") == 1
    time.sleep(0.3)
    d.publish(a, t1.token, b"x" * 100, key=b"k1", registry="m")
    assert parked.result(timeout=10).outcome == FRESH
    with pytest.raises(grpc.RpcError) as refused:  # the role is spent
        d.publish(a, t1.token, b"y", key=b"k1", registry="m")
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # k2: created, then abandoned.
    t2 = d.dogpile.Acquire(d.acquire(a, "k2", registry="m"))
    assert t2.outcome == CREATE
    d.dogpile.Abandon(dogpile_pb2.AbandonRequest(registry="m", key=b"k2", session_id=a,
                                                 token=t2.token, reason="backend down"))

    # k3: the creator runs out of time.
    t3 = d.dogpile.Acquire(d.acquire(b, "k3", registry="m", creation_timeout_ms=200))
    assert t3.outcome == CREATE
    wait_until(lambda: d.stats().creation_timeouts == 1, what="the creation timeout")

    # A session that is never kept alive expires.
    d.open(100, "c")
    wait_until(lambda: d.stats().session_expiries == 1, what="the session expiry")

    # k1 always expired: a recreates it while b gets the stale value.
    t4 = d.dogpile.Acquire(d.acquire(a, "k1", registry="m", expire_ms=-1))
    assert t4.outcome == CREATE
    assert d.dogpile.Acquire(d.acquire(b, "k1", registry="m", expire_ms=-1)).outcome == STALE
    d.publish(a, t4.token, b"z" * 100, key=b"k1", registry="m")

    # k5's value does not fit beside k1's in 2000 bytes (each entry also
    # costs 704 bytes of bookkeeping, and the registry as much): k1 is
    # evicted.
    t5 = d.dogpile.Acquire(d.acquire(a, "k5", registry="m"))
    assert t5.outcome == CREATE
    d.publish(a, t5.token, b"w" * 250, key=b"k5", registry="m")

    # A read lock, and a writer whose wait for it runs out.
    got = d.rw.Lock(rwmutex_pb2.LockRequest(registry="m", key=b"L", session_id=a, mode=READ))
    assert got.acquired
    late = d.rw.Lock(rwmutex_pb2.LockRequest(registry="m", key=b"L", session_id=b, mode=WRITE,
                                             wait_timeout_ms=200))
    assert not late.acquired
    d.rw.Unlock(rwmutex_pb2.UnlockRequest(registry="m", key=b"L", session_id=a, token=got.token))

    samples, types = scrape(d.metrics_port)
    expected = {
        ("dogpiled_sessions", ()): 2,
        ("dogpiled_registries", ()): 1,
        ("dogpiled_entries", ()): 1,          # only k5 still holds anything
        ("dogpiled_parked_waiters", ()): 0,
        ("dogpiled_stored_bytes", ()): 250 + len("k5"),
        ("dogpiled_acquires_total", (("outcome", "fresh"),)): 1,
        ("dogpiled_acquires_total", (("outcome", "stale"),)): 1,
        ("dogpiled_acquires_total", (("outcome", "create"),)): 5,
        ("dogpiled_acquires_total", (("outcome", "not_ready"),)): 1,
        ("dogpiled_publishes_total", ()): 3,
        ("dogpiled_abandons_total", ()): 1,
        ("dogpiled_fencing_rejections_total", ()): 1,
        ("dogpiled_session_expiries_total", ()): 1,
        ("dogpiled_creation_timeouts_total", ()): 1,
        ("dogpiled_evictions_total", ()): 1,
        ("dogpiled_lock_grants_total", ()): 1,
        ("dogpiled_wait_timeouts_total", ()): 1,
        ("dogpiled_early_refreshes_total", ()): 0,
        # histograms: the acquire that waited >= 0.3 s and the writer's 0.2 s
        ("dogpiled_wait_seconds_count", ()): 2,
        ("dogpiled_wait_seconds_bucket", (("le", "0.1"),)): 0,
        ("dogpiled_wait_seconds_bucket", (("le", "+Inf"),)): 2,
        # creator roles: published k1 twice and k5; lost k2 (abandoned) and k3 (timed out)
        ("dogpiled_creation_seconds_count", (("result", "published"),)): 3,
        ("dogpiled_creation_seconds_count", (("result", "lost"),)): 2,
        ("dogpiled_creation_seconds_bucket", (("result", "published"), ("le", "0.25"))): 2,
        ("dogpiled_creation_seconds_bucket", (("result", "lost"), ("le", "0.1"))): 1,
    }
    actual = {key: samples.get((key[0], frozenset(key[1]))) for key in expected}
    assert actual == expected
    assert value(samples, "dogpiled_wait_seconds_sum") >= 0.5
    assert value(samples, "dogpiled_creation_seconds_sum", result="published") >= 0.3

    # The same counters as Admin.Stats reports.
    s = d.stats()
    for field in ("sessions", "registries", "entries", "stored_bytes", "publishes", "abandons",
                  "fencing_rejections", "session_expiries", "creation_timeouts", "evictions",
                  "lock_grants", "wait_timeouts"):
        name = {"sessions": "dogpiled_sessions", "registries": "dogpiled_registries",
                "entries": "dogpiled_entries", "stored_bytes": "dogpiled_stored_bytes"}.get(
                    field, f"dogpiled_{field}_total")
        assert value(samples, name) == getattr(s, field), field
    assert value(samples, "dogpiled_acquires_total", outcome="create") == s.acquires_create

    for name, kind in (("dogpiled_sessions", "gauge"), ("dogpiled_parked_waiters", "gauge"),
                       ("dogpiled_acquires_total", "counter"),
                       ("dogpiled_evictions_total", "counter"),
                       ("dogpiled_wait_seconds", "histogram"),
                       ("dogpiled_creation_seconds", "histogram")):
        assert types[name] == kind, name


def test_metrics_port_in_use_fails_clearly():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run([BINARY, "--listen", "127.0.0.1:0", "--state-dir", "",
                              "--metrics-listen", f"127.0.0.1:{port}"],
                             capture_output=True, text=True, timeout=30)
    assert run.returncode != 0
    assert "metrics-listen" in run.stdout + run.stderr



def test_busy_default_metrics_port_only_turns_metrics_off(tmp_path):
    """A second daemon on a host (the default metrics port taken) still
    serves gRPC; only an explicitly asked-for metrics address is fatal."""
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            taken.bind(("127.0.0.1", 9420))
            taken.listen()
        except OSError:
            pass  # already busy: the case under test all the same
        port_file = tmp_path / "port"
        proc = subprocess.Popen([BINARY, "--listen", "127.0.0.1:0", "--state-dir", "",
                                 "--port-file", str(port_file)],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            # Ready as harness.Daemon defines it: port written, SIGTERM caught.
            deadline = time.monotonic() + START_TIMEOUT_S
            while (not (port_file.exists() and catches(proc.pid, signal.SIGTERM))
                   and proc.poll() is None and time.monotonic() < deadline):
                time.sleep(0.01)
            assert proc.poll() is None, proc.stdout.read()
            channel = grpc.insecure_channel(f"127.0.0.1:{port_file.read_text().strip()}")
            check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                        lambda b: b, lambda b: b)
            assert check(b"", timeout=10) == b"\x08\x01"
            channel.close()
        finally:
            proc.terminate()
            out = proc.communicate(timeout=15)[0]
    assert proc.returncode == 0
    assert "metrics off" in out
