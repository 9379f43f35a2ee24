"""Section 4: every bad input gets its code and a message naming the field,
changes nothing, and the daemon keeps serving with the stored value intact."""
import grpc
import pytest

from harness import FRESH, READ, dogpile_pb2, rwmutex_pb2, sessions_pb2, wait_until

MiB = 1 << 20


@pytest.fixture
def primed(daemon):
    """A daemon holding value b"precious" under reg/k, and a live session."""
    s = daemon.open()
    token = daemon.dogpile.Acquire(daemon.acquire(s, expire_ms=0)).token
    daemon.publish(s, token, b"precious")
    daemon.session = s
    daemon.baseline = daemon.stats()
    return daemon


def bad_requests(d):
    s = d.session
    A = dogpile_pb2.AcquireRequest
    P = dogpile_pb2.PublishRequest
    L = rwmutex_pb2.LockRequest
    return [
        # (call, request, code, field named in the message)
        (d.dogpile.Acquire, A(registry="", key=b"k", session_id=s), "INVALID_ARGUMENT", "registry"),
        (d.dogpile.Acquire, A(registry="r" * 129, key=b"k", session_id=s), "INVALID_ARGUMENT", "registry"),
        (d.dogpile.Acquire, A(registry="a b", key=b"k", session_id=s), "INVALID_ARGUMENT", "registry"),
        (d.dogpile.Acquire, A(registry="reg", key=b"", session_id=s), "INVALID_ARGUMENT", "key"),
        (d.dogpile.Acquire, A(registry="reg", key=b"k" * 1025, session_id=s), "INVALID_ARGUMENT", "key"),
        (d.dogpile.Acquire, A(registry="reg", key=b"k", session_id=s, wait_timeout_ms=-1), "INVALID_ARGUMENT", "wait_timeout_ms"),
        (d.dogpile.Acquire, A(registry="reg", key=b"k", session_id=s, creation_timeout_ms=-1), "INVALID_ARGUMENT", "creation_timeout_ms"),
        (d.dogpile.Acquire, A(registry="reg", key=b"k", session_id=s, early_refresh_beta=-0.5), "INVALID_ARGUMENT", "early_refresh_beta"),
        (d.dogpile.Acquire, A(registry="reg", key=b"k", session_id=s, client_created_time=float("nan")), "INVALID_ARGUMENT", "client_created_time"),
        (d.dogpile.Acquire, A(registry="reg", key=b"k", session_id=987654321), "NOT_FOUND", "session_id"),
        # Field errors come before session errors.
        (d.dogpile.Acquire, A(registry="", key=b"k", session_id=987654321), "INVALID_ARGUMENT", "registry"),
        (d.dogpile.Publish, P(registry="reg", key=b"k", session_id=s, token=1, value=b"x"), "FAILED_PRECONDITION", "token"),
        (d.dogpile.Publish, P(registry="reg", key=b"k", session_id=987654321, token=1, value=b"x"), "NOT_FOUND", "session_id"),
        (d.dogpile.Publish, P(registry="reg", key=b"k", session_id=s, token=1, value=b"x" * (MiB + 1)), "RESOURCE_EXHAUSTED", "value"),
        (d.dogpile.Publish, P(registry="reg", key=b"k", session_id=s, token=1, value=b"x", created_time=float("inf")), "INVALID_ARGUMENT", "created_time"),
        (d.dogpile.Abandon, dogpile_pb2.AbandonRequest(registry="reg", key=b"k", session_id=s, token=1), "FAILED_PRECONDITION", "token"),
        (d.dogpile.Abandon, dogpile_pb2.AbandonRequest(registry="reg", key=b"k", session_id=s, token=1, reason="r" * 1025), "INVALID_ARGUMENT", "reason"),
        (d.dogpile.Invalidate, dogpile_pb2.InvalidateRequest(registry="", key=b"k"), "INVALID_ARGUMENT", "registry"),
        (d.dogpile.Invalidate, dogpile_pb2.InvalidateRequest(registry="reg", key=b"k" * 1025), "INVALID_ARGUMENT", "key"),
        (d.dogpile.Peek, dogpile_pb2.PeekRequest(registry="reg", key=b""), "INVALID_ARGUMENT", "key"),
        (d.rw.Lock, L(registry="reg", key=b"m", session_id=s, mode=0), "INVALID_ARGUMENT", "mode"),
        (d.rw.Lock, L(registry="reg", key=b"m", session_id=s, mode=7), "INVALID_ARGUMENT", "mode"),
        (d.rw.Lock, L(registry="reg", key=b"m", session_id=s, mode=READ, wait_timeout_ms=-3), "INVALID_ARGUMENT", "wait_timeout_ms"),
        (d.rw.Lock, L(registry="reg", key=b"m", session_id=5, mode=READ), "NOT_FOUND", "session_id"),
        (d.rw.Unlock, rwmutex_pb2.UnlockRequest(registry="reg", key=b"m", session_id=s, token=77), "FAILED_PRECONDITION", "token"),
        (d.sessions.Open, sessions_pb2.OpenRequest(ttl_ms=50), "INVALID_ARGUMENT", "ttl_ms"),
        (d.sessions.Open, sessions_pb2.OpenRequest(client_name="n" * 257), "INVALID_ARGUMENT", "client_name"),
        (d.sessions.Close, sessions_pb2.CloseRequest(session_id=31337), "NOT_FOUND", "session_id"),
    ]


