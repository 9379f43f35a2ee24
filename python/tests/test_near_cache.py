"""The near-cache (docs/near-cache.md) against the real daemon: hits that
make no call, coherence under concurrent Publish and Invalidate, a watch
cut or silenced by a proxy, a SIGSTOPped holder, eviction under the byte
bound, and max_stale_on_error. Nothing waits on a sleep for an order: each
step waits for the event (or the daemon's state) it needs."""
import os
import queue
import random
import signal
import sys
import threading
import time

import grpc
import pytest

import dogpiled
import support
from conftest import REPO_DIR
from dogpiled.near_cache import ENTRY_OVERHEAD
from dogpiled.v1 import dogpile_pb2_grpc, sessions_pb2, sessions_pb2_grpc
from near_cache_children import Read, Write, incoherent_reads
import near_cache_children

# The daemon-side suite's proxy, borrowed. Its harness puts the build's stub
# package (a "dogpiled" without .cache) first on sys.path; spawn children
# inherit sys.path, so it is put back as it was once the import is done.
_SYS_PATH = list(sys.path)
sys.path.insert(0, os.path.join(REPO_DIR, "tests", "integration"))
from test_hot_path import SwallowingProxy, stopped  # noqa: E402
sys.path[:] = _SYS_PATH


def acquires(client):
    """Acquire calls the daemon answered so far, every outcome."""
    s = client.stats()
    return (s.acquires_fresh + s.acquires_stale + s.acquires_create
            + s.acquires_not_ready)


def publish(client, registry, key, value):
    """Stores `value` through a creator role. A near-cached read() may hold
    the role for a moment (the value vanished between its Peek and its
    Acquire) and gives it up at once: then the writer gets STALE, and
    tries again."""
    for _ in range(1000):
        response, role = client.acquire(registry, key, expire_ms=-1,
                                        wait_timeout_ms=10_000)
        if role is not None:
            role.publish(value)
            return
        assert response.outcome == dogpiled.client.STALE, response
        threading.Event().wait(0.001)
    raise AssertionError("the writer never got the creator role")


def never_called():
    raise AssertionError("the creator ran: the value was not served")


def trusted(client):
    client.session.id
    assert client._watcher.wait_trusted(support.CHILD_PATIENCE)
    return client


def cut(proxy):
    """Breaks every connection through the proxy; new ones still work."""
    for s in list(proxy.sockets):
        try:
            s.shutdown(2)
        except OSError:
            pass


@pytest.fixture
def fast_daemon(tmp_path):
    """A daemon of the test's own, heartbeating every 250 ms: a silent
    watch is noticed in 0.75 s, while a loaded machine rarely delays a
    heartbeat that long."""
    d = support.Daemon(str(tmp_path), "--watch-heartbeat-ms", "250")
    try:
        yield d.start()
    finally:
        d.stop()


class CountingInterceptor(grpc.UnaryUnaryClientInterceptor):
    def __init__(self):
        self.calls = 0

    def intercept_unary_unary(self, continuation, details, request):
        self.calls += 1
        return continuation(details, request)


def test_a_hit_makes_no_call(clients, registry):
    writer = clients()
    publish(writer, registry, "k", b"v1")
    reader = trusted(clients(near_cache_bytes=1 << 20))
    counter = CountingInterceptor()
    reader._dogpile = dogpile_pb2_grpc.DogpileStub(
        grpc.intercept_channel(reader._channel, counter))
    assert reader.get_or_create(registry, "k", never_called, 60) == b"v1"
    assert counter.calls == 1
    before = acquires(writer)
    for _ in range(1000):
        assert reader.get_or_create(registry, "k", never_called, 60) == b"v1"
        assert reader.read(registry, "k").value == b"v1"
    assert (counter.calls, acquires(writer)) == (1, before)
    assert reader.near_cache.hits == 2000
    # Early refresh is the daemon's call on each read: never from memory.
    reader.get_or_create(registry, "k", never_called, 60,
                         early_refresh_beta=1.0)
    assert (counter.calls, acquires(writer)) == (2, before + 1)


