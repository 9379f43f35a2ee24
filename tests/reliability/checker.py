#!/usr/bin/env python3
# Standard library only: any python3 runs it.
"""Checks the histories of a fault-test run against the contract.

Input: a folder with nemesis.jsonl and one worker-*.jsonl per worker process
(see worker.py and cluster.py for the events). All times are
CLOCK_MONOTONIC seconds, one clock for every process on the machine.

How client-observed times bound what the daemon did: an answer received at
x was produced before x; a request logged at y (logging comes before
sending) reached the daemon after y. So a grant received at x with token t
was held from some moment before x, and a role is known to be held over an
interval only up to the earliest moment something could have ended it:

  - its own Publish/Abandon/Unlock: if the daemon ACCEPTED it, the grant was
    still held when that request arrived, which is after it was sent;
    otherwise, the release could have ended it from the moment it was sent;
  - the creation timeout: not before the Acquire was sent plus
    creation_timeout_ms (the deadline starts at the grant, after sending);
  - the session's end: not before Close was sent, nor before the TTL ran out
    counted from the last renewal we know of (an answered KeepAlive renewed
    after its request was sent; Open counts as a renewal);
  - an invalidation of the key (creators only): not before it was sent, if
    it may have been applied after the grant;
  - the daemon's death: not before the nemesis sent the signal to the
    daemon that could have granted it (the first one still running when the
    grant was asked for).

Two grants whose known-held intervals overlap were held together for real,
whatever the timing; a grant we cannot bound (a killed creator with no
renewal after its grant) simply contributes a shorter interval. So the
check fails for real violations and never for slow processes.

A replicated group's run (group_cluster.py: nemesis.jsonl starts with a
"group" event) is held to the same rules, with what section 7 of the
contract adds and allows:

  - grants, sessions and values survive a leader change, so the death of a
    member bounds nothing;
  - a call that hung on a SIGSTOPped member may miss its deadline;
  - a deposed leader may serve a value for at most one election timeout
    after a newer invalidation, so a read is held to the invalidations
    answered one election timeout before it was sent;
  - a new leader starts held roles' creation timeouts again, so a Publish
    accepted past its creation timeout is a violation only when the
    members' views (Monitor) show that no leader took over in between;
  - the Python client sends a refused call again to the new leader, so an
    Unlock or Abandon refused while a leader may have taken over may be
    the retry of one that was applied (a Publish is answered again);
  - the final reads (final.jsonl: a Peek of every key once the workers
    have stopped) must show every answered publish and invalidation: a
    key holds the value of a publish that may have come after every
    publish answered OK, or no value only if a hard invalidation may have
    come after each;
  - after every group fault, some grant asked for later was answered.

Each violation has a kind: two_creators, rw_overlap, stale_publish,
late_accept, spurious_refusal, token_order, token_repeat, double_release,
invalidated_value, value, lost_write, unanswered, early_timeout, status,
no_progress, unfinished, history, crash.

Usage: checker.py FOLDER  (prints the report; exit 1 on any violation).
"""
import bisect
import collections
import math
import pathlib
import sys

from history import load
from invalidations import READS, check_values, marks_by_key

INF = math.inf
# Rounding in the daemon: its deadlines are whole milliseconds of the same
# clock, so a lease may end up to 1 ms before the exact instant.
SLACK = 0.02
# Status codes a call may end with in this workload. Anything else (an
# INTERNAL, a RESOURCE_EXHAUSTED, ...) is a violation. CLOSED: our channel
# was closed before the call left. DEADLINE_EXCEEDED without the daemon's
# message is our own deadline, judged apart as an unanswered call.
COMMON = {"NOT_FOUND", "UNAVAILABLE", "CANCELLED", "CLOSED"}
ALLOWED = {
    "open": {"UNAVAILABLE", "CANCELLED", "CLOSED"},
    "acquire": COMMON | {"DEADLINE_EXCEEDED"},
    "publish": COMMON | {"FAILED_PRECONDITION"},
    "abandon": COMMON | {"FAILED_PRECONDITION"},
    "lock": COMMON,
    "unlock": COMMON | {"FAILED_PRECONDITION"},
    "close": COMMON,
    "invalidate": {"UNAVAILABLE", "CANCELLED", "CLOSED"},
    "peek": {"UNAVAILABLE", "CANCELLED", "CLOSED"},
}
RELEASES = ("publish", "abandon", "unlock")
REFUSED = ("FAILED_PRECONDITION", "NOT_FOUND")  # a release that changed nothing
TIGHT = 0.005


