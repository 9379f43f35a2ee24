"""Dogpile semantics over the wire beyond section 5."""
import time

import grpc
import pytest

from harness import CREATE, FRESH, NOT_READY, STALE, dogpile_pb2, wait_until


def test_stale_while_one_creates_then_fresh(daemon):
    a, b = daemon.open(), daemon.open()
    token = daemon.dogpile.Acquire(daemon.acquire(a, expire_ms=200)).token
    daemon.publish(a, token, b"v1")
    assert daemon.dogpile.Acquire(daemon.acquire(b, expire_ms=200)).outcome == FRESH
    time.sleep(0.25)
    create = daemon.dogpile.Acquire(daemon.acquire(a, expire_ms=200))
    assert create.outcome == CREATE and create.value == b"v1" and create.is_expired
    stale = daemon.dogpile.Acquire(daemon.acquire(b, expire_ms=200, wait_timeout_ms=5000))
    assert stale.outcome == STALE and stale.value == b"v1"
    daemon.publish(a, create.token, b"v2")
    assert daemon.dogpile.Acquire(daemon.acquire(b, expire_ms=200)).value == b"v2"


def test_not_ready_and_wait_timeout(daemon):
    daemon.dogpile.Acquire(daemon.acquire(daemon.open()))
    s = daemon.open()
    assert daemon.dogpile.Acquire(daemon.acquire(s)).outcome == NOT_READY
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as e:
        daemon.dogpile.Acquire(daemon.acquire(s, wait_timeout_ms=200))
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "wait_timeout_ms" in e.value.details()
    assert time.monotonic() - started >= 0.19
    assert daemon.stats().wait_timeouts == 1


def test_cancelled_client_leaves_the_line(daemon):
    creator = daemon.open()
    token = daemon.dogpile.Acquire(daemon.acquire(creator)).token
    impatient = daemon.open()
    with pytest.raises(grpc.RpcError) as e:
        daemon.dogpile.Acquire(daemon.acquire(impatient, wait_timeout_ms=30_000), timeout=0.2)
    assert e.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    wait_until(lambda: daemon.stats().waiters == 0, what="the cancelled call to leave")
    cancelled = daemon.dogpile.Acquire.future(daemon.acquire(impatient, wait_timeout_ms=30_000))
    wait_until(lambda: daemon.stats().waiters == 1, what="the second call to park")
    cancelled.cancel()
    wait_until(lambda: daemon.stats().waiters == 0, what="the cancel to reach the daemon")
    patient = daemon.dogpile.Acquire.future(daemon.acquire(daemon.open(), wait_timeout_ms=30_000))
    wait_until(lambda: daemon.stats().waiters == 1, what="the patient call to park")
    daemon.dogpile.Abandon(dogpile_pb2.AbandonRequest(registry="reg", key=b"k",
                                                      session_id=creator, token=token,
                                                      reason="backend down"))
    assert patient.result(timeout=10).outcome == CREATE
    assert daemon.stats().abandons == 1


def test_lock_only_mode(daemon):
    a = daemon.open()
    now = time.time()
    fresh = daemon.dogpile.Acquire(daemon.acquire(a, expire_ms=10_000, client_created_time=now))
    assert fresh.outcome == FRESH and not fresh.has_value
    create = daemon.dogpile.Acquire(daemon.acquire(a, expire_ms=10_000, client_created_time=0))
    assert create.outcome == CREATE
    waiter = daemon.dogpile.Acquire.future(
        daemon.acquire(daemon.open(), expire_ms=10_000, client_created_time=-1,
                       wait_timeout_ms=10_000))
    wait_until(lambda: daemon.stats().waiters == 1, what="the lock-only waiter")
    stamp = time.time()
    daemon.publish(a, create.token, b"", created_time=stamp)
    got = waiter.result(timeout=10)
    assert got.outcome == FRESH and not got.has_value
    assert got.created_time == pytest.approx(stamp)
    peek = daemon.dogpile.Peek(dogpile_pb2.PeekRequest(registry="reg", key=b"k"))
    assert not peek.has_value  # lock-only values live in the caller's cache


