"""The checker can fail: small hand-made histories, each with one kind of
violation, must be reported as that kind, and their benign twins (the same
story with timing that a slow but correct daemon could produce) must not.

The story behind most cases: worker-0 opens session 1 (TTL 2 s) at 0, its
last KeepAlive is sent at 0.5, it becomes creator of "k" (token 10) at 0.2
and is SIGKILLed at 1.0, so its lease can lapse from 2.5 on (its creation
timeout is longer).

The group cases (Story.group()) are runs of a replicated group of three
with an election timeout of 0.5 s.
"""
import json

import pytest

from checker import check

W0, W1, W2 = "worker-0-0.jsonl", "worker-1-1.jsonl", "worker-2-2.jsonl"


class Story:
    """Writes a nemesis log and worker histories for check()."""

    def __init__(self, folder):
        self.folder = folder
        self.nemesis = [{"ev": "daemon_ready", "t": 0.0}]
        self.events = {W0: [], W1: [], W2: []}
        self.killed = set()
        self.final = []  # the final reads (final.jsonl), if any
        self.n = 0

    def rpc(self, w, kind, t, end, code=None, late=False, detail="", result=None, **fields):
        op = f"op{self.n}"
        self.n += 1
        self.events[w].append(dict(ev="inv", t=t, op=op, kind=kind, **fields))
        if end is None:
            return
        if code is None:
            self.events[w].append(dict(ev="ok", t=end, op=op, **(result or {})))
        else:
            self.events[w].append(dict(ev="fail", t=end, op=op, code=code, late=late,
                                       detail=detail))

    def open(self, w, sid, t, ttl=2000):
        self.rpc(w, "open", t, t + 0.01, result={"sid": sid, "ttl": ttl})

    def ka(self, w, sid, sent):
        self.events[w].append(dict(ev="ka", t=sent + 0.01, sid=sid, sent=sent))

    def create(self, w, sid, token, t, got, key="k", ct=1500, wait=2500):
        self.rpc(w, "acquire", t, got, key=key, sid=sid, wait=wait, ct=ct, lock_only=False,
                 result={"outcome": "CREATE", "token": token, "value": None})

    def read(self, w, sid, value, t, got, key="k", outcome="FRESH", wait=2500):
        self.rpc(w, "acquire", t, got, key=key, sid=sid, wait=wait, ct=1500, lock_only=False,
                 result={"outcome": outcome, "token": 0, "value": value})

    def publish(self, w, sid, token, t, end, key="k", code=None):
        self.rpc(w, "publish", t, end, code=code, key=key, sid=sid, token=token,
                 value=str(token))

    def lock(self, w, sid, mode, token, t, got, key="m", wait=1500):
        self.rpc(w, "lock", t, got, key=key, sid=sid, mode=mode, wait=wait,
                 result={"acquired": True, "token": token})

    def unlock(self, w, sid, token, t, end, key="m", code=None):
        self.rpc(w, "unlock", t, end, code=code, key=key, sid=sid, token=token)

    def kill(self, w, t):
        self.nemesis.append({"ev": "worker_kill", "t": t, "file": w, "inc": 0})
        self.killed.add(w)

    def group(self):
        self.nemesis.append({"ev": "group", "t": -1.0, "election_timeout_ms": 500,
                             "heartbeat_ms": 50, "raft": {"1": "a", "2": "b", "3": "c"}})

    def view(self, node, term, t, serving=False):
        """Member `node`, asked at t - 0.01, says it is at `term` (and leads
        and serves, with `serving`)."""
        self.nemesis.append({"ev": "view", "t": t, "sent": t - 0.01, "node": node, "term": term,
                             "leader": node if serving else 0, "serving": serving})

    def steady(self, before, after, term=2):
        """Member 1 serves as leader of `term` at `before`; members 1 and 2
        are still at `term` when asked at `after`."""
        self.view(1, term, before, serving=True)
        self.view(1, term, after + 0.02)
        self.view(2, term, after + 0.02)

    def group_fault(self, fault, node, t):
        self.nemesis += [{"ev": "group_fault", "t": t, "fault": fault, "node": node},
                         {"ev": "member_signal", "t": t, "node": node, "sig": "SIGKILL"},
                         {"ev": "member_exit", "t": t + 0.05, "node": node, "rc": -9}]

    def peek(self, value, t, key="k", outcome="FRESH"):
        """A final read of `key` answered 10 ms later (value None: none)."""
        op = f"final-{len(self.final)}"
        self.final += [dict(ev="inv", t=t, op=op, kind="peek", key=key),
                       dict(ev="ok", t=t + 0.01, op=op, value=value,
                            outcome=None if value is None else outcome)]

    def restart(self, signal_at, exit_at):
        self.nemesis += [{"ev": "daemon_signal", "t": signal_at, "sig": "SIGKILL"},
                         {"ev": "daemon_exit", "t": exit_at, "rc": -9},
                         {"ev": "daemon_ready", "t": exit_at + 0.1}]

    def check(self, exits=True):
        with open(self.folder / "nemesis.jsonl", "w") as f:
            for e in sorted(self.nemesis, key=lambda e: e["t"]):
                f.write(json.dumps(e) + "\n")
        for w, events in self.events.items():
            if exits and w not in self.killed:
                events = events + [{"ev": "exit", "t": 100.0}]
            with open(self.folder / w, "w") as f:
                for e in events:
                    f.write(json.dumps(e) + "\n")
        if self.final:
            with open(self.folder / "final.jsonl", "w") as f:
                for e in [{"ev": "start", "t": 90.0}] + self.final + [{"ev": "exit", "t": 100.0}]:
                    f.write(json.dumps(e) + "\n")
        return check(self.folder)


