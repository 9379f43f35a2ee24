#!/usr/bin/python3
"""Replicated mode (issue 11): how long a group is without a leader, and what
the commit costs a grant.

Failover: starts three dogpiled members on loopback with the default
timeouts (--election-timeout-ms 500, --heartbeat-ms 50), then per round
SIGKILLs the leader and measures the time from the kill to the first grant
(a CREATE on a key of its own) answered by the new leader, while a client
asks every member in turn every 5 ms; the killed member is restarted and
caught up before the next round. Reports p50 and max (goal: 1.5 s).

Grant cost: uncontended Lock + Unlock pairs, one at a time from one
client, on a single node and on the group's leader, in the same run: p50
and p99 of the pair and the serving daemon's CPU per pair. The client is
the same in both, so the difference is the commit (proposal, majority
append and fsync of the Raft log, apply).

  bench/failover.py --quick    # 2 rounds, 1 s of pairs (a smoke run)
  bench/failover.py            # 20 rounds, 5 s of pairs

Asserts nothing; prints a table (and --json FILE writes the figures).
Uses Debian's python3-grpcio and the stubs of the build (--build).
"""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import grpc


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values, p):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


class Stubs:
    def __init__(self, target, pb):
        self.target = target
        self.channel = grpc.insecure_channel(target)
        self.sessions = pb.sessions_grpc.SessionsStub(self.channel)
        self.dogpile = pb.dogpile_grpc.DogpileStub(self.channel)
        self.rw = pb.rwmutex_grpc.RWMutexStub(self.channel)
        self.admin = pb.admin_grpc.AdminStub(self.channel)


class Member:
    def __init__(self, binary, tmp, args, name):
        self.binary, self.args = binary, args
        self.port_file = os.path.join(tmp, f"{name}.port")
        self.state = os.path.join(tmp, name)
        self.proc = None

    def start(self):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.proc = subprocess.Popen(
            [self.binary, "--port-file", self.port_file, "--state-dir", self.state,
             "--metrics-listen", "", "--log-level", "warn", *self.args])
        deadline = time.monotonic() + 60
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dogpiled {self.args} did not start")
            time.sleep(0.01)

    def stop(self, sig=signal.SIGTERM):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)


