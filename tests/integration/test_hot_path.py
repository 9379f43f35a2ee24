"""The edges production reaches first (semantics.md sections 2 and 6): a lost
answer, a slow or failing disk, and a key space that keeps growing. Each is
made deterministic: a proxy that swallows the daemon's answers, an
LD_PRELOAD shim whose fsync waits at a gate file or fails, and Stats."""
import concurrent.futures
import os
import signal
import socket
import threading
import time

import grpc
import pytest

from harness import CREATE, FRESH, WRITE, dogpile_pb2, rwmutex_pb2, rwmutex_pb2_grpc
from harness import as_key, dogpile_pb2_grpc, wait_until

SHIM = os.environ.get("DOGPILED_FSYNC_SHIM", "")


class SwallowingProxy:
    """Forwards one TCP port to the daemon. With swallow set, the daemon's
    bytes are read and thrown away while the connection stays open: the
    daemon believes it answered, the client never hears it."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.swallow = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(16)
        self.port = self.listener.getsockname()[1]
        self.sockets = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target_port))
            self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, src, dst, from_daemon):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if from_daemon and self.swallow.is_set():
                    continue
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.listener.close()
        for s in self.sockets:
            try:
                s.close()
            except OSError:
                pass


def stopped(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


def lock(stub, session, request_id=0, wait_ms=0, key="k", timeout=10):
    return stub.Lock(rwmutex_pb2.LockRequest(registry="reg", key=as_key(key), session_id=session,
                                             mode=WRITE, wait_timeout_ms=wait_ms,
                                             request_id=request_id), timeout=timeout)


def test_a_grant_whose_answer_is_lost_is_given_again_to_its_retry(daemon):
    proxy = SwallowingProxy(daemon.port)
    try:
        via_proxy = grpc.insecure_channel(f"127.0.0.1:{proxy.port}")
        proxied = rwmutex_pb2_grpc.RWMutexStub(via_proxy)
        a, c = daemon.open(), daemon.open()
        b = daemon.open(ttl_ms=600_000)  # its session outlives the test
        held = lock(daemon.rw, a)
        assert held.acquired
        # b parks through the proxy; its answer will be swallowed.
        parked = proxied.Lock.future(rwmutex_pb2.LockRequest(
            registry="reg", key=b"k", session_id=b, mode=WRITE, wait_timeout_ms=60_000,
            request_id=77), timeout=3)
        wait_until(lambda: daemon.stats().waiters == 1, what="b parked")
        proxy.swallow.set()
        daemon.rw.Unlock(rwmutex_pb2.UnlockRequest(registry="reg", key=b"k", session_id=a,
                                                   token=held.token))
        with pytest.raises(grpc.RpcError) as lost:
            parked.result()
        assert lost.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # The daemon granted b. b retries (directly) with the same request id
        # and gets that grant back instead of queueing behind itself.
        again = lock(daemon.rw, b, request_id=77, wait_ms=5000)
        assert again.acquired
        assert again.token > held.token
        # A different request id is a new request: not re-entrant.
        assert not lock(daemon.rw, b, request_id=78).acquired
        # Nobody else is blocked for longer than that retry.
        assert not lock(daemon.rw, c).acquired
        daemon.rw.Unlock(rwmutex_pb2.UnlockRequest(registry="reg", key=b"k", session_id=b,
                                                   token=again.token))
        assert lock(daemon.rw, c).acquired
        via_proxy.close()
    finally:
        proxy.close()


def test_a_creator_role_whose_answer_is_lost_is_given_again(daemon):
    proxy = SwallowingProxy(daemon.port)
    try:
        via_proxy = grpc.insecure_channel(f"127.0.0.1:{proxy.port}")
        proxied = dogpile_pb2_grpc.DogpileStub(via_proxy)
        s = daemon.open()
        proxy.swallow.set()
        with pytest.raises(grpc.RpcError) as lost:
            proxied.Acquire(daemon.acquire(s, request_id=5), timeout=2)
        assert lost.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        first = daemon.dogpile.Acquire(daemon.acquire(s, request_id=5))
        assert first.outcome == CREATE
        again = daemon.dogpile.Acquire(daemon.acquire(s, request_id=5))
        assert (again.outcome, again.token) == (CREATE, first.token)
        daemon.publish(s, first.token, b"v")
        assert daemon.dogpile.Acquire(daemon.acquire(daemon.open())).outcome == FRESH
        via_proxy.close()
    finally:
        proxy.close()


def test_a_grant_to_a_call_that_went_away_is_released(daemon):
    """b's deadline passes while the daemon is stopped with an Unlock queued
    for it. Whatever the daemon sees first when it resumes (the Unlock, b's
    cancel, or b's deadline), b is not left holding a lock it never heard
    of: c gets it at once, long before b's session would expire."""
    a, c = daemon.open(), daemon.open()
    b = daemon.open(ttl_ms=600_000)
    held = lock(daemon.rw, a)
    parked = daemon.rw.Lock.future(rwmutex_pb2.LockRequest(
        registry="reg", key=b"k", session_id=b, mode=WRITE, wait_timeout_ms=600_000), timeout=1)
    wait_until(lambda: daemon.stats().waiters == 1, what="b parked")
    # The daemon received b's call before this, so its copy of b's deadline
    # (arrival + 1 s) falls before this + 1 s.
    parked_at = time.monotonic()
    daemon.proc.send_signal(signal.SIGSTOP)
    wait_until(lambda: stopped(daemon.proc.pid), what="the daemon stopped")
    try:
        unlocked = daemon.rw.Unlock.future(rwmutex_pb2.UnlockRequest(
            registry="reg", key=b"k", session_id=a, token=held.token))
        assert parked.exception().code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # The client gave up at its deadline; the point is that the daemon's
        # deadline has passed too when it resumes. Without that, if the
        # daemon answers b before reading b's cancel, it cannot know the
        # answer is unread (the SDKs retry with b's request_id for that).
        time.sleep(max(0.0, parked_at + 1.05 - time.monotonic()))
    finally:
        daemon.proc.send_signal(signal.SIGCONT)
    unlocked.result(timeout=10)
    assert lock(daemon.rw, c, wait_ms=5000).acquired
    assert daemon.stats().sessions == 3  # b's session is alive: not what freed it


def test_a_retried_publish_answers_ok_with_the_same_created_time(daemon):
    s = daemon.open()
    token = daemon.dogpile.Acquire(daemon.acquire(s)).token
    first = daemon.publish(s, token, b"v1")
    again = daemon.publish(s, token, b"v1")
    assert again.created_time == first.created_time
    stats = daemon.stats()
    assert (stats.publishes, stats.fencing_rejections) == (1, 0)
    with pytest.raises(grpc.RpcError) as other:
        daemon.publish(daemon.open(), token, b"v1")
    assert other.value.code() == grpc.StatusCode.FAILED_PRECONDITION


needs_shim = pytest.mark.skipif(not SHIM, reason="DOGPILED_FSYNC_SHIM is not built")


def start_with_shim(make_daemon, *args, **faults):
    """Starts a daemon whose fsync and fdatasync go through the shim."""
    saved = dict(os.environ)
    os.environ.update(LD_PRELOAD=SHIM, **faults)
    # Under ASan the shim comes before the sanitizer's runtime: allowed.
    os.environ["ASAN_OPTIONS"] = os.environ.get("ASAN_OPTIONS", "") + ":verify_asan_link_order=0"
    try:
        return make_daemon(*args)
    finally:
        os.environ.clear()
        os.environ.update(saved)


@needs_shim
def test_a_stuck_disk_holds_back_only_the_answers_that_need_it(make_daemon, tmp_path):
    gate = tmp_path / "gate"
    d = start_with_shim(make_daemon, "--fsync", "always", DOGPILED_FAULT_FSYNC_GATE=str(gate))
    reader = d.open()
    token = d.dogpile.Acquire(d.acquire(reader, key="hot")).token
    d.publish(reader, token, b"hot value", key="hot")
    writer = d.open()
    gate.touch()  # from now on every sync waits
    try:
        held_back(d, reader, writer, gate)
    finally:
        gate.unlink(missing_ok=True)  # a failure must not leave it stuck


def held_back(d, reader, writer, gate):
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        wtoken = d.dogpile.Acquire(d.acquire(writer, key="new")).token
        pending = pool.submit(d.publish, writer, wtoken, b"x", key="new")
        with pytest.raises(concurrent.futures.TimeoutError):
            pending.result(timeout=0.5)  # held back: not durable yet
        # Fresh reads, grants on other keys and locks keep being answered
        # (they would hang if anything waited on the disk under the lock).
        for _ in range(50):
            assert d.dogpile.Acquire(d.acquire(reader, key="hot"), timeout=5).outcome == FRESH
        assert d.dogpile.Acquire(d.acquire(reader, key="other"), timeout=5).outcome == CREATE
        assert lock(d.rw, reader, key="m", timeout=5).acquired
        assert not pending.done()
        gate.unlink()
        assert pending.result(timeout=10).created_time > 0


@needs_shim
def test_a_failing_disk_turns_not_serving_and_acknowledges_nothing(make_daemon, tmp_path):
    fail = tmp_path / "fail"
    d = start_with_shim(make_daemon, "--fsync", "always", DOGPILED_FAULT_FSYNC_FAIL=str(fail))
    # grpc.health.v1 Check, encoded by hand: Debian's grpcio ships no stubs.
    health = d.channel.unary_unary("/grpc.health.v1.Health/Check",
                                   lambda b: b, lambda b: b)
    s = d.open()
    token = d.dogpile.Acquire(d.acquire(s, key="kept")).token
    d.publish(s, token, b"before", key="kept")
    fail.touch()
    token = d.dogpile.Acquire(d.acquire(s, key="k2")).token
    with pytest.raises(grpc.RpcError) as refused:
        d.publish(s, token, b"after", key="k2")
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "cannot write" in refused.value.details()
    assert health(b"", timeout=5) == b"\x08\x02"  # status: NOT_SERVING
    # Nothing new is accepted; what was durable is still served.
    token = d.dogpile.Acquire(d.acquire(s, key="k3")).token
    with pytest.raises(grpc.RpcError) as again:
        d.publish(s, token, b"x", key="k3")
    assert again.value.code() == grpc.StatusCode.UNAVAILABLE
    assert d.dogpile.Acquire(d.acquire(s, key="kept")).value == b"before"
    # An invalidation is still applied (more invalidation is always safe),
    # but not acknowledged as durable.
    with pytest.raises(grpc.RpcError) as inv:
        d.dogpile.Invalidate(dogpile_pb2.InvalidateRequest(registry="reg", key=b"kept"))
    assert inv.value.code() == grpc.StatusCode.UNAVAILABLE
    assert d.dogpile.Acquire(d.acquire(s, key="kept")).outcome != FRESH


def test_invalidation_churn_of_distinct_keys_stays_within_the_budget(make_daemon):
    budget = 4 << 20
    d = make_daemon("--memory-budget-bytes", str(budget))
    base = d.rss_kib()
    req = dogpile_pb2.InvalidateRequest
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: d.dogpile.Invalidate(req(registry="users", key=f"u{i}".encode(), hard=True)),
                      range(30_000)))
    stats = d.stats()
    # An eighth of the budget for remembered marks, ~720 bytes each: under
    # a thousand entries, not thirty thousand.
    assert stats.entries <= (budget // 8) // 704 + 10
    assert d.rss_kib() - base < (budget >> 10) + 16 * 1024
    # A value published before the churn was invalidated along (folded), one
    # after it is fresh.
    s = d.open()
    token = d.dogpile.Acquire(d.acquire(s, registry="users", key="u1")).token
    d.publish(s, token, b"new", registry="users", key="u1")
    assert d.dogpile.Acquire(d.acquire(s, registry="users", key="u1")).outcome == FRESH