def killed_creator(s, successor_got):
    """worker-0 dies holding the role; worker-1 parks and inherits it."""
    s.open(W0, 1, 0.0)
    s.ka(W0, 1, 0.5)
    s.create(W0, 1, 10, 0.1, 0.2, ct=5000)  # the lease, not the timeout, ends it
    s.rpc(W0, "lock", 0.9, None, key="m", sid=1, mode="read", wait=0)  # lost in the kill
    s.kill(W0, 1.0)
    s.open(W1, 2, 0.0, ttl=60_000)
    s.create(W1, 2, 11, 0.3, successor_got)
    s.publish(W1, 2, 11, successor_got + 0.1, successor_got + 0.11)


def elected(s, ct=1500):
    """worker-0 opens a long session and is elected creator of "k" with
    token 10 (asked at 0.1, answered at 0.2)."""
    s.open(W0, 1, 0.0, ttl=60_000)
    s.create(W0, 1, 10, 0.1, 0.2, ct=ct)


def kinds(report):
    return set(report.kinds())


def test_benign_history_has_no_violation(tmp_path):
    s = Story(tmp_path)
    killed_creator(s, successor_got=2.6)  # after the lease could lapse
    s.read(W1, 2, "11", 2.75, 2.8)
    # Readers share; the writer comes after both unlocks were sent.
    s.lock(W1, 2, "read", 12, 3.0, 3.05)
    s.open(W2, 3, 2.9, ttl=60_000)
    s.lock(W2, 3, "read", 13, 3.01, 3.06)
    s.unlock(W1, 2, 12, 3.2, 3.21)
    s.unlock(W2, 3, 13, 3.2, 3.21)
    s.lock(W1, 2, "write", 14, 3.1, 3.25)
    s.unlock(W1, 2, 14, 3.3, 3.31)
    # A late creator is refused after its creation timeout.
    s.create(W2, 3, 15, 3.4, 3.45, key="k2")
    s.publish(W2, 3, 15, 5.0, 5.01, key="k2", code="FAILED_PRECONDITION")
    # Our own deadline passes while the worker is frozen: not the daemon's fault.
    s.nemesis += [{"ev": "worker_stop", "t": 5.5, "file": W2, "inc": 2},
                  {"ev": "worker_cont", "t": 7.0, "file": W2, "inc": 2}]
    s.rpc(W2, "lock", 5.4, 7.1, code="DEADLINE_EXCEEDED", late=True, key="m", sid=3,
          mode="read", wait=300)
    # A wait that ran out, answered by the daemon after the full wait.
    s.rpc(W1, "acquire", 7.2, 7.61, code="DEADLINE_EXCEEDED", detail="wait_timeout_ms: ...",
          key="k", sid=2, wait=400, ct=1500, lock_only=False)
    # A daemon restart: later grants carry larger tokens.
    s.restart(8.0, 8.2)
    s.open(W1, 4, 8.3)
    s.create(W1, 4, 1_000_000, 8.5, 8.6)
    s.publish(W1, 4, 1_000_000, 8.7, 8.71)
    report = s.check()
    assert report.violations == [], report.text()
    assert report.counts["in_flight_at_kill"] == 1
    assert report.counts["publish_refused"] == 1