def test_invalidate_soft_hard_and_registry(daemon):
    a = daemon.open()
    for key in ("x", "y"):
        token = daemon.dogpile.Acquire(daemon.acquire(a, key=key)).token
        daemon.publish(a, token, key.encode(), key=key)
    daemon.dogpile.Invalidate(dogpile_pb2.InvalidateRequest(registry="reg", key=b"x"))
    soft = daemon.dogpile.Acquire(daemon.acquire(a, key=b"x"))
    assert soft.outcome == CREATE and soft.value == b"x"
    daemon.dogpile.Invalidate(dogpile_pb2.InvalidateRequest(registry="reg", key=b"", hard=True))
    with pytest.raises(grpc.RpcError) as e:
        daemon.publish(a, soft.token, b"old", key=b"x")  # elected before: refused
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    hard = daemon.dogpile.Acquire(daemon.acquire(daemon.open(), key=b"y"))
    assert hard.outcome == CREATE and not hard.has_value
    peek = daemon.dogpile.Peek(dogpile_pb2.PeekRequest(registry="reg", key=b"x"))
    assert not peek.has_value


def test_peek_reads_without_taking_a_role(daemon):
    unknown = daemon.dogpile.Peek(dogpile_pb2.PeekRequest(registry="reg", key=b"none"))
    assert not unknown.has_value and not unknown.creating
    assert daemon.stats().entries == 0
    a = daemon.open()
    token = daemon.dogpile.Acquire(daemon.acquire(a)).token
    assert daemon.dogpile.Peek(dogpile_pb2.PeekRequest(registry="reg", key=b"k")).creating
    daemon.publish(a, token, b"v")
    peek = daemon.dogpile.Peek(dogpile_pb2.PeekRequest(registry="reg", key=b"k", expire_ms=-1))
    assert peek.has_value and peek.value == b"v" and peek.is_expired and not peek.creating


def test_creation_timeout_over_the_wire(daemon):
    a = daemon.open(ttl_ms=60_000)
    first = daemon.dogpile.Acquire(daemon.acquire(a, creation_timeout_ms=300))
    assert first.creation_deadline_ms == 300
    waiter = daemon.dogpile.Acquire(daemon.acquire(daemon.open(), wait_timeout_ms=10_000))
    assert waiter.outcome == CREATE and waiter.token > first.token
    with pytest.raises(grpc.RpcError) as e:
        daemon.publish(a, first.token, b"late")
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert daemon.stats().creation_timeouts == 1


def test_entries_leave_stats_when_unreferenced(daemon):
    a = daemon.open()
    token = daemon.dogpile.Acquire(daemon.acquire(a, key=b"gone")).token
    assert daemon.stats().entries == 1
    daemon.dogpile.Abandon(dogpile_pb2.AbandonRequest(registry="reg", key=b"gone",
                                                      session_id=a, token=token))
    stats = daemon.stats()
    assert stats.entries == 0 and stats.registries == 0
    token = daemon.dogpile.Acquire(daemon.acquire(a, key=b"kept")).token
    daemon.publish(a, token, b"12345", key=b"kept")
    from harness import sessions_pb2
    daemon.sessions.Close(sessions_pb2.CloseRequest(session_id=a))
    stats = daemon.stats()
    assert stats.entries == 1 and stats.stored_bytes == len(b"12345") + len("kept")


def test_stale_if_error_throttles_reelection(daemon):
    a = daemon.open()
    token = daemon.dogpile.Acquire(daemon.acquire(a, expire_ms=100)).token
    daemon.publish(a, token, b"last good")
    time.sleep(0.15)
    create = daemon.dogpile.Acquire(daemon.acquire(a, expire_ms=100))
    assert create.outcome == CREATE and create.age_ms >= 150
    daemon.dogpile.Abandon(dogpile_pb2.AbandonRequest(
        registry="reg", key=b"k", session_id=a, token=create.token,
        reason="backend down", retry_after_ms=60_000))
    b = daemon.open()
    for _ in range(5):
        r = daemon.dogpile.Acquire(daemon.acquire(b, expire_ms=100))
        assert r.outcome == STALE and r.value == b"last good"
        assert 0 < r.retry_in_ms <= 60_000 and r.age_ms >= 150
    strict = daemon.dogpile.Acquire(daemon.acquire(b, expire_ms=100, max_stale_ms=1))
    assert strict.outcome == NOT_READY and not strict.has_value
    assert daemon.stats().acquires_create == 2
    peek = daemon.dogpile.Peek(dogpile_pb2.PeekRequest(registry="reg", key=b"k", expire_ms=100))
    assert peek.age_ms >= 150
