"""The group fault test's world: three dogpiled members of one replicated
group on loopback (docs/replication.md), the workers of cluster.py doing
their work through the Python client's GroupChannel (it follows the
leader), and a nemesis that adds group faults to the client faults:

  - kill_leader: SIGKILL the leader, wait until the other two agree on a
    new one and workers were granted something by it, then restart the old
    leader (same node id, state folder and ports) and wait until it caught
    up;
  - stop_leader: SIGSTOP the leader until the other two agree on a new one
    (so past the election timeout), then SIGCONT it and wait until all
    three agree again;
  - kill_follower: SIGKILL a follower, wait until workers were granted
    something by the two left, restart it and wait until it caught up.

Each waits, before the next fault is dealt, until workers were granted
something they asked for after it took effect (GrantLog: after the new
leader was found, the stopped leader woken, the follower killed). Every
action, and what every member says of the group every 0.1 s (Monitor:
terms and leaders), goes to nemesis.jsonl in the workers' clock, for
checker.py.

Needs settings.use_python_client() first (conftest.py does it).
"""
import json
import math
import os
import random
import signal
import socket
import subprocess
import threading
import time

import grpc
from dogpiled.channel import make_group_channel

from cluster import CLIENT_FAULTS, Fleet, free_port
from harness import Daemon, admin_pb2, admin_pb2_grpc, dogpile_pb2, dogpile_pb2_grpc
from history import History
from test_group import PATIENCE_S, Group

# The daemon's defaults, named so the checker knows them (nemesis "group").
ELECTION_MS = 500
HEARTBEAT_MS = 50
GROUP_FAULTS = ("kill_leader", "stop_leader", "kill_follower")
PROGRESS_S = 120  # for a grant after a fault; normally well under a second
VIEW_PERIOD_S = 0.1


def stable_port():
    """A free loopback port below the kernel's ephemeral range, so no
    outgoing connection (a worker's) can take it while its member is down:
    a restarted member must come back on the same ports."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        first_ephemeral = int(f.read().split()[0])
    if first_ephemeral < 12000:
        return free_port()
    for _ in range(100):
        port = random.randrange(10000, first_ephemeral)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port below the ephemeral range")


class Members(Group):
    """test_group.Group with the daemon's default timeouts, state folders in
    the run's folder and ports no client can take (see stable_port)."""

    def __init__(self, workdir, size=3):  # not Group's: its ports and timeouts
        ports = set()
        while len(ports) < 2 * size:
            ports.add(stable_port())
        ports = sorted(ports)
        self.raft = {i: f"127.0.0.1:{ports[i - 1]}" for i in range(1, size + 1)}
        peers = ",".join(f"{i}={a}" for i, a in self.raft.items())
        self.members = {
            i: Daemon("--node-id", str(i), "--peers", peers,
                      "--election-timeout-ms", str(ELECTION_MS),
                      "--heartbeat-ms", str(HEARTBEAT_MS), "--log-level", "info",
                      state_dir=str(workdir / f"state-{i}"),
                      listen=f"127.0.0.1:{ports[size + i - 1]}")
            for i in self.raft
        }


class GrantLog:
    """Reads the workers' histories as they grow: when the grants answered
    so far were asked for."""

    def __init__(self, folder):
        self.folder = folder
        self.offsets = {}
        self.asked = {}  # op -> when an Acquire or Lock was sent
        self.latest = -math.inf  # the last send time of an answered grant

    def asked_after(self, t):
        for path in self.folder.glob("worker-*.jsonl"):
            with open(path, "rb") as f:
                f.seek(self.offsets.get(path, 0))
                data = f.read()
            whole = data.rfind(b"\n") + 1  # a line still being written waits
            self.offsets[path] = self.offsets.get(path, 0) + whole
            for line in data[:whole].splitlines():
                e = json.loads(line)
                if e["ev"] == "inv" and e["kind"] in ("acquire", "lock"):
                    self.asked[e["op"]] = e["t"]
                elif e["ev"] in ("ok", "fail"):
                    asked = self.asked.pop(e["op"], None)
                    if asked is not None and (e.get("outcome") == "CREATE" or e.get("acquired")):
                        self.latest = max(self.latest, asked)
        return self.latest > t