@pytest.mark.parametrize("successor_got, bad", [(2.6, False), (2.4, True)])
def test_two_creators_when_a_dead_creator_could_still_hold_the_role(tmp_path, successor_got, bad):
    s = Story(tmp_path)
    killed_creator(s, successor_got)
    assert ("two_creators" in kinds(s.check())) == bad


@pytest.mark.parametrize("publish_at, bad", [(0.75, False), (1.0, True)])
def test_two_creators_when_a_publish_is_accepted_after_the_next_grant(tmp_path, publish_at, bad):
    s = Story(tmp_path)
    elected(s)
    s.publish(W0, 1, 10, publish_at, publish_at + 0.01)
    s.open(W1, 2, 0.0, ttl=60_000)
    s.create(W1, 2, 11, 0.3, 0.8)
    s.publish(W1, 2, 11, 1.1, 1.11)
    found = kinds(s.check())
    assert ("two_creators" in found) == bad
    assert ("stale_publish" in found) == bad


def test_stale_publish_after_creation_timeout(tmp_path):
    s = Story(tmp_path)
    elected(s)
    s.publish(W0, 1, 10, 1.8, 1.81)  # accepted, though token 11 already held the role
    s.open(W1, 2, -5.0)  # a session we know nothing recent of: no overlap to see
    s.create(W1, 2, 11, 0.3, 1.7)
    assert "stale_publish" in kinds(s.check())


def test_stale_publish_after_close_and_after_restart(tmp_path):
    s = Story(tmp_path)
    s.open(W0, 1, 0.0)
    s.create(W0, 1, 10, 0.1, 0.2)
    s.rpc(W0, "close", 0.3, 0.31, sid=1)
    s.publish(W0, 1, 10, 0.4, 0.41)
    s.open(W1, 2, 0.0)
    s.create(W1, 2, 11, 0.1, 0.2, key="k2")
    s.restart(0.5, 0.6)
    s.publish(W1, 2, 11, 0.7, 0.71, key="k2")
    report = s.check()
    messages = [m for kind, m in report.violations if kind == "stale_publish"]
    assert any("closed" in m for m in messages) and any("restarted" in m for m in messages)


@pytest.mark.parametrize("second, asked, bad", [
    ("read", 0.1, False),   # readers share
    ("write", 0.4, False),  # after the reader's unlock was sent
    ("write", 0.1, True),
])
def test_rw_overlap(tmp_path, second, asked, bad):
    s = Story(tmp_path)
    s.open(W0, 1, 0.0)
    s.lock(W0, 1, "read", 10, 0.1, 0.2)
    s.unlock(W0, 1, 10, 0.3, 0.31)
    s.open(W1, 2, 0.0)
    s.lock(W1, 2, second, 11, asked, asked + 0.1 if asked > 0.3 else 0.25)
    s.unlock(W1, 2, 11, 0.5, 0.51)
    assert ("rw_overlap" in kinds(s.check())) == bad


def test_two_writers(tmp_path):
    s = Story(tmp_path)
    s.open(W0, 1, 0.0)
    s.open(W1, 2, 0.0)
    s.lock(W0, 1, "write", 10, 0.1, 0.2)
    s.lock(W1, 2, "write", 11, 0.1, 0.25)
    s.unlock(W0, 1, 10, 0.3, 0.31)
    s.unlock(W1, 2, 11, 0.3, 0.31)
    assert "rw_overlap" in kinds(s.check())


@pytest.mark.parametrize("token, restart, bad", [
    (11, False, False), (9, False, True), (10, False, True), (9, True, True)])