def test_each_bad_input_has_its_code_and_changes_nothing(primed):
    d = primed
    for call, request, code, field in bad_requests(d):
        with pytest.raises(grpc.RpcError) as e:
            call(request, timeout=10)
        assert e.value.code() == getattr(grpc.StatusCode, code), (call, field, e.value.details())
        assert e.value.details().startswith(field + ":"), (field, e.value.details())
    after = d.stats()
    assert after.entries == d.baseline.entries
    assert after.sessions == d.baseline.sessions
    assert after.stored_bytes == d.baseline.stored_bytes
    assert after.waiters == 0
    peek = d.dogpile.Peek(dogpile_pb2.PeekRequest(registry="reg", key=b"k"))
    assert peek.value == b"precious"
    got = d.dogpile.Acquire(d.acquire(d.open(), expire_ms=0))
    assert got.outcome == FRESH and got.value == b"precious"


def test_oversized_publish_keeps_the_role_and_the_old_value(primed):
    d = primed
    token = d.dogpile.Acquire(d.acquire(d.session, expire_ms=-1)).token
    with pytest.raises(grpc.RpcError) as e:
        d.publish(d.session, token, b"x" * (MiB + 1))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert d.dogpile.Peek(dogpile_pb2.PeekRequest(registry="reg", key=b"k")).value == b"precious"
    d.publish(d.session, token, b"y" * MiB)  # exactly at the limit is fine
    assert len(d.dogpile.Peek(dogpile_pb2.PeekRequest(registry="reg", key=b"k")).value) == MiB


def test_configured_caps(make_daemon):
    d = make_daemon("--max-sessions", "2", "--max-waiters", "1", "--max-value-bytes", "10")
    a = d.open()
    d.open()
    with pytest.raises(grpc.RpcError) as e:
        d.open()
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "sessions" in e.value.details()
    token = d.dogpile.Acquire(d.acquire(a)).token
    parked = d.dogpile.Acquire.future(d.acquire(a, wait_timeout_ms=10_000))
    wait_until(lambda: d.stats().waiters == 1, what="one parked")
    with pytest.raises(grpc.RpcError) as e:
        d.dogpile.Acquire(d.acquire(a, wait_timeout_ms=10_000))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "waiters" in e.value.details()
    with pytest.raises(grpc.RpcError) as e:
        d.publish(a, token, b"12345678901")
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "value" in e.value.details()
    d.publish(a, token, b"1234567890")
    assert parked.result(timeout=10).value == b"1234567890"


def test_memory_budget_evicts_unused_values(make_daemon):
    # Each entry costs 704 bytes of bookkeeping beside its key and value, the
    # registry 704 + its name: three 30-byte values fit in 3200, four not.
    d = make_daemon("--memory-budget-bytes", "3200")
    s = d.open()
    for i in range(5):
        key = f"k{i}"
        d.publish(s, d.dogpile.Acquire(d.acquire(s, key=key)).token, b"x" * 30, key=key)
    stats = d.stats()
    assert stats.stored_bytes == 3 * 32
    assert stats.evictions == 2
    peeks = [d.dogpile.Peek(dogpile_pb2.PeekRequest(registry="reg", key=f"k{i}".encode())).has_value
             for i in range(5)]
    assert peeks == [False, False, True, True, True]