"""Tenants cannot touch each other (docs/security.md), against the real
binary: sessions bound to the token that opened them, Stats behind the admin
token, quotas per tenant, memory shares, log hygiene, hostile input."""
import re
import time

import grpc
import pytest

from harness import CREATE, FRESH, READ, WRITE, admin_pb2, dogpile_pb2, rwmutex_pb2, \
    sessions_pb2, wait_until

BILLING = [("authorization", "Bearer s3cret")]
OTHER = [("authorization", "Bearer 0ther")]
ADMIN = [("authorization", "Bearer adm1n")]


@pytest.fixture
def protected(make_daemon, tmp_path):
    tokens = tmp_path / "tokens"
    tokens.write_text("billing = s3cret\nother = 0ther\n")
    admin = tmp_path / "admin"
    admin.write_text("adm1n\n")
    return lambda *args: make_daemon("--registry-token-file", str(tokens),
                                     "--admin-token-file", str(admin), *args)


def open_as(d, metadata=None, name="test"):
    return d.sessions.Open(sessions_pb2.OpenRequest(client_name=name),
                           metadata=metadata).session_id


def code_of(call):
    with pytest.raises(grpc.RpcError) as e:
        call()
    return e.value.code()


def test_a_session_id_is_useless_without_its_token(protected):
    d = protected()
    sid = open_as(d, BILLING)
    grant = d.dogpile.Acquire(d.acquire(sid, registry="billing", key="k"), metadata=BILLING)
    assert grant.outcome == CREATE
    lock = d.rw.Lock(rwmutex_pb2.LockRequest(registry="billing", key=b"m", session_id=sid,
                                             mode=WRITE), metadata=BILLING)
    assert lock.acquired
    # Someone learned the session id and the tokens: anonymous, or holding
    # another registry's token, none of it works, on any registry.
    for who in (None, OTHER):
        attempts = [
            lambda: list(d.sessions.KeepAlive(
                iter([sessions_pb2.KeepAliveRequest(session_id=sid)]), metadata=who, timeout=5)),
            lambda: d.sessions.Close(sessions_pb2.CloseRequest(session_id=sid), metadata=who),
            lambda: d.dogpile.Acquire(d.acquire(sid, registry="open", key="x"), metadata=who),
            lambda: d.dogpile.Publish(dogpile_pb2.PublishRequest(
                registry="open", key=b"k", session_id=sid, token=grant.token, value=b"evil"),
                metadata=who),
            lambda: d.dogpile.Abandon(dogpile_pb2.AbandonRequest(
                registry="open", key=b"k", session_id=sid, token=grant.token), metadata=who),
            lambda: d.rw.Lock(rwmutex_pb2.LockRequest(registry="open", key=b"m", session_id=sid,
                                                      mode=READ), metadata=who),
            lambda: d.rw.Unlock(rwmutex_pb2.UnlockRequest(
                registry="open", key=b"m", session_id=sid, token=lock.token), metadata=who),
        ]
        for attempt in attempts:
            assert code_of(attempt) == grpc.StatusCode.PERMISSION_DENIED
    # The holder's own calls all work: its grants are intact.
    assert list(d.sessions.KeepAlive(iter([sessions_pb2.KeepAliveRequest(session_id=sid)]),
                                     metadata=BILLING))[0].session_id == sid
    d.dogpile.Publish(dogpile_pb2.PublishRequest(registry="billing", key=b"k", session_id=sid,
                                                 token=grant.token, value=b"good"),
                      metadata=BILLING)
    d.rw.Unlock(rwmutex_pb2.UnlockRequest(registry="billing", key=b"m", session_id=sid,
                                          token=lock.token), metadata=BILLING)
    d.sessions.Close(sessions_pb2.CloseRequest(session_id=sid), metadata=BILLING)


def test_anonymous_sessions_are_not_for_token_holders(protected):
    d = protected()
    sid = open_as(d)
    # A protected registry's grant never hangs on an anonymous session.
    assert code_of(lambda: d.dogpile.Acquire(d.acquire(sid, registry="billing"),
                                             metadata=BILLING)) == grpc.StatusCode.PERMISSION_DENIED
    assert d.dogpile.Acquire(d.acquire(sid, registry="open")).outcome == CREATE
    # A token that protects nothing names nobody: its caller is anonymous.
    assert d.dogpile.Acquire(d.acquire(sid, registry="open", key="k2"),
                             metadata=[("authorization", "Bearer made-up")]).outcome == CREATE


