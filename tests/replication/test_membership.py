"""Changing a group's members (Admin.AddMember and RemoveMember,
docs/operations.md): a member started with --join is caught up, gets its
vote and then carries the group; the leader removing itself hands its lead
over; every refusal names its cause. Three (or four) real daemons on
loopback, through the raw stubs and dogpilectl."""
import json
import os
import subprocess
import time

import grpc
import pytest

from test_group import (CALL_TIMEOUT_S, ELECTION_MS, PATIENCE_S, FRESH, Daemon, group,  # noqa: F401
                        Group, admin_pb2, error_details, free_port, open_session,
                        refusal)

JOIN_TIMEOUT_S = 30  # the catch-up of a member with a short log


def start_joiner(group, node_id):
    """A member that is not in the group yet: its own --peers entry and
    --join, so its empty state dir waits for the leader."""
    raft = f"127.0.0.1:{free_port()}"
    d = Daemon("--node-id", str(node_id), "--peers", f"{node_id}={raft}", "--join",
               "--election-timeout-ms", str(ELECTION_MS), "--heartbeat-ms", "100",
               "--log-level", "info", listen=f"127.0.0.1:{free_port()}")
    group.members[node_id] = d
    group.raft[node_id] = raft
    d.start()
    return d, raft


def add_member(d, node_id, raft):
    return d.admin.AddMember(admin_pb2.AddMemberRequest(id=node_id, raft_address=raft),
                             timeout=JOIN_TIMEOUT_S).cluster


def voters(cluster):
    return sorted(m.id for m in cluster.members if m.voter)


def reason(err):
    return error_details(err)[0]


def metadata(err):
    return error_details(err)[1]


def test_a_joined_member_catches_up_votes_and_carries_the_group(group):
    lead = group.leader()
    d = group.members[lead]
    s = open_session(d, ttl_ms=120_000)
    for n in range(10):
        r = d.dogpile.Acquire(d.acquire(s, key=f"k{n}"), timeout=CALL_TIMEOUT_S)
        d.publish(s, r.token, f"v{n}".encode(), key=f"k{n}")

    _, raft4 = start_joiner(group, 4)
    # A pristine joiner knows no group: it is no one's member yet.
    assert list(group.cluster(4).members) == []
    cluster = add_member(d, 4, raft4)
    assert voters(cluster) == [1, 2, 3, 4]
    assert next(m for m in cluster.members if m.id == 4).raft_address == raft4
    # Asking again is answered the same (a retry after a lost answer).
    assert voters(add_member(d, 4, raft4)) == [1, 2, 3, 4]
    deadline = time.monotonic() + PATIENCE_S
    while group.cluster(4).applied_index < group.cluster(lead).commit_index:
        assert time.monotonic() < deadline, "the joined member never caught up"
        time.sleep(0.05)
    assert voters(group.cluster(4)) == [1, 2, 3, 4]

    # Replace a follower by the new member, then lose the leader: the two
    # left, the new member one of them, are a majority and hold everything.
    gone = next(i for i in (1, 2, 3) if i != lead)
    cluster = d.admin.RemoveMember(admin_pb2.RemoveMemberRequest(id=gone),
                                   timeout=CALL_TIMEOUT_S).cluster
    assert voters(cluster) == sorted({1, 2, 3, 4} - {gone})
    group.members[gone].stop()
    d.proc.kill()
    d.proc.wait()
    rest = [i for i in (1, 2, 3, 4) if i not in (gone, lead)]
    new = group.members[group.leader(among=rest)]
    for n in range(10):
        r = new.dogpile.Acquire(new.acquire(s, key=f"k{n}"), timeout=CALL_TIMEOUT_S)
        assert (r.outcome, r.value) == (FRESH, f"v{n}".encode())


def test_the_leader_removing_itself_hands_its_lead_over(group):
    lead = group.leader()
    d = group.members[lead]
    err = refusal(lambda: d.admin.RemoveMember(admin_pb2.RemoveMemberRequest(id=lead),
                                               timeout=CALL_TIMEOUT_S))
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert reason(err) == "NOT_LEADER"
    new = int(metadata(err)["leader_id"])
    assert new != lead
    # The named leader completes the removal (what an SDK's retry does).
    n = group.members[new]
    cluster = n.admin.RemoveMember(admin_pb2.RemoveMemberRequest(id=lead),
                                   timeout=CALL_TIMEOUT_S).cluster
    assert voters(cluster) == sorted({1, 2, 3} - {lead})
    assert group.leader(among=[i for i in (1, 2, 3) if i != lead]) == new