def test_tokens_increase_per_key(tmp_path, token, restart, bad):
    s = Story(tmp_path)
    s.open(W0, 1, 0.0)
    s.lock(W0, 1, "write", 10, 0.1, 0.2)
    s.unlock(W0, 1, 10, 0.3, 0.31)
    if restart:
        s.restart(0.4, 0.5)
    s.open(W1, 2, 0.6)
    s.lock(W1, 2, "write", token, 0.7, 0.8)  # asked after token 10 was seen
    s.unlock(W1, 2, token, 0.9, 0.91)
    found = kinds(s.check())
    assert bool(found & {"token_order", "token_repeat"}) == bad
    if token == 10:
        assert "token_repeat" in found


def test_unanswered_calls(tmp_path):
    s = Story(tmp_path)
    s.open(W0, 1, 0.0)
    s.rpc(W0, "acquire", 0.1, None, key="k", sid=1, wait=2500, ct=1500, lock_only=False)
    s.rpc(W0, "lock", 0.1, 16.7, code="DEADLINE_EXCEEDED", late=True, key="m", sid=1,
          mode="read", wait=1500)
    report = s.check()
    assert report.kinds()["unanswered"] == 2


def test_worker_that_never_finished_crashed_or_left_a_torn_history(tmp_path):
    s = Story(tmp_path)
    s.open(W0, 1, 0.0)
    report = s.check(exits=False)
    assert "unfinished" in kinds(report)
    with open(tmp_path / W1, "a") as f:
        f.write('{"ev": "crash", "t": 0.5, "traceback": "Traceback ..."}\n')
        f.write('{"ev": "inv", "t": 1')
    assert {"history", "crash"} <= kinds(check(tmp_path))


def test_unexpected_status_and_outcome(tmp_path):
    s = Story(tmp_path)
    s.open(W0, 1, 0.0)
    s.rpc(W0, "acquire", 0.1, 0.2, code="INTERNAL", key="k", sid=1, wait=0, ct=1500,
          lock_only=False)
    s.rpc(W0, "acquire", 0.3, 0.4, key="k", sid=1, wait=400, ct=1500, lock_only=False,
          result={"outcome": "NOT_READY", "token": 0, "value": None})
    assert s.check().kinds()["status"] == 2


@pytest.mark.parametrize("refused_at, bad", [(1.7, False), (1.2, True)])
def test_spurious_refusal_of_a_creator(tmp_path, refused_at, bad):
    s = Story(tmp_path)
    elected(s)
    s.publish(W0, 1, 10, refused_at - 0.01, refused_at, code="FAILED_PRECONDITION")
    assert ("spurious_refusal" in kinds(s.check())) == bad


def test_spurious_refusal_of_an_unlock(tmp_path):
    s = Story(tmp_path)
    s.open(W0, 1, 0.0)
    s.lock(W0, 1, "write", 10, 0.1, 0.2)
    s.unlock(W0, 1, 10, 0.3, 0.31, code="FAILED_PRECONDITION")
    assert "spurious_refusal" in kinds(s.check())


def test_waits_that_end_early(tmp_path):
    s = Story(tmp_path)
    s.open(W0, 1, 0.0)
    s.rpc(W0, "acquire", 0.1, 0.2, code="DEADLINE_EXCEEDED", detail="wait_timeout_ms: ...",
          key="k", sid=1, wait=400, ct=1500, lock_only=False)
    s.rpc(W0, "lock", 0.3, 0.4, key="m", sid=1, mode="write", wait=1500,
          result={"acquired": False, "token": 0})
    assert s.check().kinds()["early_timeout"] == 2


@pytest.mark.parametrize("value, bad", [("10", False), ("12", True), ("L10", True)])
def test_values_come_from_accepted_publishes(tmp_path, value, bad):
    s = Story(tmp_path)
    elected(s)
    s.publish(W0, 1, 10, 0.3, 0.31)
    s.create(W0, 1, 12, 0.4, 0.5)
    s.publish(W0, 1, 12, 0.6, 0.61, code="FAILED_PRECONDITION")
    s.read(W0, 1, value, 0.7, 0.8, outcome="STALE")
    assert ("value" in kinds(s.check())) == bad