class Op:
    def __init__(self, inc, event):
        self.inc = inc
        self.id = event["op"]
        self.kind = event["kind"]
        self.t = event["t"]
        self.f = event  # the invocation's fields
        self.end = None  # the "ok" or "fail" event

    @property
    def ok(self):
        return self.end is not None and self.end["ev"] == "ok"

    def code(self):
        return None if self.end is None or self.end["ev"] == "ok" else self.end["code"]


class Grant:
    def __init__(self, op, role):
        self.op, self.role = op, role  # role: create, read or write
        self.key, self.sid = op.f["key"], op.f["sid"]
        self.token = op.end["token"]
        self.asked, self.got = op.t, op.end["t"]
        self.until = None  # end of the known-held interval

    def __repr__(self):
        return f"{self.role} token {self.token} ({self.op.id})"


class Report:
    def __init__(self):
        self.counts = collections.Counter()
        self.faults = collections.Counter()
        self.violations = []  # (kind, message)

    def bad(self, kind, message):
        self.violations.append((kind, message))

    def kinds(self):
        return collections.Counter(kind for kind, _ in self.violations)

    def text(self, limit=40):
        lines = ["operations: " + ", ".join(f"{k}={v}" for k, v in sorted(self.counts.items())),
                 "faults: " + ", ".join(f"{k}={v}" for k, v in sorted(self.faults.items())),
                 f"violations: {len(self.violations)}"]
        lines += [f"  [{kind}] {message}" for kind, message in self.violations[:limit]]
        return "\n".join(lines)