def test_stats_is_for_the_admin_token(protected):
    d = protected()
    sid = open_as(d, BILLING)
    token = d.dogpile.Acquire(d.acquire(sid, registry="billing"), metadata=BILLING).token
    d.dogpile.Publish(dogpile_pb2.PublishRequest(registry="billing", key=b"k", session_id=sid,
                                                 token=token, value=b"x" * 1000),
                      metadata=BILLING)
    stats = lambda md: d.admin.Stats(admin_pb2.StatsRequest(), metadata=md)  # noqa: E731
    assert code_of(lambda: stats(None)) == grpc.StatusCode.UNAUTHENTICATED
    assert code_of(lambda: stats(BILLING)) == grpc.StatusCode.PERMISSION_DENIED
    assert stats(ADMIN).stored_bytes >= 1000


def test_waiter_quota_is_per_tenant(protected):
    d = protected("--max-waiters-per-tenant", "3", "--max-waiters", "100")
    holder = open_as(d)
    anon = open_as(d)
    paying = open_as(d, BILLING)
    d.dogpile.Acquire(d.acquire(holder, registry="open"))
    d.dogpile.Acquire(d.acquire(paying, registry="billing"), metadata=BILLING)
    parked = [d.dogpile.Acquire.future(d.acquire(anon, registry="open", wait_timeout_ms=30_000))
              for _ in range(3)]
    wait_until(lambda: d.admin.Stats(admin_pb2.StatsRequest(), metadata=ADMIN).waiters == 3,
               what="three parked")
    with pytest.raises(grpc.RpcError) as e:
        d.dogpile.Acquire(d.acquire(anon, registry="open", wait_timeout_ms=30_000))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert e.value.details().startswith("waiters: this tenant's quota")
    # The billing tenant does not notice: it parks as usual.
    other = open_as(d, BILLING)
    theirs = d.dogpile.Acquire.future(d.acquire(other, registry="billing", wait_timeout_ms=30_000),
                                      metadata=BILLING)
    wait_until(lambda: d.admin.Stats(admin_pb2.StatsRequest(), metadata=ADMIN).waiters == 4,
               what="the other tenant parked")
    for f in parked + [theirs]:
        f.cancel()


def test_session_cap_is_keyed_by_identity(protected):
    d = protected("--max-sessions-per-client", "2")
    open_as(d)
    open_as(d)
    assert code_of(lambda: open_as(d)) == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Same address, but an identity: a cap of its own.
    open_as(d, BILLING)
    open_as(d, BILLING)
    assert code_of(lambda: open_as(d, BILLING)) == grpc.StatusCode.RESOURCE_EXHAUSTED
    open_as(d, OTHER)


def test_one_session_cannot_hoard_locks(make_daemon):
    d = make_daemon("--max-grants-per-session", "3")
    s = d.open()
    for i in range(3):
        assert d.rw.Lock(rwmutex_pb2.LockRequest(registry="reg", key=b"m%d" % i, session_id=s,
                                                 mode=WRITE)).acquired
    with pytest.raises(grpc.RpcError) as e:
        d.rw.Lock(rwmutex_pb2.LockRequest(registry="reg", key=b"m3", session_id=s, mode=WRITE))
    assert e.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "cap per session" in e.value.details()
    assert d.rw.Lock(rwmutex_pb2.LockRequest(registry="reg", key=b"m3", session_id=d.open(),
                                             mode=WRITE)).acquired