def test_dogpilectl_adds_and_removes_members_through_any_member(group):
    lead = group.leader()
    _, raft4 = start_joiner(group, 4)
    targets = ",".join(group.members[i].target for i in (1, 2, 3))
    ctl = [os.environ["DOGPILECTL_BIN"], "--target", targets, "--json",
           "--timeout", str(CALL_TIMEOUT_S * 1000)]
    out = subprocess.run([*ctl, "member", "add", "4", raft4], capture_output=True,
                         text=True, timeout=JOIN_TIMEOUT_S + 30)
    assert out.returncode == 0, out.stderr
    assert sorted(m["id"] for m in json.loads(out.stdout)["members"] if m["voter"]) == [1, 2, 3, 4]
    # Removing the leader: dogpilectl follows the handover to the new one.
    out = subprocess.run([*ctl, "member", "remove", str(lead)], capture_output=True,
                         text=True, timeout=CALL_TIMEOUT_S + 30)
    assert out.returncode == 0, out.stderr
    view = json.loads(out.stdout)
    assert sorted(m["id"] for m in view["members"]) == sorted({1, 2, 3, 4} - {lead})
    assert view["leader_id"] not in (0, lead)


def test_bad_changes_are_refused_naming_the_cause_and_change_nothing(group):
    lead = group.leader()
    d = group.members[lead]
    follower = next(i for i in (1, 2, 3) if i != lead)

    def add(target, node_id, raft, timeout=CALL_TIMEOUT_S):
        return refusal(lambda: target.admin.AddMember(
            admin_pb2.AddMemberRequest(id=node_id, raft_address=raft), timeout=timeout))

    err = add(d, 0, "127.0.0.1:1")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert metadata(err)["field"] == "id"
    err = add(d, 5, "no-port")
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert metadata(err)["field"] == "raft_address"
    err = add(d, 2 if lead != 2 else 1, "127.0.0.1:1")
    assert (err.code(), reason(err)) == (grpc.StatusCode.ALREADY_EXISTS, "MEMBER_EXISTS")
    assert metadata(err)["field"] == "id"
    err = add(d, 5, group.raft[follower])
    assert (err.code(), reason(err)) == (grpc.StatusCode.ALREADY_EXISTS, "MEMBER_EXISTS")
    err = add(group.members[follower], 5, "127.0.0.1:1")
    assert (err.code(), reason(err)) == (grpc.StatusCode.UNAVAILABLE, "NOT_LEADER")
    err = refusal(lambda: d.admin.RemoveMember(admin_pb2.RemoveMemberRequest(id=9),
                                               timeout=CALL_TIMEOUT_S))
    assert (err.code(), reason(err)) == (grpc.StatusCode.NOT_FOUND, "NOT_A_MEMBER")
    assert voters(group.cluster(lead)) == [1, 2, 3]

    # Nobody runs at this address: the catch-up gives up, the member stays
    # without a vote (the majority is unchanged), and can be removed.
    nowhere = f"127.0.0.1:{free_port()}"
    err = add(d, 7, nowhere, timeout=JOIN_TIMEOUT_S)
    assert (err.code(), reason(err)) == (grpc.StatusCode.FAILED_PRECONDITION,
                                         "MEMBER_UNREACHABLE")
    view = group.cluster(lead)
    assert voters(view) == [1, 2, 3]
    assert [m.id for m in view.members if not m.voter] == [7]
    s = open_session(d)  # the group still commits
    assert s != 0
    cluster = d.admin.RemoveMember(admin_pb2.RemoveMemberRequest(id=7),
                                   timeout=CALL_TIMEOUT_S).cluster
    assert sorted(m.id for m in cluster.members) == [1, 2, 3]


def test_a_single_node_has_no_members_to_change():
    d = Daemon()
    d.start()
    try:
        err = refusal(lambda: d.admin.AddMember(
            admin_pb2.AddMemberRequest(id=2, raft_address="127.0.0.1:1"), timeout=CALL_TIMEOUT_S))
        assert (err.code(), reason(err)) == (grpc.StatusCode.FAILED_PRECONDITION,
                                             "NOT_REPLICATED")
        err = refusal(lambda: d.admin.RemoveMember(admin_pb2.RemoveMemberRequest(id=2),
                                                   timeout=CALL_TIMEOUT_S))
        assert (err.code(), reason(err)) == (grpc.StatusCode.FAILED_PRECONDITION,
                                             "NOT_REPLICATED")
    finally:
        d.cleanup()