class Run:
    """Everything parsed from one folder."""

    def __init__(self, folder):
        self.report = Report()
        self.t0 = None
        self._nemesis(pathlib.Path(folder) / "nemesis.jsonl")
        self.ops = []
        self.incs = {}  # file name -> its events summary
        self.renewed = collections.defaultdict(lambda: -INF)  # sid -> last renewal sent
        for path in sorted(pathlib.Path(folder).glob("worker-*.jsonl")):
            self._worker(path)
        final = pathlib.Path(folder) / "final.jsonl"  # a group's final reads
        if final.exists():
            self._worker(final)

    def rel(self, t):
        """A time for messages: seconds since the run began."""
        return f"{t - self.t0:.3f}s"

    def _nemesis(self, path):
        events, _ = load(path)
        self.t0 = events[0]["t"] if events else 0.0
        self.signals, self.exits = [], []  # per daemon epoch
        self.killed = {}                   # worker file -> SIGKILL time
        self.pauses = collections.defaultdict(list)  # file -> [(stop, cont)]
        self.group = None          # the "group" event of a replicated group
        self.member_stops = []     # [stop, cont] of any member
        self.group_faults = []     # their "group_fault" events
        self.views = []            # members' views of the group (Monitor)
        faults = self.report.faults
        for e in events:
            ev = e["ev"]
            if ev == "daemon_signal":
                self.signals.append(e["t"])
                faults["restart_daemon_" + e["sig"][3:].lower()] += 1
            elif ev == "daemon_exit":
                self.exits.append(e["t"])
                if len(self.signals) < len(self.exits):
                    # Died unasked, at a moment we cannot bound: assume its
                    # grants ended at once (the harness fails such runs).
                    self.signals.append(-INF)
            elif ev == "worker_kill":
                self.killed[e["file"]] = e["t"]
                faults["kill_client"] += 1
            elif ev == "worker_stop":
                self.pauses[e["file"]].append([e["t"], INF])
                faults["pause_client"] += 1
            elif ev == "worker_cont":
                self.pauses[e["file"]][-1][1] = e["t"]
            elif ev in ("drop_channel", "cut_keepalive"):
                faults[ev] += 1
            elif ev == "group":
                self.group = e
            elif ev == "group_fault":
                self.group_faults.append(e)
                faults[e["fault"]] += 1
            elif ev == "leader_elected" and e["fault"]:
                # Another member leads, at a later term than the one the
                # fault was dealt in.
                faults["new_leader_after_" + e["fault"]] += int(
                    e["new"] != e["old"] and e["term"] > e["old_term"])
            elif ev == "member_stop":
                self.member_stops.append([e["t"], INF])
            elif ev == "member_cont":
                self.member_stops[-1][1] = e["t"]
            elif ev == "view":
                self.views.append(e)

    def _worker(self, path):
        events, torn = load(path)
        name = path.name
        if not events:
            # Stopped before it said it was ready (the "start" line): it
            # sent nothing, so there is nothing to check. The harness judges
            # how it ended.
            return
        if torn and name not in self.killed:
            self.report.bad("history", f"{name}: last line cut short but the worker was not killed")
        ops = {}
        exited = False
        for e in events:
            ev = e["ev"]
            if ev == "inv":
                ops[e["op"]] = Op(name, e)
            elif ev in ("ok", "fail"):
                ops[e["op"]].end = e
            elif ev == "ka":
                self.renewed[e["sid"]] = max(self.renewed[e["sid"]], e["sent"])
            elif ev == "exit":
                exited = True
            elif ev == "crash":
                self.report.bad("crash", f"{name}: {e['traceback'][-500:]}")
        if not exited and name not in self.killed:
            self.report.bad("unfinished", f"{name}: the worker neither exited nor was killed")
        self.ops.extend(ops.values())

    # --- bounds on the daemon's actions -----------------------------------
    def epoch_end(self, t):
        """(signal, exit) times of the first daemon still running at t."""
        i = bisect.bisect_left(self.exits, t)
        if i == len(self.exits):
            return INF, INF
        return self.signals[i], self.exits[i]

    def stale_read_s(self):
        """How long after an invalidation returned a read may still miss it:
        a group's deposed leader may serve from its old state for one
        election timeout; a single daemon never."""
        return self.group["election_timeout_ms"] / 1000 if self.group else 0.0

    def steady(self, a, b):
        """True when the views prove that no leader took over between a and
        b: a leader served at some term M before a, and a majority of the
        members was still at term M when asked after b (a takeover at a
        later term needs a majority's votes at it, and terms never go
        back, not even across a restart)."""
        before = [v for v in self.views
                  if v["t"] <= a and v["serving"] and v["leader"] == v["node"]]
        if not before:
            return False
        term = max(before, key=lambda v: v["t"])["term"]
        after = {v["node"] for v in self.views if v["sent"] >= b and v["term"] == term}
        return len(after) > len(self.group["raft"]) // 2


def check(folder):
    """Reads the histories in `folder`; returns a Report."""
    run = Run(folder)
    report = run.report
    ops = run.ops
    sessions = {}  # sid -> (open op, ttl seconds)
    closes = collections.defaultdict(list)
    # (key, token, session) -> ops: a grant is released by its own session,
    # which keeps grants apart even if a daemon bug repeats a token.
    releases = collections.defaultdict(list)
    grants, invalidations = [], []
    for op in ops:
        report.counts["invoked"] += 1
        if op.kind == "open" and op.ok:
            sessions[op.end["sid"]] = (op, op.end["ttl"] / 1000)
        elif op.kind == "close":
            closes[op.f["sid"]].append(op)
        elif op.kind in RELEASES:
            releases[(op.f["key"], op.f["token"], op.f["sid"])].append(op)
        elif op.kind == "acquire" and op.ok and op.end["outcome"] == "CREATE":
            grants.append(Grant(op, "create"))
        elif op.kind == "lock" and op.ok and op.end["acquired"]:
            grants.append(Grant(op, op.f["mode"]))
        elif op.kind == "invalidate":
            invalidations.append(op)

    def session_end_bound(sid):
        opened, ttl = sessions[sid]
        renewed = max(opened.t, run.renewed[sid])
        closed = min((c.t for c in closes[sid]), default=INF)
        return min(renewed + ttl - SLACK, closed)

    _completions(run, report)
    _survival(run, report, releases, invalidations)
    marks = marks_by_key(invalidations, {op.f["key"] for op in ops if "key" in op.f})
    for g in grants:
        _bound(run, report, g, releases.get((g.key, g.token, g.sid), []), session_end_bound,
               marks[g.key])
    by_key = collections.defaultdict(list)
    for g in grants:
        by_key[g.key].append(g)
    for key, gs in by_key.items():
        _exclusive(run, report, key, [g for g in gs if g.role == "create"], "two_creators")
        _exclusive(run, report, key, [g for g in gs if g.role != "create"], "rw_overlap")
        _tokens(run, report, key, gs)
        _fencing(run, report, key, gs, releases, closes, marks[key])
    _values(run, report, releases)
    check_values(run, report, marks, {(g.key, g.token): g.got for g in grants
                                      if g.role == "create"}, run.stale_read_s())
    _progress(run, report, grants)
    report.counts["sessions"] = len(sessions)
    report.counts["grants_create"] = sum(g.role == "create" for g in grants)
    report.counts["grants_read"] = sum(g.role == "read" for g in grants)
    report.counts["grants_write"] = sum(g.role == "write" for g in grants)
    return report


