"""Near-cache, daemon side (docs/near-cache.md): the watch protocol over the
real binary. Invalidate and Publish return only once every holder acked,
ended its session, or proved it dropped its cache; a watch that breaks
(here: a proxy swallows it) or a holder that is SIGSTOPped holds the call
no longer than the documented bound. No sleeps decide an order: each test
waits for the event it needs."""
import concurrent.futures
import os
import queue
import signal
import subprocess
import sys
import time

import grpc
import pytest

from harness import CREATE, FRESH, dogpile_pb2, dogpile_pb2_grpc, sessions_pb2, sessions_pb2_grpc
from test_hot_path import SwallowingProxy

SUBSCRIBED = dogpile_pb2.WatchEvent.KIND_SUBSCRIBED
INVALIDATED = dogpile_pb2.WatchEvent.KIND_INVALIDATED
HEARTBEAT = dogpile_pb2.WatchEvent.KIND_HEARTBEAT
HERE = os.path.dirname(os.path.abspath(__file__))


class Watch:
    """One Watch stream of a session: events come in order; ack() sends."""

    def __init__(self, stub, session_id, metadata=None):
        self.requests = queue.Queue()
        self.requests.put(dogpile_pb2.WatchRequest(session_id=session_id))
        self.call = stub.Watch(iter(self.requests.get, None), metadata=metadata)
        first = next(self.call)
        assert first.kind == SUBSCRIBED
        self.id = first.watch_id
        self.heartbeat_ms = first.heartbeat_ms

    def next_push(self):
        for event in self.call:
            if event.kind == INVALIDATED:
                return event
        raise AssertionError("watch ended")

    def ack(self, seq):
        self.requests.put(dogpile_pb2.WatchRequest(ack_seq=seq))

    def close(self):
        self.requests.put(None)
        self.call.cancel()


def keep_alive(daemon, session_id, watch_id):
    """One KeepAlive naming `watch_id`; returns watch_lost."""
    answers = daemon.sessions.KeepAlive(iter([sessions_pb2.KeepAliveRequest(
        session_id=session_id, watch_id=watch_id)]))
    return next(answers).watch_lost


def store(daemon, session, value, key=b"k"):
    got = daemon.dogpile.Acquire(daemon.acquire(session, key=key, expire_ms=-1))
    assert got.outcome == CREATE
    daemon.publish(session, got.token, value, key=key)


def tracked_read(daemon, session, key=b"k"):
    return daemon.dogpile.Acquire(daemon.acquire(session, key=key, near_cache=True))


def invalidate(daemon, key=b"k"):
    return daemon.dogpile.Invalidate.future(
        dogpile_pb2.InvalidateRequest(registry="reg", key=key), timeout=60)


def test_invalidate_returns_after_the_holder_acked(daemon):
    writer, reader = daemon.open(), daemon.open()
    store(daemon, writer, b"v1")
    watch = Watch(daemon.dogpile, reader)
    got = tracked_read(daemon, reader)
    assert got.outcome == FRESH and got.near_cache_watch_id == watch.id
    assert 0 < got.fresh_for_ms <= 60_000
    stats = daemon.stats()
    assert (stats.watches, stats.tracked_keys, stats.unacked_pushes) == (1, 1, 0)
    pending = invalidate(daemon)
    push = watch.next_push()
    assert (push.seq, push.registry, push.key) == (1, "reg", b"k")
    assert not pending.done(), "answered before the holder dropped the value"
    stats = daemon.stats()
    assert (stats.tracked_keys, stats.unacked_pushes) == (0, 1)
    watch.ack(push.seq)
    pending.result()
    assert daemon.stats().unacked_pushes == 0
    # Publish of a held key waits the same way.
    store(daemon, writer, b"v2")
    assert tracked_read(daemon, reader).near_cache_watch_id == watch.id
    store_pending = concurrent.futures.ThreadPoolExecutor(1).submit(store, daemon, writer, b"v3")
    push = watch.next_push()
    assert push.seq == 2
    assert not store_pending.done()
    watch.ack(2)
    store_pending.result()
    watch.close()


def test_untracked_reads_and_other_keys_do_not_wait(daemon):
    writer, reader = daemon.open(), daemon.open()
    store(daemon, writer, b"v1")
    assert tracked_read(daemon, reader).near_cache_watch_id == 0  # no watch
    invalidate(daemon).result()
    store(daemon, writer, b"v2")
    watch = Watch(daemon.dogpile, reader)
    tracked_read(daemon, reader)
    invalidate(daemon, key=b"other").result()
    watch.close()


