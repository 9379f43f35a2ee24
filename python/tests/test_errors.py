"""Structured errors: every refusal carries ErrorInfo's reason and metadata
(and RetryInfo for caps), read into DogpiledError's fields; Acquire and Lock
send a request_id and retry UNAVAILABLE with it; an Unlock retried into its
own release counts as released."""
import concurrent.futures
import threading

import grpc
import pytest

import dogpiled
import support
from dogpiled.v1 import (dogpile_pb2, dogpile_pb2_grpc, errors_pb2,
                         rwmutex_pb2, rwmutex_pb2_grpc, sessions_pb2,
                         sessions_pb2_grpc)

MIB = 1 << 20


def test_twice_the_value_limit_is_refused_by_the_daemon_naming_value(
        clients, registry):
    client = clients()
    _, role = client.acquire(registry, "big", wait_timeout_ms=0)
    with pytest.raises(dogpiled.DogpiledError) as refused:
        role.publish(b"x" * (2 * MIB))
    e = refused.value
    assert e.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert e.reason == "VALUE_TOO_LARGE"
    assert e.metadata == {"field": "value", "limit": str(MIB),
                          "size": str(2 * MIB)}
    assert e.retry_delay is None
    assert "value" in str(e)
    role.abandon()


def test_bad_field_names_the_field(clients):
    with pytest.raises(dogpiled.DogpiledError) as refused:
        clients().peek("no spaces allowed", "k")
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert refused.value.reason == "FIELD_INVALID"
    assert refused.value.metadata["field"] == "registry"


def test_lost_role_is_not_holder(clients, registry):
    client = clients()
    _, role = client.acquire(registry, "k", wait_timeout_ms=0)
    client.invalidate(registry, "k", hard=True)
    with pytest.raises(dogpiled.RoleLost) as refused:
        role.publish(b"late")
    assert refused.value.reason == "NOT_HOLDER"
    assert refused.value.metadata == {"field": "token",
                                      "token": str(role.token)}


def test_a_repeated_unlock_is_refused_marked_released(daemon, clients,
                                                     registry):
    client = clients()
    grant = client.write_lock(registry, "k", timeout=0)
    grant.release()
    again = rwmutex_pb2.UnlockRequest(registry=registry, key=b"k",
                                      session_id=grant.session_id,
                                      token=grant.token)
    with grpc.insecure_channel(daemon.address) as channel:
        with pytest.raises(grpc.RpcError) as refused:
            rwmutex_pb2_grpc.RWMutexStub(channel).Unlock(again, timeout=5)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert dogpiled.errors.error_details(refused.value)[:2] == (
        "NOT_HOLDER", {"field": "token", "token": str(grant.token),
                       "released": "true"})
    client._unlock(grant)  # the SDK sending it again: released, no error


def test_caps_carry_retry_info(tmp_path, registry):
    daemon = support.Daemon(str(tmp_path), "--max-waiters-per-key", "1")
    daemon.start()
    try:
        holder = dogpiled.Client(daemon.address)
        waiter = dogpiled.Client(daemon.address)
        other = dogpiled.Client(daemon.address)
        _, role = holder.acquire(registry, "k", wait_timeout_ms=0)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            parked = pool.submit(waiter.acquire, registry, "k",
                                 wait_timeout_ms=30_000)
            # Parked on the daemon: only the daemon can tell.
            assert support.eventually(
                lambda: holder.stats().waiters == 1)
            with pytest.raises(dogpiled.DogpiledError) as refused:
                other.acquire(registry, "k", wait_timeout_ms=30_000)
            role.publish(b"v")
            assert parked.result(timeout=10)[0].value == b"v"
        e = refused.value
        assert e.code == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert e.reason == "WAITERS_PER_KEY"
        assert e.metadata == {"field": "key", "limit": "1"}
        assert e.retry_delay == pytest.approx(1.0)
        for c in (holder, waiter, other):
            c.close()
    finally:
        daemon.stop()


def test_every_reason_is_in_the_proto():
    names = set(errors_pb2.ErrorReason.keys())
    for reason in ("VALUE_TOO_LARGE", "SESSION_NOT_FOUND", "NOT_HOLDER",
                   "WAITERS_PER_KEY", "NOT_LEADER", "FIELD_INVALID"):
        assert reason in names


# --- request_id and retries, against a fake daemon -------------------------

class _Sessions(sessions_pb2_grpc.SessionsServicer):
    def Open(self, request, context):
        return sessions_pb2.OpenResponse(session_id=7, ttl_ms=10_000)

    def KeepAlive(self, requests, context):
        for r in requests:
            yield sessions_pb2.KeepAliveResponse(session_id=r.session_id,
                                                 ttl_ms=10_000)

    def Close(self, request, context):
        return sessions_pb2.CloseResponse()