def test_double_release(tmp_path):
    s = Story(tmp_path)
    elected(s)
    s.publish(W0, 1, 10, 0.3, 0.31)
    s.publish(W0, 1, 10, 0.4, 0.41)
    assert "double_release" in kinds(s.check())


@pytest.mark.parametrize("publish_at, bad", [(1.65, False), (1.8, True)])
def test_publish_accepted_past_the_creation_timeout(tmp_path, publish_at, bad):
    s = Story(tmp_path)
    s.open(W0, 1, 0.0, ttl=60_000)
    s.create(W0, 1, 10, 0.1, 0.2, ct=1500)  # the deadline is before 1.7
    s.publish(W0, 1, 10, publish_at, publish_at + 0.01)
    assert ("late_accept" in kinds(s.check())) == bad


def invalidated(s, hard, sent=0.4, key="k"):
    """worker-2 invalidates `key` ("" for the registry) at `sent`; it returns
    10 ms later."""
    s.open(W2, 3, 0.0)
    s.rpc(W2, "invalidate", sent, sent + 0.01, key=key, hard=hard)


@pytest.mark.parametrize("hard, outcome, asked, bad", [
    (False, "FRESH", 0.405, False),  # sent before the invalidation returned
    (False, "STALE", 0.5, False),    # soft: the old value stays as a fallback
    (False, "FRESH", 0.5, True),
    (True, "STALE", 0.5, True),      # hard: the old value counts as absent
])
def test_invalidated_values_are_not_served(tmp_path, hard, outcome, asked, bad):
    s = Story(tmp_path)
    elected(s)
    s.publish(W0, 1, 10, 0.3, 0.31)
    invalidated(s, hard, key="")
    s.read(W0, 1, "10", asked, asked + 0.05, outcome=outcome)
    assert ("invalidated_value" in kinds(s.check())) == bad


@pytest.mark.parametrize("publish_at, bad", [(0.405, False), (0.5, True)])
def test_publish_accepted_after_an_invalidation_returned(tmp_path, publish_at, bad):
    s = Story(tmp_path)
    elected(s)
    invalidated(s, hard=False)
    s.publish(W0, 1, 10, publish_at, publish_at + 0.01)
    assert ("stale_publish" in kinds(s.check())) == bad


@pytest.mark.parametrize("invalidate, bad", [(True, False), (False, True)])
def test_an_invalidation_can_end_a_role_early(tmp_path, invalidate, bad):
    """A refusal and a successor before the creation timeout are fine only
    if an invalidation came in between."""
    s = Story(tmp_path)
    elected(s, ct=5000)
    if invalidate:
        invalidated(s, hard=True)
    s.open(W1, 2, 0.0, ttl=60_000)
    s.create(W1, 2, 11, 0.3, 0.6)
    s.publish(W1, 2, 11, 0.7, 0.71)
    s.publish(W0, 1, 10, 0.8, 0.81, code="FAILED_PRECONDITION")
    found = kinds(s.check())
    assert ("two_creators" in found) == bad
    assert ("spurious_refusal" in found) == bad


# --- a replicated group ------------------------------------------------------

def test_benign_group_history_has_no_violation(tmp_path):
    """A role survives the leader's death, a call hangs on a stopped member,
    grants follow the fault, and the final read holds what was published."""
    s = Story(tmp_path)
    s.group()
    elected(s)
    s.group_fault("kill_leader", 1, 0.5)
    s.publish(W0, 1, 10, 1.0, 1.01)  # the new leader took the role over
    s.open(W1, 2, 0.0, ttl=60_000)
    s.lock(W1, 2, "write", 11, 1.1, 1.2)
    s.unlock(W1, 2, 11, 1.3, 1.31)
    s.nemesis += [{"ev": "member_stop", "t": 2.0, "node": 2},
                  {"ev": "member_cont", "t": 3.0, "node": 2}]
    s.rpc(W1, "lock", 1.9, 17.0, code="DEADLINE_EXCEEDED", late=True, key="m", sid=2,
          mode="read", wait=0)
    s.peek("10", 20.0)
    report = s.check()
    assert report.violations == [], report.text()
    assert report.counts["late_while_member_stopped"] == 1
    assert report.counts["publishes_checked_at_end"] == 1
    assert report.faults["kill_leader"] == 1