class Monitor(threading.Thread):
    """Logs every running member's view of the group (Admin.Cluster) every
    VIEW_PERIOD_S: its term, the leader it knows and whether it serves."""

    def __init__(self, group, hist, away):
        super().__init__(daemon=True)
        self.group, self.hist, self.away = group, hist, away
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            for i, d in self.group.members.items():
                if i in self.away():
                    continue
                sent = time.monotonic()
                try:
                    v = d.admin.Cluster(admin_pb2.ClusterRequest(), timeout=2)
                except Exception:  # noqa: BLE001  (down, hung, or a channel closed by a restart)
                    continue
                self.hist.log("view", node=i, term=v.term, leader=v.leader_id,
                              serving=v.serving, sent=sent)
            self.done.wait(VIEW_PERIOD_S)

    def stop(self):
        self.done.set()
        if self.is_alive():
            self.join(timeout=30)


class GroupCluster(Fleet):
    def __init__(self, workdir, workers, worker_cfg, seed, deck):
        super().__init__(workdir, workers, dict(worker_cfg, group=True), seed)
        unknown = set(deck) - set(GROUP_FAULTS) - set(CLIENT_FAULTS)
        assert not unknown, unknown
        self.deck = list(deck)
        self.group = Members(self.workdir)
        self.down = set(self.group.members)  # not running
        self.stopped = set()                 # SIGSTOPped
        self.away = frozenset(self.down)     # either: the monitor skips them
        self.elections = []  # (fault, old leader, new leader, term)
        self.caught_up = []  # (node, its applied index, the leader's commit index)
        self.grants = GrantLog(self.workdir)
        self.monitor = Monitor(self.group, self.hist, lambda: self.away)
        self.reads = 0

    # --- members ------------------------------------------------------------
    def _note(self):
        self.away = frozenset(self.down | self.stopped)

    def live(self):
        return [i for i in self.group.members if i not in self.down and i not in self.stopped]

    def view(self, i):
        """Member i's Admin.Cluster answer, or None."""
        try:
            return self.group.cluster(i)
        except (grpc.RpcError, ValueError):
            return None

    def leader(self, among=None):
        """The member every one of `among` (default: all running) names as
        leader and that serves."""
        among = among or self.live()

        def agreed():
            try:
                return self.group.leader(among, timeout=0.2)
            except (AssertionError, grpc.RpcError, ValueError):
                return None
        return self.wait_for(agreed, PATIENCE_S, f"a serving leader agreed on by {among}")

    def start_member(self, i):
        d = self.group.members[i]
        self.hist.log("member_start", node=i)
        d.start()
        self.down.discard(i)
        self._note()
        self.hist.log("member_ready", node=i, pid=d.proc.pid, port=d.port)

    def kill_member(self, i):
        d = self.group.members[i]
        self.down.add(i)
        self._note()
        self.hist.log("member_signal", node=i, sig="SIGKILL")
        try:
            rc = d.stop(signal.SIGKILL, timeout=30)
        except subprocess.TimeoutExpired:
            rc = "hung"
        self.hist.log("member_exit", node=i, rc=rc)
        if rc != -signal.SIGKILL:
            self.problems.append(f"member {i} exited {rc} on SIGKILL")

    def restart_member(self, i):
        """Starts a killed member again after a pause, and waits until it
        has applied everything the leader had committed by then."""
        until = time.monotonic() + self.rng.uniform(0.2, 1.0)
        self.wait_for(lambda: time.monotonic() >= until, 10, "the pause")
        self.start_member(i)
        lead = self.leader()
        target = self.wait_for(lambda: getattr(self.view(lead), "commit_index", 0), PATIENCE_S,
                               f"the commit index of leader {lead}")

        def applied():
            v = self.view(i)
            return v is not None and v.applied_index >= target and v.applied_index
        got = self.wait_for(applied, PATIENCE_S, f"member {i} to catch up to index {target}")
        self.caught_up.append((i, got, target))
        self.hist.log("member_caught_up", node=i, applied=got, target=target)

    def term(self, i):
        return self.wait_for(lambda: getattr(self.view(i), "term", 0), PATIENCE_S,
                             f"the term of member {i}")

    def elected(self, fault, old, new, old_term=0):
        """Notes the leader that followed `old` (of `old_term`)."""
        term = self.term(new)
        self.elections.append((fault, old, new, term))
        self.hist.log("leader_elected", fault=fault, old=old, new=new, term=term,
                      old_term=old_term)

    def progress(self, since, fault):
        """Waits until workers were granted something asked after `since`."""
        self.wait_for(lambda: self.grants.asked_after(since), PROGRESS_S,
                      f"a grant asked for after the {fault} to be answered")
        self.hist.log("progress", fault=fault, since=since, asked=self.grants.latest)

    # --- Fleet --------------------------------------------------------------
    def start_daemons(self):
        members = self.group.members
        self.hist.log("group", election_timeout_ms=ELECTION_MS, heartbeat_ms=HEARTBEAT_MS,
                      raft=self.group.raft, listen={i: d.listen for i, d in members.items()})
        for i in members:
            self.start_member(i)
        self.elected(None, None, self.leader())
        self.set_target(",".join(d.target for d in members.values()))
        self.monitor.start()

    def inject_daemon_fault(self, kind):
        lead = self.leader()
        term = self.term(lead)
        if kind == "kill_leader":
            self.hist.log("group_fault", fault=kind, node=lead, term=term)
            self.kill_member(lead)
            self.elected(kind, lead, self.leader(), term)
            self.progress(time.monotonic(), kind)
            self.restart_member(lead)
        elif kind == "stop_leader":
            self.hist.log("group_fault", fault=kind, node=lead, term=term)
            pid = self.group.members[lead].proc.pid
            self.stopped.add(lead)
            self._note()
            self.hist.log("member_stop", node=lead)
            os.kill(pid, signal.SIGSTOP)
            try:
                new = self.leader()  # the two others
            finally:
                os.kill(pid, signal.SIGCONT)
                self.stopped.discard(lead)
                self._note()
                self.hist.log("member_cont", node=lead)
            self.elected(kind, lead, new, term)
            self.leader()  # the woken member knows it was deposed
            self.progress(time.monotonic(), kind)
        elif kind == "kill_follower":
            follower = self.rng.choice([i for i in self.live() if i != lead])
            began = self.hist.log("group_fault", fault=kind, node=follower)
            self.kill_member(follower)
            self.progress(began, kind)
            self.restart_member(follower)
        else:
            raise ValueError(kind)
        self.hist.log("group_fault_done", fault=kind)

    def tend_daemons(self):
        for i, d in self.group.members.items():
            if i not in self.down and d.proc.poll() is not None:
                self.problems.append(f"member {i} died by itself ({d.proc.returncode}): "
                                     + d.read_log()[-2000:])
                self.hist.log("member_exit", node=i, rc=d.proc.returncode)
                self.down.add(i)
                self.start_member(i)

    def close_daemons(self):
        """Kills every member still running (resumed first) and keeps their
        logs beside the histories."""
        self.monitor.stop()
        failed = None
        for i, d in self.group.members.items():
            try:
                if d.proc is not None:
                    if d.proc.poll() is None:
                        d.proc.send_signal(signal.SIGCONT)
                        d.proc.kill()
                        d.proc.wait()
                    (self.workdir / f"member-{i}.log").write_text(d.read_log())
            except Exception as e:  # noqa: BLE001  (the others must go too)
                failed = failed or e
            finally:
                d.cleanup()
        if failed is not None:
            raise failed

    # --- the end ------------------------------------------------------------
    def finish(self, registry, keys, timeout):
        """Once the workers have stopped: waits for a leader that all three
        members agree on and for every session to end (within `timeout`),
        then reads every key from it into final.jsonl (the checker holds
        the final state to every answered publish and invalidation).
        Returns the leader's Stats."""
        self.hist.log("final_leader", node=self.leader())
        channel = make_group_channel(",".join(d.target for d in self.group.members.values()))
        final = History(self.workdir / "final.jsonl")
        try:
            admin = admin_pb2_grpc.AdminStub(channel)

            def no_sessions():
                try:
                    stats = admin.Stats(admin_pb2.StatsRequest(), timeout=10)
                except grpc.RpcError:
                    return None
                return stats.sessions == 0 and (stats,)
            (stats,) = self.wait_for(no_sessions, timeout, "every session to end")
            final.log("start", name="final")
            dogpile = dogpile_pb2_grpc.DogpileStub(channel)
            for key in keys:
                self.wait_for(lambda: self._read(final, dogpile, registry, key),
                              PATIENCE_S, f"a final read of {key}")
            final.log("exit")
        finally:
            final.close()
            channel.close()
        return stats

    def _read(self, final, dogpile, registry, key):
        """One logged Peek of `key`, as workers log their calls; True if it
        was answered."""
        op = f"final-{self.reads}"
        self.reads += 1
        final.log("inv", op=op, kind="peek", key=key)
        try:
            r = dogpile.Peek(dogpile_pb2.PeekRequest(registry=registry, key=key.encode()),
                             timeout=10)
        except grpc.RpcError as e:
            final.log("fail", op=op, code=e.code().name, late=False, detail=(e.details() or "")[:160])
            return False
        final.log("ok", op=op, value=r.value.decode() if r.has_value else None,
                  outcome=("STALE" if r.is_expired else "FRESH") if r.has_value else None)
        return True