def test_bad_watch_requests_are_refused_naming_the_field(daemon):
    with pytest.raises(grpc.RpcError) as err:
        Watch(daemon.dogpile, 0)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "session_id" in err.value.details()
    with pytest.raises(grpc.RpcError) as err:
        Watch(daemon.dogpile, 12345)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    session = daemon.open()
    watch = Watch(daemon.dogpile, session)
    watch.ack(7)  # nothing was pushed
    with pytest.raises(grpc.RpcError) as err:
        watch.next_push()
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "ack_seq" in err.value.details()


def test_a_watch_is_bound_to_the_sessions_identity(make_daemon, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("billing = s3cret\n")
    daemon = make_daemon("--registry-token-file", str(tokens))
    bearer = [("authorization", "Bearer s3cret")]
    owned = daemon.sessions.Open(sessions_pb2.OpenRequest(), metadata=bearer).session_id
    with pytest.raises(grpc.RpcError) as err:
        Watch(daemon.dogpile, owned)  # the anonymous tenant
    assert err.value.code() == grpc.StatusCode.PERMISSION_DENIED
    Watch(daemon.dogpile, owned, metadata=bearer).close()


def test_a_second_watch_replaces_the_first_and_releases_its_pushes(daemon):
    writer, reader = daemon.open(), daemon.open()
    store(daemon, writer, b"v1")
    first = Watch(daemon.dogpile, reader)
    tracked_read(daemon, reader)
    pending = invalidate(daemon)
    first.next_push()
    second = Watch(daemon.dogpile, reader)
    pending.result()
    with pytest.raises(grpc.RpcError) as err:
        first.next_push()
    assert err.value.code() == grpc.StatusCode.ABORTED
    second.close()


def test_a_swallowed_watch_holds_invalidate_until_the_client_drops(make_daemon):
    """A half-open watch: the proxy keeps the connection but the events never
    reach the client. The daemon cannot know the client stopped serving, so
    the Invalidate waits; the KeepAlive (on a direct connection) hears
    watch_lost once the ack timeout passes, and the client's KeepAlive with
    watch 0 releases it."""
    daemon = make_daemon("--watch-ack-timeout-ms", "300")
    proxy = SwallowingProxy(daemon.port)
    try:
        channel = grpc.insecure_channel(f"127.0.0.1:{proxy.port}")
        writer, reader = daemon.open(), daemon.open(ttl_ms=60_000)
        store(daemon, writer, b"v1")
        watch = Watch(dogpile_pb2_grpc.DogpileStub(channel), reader)
        tracked_read(daemon, reader)
        proxy.swallow.set()
        started = time.monotonic()
        pending = invalidate(daemon)
        assert not keep_alive(daemon, reader, watch.id) or time.monotonic() - started > 0.3
        while not keep_alive(daemon, reader, watch.id):
            assert not pending.done()
            time.sleep(0.05)  # polls the lost flag, as the SDK's KeepAlive does
        assert not pending.done()
        assert not keep_alive(daemon, reader, 0)
        pending.result(timeout=10)
        assert time.monotonic() - started < 30
        channel.close()
    finally:
        proxy.close()


def test_a_sigstopped_holder_holds_invalidate_until_its_session_ends(daemon):
    ttl_ms = 1500
    writer = daemon.open()
    store(daemon, writer, b"v1")
    child = subprocess.Popen([sys.executable, os.path.join(HERE, "near_cache_child.py"),
                              daemon.target, str(ttl_ms)], stdout=subprocess.PIPE, text=True)
    try:
        session, watch_id = map(int, child.stdout.readline().split())
        child.send_signal(signal.SIGSTOP)
        started = time.monotonic()
        invalidate(daemon).result(timeout=30)
        waited = time.monotonic() - started
        # It returned because the session ended, not before: the session is
        # gone now, and it took about one TTL (the child's last renewal was
        # at most TTL/10 before the stop).
        with pytest.raises(grpc.RpcError) as err:
            keep_alive(daemon, session, watch_id)
        assert err.value.code() == grpc.StatusCode.NOT_FOUND
        assert waited >= ttl_ms * 0.85 / 1000, waited
        assert waited < 10, waited
    finally:
        child.kill()
        child.wait()
