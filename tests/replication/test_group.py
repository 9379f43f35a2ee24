"""Three real dogpiled processes on loopback as one replicated group
(docs/replication.md): followers refuse and name the leader, a SIGKILLed
leader's successor loses nothing that was answered, a SIGSTOPped leader
grants nothing once deposed, a minority commits nothing, and a restarted
member catches up.

Waits poll Admin.Cluster with generous deadlines: a loaded machine slows
an election, it does not fail the test. What is asserted never depends on
timing: every answered change must be found on the new leader, and nothing
may be answered OK that a majority did not commit.
"""
import os
import pathlib
import signal
import socket
import sys
import threading
import time

import grpc
import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from harness import (CREATE, FRESH, NOT_READY, WRITE, Daemon, admin_pb2,  # noqa: E402
                     dogpile_pb2, rwmutex_pb2, sessions_pb2)
from dogpiled.errors import error_details  # noqa: E402  (conftest.py)

PATIENCE_S = 60  # an election on a starved machine; normally about 1 s
ELECTION_MS = 1000
CALL_TIMEOUT_S = 10


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Group:
    """Three members with fixed client and Raft ports, so a restarted
    member keeps its addresses."""

    def __init__(self, size=3, extra=()):
        self.raft = {i: f"127.0.0.1:{free_port()}" for i in range(1, size + 1)}
        peers = ",".join(f"{i}={a}" for i, a in self.raft.items())
        self.members = {
            i: Daemon("--node-id", str(i), "--peers", peers,
                      "--election-timeout-ms", str(ELECTION_MS),
                      "--heartbeat-ms", "100", "--log-level", "info", *extra,
                      listen=f"127.0.0.1:{free_port()}")
            for i in self.raft
        }

    def start(self):
        for d in self.members.values():
            d.start()
        return self

    def cleanup(self):
        for d in self.members.values():
            if d.proc is not None and d.proc.poll() is None:
                try:
                    os.kill(d.proc.pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
            d.cleanup()

    def up(self):
        return {i: d for i, d in self.members.items()
                if d.proc is not None and d.proc.poll() is None}

    def cluster(self, i):
        return self.members[i].admin.Cluster(admin_pb2.ClusterRequest(),
                                             timeout=CALL_TIMEOUT_S)

    def leader(self, among=None, timeout=PATIENCE_S):
        """The id of the member that serves as leader, as every member in
        `among` (default: all that run) agrees."""
        among = among or list(self.up())
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            try:
                views = [self.cluster(i) for i in among]
            except grpc.RpcError:
                time.sleep(0.05)
                continue
            seen = [(v.self_id, v.leader_id, v.serving) for v in views]
            ids = {v.leader_id for v in views}
            if len(ids) == 1 and 0 not in ids:
                (lead,) = ids
                if lead in among and self.cluster(lead).serving:
                    return lead
            time.sleep(0.05)
        raise AssertionError(f"no agreed, serving leader in {timeout} s: {seen}")


@pytest.fixture
def group():
    g = Group()
    try:
        yield g.start()
    finally:
        g.cleanup()


def open_session(d, ttl_ms=30_000):
    return d.sessions.Open(sessions_pb2.OpenRequest(ttl_ms=ttl_ms, client_name="t"),
                           timeout=CALL_TIMEOUT_S).session_id


def refusal(call):
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value


def test_followers_refuse_naming_the_leader_and_every_member_agrees(group):
    lead = group.leader()
    leader = group.members[lead]
    assert open_session(leader) != 0
    for i, d in group.members.items():
        view = group.cluster(i)
        assert view.self_id == i
        assert view.leader_id == lead
        assert view.leader_client_address == leader.target
        assert [m.id for m in view.members] == [1, 2, 3]
        assert [m.raft_address for m in view.members] == [group.raft[j] for j in (1, 2, 3)]
        assert view.serving == (i == lead)
        roles = {m.id: m.role for m in view.members}
        assert roles[lead] == admin_pb2.ClusterMember.LEADER
        if i == lead:
            continue
        error = refusal(lambda: open_session(d))
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        reason, metadata, _ = error_details(error)
        assert reason == "NOT_LEADER"
        assert metadata.get("leader") == leader.target, (metadata, error.details())
        assert metadata["leader_id"] == str(lead)


def test_a_killed_leaders_successor_holds_everything_it_answered(group):
    lead = group.leader()
    d = group.members[lead]
    a, b = open_session(d), open_session(d)
    # A holds a creator role (request id 7), B a write lock; a value and an
    # invalidation were answered.
    role = d.dogpile.Acquire(d.acquire(a, key=b"role", request_id=7), timeout=CALL_TIMEOUT_S)
    assert role.outcome == CREATE
    lock = d.rw.Lock(rwmutex_pb2.LockRequest(registry="reg", key=b"m", session_id=b,
                                             mode=WRITE, request_id=8), timeout=CALL_TIMEOUT_S)
    assert lock.acquired
    made = d.dogpile.Acquire(d.acquire(a, key=b"v"), timeout=CALL_TIMEOUT_S)
    d.publish(a, made.token, b"kept", key=b"v")
    gone = d.dogpile.Acquire(d.acquire(b, key=b"gone"), timeout=CALL_TIMEOUT_S)
    d.publish(b, gone.token, b"old", key=b"gone")
    d.dogpile.Invalidate(dogpile_pb2.InvalidateRequest(registry="reg", key=b"gone", hard=True),
                         timeout=CALL_TIMEOUT_S)
    highest = max(role.token, lock.token, made.token, gone.token)

    group.members[lead].proc.kill()
    group.members[lead].proc.wait()
    rest = [i for i in group.members if i != lead]
    new = group.members[group.leader(among=rest)]

    # The sessions are there (one TTL of grace), the role and lock held.
    again = new.dogpile.Acquire(new.acquire(a, key=b"role", request_id=7), timeout=CALL_TIMEOUT_S)
    assert (again.outcome, again.token) == (CREATE, role.token), "a retry gets the same grant"
    other = new.dogpile.Acquire(new.acquire(b, key=b"role"), timeout=CALL_TIMEOUT_S)
    assert other.outcome == NOT_READY, "a second creator while A creates"
    blocked = new.rw.Lock(rwmutex_pb2.LockRequest(registry="reg", key=b"m", session_id=a,
                                                  mode=WRITE), timeout=CALL_TIMEOUT_S)
    assert not blocked.acquired, "B's write lock is held"
    # The value survived; the invalidated one did not come back.
    fresh = new.dogpile.Acquire(new.acquire(b, key=b"v"), timeout=CALL_TIMEOUT_S)
    assert (fresh.outcome, fresh.value) == (FRESH, b"kept")
    voided = new.dogpile.Acquire(new.acquire(a, key=b"gone"), timeout=CALL_TIMEOUT_S)
    assert voided.outcome == CREATE and not voided.has_value
    # Tokens keep increasing, and the old creator can still publish.
    assert voided.token > highest
    new.publish(a, role.token, b"made", key=b"role")
    assert new.rw.Unlock(rwmutex_pb2.UnlockRequest(registry="reg", key=b"m", session_id=b,
                                                   token=lock.token), timeout=CALL_TIMEOUT_S) is not None


def test_a_stopped_leader_grants_nothing_and_serves_no_voided_value_once_deposed(group):
    lead = group.leader()
    old = group.members[lead]
    s = open_session(old)
    made = old.dogpile.Acquire(old.acquire(s, key=b"v"), timeout=CALL_TIMEOUT_S)
    old.publish(s, made.token, b"old", key=b"v")
    os.kill(old.proc.pid, signal.SIGSTOP)
    try:
        rest = [i for i in group.members if i != lead]
        new = group.members[group.leader(among=rest)]
        t = open_session(new)
        held = new.rw.Lock(rwmutex_pb2.LockRequest(registry="reg", key=b"m", session_id=t,
                                                   mode=WRITE), timeout=CALL_TIMEOUT_S)
        assert held.acquired
        new.dogpile.Invalidate(dogpile_pb2.InvalidateRequest(registry="reg", key=b"v", hard=True),
                               timeout=CALL_TIMEOUT_S)
    finally:
        os.kill(old.proc.pid, signal.SIGCONT)
    # At once, before it has heard of the new term: whatever it answers, it
    # is never a grant (its proposals cannot commit), nor the value a
    # committed invalidation voided (its lease on reads ran out while it was
    # stopped).
    for attempt in range(20):
        try:
            read = old.dogpile.Acquire(old.acquire(s, key=b"v"), timeout=CALL_TIMEOUT_S)
            raise AssertionError(f"the deposed leader answered a read: {read}")
        except grpc.RpcError as e:
            assert e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND), e
        try:
            got = old.rw.Lock(rwmutex_pb2.LockRequest(registry="reg", key=b"m", session_id=s,
                                                      mode=WRITE), timeout=CALL_TIMEOUT_S)
            raise AssertionError(f"the deposed leader answered a lock: {got}")
        except grpc.RpcError as e:
            assert e.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.NOT_FOUND), e
    assert group.cluster(lead).leader_id != lead