def leader_of(stubs, pb, among):
    """The id every member in `among` names, once it serves."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            views = [stubs[i].admin.Cluster(pb.admin.ClusterRequest(), timeout=2) for i in among]
            ids = {v.leader_id for v in views}
            if len(ids) == 1 and (lead := ids.pop()) in among and \
                    stubs[lead].admin.Cluster(pb.admin.ClusterRequest(), timeout=2).serving:
                return lead
        except grpc.RpcError:
            pass
        time.sleep(0.02)
    raise RuntimeError("no leader within 60 s")


def start_group(binary, tmp, pb, name):
    """Three members on free loopback ports: (members, stubs) by id."""
    raft = {i: f"127.0.0.1:{free_port()}" for i in (1, 2, 3)}
    client = {i: f"127.0.0.1:{free_port()}" for i in (1, 2, 3)}
    peers = ",".join(f"{i}={a}" for i, a in raft.items())
    members = {i: Member(binary, tmp, ["--node-id", str(i), "--peers", peers,
                                       "--listen", client[i]], f"{name}{i}")
               for i in raft}
    try:
        for m in members.values():
            m.start()
    except BaseException:
        for m in members.values():
            m.stop(signal.SIGKILL)
        raise
    return members, {i: Stubs(client[i], pb) for i in members}


def failover_rounds(binary, tmp, pb, rounds):
    members, stubs = {}, {}
    try:
        members, stubs = start_group(binary, tmp, pb, "m")
        times = []
        for n in range(rounds):
            lead = leader_of(stubs, pb, list(members))
            # Sessions of every other member's future: opened on the leader,
            # they survive its death (one TTL of grace).
            session = stubs[lead].sessions.Open(pb.sessions.OpenRequest(ttl_ms=30_000)).session_id
            members[lead].stop(signal.SIGKILL)
            killed = time.monotonic()
            rest = [i for i in members if i != lead]
            got, k = None, 0
            while got is None:
                for i in rest:
                    k += 1
                    try:
                        r = stubs[i].dogpile.Acquire(pb.dogpile.AcquireRequest(
                            registry="failover", key=f"{n}-{k}".encode(), session_id=session,
                            expire_ms=60_000), timeout=1)
                    except grpc.RpcError:
                        continue
                    if r.outcome == pb.dogpile.AcquireResponse.OUTCOME_CREATE:
                        got = time.monotonic() - killed
                        break
                if time.monotonic() - killed > 60:
                    raise RuntimeError("no grant within 60 s of the kill")
                time.sleep(0.005)
            times.append(got)
            print(f"  round {n + 1}: first grant {got * 1000:.0f} ms after the SIGKILL",
                  flush=True)
            members[lead].start()
            stubs[lead] = Stubs(stubs[lead].target, pb)
            leader_of(stubs, pb, list(members))  # all three agree again
        return times
    finally:
        for m in members.values():
            m.stop(signal.SIGKILL)


def pairs(stubs, pb, pid, seconds):
    s = stubs.sessions.Open(pb.sessions.OpenRequest(ttl_ms=600_000)).session_id
    write = pb.rwmutex.LockRequest.MODE_WRITE
    lat = []
    cpu0 = cpu_seconds(pid)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        got = stubs.rw.Lock(pb.rwmutex.LockRequest(registry="pairs", key=b"m", session_id=s,
                                                   mode=write), timeout=10)
        stubs.rw.Unlock(pb.rwmutex.UnlockRequest(registry="pairs", key=b"m", session_id=s,
                                                 token=got.token), timeout=10)
        lat.append(time.perf_counter() - t0)
    cpu = cpu_seconds(pid) - cpu0
    return dict(pairs=len(lat), p50_ms=percentile(lat, 50) * 1000,
                p99_ms=percentile(lat, 99) * 1000, cpu_us_per_pair=cpu / len(lat) * 1e6)


def grant_cost(binary, tmp, pb, seconds):
    single = Member(binary, tmp, ["--listen", "127.0.0.1:0"], "single")
    single.start()
    try:
        port = open(single.port_file).read().strip()
        one = pairs(Stubs(f"127.0.0.1:{port}", pb), pb, single.proc.pid, seconds)
    finally:
        single.stop()
    members = {}
    try:
        members, stubs = start_group(binary, tmp, pb, "g")
        lead = leader_of(stubs, pb, list(members))
        group = pairs(stubs[lead], pb, members[lead].proc.pid, seconds)
    finally:
        for m in members.values():
            m.stop(signal.SIGKILL)
    return one, group


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--build", default=os.path.join(os.path.dirname(here), "build"))
    ap.add_argument("--json")
    args = ap.parse_args()
    sys.path.insert(0, os.path.join(args.build, "python_stubs"))
    from dogpiled.v1 import (admin_pb2, admin_pb2_grpc, dogpile_pb2, dogpile_pb2_grpc,
                             rwmutex_pb2, rwmutex_pb2_grpc, sessions_pb2,
                             sessions_pb2_grpc)

    class pb:  # noqa: N801  (a namespace)
        admin, admin_grpc = admin_pb2, admin_pb2_grpc
        dogpile, dogpile_grpc = dogpile_pb2, dogpile_pb2_grpc
        rwmutex, rwmutex_grpc = rwmutex_pb2, rwmutex_pb2_grpc
        sessions, sessions_grpc = sessions_pb2, sessions_pb2_grpc

    binary = os.path.join(args.build, "server", "dogpiled")
    rounds, seconds = (2, 1.0) if args.quick else (20, 5.0)
    with tempfile.TemporaryDirectory(prefix="dogpiled-failover-") as tmp:
        print(f"failover: {rounds} leader kills, default timeouts", flush=True)
        times = failover_rounds(binary, tmp, pb, rounds)
        one, group = grant_cost(binary, tmp, pb, seconds)
    result = dict(failover_ms=dict(p50=statistics.median(times) * 1000,
                                   max=max(times) * 1000, rounds=len(times)),
                  lock_unlock_single=one, lock_unlock_replicated=group)
    print()
    print("| figure | single node | group of 3 (leader) | ratio |")
    print("|---|---|---|---|")
    print(f"| failover, SIGKILL to first grant (p50 / max, {len(times)} rounds) | - | "
          f"{result['failover_ms']['p50']:.0f} / {result['failover_ms']['max']:.0f} ms | - |")
    for name, key in (("Lock+Unlock p50", "p50_ms"), ("Lock+Unlock p99", "p99_ms")):
        print(f"| {name} | {one[key]:.2f} ms | {group[key]:.2f} ms | "
              f"{group[key] / one[key]:.1f}x |")
    print(f"| serving daemon CPU per pair | {one['cpu_us_per_pair']:.0f} us | "
          f"{group['cpu_us_per_pair']:.0f} us | "
          f"{group['cpu_us_per_pair'] / max(one['cpu_us_per_pair'], 1e-9):.1f}x |")
    print(f"| pairs measured | {one['pairs']} | {group['pairs']} | |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