def test_open_registry_flood_does_not_evict_protected_values(protected):
    d = protected("--memory-budget-bytes", "10000")
    paying = open_as(d, BILLING)
    for key in (b"p1", b"p2"):
        token = d.dogpile.Acquire(d.acquire(paying, registry="billing", key=key, expire_ms=0),
                                  metadata=BILLING).token
        d.dogpile.Publish(dogpile_pb2.PublishRequest(registry="billing", key=key,
                                                     session_id=paying, token=token,
                                                     value=b"p" * 2000), metadata=BILLING)
    anon = open_as(d)
    for i in range(30):
        key = f"n{i}"
        token = d.dogpile.Acquire(d.acquire(anon, registry="open", key=key, expire_ms=0)).token
        d.publish(anon, token, b"n" * 2000, key=key, registry="open")
    stats = d.admin.Stats(admin_pb2.StatsRequest(), metadata=ADMIN)
    assert stats.stored_bytes <= 10000 and stats.evictions > 0
    for key in (b"p1", b"p2"):
        peek = d.dogpile.Peek(dogpile_pb2.PeekRequest(registry="billing", key=key),
                              metadata=BILLING)
        assert peek.has_value, key
    assert d.dogpile.Peek(dogpile_pb2.PeekRequest(registry="open", key=b"n29")).has_value


def test_logs_escape_client_names_and_hide_session_ids(make_daemon):
    d = make_daemon("--log-level", "info")
    evil = "x\n[critical] forged line\x1b[31m red"
    sid = d.sessions.Open(sessions_pb2.OpenRequest(ttl_ms=100, client_name=evil)).session_id
    wait_until(lambda: d.stats().session_expiries == 1, what="the session to expire")
    # Lines are written by the daemon's logging thread, a moment later.
    wait_until(lambda: "expired" in d.read_log(), what="the expiry to be logged")
    log = d.read_log()
    expired = [line for line in log.splitlines() if "expired" in line]
    assert len(expired) == 1, log
    assert "\\x0a[critical] forged line\\x1b[31m red" in expired[0]
    assert "\x1b" not in log
    assert not any(line.lstrip().startswith("[critical]") for line in log.splitlines())
    assert str(sid) not in log
    assert re.search(r"session s:[0-9a-f]{8} ", expired[0])


def raw_call(d, method, payload):
    call = d.channel.unary_unary(method)
    with pytest.raises(grpc.RpcError) as e:
        call(payload, timeout=5)
    return e.value


def test_unparseable_requests_are_invalid_argument_and_protobuf_stays_quiet(make_daemon):
    d = make_daemon("--log-level", "off")
    # A truncated varint: not protobuf at all.
    e = raw_call(d, "/dogpiled.v1.Dogpile/Peek", b"\x08\xff\xff")
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.details().startswith("request:"), e.details()
    # client_name (a string field) with bytes that are not UTF-8: libprotobuf
    # refuses it and would log an ERROR of its own.
    bad_name = b"\x12\x02\xff\xfe"
    e = raw_call(d, "/dogpiled.v1.Sessions/Open", bad_name)
    assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert d.stats().sessions == 0
    assert d.stop() == 0
    assert d.read_log() == ""


def test_times_far_in_the_future_are_refused(make_daemon):
    d = make_daemon("--max-future-skew-ms", "60000")
    s = d.open()
    with pytest.raises(grpc.RpcError) as e:
        d.dogpile.Acquire(d.acquire(s, client_created_time=1e300))
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details().startswith("client_created_time:")
    token = d.dogpile.Acquire(d.acquire(s, expire_ms=1000)).token
    with pytest.raises(grpc.RpcError) as e:
        d.publish(s, token, b"v", created_time=time.time() + 3600)
    assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert e.value.details().startswith("created_time:")
    assert d.stats().stored_bytes == 0
    # Within the skew is fine, and the role survived the refusal.
    d.publish(s, token, b"v", created_time=time.time() + 30)
    assert d.dogpile.Acquire(d.acquire(d.open(), expire_ms=1000)).outcome == FRESH


def test_keys_are_bytes(daemon):
    s = daemon.open()
    key = b"\xff\xfe\x00not-utf8"
    got = daemon.dogpile.Acquire(daemon.acquire(s, key=key))
    assert got.outcome == CREATE
    daemon.publish(s, got.token, b"bytes key", key=key)
    assert daemon.dogpile.Peek(dogpile_pb2.PeekRequest(registry="reg", key=key)).value == \
        b"bytes key"
    # Text keys are their UTF-8 bytes: one key, whichever way it is written.
    got = daemon.dogpile.Acquire(daemon.acquire(s, key="ключ"))
    daemon.publish(s, got.token, b"text key", key="ключ")
    peek = daemon.dogpile.Peek(dogpile_pb2.PeekRequest(registry="reg", key="ключ".encode()))
    assert peek.value == b"text key"