def test_publish_and_invalidate_are_applied_before_they_return(
        clients, registry):
    writer = clients()
    publish(writer, registry, "a", b"a1")
    publish(writer, registry, "b", b"b1")
    reader = trusted(clients(near_cache_bytes=1 << 20))
    for key in ("a", "b"):
        reader.read(registry, key)
    assert len(reader.near_cache) == 2
    publish(writer, registry, "a", b"a2")
    # The daemon answered the Publish on the reader's ack, which came after
    # the drop: nothing left to serve, without any waiting here.
    assert reader.near_cache.lookup(registry, b"a", 0) is None
    assert reader.read(registry, "a").value == b"a2"
    writer.invalidate(registry, "b", hard=True)
    assert reader.near_cache.lookup(registry, b"b", 0) is None
    assert not reader.read(registry, "b").has_value
    reader.read(registry, "a")
    assert reader.near_cache.lookup(registry, b"a", 0) is not None
    writer.invalidate(registry)  # the whole registry, soft
    assert len(reader.near_cache) == 0
    assert reader.read(registry, "a").is_expired


def test_eviction_keeps_the_bytes_under_the_bound(clients, registry):
    writer = clients()
    keys = [f"k{i}" for i in range(5)]
    for key in keys:
        publish(writer, registry, key, key.encode() * 500)
    size = len(registry) + 2 + 1000 + ENTRY_OVERHEAD
    reader = trusted(clients(near_cache_bytes=3 * size + size // 2))
    for key in keys:
        reader.read(registry, key)
    assert len(reader.near_cache) == 3
    assert reader.near_cache.bytes == 3 * size <= reader.near_cache.max_bytes

    def held(key):
        before = acquires(writer)
        reader.read(registry, key)
        return acquires(writer) == before

    # Least recently used first: k0 and k1 went; k2 read now is kept
    # fresh, so bringing k0 back evicts k3.
    assert held("k2")
    assert not held("k0")
    assert [held(k) for k in ("k4", "k2", "k0")] == [True, True, True]
    assert not held("k3")
    # A value bigger than the whole bound is never kept.
    publish(writer, registry, "big", b"x" * 4 * size)
    reader.read(registry, "big")
    assert reader.near_cache.lookup(registry, b"big", 0) is None
    assert reader.near_cache.bytes <= reader.near_cache.max_bytes


def test_the_coherence_checker_catches_an_old_fresh_read():
    writes = [Write("publish", b"v1", 1.0), Write("invalidate", None, 2.0),
              Write("publish", b"v2", 3.0)]
    concurrent = Read(1.5, 2.5, b"v1", True)  # began before 2.0 returned
    stale_but_marked = Read(2.1, 2.2, b"v1", False)
    assert incoherent_reads(writes, [concurrent, stale_but_marked]) == []
    late = Read(2.1, 2.2, b"v1", True)
    unknown = Read(3.5, 3.6, b"v9", True)
    assert incoherent_reads(writes, [late, unknown]) == [late, unknown]


def test_no_read_after_a_write_returned_yields_the_old_value_fresh(
        daemon, clients, registry):
    """Three processes, two threads each, read one key through their own
    near-caches while this one publishes and invalidates it."""
    writer = clients()
    publish(writer, registry, "k", b"v0")
    writes = [Write("publish", b"v0", time.monotonic())]
    ready = support.SPAWN.Barrier(4)
    stop = support.SPAWN.Event()
    results = support.SPAWN.Queue()
    readers = [support.start(near_cache_children.coherence_reader,
                             daemon.address, registry, "k", 2, ready, stop,
                             results) for _ in range(3)]
    rng = random.Random(12)
    try:
        ready.wait(support.CHILD_PATIENCE)
        for i in range(1, 151):
            if rng.random() < 0.5:
                publish(writer, registry, "k", b"v%d" % i)
                writes.append(Write("publish", b"v%d" % i,
                                    time.monotonic()))
            else:
                writer.invalidate(registry, "k", hard=rng.random() < 0.5)
                writes.append(Write("invalidate", None,
                                    time.monotonic()))
            # Pacing, not ordering: lets the readers cache the value, so
            # that writes find holders (checked below).
            threading.Event().wait(0.004)
    finally:
        stop.set()
        got = [results.get(timeout=support.CHILD_PATIENCE) for _ in readers]
        for proc in readers:
            proc.join(support.CHILD_PATIENCE)
    reads = [r for history, _, _ in got for r in history]
    assert incoherent_reads(writes, reads) == []
    # The check had something to bite on: values served from memory,
    # pushes applied, and fresh reads that began after some write.
    assert sum(hits for _, hits, _ in got) > 100
    assert all(applied > 0 for _, _, applied in got)
    assert sum(1 for r in reads if r.fresh and r.start > writes[1].returned
               ) > 100
    assert [p.exitcode for p in readers] == [0, 0, 0]


def test_a_watch_cut_by_a_proxy_drops_everything_and_comes_back(
        daemon, registry):
    proxy = SwallowingProxy(int(daemon.address.rsplit(":", 1)[1]))
    writer = dogpiled.Client(daemon.address)
    reader = dogpiled.Client(f"127.0.0.1:{proxy.port}",
                             near_cache_bytes=1 << 20)
    try:
        publish(writer, registry, "k", b"v1")
        trusted(reader)
        reader.read(registry, "k")
        assert len(reader.near_cache) == 1
        lost = reader._watcher.losses
        cut(proxy)
        support.wait_until(lambda: reader._watcher.losses > lost,
                           what="the reader to notice the cut")
        assert len(reader.near_cache) == 0
        assert reader.near_cache.lookup(registry, b"k", 0) is None
        # Trusted again only through a new watch; then values are kept.
        trusted(reader)
        publish(writer, registry, "k", b"v2")
        assert reader.read(registry, "k").value == b"v2"
        assert reader.near_cache.lookup(registry, b"k", 0).value == b"v2"
    finally:
        reader.close(timeout=1)
        writer.close()
        proxy.close()


def test_a_silent_watch_is_dropped_and_the_invalidate_returns(
        fast_daemon, registry):
    """The proxy swallows the daemon's bytes but passes the client's: the
    reader hears nothing for 3 heartbeats, drops its near-cache and names
    no watch in a KeepAlive, which is what lets the Invalidate return."""
    proxy = SwallowingProxy(int(fast_daemon.address.rsplit(":", 1)[1]))
    writer = dogpiled.Client(fast_daemon.address)
    reader = dogpiled.Client(f"127.0.0.1:{proxy.port}", session_ttl=60,
                             near_cache_bytes=1 << 20)
    try:
        publish(writer, registry, "k", b"v1")
        trusted(reader)
        session_id = reader.session.id
        reader.read(registry, "k")
        assert reader.near_cache.lookup(registry, b"k", 0) is not None
        lost = reader._watcher.losses
        proxy.swallow.set()
        started = time.monotonic()
        writer.invalidate(registry, "k")
        waited = time.monotonic() - started
        assert reader.near_cache.lookup(registry, b"k", 0) is None
        assert reader._watcher.losses > lost
        # Well before its lease could end (4/5 of 60 s): the silence did it.
        assert waited < 20, waited
        assert reader.session.current_id(0) == session_id
    finally:
        proxy.swallow.clear()
        reader.close(timeout=1)
        writer.close()
        proxy.close()


def test_a_sigstopped_holder_holds_invalidate_until_its_session_ends(
        daemon, clients, registry):
    ttl = 3.0  # renewed every second: a loaded machine keeps it alive
    writer = clients()
    publish(writer, registry, "k", b"v1")
    held, resumed = support.SPAWN.Event(), support.SPAWN.Event()
    session = support.SPAWN.Value("Q", 0)
    results = support.SPAWN.Queue()
    child = support.start(near_cache_children.stopped_holder, daemon.address,
                          registry, "k", ttl, session, held, resumed, results)
    try:
        assert held.wait(support.CHILD_PATIENCE), _child_said(results)
        os.kill(child.pid, signal.SIGSTOP)
        support.wait_until(lambda: stopped(child.pid), what="the stop")
        started = time.monotonic()
        writer.invalidate(registry, "k")
        waited = time.monotonic() - started
        # It waited for the holder's session to end (about one TTL after
        # its last renewal, at most a third of a TTL before the stop), and
        # returned then: that session is gone.
        with pytest.raises(grpc.RpcError) as gone:
            next(sessions_pb2_grpc.SessionsStub(writer._channel).KeepAlive(
                iter([sessions_pb2.KeepAliveRequest(
                    session_id=session.value)])))
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND
        assert ttl * 0.6 <= waited < ttl + 5, waited
    finally:
        os.kill(child.pid, signal.SIGCONT)
        resumed.set()
    kind, first, after = results.get(timeout=support.CHILD_PATIENCE)
    child.join(support.CHILD_PATIENCE)
    assert (kind, first.value) == ("read", b"v1")
    # Woken up past its lease, it did not serve the old value as FRESH.
    assert not (after.fresh and after.value == b"v1"), after
    assert child.exitcode == 0


def _child_said(results):
    try:
        return f"child: {results.get_nowait()}"
    except queue.Empty:
        return "the child never held the key"



def test_when_the_daemon_is_away_only_what_a_break_dropped_is_served(
        restartable_daemon, registry):
    address = restartable_daemon.address
    writer = dogpiled.Client(address)
    opts = dict(near_cache_bytes=1 << 20, rpc_timeout=0.5)
    tolerant = dogpiled.Client(address, max_stale_on_error=60, **opts)
    strict = dogpiled.Client(address, **opts)
    open_ = dogpiled.Client(address, fail_open=True, rpc_timeout=0.5)
    try:
        for key in ("held", "voided"):
            publish(writer, registry, key, key.encode())
        for reader in (trusted(tolerant), trusted(strict)):
            for key in ("held", "voided"):
                assert reader.read(registry, key).value == key.encode()
        writer.invalidate(registry, "voided")  # pushed: never served stale
        lost = [r._watcher.losses for r in (tolerant, strict)]
        restartable_daemon.stop()
        for reader, before in zip((tolerant, strict), lost):
            support.wait_until(lambda: reader._watcher.losses > before,
                               what="the watch to break")
        got = tolerant.get_or_create(registry, "held", never_called, 60)
        assert isinstance(got, dogpiled.StaleValue) and got.stale
        assert got == b"held" and got.stale_for == 0  # not expired yet
        read = tolerant.read(registry, "held")
        assert (read.value, read.stale, read.is_expired) == (b"held", True,
                                                             True)
        for key, reader in (("voided", tolerant), ("held", strict)):
            with pytest.raises(dogpiled.DogpiledError) as failed:
                reader.get_or_create(registry, key, never_called, 60)
            assert failed.value.code in (grpc.StatusCode.UNAVAILABLE,
                                         grpc.StatusCode.DEADLINE_EXCEEDED)
        # fail_open chose to create locally rather than fail: unstored.
        assert open_.get_or_create(registry, "held", lambda: b"local",
                                   60) == b"local"
    finally:
        for c in (tolerant, strict, open_, writer):
            c.close(timeout=1)


def test_the_backend_passes_near_cache_bytes_through(clients, regions):
    region = regions(expiration_time=60, near_cache_bytes=1 << 20)
    other = regions(expiration_time=60)
    region.set("k", "v1")
    reader = trusted(region.backend.conn.client)
    assert region.get("k") == "v1"
    observer = clients()
    before, hits = acquires(observer), reader.near_cache.hits
    for _ in range(100):
        assert region.get("k") == "v1"
        assert region.get_or_create("k", never_called) == "v1"
    # Every one a hit, which returns before any call (Stats counts no Peek).
    assert reader.near_cache.hits == hits + 200
    assert acquires(observer) == before
    other.set("k", "v2")
    assert region.get("k") == "v2"
    other.invalidate(hard=True)
    assert region.get("k") is support.NO_VALUE


def test_the_backend_serves_a_stale_value_while_the_daemon_is_away(
        restartable_daemon, registry):
    region = support.region_on(restartable_daemon.address, registry,
                               expiration_time=60, near_cache_bytes=1 << 20,
                               max_stale_on_error=60, rpc_timeout=0.5)
    try:
        region.set("k", "v1")
        reader = trusted(region.backend.conn.client)
        assert region.get("k") == "v1"
        lost = reader._watcher.losses
        restartable_daemon.stop()
        support.wait_until(lambda: reader._watcher.losses > lost,
                           what="the watch to break")
        # Stamped soft-invalidated: expired for a plain get(), and served
        # stale by get_or_create, whose lock the daemon cannot grant.
        assert region.get("k") is support.NO_VALUE
        assert region.get("k", ignore_expiration=True) == "v1"
        assert region.get_or_create("k", never_called) == "v1"
    finally:
        region.backend.close()


def test_a_lost_session_drops_everything_and_a_new_watch_follows(
        daemon, clients, registry):
    writer = clients()
    publish(writer, registry, "k", b"v1")
    reader = trusted(clients(near_cache_bytes=1 << 20))
    old = reader.session.id
    reader.read(registry, "k")
    assert len(reader.near_cache) == 1
    lost = reader._watcher.losses
    with grpc.insecure_channel(daemon.address) as channel:
        sessions_pb2_grpc.SessionsStub(channel).Close(
            sessions_pb2.CloseRequest(session_id=old), timeout=5)
    support.wait_until(lambda: reader._watcher.losses > lost,
                       what="the reader to lose its watch")
    assert len(reader.near_cache) == 0
    trusted(reader)
    assert reader.session.id != old
    reader.read(registry, "k")
    hits = reader.near_cache.hits
    assert reader.read(registry, "k").value == b"v1"
    assert reader.near_cache.hits == hits + 1