@pytest.mark.parametrize("final, hard_invalidation, bad", [
    ("11", False, False),  # the last publish
    ("10", False, True),   # an older value came back
    (None, False, True),   # the value was lost
    (None, True, False),   # a hard invalidation may have come after both
])
def test_final_reads_hold_every_answered_publish(tmp_path, final, hard_invalidation, bad):
    s = Story(tmp_path)
    s.group()
    elected(s)
    s.publish(W0, 1, 10, 0.3, 0.31)
    s.open(W1, 2, 0.0, ttl=60_000)
    s.create(W1, 2, 11, 0.4, 0.5)
    s.publish(W1, 2, 11, 0.6, 0.61)
    if hard_invalidation:
        invalidated(s, hard=True, sent=0.7)
    s.peek(final, 5.0)
    assert ("lost_write" in kinds(s.check())) == bad


@pytest.mark.parametrize("outcome, bad", [("STALE", False), ("FRESH", True)])
def test_final_reads_hold_every_answered_invalidation(tmp_path, outcome, bad):
    s = Story(tmp_path)
    s.group()
    elected(s)
    s.publish(W0, 1, 10, 0.3, 0.31)
    invalidated(s, hard=False)
    s.peek("10", 5.0, outcome=outcome)
    assert ("invalidated_value" in kinds(s.check())) == bad


@pytest.mark.parametrize("group, after, bad", [
    (True, 0.3, False),   # a deposed leader may still serve it, for 0.5 s
    (False, 0.3, True),   # a single daemon never
    (True, 0.7, True),
])
def test_a_group_may_serve_a_voided_value_for_one_election_timeout(tmp_path, group, after, bad):
    s = Story(tmp_path)
    if group:
        s.group()
    elected(s)
    s.publish(W0, 1, 10, 0.3, 0.31)
    invalidated(s, hard=False)  # returns at 0.41
    s.read(W0, 1, "10", 0.41 + after, 0.42 + after)
    assert ("invalidated_value" in kinds(s.check())) == bad


@pytest.mark.parametrize("steady, answered, bad", [
    (False, 1.81, False),
    (True, 1.81, True),
    (True, 2.5, False),  # it hung until a takeover at 2.0 (and reached the new leader)
])
def test_a_late_publish_is_judged_when_no_leader_took_over(tmp_path, steady, answered, bad):
    """A new leader starts a held role's creation timeout again: a Publish
    past it is a violation only if the views prove that no leader took over
    between the election and the Publish's answer."""
    s = Story(tmp_path)
    s.group()
    if steady:
        s.steady(0.05, 1.8)
        s.view(2, 3, 2.0)
        s.view(3, 3, 2.0, serving=True)
    elected(s)
    s.publish(W0, 1, 10, 1.8, answered)
    report = s.check()
    assert ("late_accept" in kinds(report)) == bad
    assert report.counts["late_accept_after_leader_change"] == (0 if bad else 1)


@pytest.mark.parametrize("steady, bad", [(False, False), (True, True)])
def test_a_refused_unlock_may_be_a_retry_only_across_a_takeover(tmp_path, steady, bad):
    s = Story(tmp_path)
    s.group()
    if steady:
        s.steady(0.05, 0.31)
    s.open(W0, 1, 0.0)
    s.lock(W0, 1, "write", 10, 0.1, 0.2)
    s.unlock(W0, 1, 10, 0.3, 0.31, code="FAILED_PRECONDITION")
    assert ("spurious_refusal" in kinds(s.check())) == bad


@pytest.mark.parametrize("asked, bad", [(1.1, False), (0.9, True)])
def test_grants_follow_every_group_fault(tmp_path, asked, bad):
    s = Story(tmp_path)
    s.group()
    s.group_fault("kill_follower", 3, 1.0)
    s.open(W0, 1, 0.0)
    s.lock(W0, 1, "write", 10, asked, 1.5)
    s.unlock(W0, 1, 10, 1.6, 1.61)
    assert ("no_progress" in kinds(s.check())) == bad