class _FlakyDogpile(dogpile_pb2_grpc.DogpileServicer):
    """Answers the first `failures` Acquires UNAVAILABLE, then CREATE."""

    def __init__(self, failures):
        self.failures = failures
        self.request_ids = []
        self.lock = threading.Lock()

    def Acquire(self, request, context):
        with self.lock:
            self.request_ids.append(request.request_id)
            failing = len(self.request_ids) <= self.failures
        if failing:
            context.abort(grpc.StatusCode.UNAVAILABLE, "connection dropped")
        return dogpile_pb2.AcquireResponse(
            outcome=dogpile_pb2.AcquireResponse.OUTCOME_CREATE, token=42)


class _ScriptedRWMutex(rwmutex_pb2_grpc.RWMutexServicer):
    """Grants a write lock (token 5); answers the Unlocks with `answers` in
    turn, each a (code, reason, metadata) refusal, then OK."""

    def __init__(self, answers):
        self.answers = list(answers)
        self.unlocks = []

    def Lock(self, request, context):
        return rwmutex_pb2.LockResponse(acquired=True, token=5)

    def Unlock(self, request, context):
        self.unlocks.append(request)
        if self.answers:
            code, reason, metadata = self.answers.pop(0)
            context.set_trailing_metadata(
                support.error_trailer(code, reason, metadata))
            context.abort(code, reason)
        return rwmutex_pb2.UnlockResponse()


@pytest.fixture
def fake_daemon():
    servers = []

    def start(dogpile, rwmutex=None):
        server = grpc.server(concurrent.futures.ThreadPoolExecutor(4))
        sessions_pb2_grpc.add_SessionsServicer_to_server(_Sessions(), server)
        dogpile_pb2_grpc.add_DogpileServicer_to_server(dogpile, server)
        if rwmutex is not None:
            rwmutex_pb2_grpc.add_RWMutexServicer_to_server(rwmutex, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"
    yield start
    for server in servers:
        server.stop(None)


def test_unavailable_is_retried_with_the_same_request_id(fake_daemon):
    dogpile = _FlakyDogpile(failures=2)
    with dogpiled.Client(fake_daemon(dogpile)) as client:
        response, role = client.acquire("r", "k")
        assert response.token == 42 and role.token == 42
    assert len(dogpile.request_ids) == 3
    assert dogpile.request_ids[0] != 0
    assert len(set(dogpile.request_ids)) == 1


def test_retries_are_bounded(fake_daemon):
    dogpile = _FlakyDogpile(failures=100)
    with dogpiled.Client(fake_daemon(dogpile)) as client:
        with pytest.raises(dogpiled.DogpiledError) as failed:
            client.acquire("r", "k")
    assert failed.value.code == grpc.StatusCode.UNAVAILABLE
    assert len(dogpile.request_ids) == dogpiled.client.RETRY_ATTEMPTS


def test_each_call_has_its_own_request_id(fake_daemon):
    dogpile = _FlakyDogpile(failures=0)
    with dogpiled.Client(fake_daemon(dogpile)) as client:
        client.acquire("r", "k")
        client.acquire("r", "k")
    assert len(set(dogpile.request_ids)) == 2


def test_an_unlock_retried_after_a_lost_answer_is_released(fake_daemon):
    # The first answer is lost as its leader steps down (UNAVAILABLE,
    # NOT_LEADER); the retry meets the release the first attempt made.
    rwmutex = _ScriptedRWMutex([
        (grpc.StatusCode.UNAVAILABLE, "NOT_LEADER", {}),
        (grpc.StatusCode.FAILED_PRECONDITION, "NOT_HOLDER",
         {"field": "token", "token": "5", "released": "true"})])
    with dogpiled.Client(fake_daemon(_FlakyDogpile(0), rwmutex)) as client:
        client.write_lock("r", "k", timeout=0).release()
    assert len(rwmutex.unlocks) == 2
    assert rwmutex.unlocks[0] == rwmutex.unlocks[1]


def test_any_other_not_holder_still_means_the_lock_was_lost(fake_daemon):
    rwmutex = _ScriptedRWMutex([
        (grpc.StatusCode.FAILED_PRECONDITION, "NOT_HOLDER",
         {"field": "token", "token": "5"})])
    with dogpiled.Client(fake_daemon(_FlakyDogpile(0), rwmutex)) as client:
        grant = client.write_lock("r", "k", timeout=0)
        with pytest.raises(dogpiled.RoleLost) as refused:
            grant.release()
    assert refused.value.reason == "NOT_HOLDER"