def _completions(run, report):
    """Every call is answered, except calls in flight when their process was
    SIGKILLed; answers match what was asked."""
    for op in run.ops:
        if op.end is None:
            if op.inc in run.killed:
                report.counts["in_flight_at_kill"] += 1
            else:
                report.bad("unanswered", f"{op.id} {op.kind} sent at {run.rel(op.t)} never ended")
            continue
        report.counts["completed"] += 1
        end, took = op.end, op.end["t"] - op.t
        if end["ev"] == "fail":
            report.counts["fail_" + end["code"]] += 1
            if end.get("late"):
                paused = any(s < end["t"] and op.t < c for s, c in run.pauses[op.inc])
                hung = any(s < end["t"] and op.t < c for s, c in run.member_stops)
                if hung:  # it may have waited on the stopped member
                    report.counts["late_while_member_stopped"] += 1
                elif not paused:
                    report.bad("unanswered", f"{op.id} {op.kind} sent at {run.rel(op.t)} got no "
                                             f"answer in {took:.1f}s")
            elif end["code"] not in ALLOWED[op.kind]:
                report.bad("status", f"{op.id} {op.kind}: {end['code']} {end.get('detail', '')}")
            elif end["code"] == "DEADLINE_EXCEEDED" and took < op.f["wait"] / 1000 - SLACK:
                report.bad("early_timeout", f"{op.id} acquire waited {took * 1000:.0f} ms of "
                                            f"{op.f['wait']} ms")
            continue
        if op.kind == "acquire":
            report.counts["acquire_" + end["outcome"]] += 1
            if end["outcome"] == "NOT_READY" and op.f["wait"] > 0:
                report.bad("status", f"{op.id} NOT_READY though it asked to wait")
        elif op.kind == "lock" and not end["acquired"] and op.f["wait"] > 0:
            report.counts["lock_not_granted"] += 1
            if took < op.f["wait"] / 1000 - SLACK:
                report.bad("early_timeout", f"{op.id} lock waited {took * 1000:.0f} ms of "
                                            f"{op.f['wait']} ms")
        elif op.kind in ("publish", "abandon", "unlock", "open", "invalidate", "peek"):
            report.counts[op.kind + "_ok"] += 1


def _bound(run, report, g, rels, session_end_bound, marks):
    """Sets g.until: the grant was surely still held up to then."""
    accepted = [r for r in rels if r.ok]
    if len(accepted) > 1:
        report.bad("double_release", f"{g.key}: {g} released twice: {[r.id for r in accepted]}")
    if accepted:
        g.until = accepted[0].t
        return
    signal, _ = run.epoch_end(g.asked)
    until = min(session_end_bound(g.sid), signal, min((r.t for r in rels), default=INF))
    if g.role == "create":
        until = min(until, g.asked + g.op.f["ct"] / 1000 - SLACK,
                    marks.earliest_sent_of_pending(g.asked))
    g.until = until
    if not rels:
        report.counts["orphaned_" + g.role] += 1