def test_a_stopped_leader_renews_no_lease_once_deposed(group):
    """Keep-alives are the leader's alone, and are not in the log: a leader
    woken from a stop must not answer the renewals that queued up while a
    successor took over, or a client believes in a lease the group never
    granted. Renewals are sent every 50 ms throughout."""
    lead = group.leader()
    old = group.members[lead]
    sid = open_session(old, ttl_ms=5000)
    sent, answers, done = [], [], threading.Event()

    def beats():
        while not done.is_set():
            sent.append(time.monotonic())
            yield sessions_pb2.KeepAliveRequest(session_id=sid)
            done.wait(0.05)

    call = old.sessions.KeepAlive(beats())

    def read():
        try:
            for _ in call:
                answers.append(sent[len(answers)])  # one answer per request, in order
        except grpc.RpcError:
            pass
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + PATIENCE_S
        while not answers:  # the stream works before the stop
            assert time.monotonic() < deadline, "no renewal answered"
            time.sleep(0.01)
        os.kill(old.proc.pid, signal.SIGSTOP)
        try:
            group.leader(among=[i for i in group.members if i != lead])
            successor = time.monotonic()  # requests sent from here queue up
            time.sleep(0.3)
        finally:
            os.kill(old.proc.pid, signal.SIGCONT)
        reader.join(timeout=PATIENCE_S)  # it ends the stream once deposed
        assert not reader.is_alive(), "the deposed leader kept the stream"
    finally:
        done.set()
        call.cancel()
    late = [t - successor for t in answers if t > successor]
    assert not late, f"renewals sent after the takeover were answered: {late}"