def _exclusive(run, report, key, gs, kind):
    """No two overlapping known-held intervals, except reader with reader."""
    held = sorted((g for g in gs if g.until > g.got), key=lambda g: g.got)
    latest = None           # the interval reaching furthest, of any role
    latest_exclusive = None  # the same among exclusive ones
    for g in held:
        exclusive = g.role != "read"
        other = latest if exclusive else latest_exclusive
        if other is not None and g.got < other.until:
            report.bad(kind, f"{key}: {g} held from {run.rel(g.got)} while {other} held from "
                             f"{run.rel(other.got)} to at least {run.rel(other.until)}")
        elif other is not None and g.got < other.until + TIGHT:
            # Seen within a few ms of the previous holder's known end: an
            # overlap of that size would have been caught.
            report.counts["tight_" + kind] += 1
        if latest is None or g.until > latest.until:
            latest = g
        if exclusive and (latest_exclusive is None or g.until > latest_exclusive.until):
            latest_exclusive = g


def _tokens(run, report, key, gs):
    """Tokens never repeat per key, and a grant asked for after another was
    received carries a larger token (also across daemon restarts)."""
    seen = collections.Counter(g.token for g in gs)
    for token, n in seen.items():
        if n > 1:
            report.bad("token_repeat", f"{key}: token {token} granted {n} times")
    by_got = sorted(gs, key=lambda g: g.got)
    times = [g.got for g in by_got]
    best = []  # best[i]: the grant with the largest token among by_got[:i+1]
    for g in by_got:
        best.append(g if not best or g.token > best[-1].token else best[-1])
    for g in gs:
        i = bisect.bisect_left(times, g.asked)
        if i and best[i - 1].token >= g.token:
            earlier = best[i - 1]
            report.bad("token_order", f"{key}: {g} asked at {run.rel(g.asked)} after {earlier} "
                                      f"was received at {run.rel(earlier.got)}")


def _fencing(run, report, key, gs, releases, closes, marks):
    """A release is accepted only while its grant could still be held: not
    after a later creator of the key was seen, not past the creation
    timeout, not after an invalidation sent after the election returned,
    not after the session's Close was answered, not by a daemon other than
    the one that granted it. A creator is refused only after its creation
    timeout or an invalidation could have ended its role."""
    creators = sorted((g for g in gs if g.role == "create"), key=lambda g: g.got)
    times = [g.got for g in creators]
    best = []
    for g in creators:
        best.append(max(best[-1], g.token) if best else g.token)
    for g in gs:
        for r in releases.get((key, g.token, g.sid), []):
            if r.ok:
                i = bisect.bisect_left(times, r.t)
                if g.role == "create" and i and best[i - 1] > g.token:
                    report.bad("stale_publish", f"{key}: {r.kind} of {g} accepted though sent at "
                                                f"{run.rel(r.t)}, after token {best[i - 1]} "
                                                f"was granted the role")
                closed = [c for c in closes[g.sid] if c.ok and c.end["t"] < r.t]
                if closed:
                    report.bad("stale_publish", f"{key}: {r.kind} of {g} accepted after its "
                                                f"session was closed")
                if g.role == "create" and marks.latest_sent_of_returned(r.t) > g.got:
                    report.bad("stale_publish", f"{key}: {r.kind} of {g} accepted though an "
                                                f"invalidation sent after its election had "
                                                f"returned")
                ct = g.op.f.get("ct")
                if (ct is not None and r.t > g.got + ct / 1000 + SLACK and run.group
                        and not run.steady(g.asked, r.end["t"])):
                    # A new leader may have started the timeout again before
                    # the release reached it (as late as its answer).
                    report.counts["late_accept_after_leader_change"] += 1
                elif ct is not None and r.t > g.got + ct / 1000 + SLACK:
                    # The deadline ran from the grant, before g.got.
                    report.bad("late_accept", f"{key}: {r.kind} of {g} accepted though sent "
                                              f"{(r.t - g.got) * 1000:.0f} ms after the grant, "
                                              f"past its {ct} ms creation timeout")
                _, exited = run.epoch_end(g.got)
                if exited < r.t:
                    report.bad("stale_publish", f"{key}: {r.kind} of {g} accepted by a daemon "
                                                f"restarted since the grant")
            elif r.code() == "FAILED_PRECONDITION":
                report.counts[r.kind + "_refused"] += 1
                ct = g.op.f.get("ct")
                invalidated = marks.earliest_sent_of_pending(g.asked) < r.end["t"]
                if r.kind != "publish" and run.group and not run.steady(r.t, r.end["t"]):
                    # The GroupChannel may have sent it again to a new
                    # leader after the first try was applied (only a
                    # Publish is answered again, not refused).
                    report.counts[r.kind + "_refused_after_leader_change"] += 1
                elif ct is None or (r.end["t"] < g.asked + ct / 1000 - SLACK and not invalidated):
                    report.bad("spurious_refusal", f"{key}: {r.kind} of {g} refused at "
                                                   f"{run.rel(r.end['t'])} while the grant "
                                                   f"could not have ended")


def _values(run, report, releases):
    """A value served was published for that key before it was served, by a
    creator the daemon did not refuse, and never by a lock-only creator."""
    published = collections.defaultdict(list)  # (key, value) -> publish ops
    for (key, _, _), ops in releases.items():
        for r in ops:
            if r.kind == "publish":
                published[(key, r.f["value"])].append(r)
    for op in run.ops:
        if op.kind not in READS or not op.ok or op.end.get("value") is None:
            continue
        value, key = op.end["value"], op.f["key"]
        if value.startswith("L"):
            report.bad("value", f"{op.id}: {key} served a lock-only creator's value {value}")
            continue
        sent = [r for r in published[(key, value)] if r.t < op.end["t"] and r.code() not in REFUSED]
        if not sent:
            report.bad("value", f"{op.id}: {key} served value {value}, which no accepted "
                                f"publish had sent by {run.rel(op.end['t'])}")


def _survival(run, report, releases, invalidations):
    """The final reads (kind peek, once every worker has stopped) hold every
    publish answered before them: the value of a publish that may have been
    applied after it (one answered OK was applied before its answer, any
    other maybe never, maybe at any time after it was sent), or no value
    only if a hard invalidation of the key or registry may have been."""
    def applied_by(op):
        return op.end["t"] if op.ok else INF

    stored = collections.defaultdict(list)  # key -> publishes that may have stored a value
    for (key, _, _), ops in releases.items():
        stored[key] += [r for r in ops if r.kind == "publish" and r.code() not in REFUSED
                        and not r.f["value"].startswith("L")]  # lock-only: nothing stored
    for f in run.ops:
        if f.kind != "peek" or not f.ok:
            continue
        key, value = f.f["key"], f.end["value"]
        if value is None:
            last = [op for op in invalidations if op.f["hard"] and op.f["key"] in ("", key)]
            what = "no value, and no hard invalidation may have come after"
        else:
            last = [r for r in stored[key] if r.f["value"] == value]
            what = f"{value}, whose publish was answered before"
        for p in stored[key]:
            if not p.ok or p.end["t"] > f.t:
                continue
            report.counts["publishes_checked_at_end"] += 1
            if p.f["value"] != value and not any(applied_by(op) > p.t for op in last):
                report.bad("lost_write", f"{f.id}: {key} ends with {what} {p.id}, which "
                                         f"published {p.f['value']} (sent at {run.rel(p.t)}, "
                                         f"answered OK at {run.rel(p.end['t'])})")


def _progress(run, report, grants):
    """After each group fault, some grant asked for later was answered."""
    latest = max((g.asked for g in grants), default=-INF)
    for e in run.group_faults:
        if latest <= e["t"]:
            report.bad("no_progress", f"no grant asked for after the {e['fault']} of member "
                                      f"{e['node']} at {run.rel(e['t'])} was answered")


if __name__ == "__main__":
    result = check(sys.argv[1])
    print(result.text(limit=200))
    sys.exit(1 if result.violations else 0)