def test_a_minority_commits_nothing(group):
    lead = group.leader()
    d = group.members[lead]
    s = open_session(d)
    for i, f in group.members.items():
        if i != lead:
            f.stop(signal.SIGKILL)
    error = refusal(lambda: d.rw.Lock(rwmutex_pb2.LockRequest(
        registry="reg", key=b"m", session_id=s, mode=WRITE), timeout=3 * ELECTION_MS / 1000 + 5))
    assert error.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


def test_a_restarted_member_catches_up_and_can_lead(group):
    lead = group.leader()
    follower = next(i for i in group.members if i != lead)
    group.members[follower].stop()
    d = group.members[lead]
    a = open_session(d, ttl_ms=60_000)
    for n in range(20):
        r = d.dogpile.Acquire(d.acquire(a, key=f"k{n}"), timeout=CALL_TIMEOUT_S)
        d.publish(a, r.token, f"v{n}".encode(), key=f"k{n}")
    group.members[follower].start()
    target = group.cluster(lead).commit_index
    deadline = time.monotonic() + PATIENCE_S
    while group.cluster(follower).applied_index < target:
        assert time.monotonic() < deadline, "the restarted member never caught up"
        time.sleep(0.05)
    # Now the old leader goes: the restarted member must have everything.
    d.proc.kill()
    d.proc.wait()
    rest = [i for i in group.members if i != lead]
    new = group.members[group.leader(among=rest)]
    for n in range(20):
        r = new.dogpile.Acquire(new.acquire(a, key=f"k{n}"), timeout=CALL_TIMEOUT_S)
        assert (r.outcome, r.value) == (FRESH, f"v{n}".encode())
