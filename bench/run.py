#!/usr/bin/python3
"""Benchmarks dogpiled against its floor and its peers, in one run.

Starts dogpiled, a no-op gRPC server built with the same gRPC, redis-server
and etcd on loopback, drives the seven scenarios of issue 7 with
dogpiled_bench, and writes results.json, results.md and PNG plots into --out.
Everything it starts is stopped on every exit path (see servers.py).

  bench/run.py --quick   # about a minute, for CI: proves the harness works
  bench/run.py           # the full run behind docs/benchmarks.md

Neither mode asserts performance thresholds; --quick only checks that every
scenario produced well-formed figures, and exits 1 if not.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time

# The plots need Debian's python3-matplotlib. Started by another python3
# (say a pyenv one first on PATH, as `python3 bench/run.py` does), go back
# to Debian's interpreter, which install-deps.sh provides for.
if sys.executable != "/usr/bin/python3" and not importlib.util.find_spec("matplotlib"):
    os.execv("/usr/bin/python3", ["/usr/bin/python3", *sys.argv])

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import report  # noqa: E402
import servers as servers_mod  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

MODES = {
    "quick": dict(seconds=1.0, warmup=0.3, rounds=1, concurrency=32,
                  connections=4, handoff_clients=8, stampede_clients=50,
                  parked=2000, scale=[1, 1000, 10000], handoff_sweep=[],
                  parked_rounds=1, value_rounds=1, value_seconds=0.5,
                  value_parked=200, slow_disk_seconds=0.5,
                  slow_disk_fsync=["always"], near_seconds=0.5,
                  near_holders=10, near_rounds=20),
    "full": dict(seconds=5.0, warmup=1.0, rounds=5, concurrency=32,
                 connections=4, handoff_clients=8, stampede_clients=1000,
                 parked=10000, scale=[1, 1000, 1000000],
                 handoff_sweep=[2, 64], parked_rounds=9, value_rounds=3,
                 value_seconds=3.0, value_parked=1000, slow_disk_seconds=8.0,
                 slow_disk_fsync=["always", "everysec"], near_seconds=2.0,
                 near_holders=100, near_rounds=200),
}
SCENARIOS = ["ceiling", "fresh", "election", "handoff", "stampede", "parked",
             "scale", "values", "parked_values", "slow_disk", "near_cache",
             "replicated"]
# Value sizes of the "values" sweep (issue 10): small, and large enough that
# a copy per answer would show.
VALUE_SIZES = [64, 65536]
PARKED_VALUE_SIZES = [64, 1 << 20]


def size_label(n):
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} B"


class Runner:
    """Calls dogpiled_bench and prints progress as it goes."""

    def __init__(self, bench, mode, verbose):
        self.bench_bin, self.mode, self.verbose = bench, mode, verbose
        self.t0 = time.monotonic()

    def log(self, text):
        print(f"[{time.monotonic() - self.t0:6.1f}s] {text}", flush=True)

    def bench(self, scenario, label, budget_s, **flags):
        argv = [self.bench_bin, scenario]
        for name, value in flags.items():
            if isinstance(value, (list, tuple)):
                value = ",".join(str(v) for v in value)
            argv += ["--" + name.replace("_", "-"), str(value)]
        try:
            done = subprocess.run(argv, capture_output=True, text=True,
                                  timeout=budget_s)
        except subprocess.TimeoutExpired:
            self.log(f"{scenario:9} {label:22} TIMED OUT after {budget_s} s")
            return {"error": f"timed out after {budget_s} s"}
        if done.returncode != 0:
            error = (done.stderr or "").strip().splitlines()[-3:]
            self.log(f"{scenario:9} {label:22} FAILED: {' / '.join(error)}")
            return {"error": " / ".join(error) or f"exit {done.returncode}"}
        result = json.loads(done.stdout)
        self.log(f"{scenario:9} {label:22} {report.headline(scenario, result)}")
        return result


def median_run(results):
    """The round with the median rate, keeping every round's rate."""
    good = [r for r in results if "error" not in r]
    if not good:
        return results[0]
    rate = lambda r: r["runs"][0].get("ops_per_sec", 0)  # noqa: E731
    chosen = sorted(good, key=rate)[len(good) // 2]
    chosen["rounds"] = [rate(r) for r in good]
    return chosen


def run_all(args, cfg, srv, runner, results):
    common = dict(connections=cfg["connections"],
                  warmup_seconds=cfg["warmup"], seconds=cfg["seconds"])
    budget = int(cfg["seconds"] + cfg["warmup"]) + 60
    redis = srv.redis()
    etcd = (srv.etcd() if "handoff" in args.only or "replicated" in args.only
            else None)
    sc = results["scenarios"]

    if "ceiling" in args.only or "fresh" in args.only:
        # Rounds alternate floor and daemon so noise from other tenants of
        # the machine hits both alike.
        noop, d = srv.noop(), srv.dogpiled()
        ceil, fresh = [], []
        for r in range(cfg["rounds"]):
            pair = [lambda: ceil.append(runner.bench(
                        "ceiling", f"noop #{r + 1}", budget,
                        target=noop.address, system="noop",
                        server_pid=noop.pid, concurrency=cfg["concurrency"],
                        **common)),
                    lambda: fresh.append(runner.bench(
                        "fresh", f"dogpiled #{r + 1}", budget,
                        target=d.address, system="dogpiled", keys=1,
                        server_pid=d.pid, concurrency=cfg["concurrency"],
                        **common))]
            for run in pair[::1 if r % 2 == 0 else -1]:
                run()
        sc["ceiling"] = {"noop": median_run(ceil), "noop (1 in flight)":
                         runner.bench("ceiling", "noop, 1 in flight", budget,
                                      target=noop.address, system="noop",
                                      server_pid=noop.pid, concurrency=1,
                                      **common)}
        sc["fresh"] = {
            "dogpiled": median_run(fresh),
            "dogpiled (1 in flight)": runner.bench(
                "fresh", "dogpiled, 1 in flight", budget, target=d.address,
                system="dogpiled", keys=1, server_pid=d.pid, concurrency=1,
                **common),
            "redis GET": runner.bench(
                "fresh", "redis GET", budget, system="redis",
                redis_port=redis.port, keys=1,
                concurrency=cfg["concurrency"], **common)}
        srv.stop(noop)
        srv.stop(d)

    if "election" in args.only:
        d = srv.dogpiled()
        sc["election"] = {"dogpiled": runner.bench(
            "election", "dogpiled", budget, target=d.address,
            system="dogpiled", server_pid=d.pid,
            concurrency=cfg["concurrency"], **common)}
        srv.stop(d)

    if "handoff" in args.only:
        d = srv.dogpiled()
        etcd_tmpfs = srv.etcd(tmpfs=True)
        h = dict(clients=cfg["handoff_clients"], **common)
        sc["handoff"] = {
            "dogpiled write lock": runner.bench(
                "handoff", "dogpiled write lock", budget, target=d.address,
                system="dogpiled-write", server_pid=d.pid, **h),
            "dogpiled creator role": runner.bench(
                "handoff", "dogpiled creator role", budget, target=d.address,
                system="dogpiled-create", server_pid=d.pid, **h),
            "etcd lock": runner.bench(
                "handoff", "etcd lock", budget, etcd=etcd.address,
                system="etcd", server_pid=etcd.pid, **h),
            "redis lock, 100 ms poll": runner.bench(
                "handoff", "redis lock, 100 ms poll", budget, system="redis",
                redis_port=redis.port, poll_ms=100, server_pid=redis.pid, **h),
            "redis lock, 5 ms poll": runner.bench(
                "handoff", "redis lock, 5 ms poll", budget, system="redis",
                redis_port=redis.port, poll_ms=5, server_pid=redis.pid, **h)}
        if etcd_tmpfs is not None:
            # Where etcd's time goes: the same with its data on tmpfs, where
            # fsync is free (not how anyone runs it).
            sc["handoff"]["etcd lock, data on tmpfs"] = runner.bench(
                "handoff", "etcd lock, data on tmpfs", budget,
                etcd=etcd_tmpfs.address, system="etcd",
                server_pid=etcd_tmpfs.pid, **h)
        else:
            print("handoff: etcd on tmpfs skipped: /dev/shm has "
                  f"{servers_mod.shm_free_bytes() >> 20} MiB free, etcd needs "
                  f"{servers_mod.ETCD_TMPFS_BYTES >> 20}", flush=True)
        # etcd's rate grows with the number of contenders (see
        # docs/benchmarks.md), so the ratio is taken at several.
        sweep = {}
        for n in cfg["handoff_sweep"]:
            for label, system, where in (
                    ("dogpiled write lock", "dogpiled-write",
                     dict(target=d.address)),
                    ("etcd lock", "etcd", dict(etcd=etcd.address))):
                sweep[f"{label}, {n} clients"] = runner.bench(
                    "handoff", f"{label}, {n} clients", budget,
                    system=system, clients=n, **where, **common)
        if sweep:
            sc["handoff_sweep"] = sweep
        srv.stop(d)
        srv.stop(etcd)
        if etcd_tmpfs is not None:
            srv.stop(etcd_tmpfs)

    if "replicated" in args.only:
        # Issue 11: what the commit costs a replicated group's leader, against
        # a single node and etcd's lock in the same run. Rounds alternate the
        # two daemons so noise hits both alike; each gets one process's CPU
        # (the leader's: its followers' appends are not in the figure).
        d = srv.dogpiled()
        leader, members = srv.group(args.dogpilectl)
        runs = {}
        for r in range(cfg["rounds"]):
            pair = [("single node", d), ("leader of 3", leader)]
            for where, server in pair[::1 if r % 2 == 0 else -1]:
                runs.setdefault(f"fresh reads, {where}", []).append(
                    runner.bench(
                        "fresh", f"dogpiled {where} #{r + 1}", budget,
                        target=server.address, system="dogpiled", keys=1,
                        server_pid=server.pid,
                        concurrency=cfg["concurrency"], **common))
                runs.setdefault(f"write lock handoff, {where}", []).append(
                    runner.bench(
                        "handoff", f"write lock, {where} #{r + 1}", budget,
                        target=server.address, system="dogpiled-write",
                        server_pid=server.pid,
                        clients=cfg["handoff_clients"], **common))
        sc["replicated"] = {label: median_run(v) for label, v in runs.items()}
        if etcd not in srv.running:  # the handoff scenario stopped it
            etcd = srv.etcd()
        sc["replicated"]["etcd lock handoff"] = runner.bench(
            "handoff", "etcd lock", budget, etcd=etcd.address, system="etcd",
            server_pid=etcd.pid, clients=cfg["handoff_clients"], **common)
        for server in [d, etcd, *members]:
            srv.stop(server)
        # The replicated peer: etcd as three members on the same cores,
        # driven at its leader (its best case: no forwarding), CPU the
        # leader's, as for dogpiled's group.
        etcd_leader, etcd_members = srv.etcd_group()
        sc["replicated"]["etcd lock handoff, 3 members"] = runner.bench(
            "handoff", "etcd lock, 3 members", budget,
            etcd=etcd_leader.address, system="etcd",
            server_pid=etcd_leader.pid, clients=cfg["handoff_clients"],
            **common)
        for server in etcd_members:
            srv.stop(server)

    if "stampede" in args.only:
        d = srv.dogpiled()
        s = dict(clients=cfg["stampede_clients"], creator_ms=100,
                 connections=cfg["connections"])
        sc["stampede"] = {
            "dogpiled": runner.bench("stampede", "dogpiled", 120,
                                     target=d.address, system="dogpiled", **s),
            "redis lock, 100 ms poll": runner.bench(
                "stampede", "redis lock, 100 ms poll", 180,
                system="redis-lock", redis_port=redis.port, poll_ms=100, **s),
            "redis lock, 5 ms poll": runner.bench(
                "stampede", "redis lock, 5 ms poll", 180, system="redis-lock",
                redis_port=redis.port, poll_ms=5, **s),
            "redis lock, 5 ms value poll": runner.bench(
                "stampede", "redis lock, 5 ms value poll", 120,
                system="redis-lock-poll-value", redis_port=redis.port,
                poll_ms=5, **s),
            "no lock": runner.bench("stampede", "no lock", 120,
                                    system="no-lock", redis_port=redis.port,
                                    **s)}
        srv.stop(d)

    if "parked" in args.only:
        # Fresh servers each round, so "before" is a clean baseline.
        runs = {"dogpiled": [], "noop": []}
        for r in range(cfg["parked_rounds"]):
            order = [("dogpiled", srv.dogpiled), ("noop", srv.noop)]
            for system, start in order[::1 if r % 2 == 0 else -1]:
                server = start()
                runs[system].append(runner.bench(
                    "parked", f"{system} #{r + 1}", 240,
                    target=server.address, system=system,
                    server_pid=server.pid, clients=cfg["parked"],
                    connections=cfg["connections"]))
                srv.stop(server)
        sc["parked"] = {k: report.median_parked(v) for k, v in runs.items()}

    if "values" in args.only:
        # Fresh reads against the floor answering as many bytes, per value
        # size and calls in flight, in alternating rounds as above.
        noop, d = srv.noop(), srv.dogpiled()
        sweep = {}
        for size in VALUE_SIZES:
            for inflight in (1, 32):
                vc = dict(common, seconds=cfg["value_seconds"],
                          concurrency=inflight, value_bytes=size)
                ceil, fresh = [], []
                name = f"{size_label(size)} x{inflight}"
                for r in range(cfg["value_rounds"]):
                    pair = [lambda: ceil.append(runner.bench(
                                "ceiling", f"noop {name}", budget,
                                target=noop.address, system="noop",
                                server_pid=noop.pid, **vc)),
                            lambda: fresh.append(runner.bench(
                                "fresh", f"dogpiled {name}", budget,
                                target=d.address, system="dogpiled", keys=1,
                                server_pid=d.pid, **vc))]
                    for run in pair[::1 if r % 2 == 0 else -1]:
                        run()
                sweep[f"{size_label(size)}, {inflight} in flight"] = {
                    "value_bytes": size, "in_flight": inflight,
                    "noop": median_run(ceil), "dogpiled": median_run(fresh)}
        sc["values"] = sweep
        srv.stop(noop)
        srv.stop(d)

    if "parked_values" in args.only:
        # One Publish answering N parked Acquires, with a small and a large
        # value: what sharing the value (no copy per waiter) buys.
        # The floor is the no-op server answering as many parked calls with
        # as many bytes each.
        runs = {(system, size): [] for size in PARKED_VALUE_SIZES
                for system in ("dogpiled", "noop")}
        for r in range(cfg["value_rounds"]):
            order = list(runs)
            for system, size in order[::1 if r % 2 == 0 else -1]:
                server = (srv.dogpiled if system == "dogpiled" else srv.noop)()
                runs[(system, size)].append(runner.bench(
                    "parked", f"{system} {size_label(size)} #{r + 1}", 240,
                    target=server.address, system=system,
                    server_pid=server.pid, clients=cfg["value_parked"],
                    value_bytes=size, connections=cfg["connections"]))
                srv.stop(server)
        sc["parked_values"] = {
            f"{system}, {size_label(size)}": report.median_parked(v)
            for (system, size), v in runs.items()}

    if "slow_disk" in args.only:
        import slow_disk  # noqa: E402 (needs the build's Python stubs)
        build = os.path.dirname(os.path.dirname(args.dogpiled))
        out = {}
        for fsync in cfg["slow_disk_fsync"]:
            for label, delay in (("healthy", 0), ("fsync +300 ms", 300)):
                key = f"{label}, --fsync {fsync}"
                try:
                    out[key] = dict(slow_disk.run(
                        build, fsync, cfg["slow_disk_seconds"], delay),
                        fsync=fsync, fsync_delay_ms=delay)
                except Exception as e:  # noqa: BLE001 (reported, not fatal)
                    out[key] = {"error": str(e)}
                runner.log(f"slow_disk {key:22} " + (
                    out[key].get("error") or
                    f"reads p99 {out[key]['p99']:.2f} ms, max "
                    f"{out[key]['max']:.2f} ms, "
                    f"{out[key]['publishes']} publishes"))
        sc["slow_disk"] = out

    if "near_cache" in args.only:
        # Issue 12: fresh reads in process against the RPC reads the same
        # SDK makes (the baseline, measured in the same run), and Publish /
        # Invalidate with holders that must all ack before the answer.
        d = srv.dogpiled()
        argv = [args.near_cache_bench, "--target", d.address,
                "--server-pid", str(d.pid),
                "--seconds", str(cfg["near_seconds"]),
                "--holders", str(cfg["near_holders"]),
                "--rounds", str(cfg["near_rounds"])]
        try:
            done = subprocess.run(argv, capture_output=True, text=True,
                                  timeout=600)
            if done.returncode != 0:
                raise RuntimeError(" / ".join(
                    done.stderr.strip().splitlines()[-3:])
                    or f"exit {done.returncode}")
            r = json.loads(done.stdout)
            inv = r["invalidate"]["holders"]
            runner.log(
                f"near_cache reads {r['fresh_reads_per_s']['ratio']:,.0f}× "
                f"RPC; Invalidate with {r['holders']} holders p50 "
                f"{inv['p50_us'] / 1e3:.2f} ms p99 {inv['p99_us'] / 1e3:.2f} "
                "ms")
        except (OSError, subprocess.SubprocessError, RuntimeError,
                ValueError, KeyError) as e:
            runner.log(f"near_cache FAILED: {e}")
            r = {"error": str(e)}
        sc["near_cache"] = {"dogpiled": r}
        srv.stop(d)

    if "scale" in args.only:
        # 10^6 entries take about 780 MB of the daemon's own accounting,
        # past the default 512 MiB budget, which would evict most of them:
        # this measures a large table, so it must fit.
        d = srv.dogpiled("--memory-budget-bytes", str(2 << 30))
        sc["scale"] = {"dogpiled": runner.bench(
            "fresh", f"dogpiled, keys {cfg['scale']}", 1800,
            target=d.address, system="dogpiled", keys=cfg["scale"],
            server_pid=d.pid, concurrency=cfg["concurrency"], **common)}
        srv.stop(d)


def main():
    build = os.path.join(ROOT, "build")
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="short run for CI (about a minute); checks the harness only")
    p.add_argument("--dogpiled", default=f"{build}/server/dogpiled")
    p.add_argument("--bench", default=f"{build}/bench/dogpiled_bench")
    p.add_argument("--noop", default=f"{build}/bench/bench_noop_server")
    p.add_argument("--dogpilectl", default=f"{build}/client/dogpilectl")
    p.add_argument("--near-cache-bench",
                   default=f"{build}/bench/near_cache_bench")
    p.add_argument("--out", default=os.path.join(build, "bench-results"))
    p.add_argument("--only", default=",".join(SCENARIOS),
                   help="comma-separated subset of " + ",".join(SCENARIOS))
    p.add_argument("--skip", default="",
                   help="comma-separated scenarios to leave out of --only")
    p.add_argument("--update-docs", action="store_true",
                   help="copy the table and plots into docs/benchmarks.md")
    args = p.parse_args()
    args.only = [s for s in args.only.split(",") if s not in args.skip.split(",")]
    for name in ("dogpiled", "bench", "noop", "near_cache_bench", "dogpilectl",
                 "out"):
        setattr(args, name, os.path.abspath(getattr(args, name)))
    mode = "quick" if args.quick else "full"
    cfg = MODES[mode]
    os.makedirs(args.out, exist_ok=True)

    try:
        commit = subprocess.run(
            ["git", "-C", ROOT, "describe", "--always", "--dirty"],
            capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    results = {"mode": mode, "config": cfg, "commit": commit,
               "command": " ".join(["bench/run.py"] + sys.argv[1:]),
               "machine": servers_mod.describe_machine(),
               "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
               "scenarios": {}}
    runner = Runner(args.bench, mode, verbose=not args.quick)
    runner.log(f"{mode} run; results in {args.out}")
    try:
        with servers_mod.Servers(args.dogpiled, args.noop, args.out) as srv:
            run_all(args, cfg, srv, runner, results)
    finally:
        results["seconds"] = round(time.monotonic() - runner.t0, 1)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)
    report.write(results, args.out)
    runner.log(f"wrote {args.out}/results.md and plots")
    problems = report.check(results, args.only)
    for problem in problems:
        print("not well-formed:", problem)
    if args.update_docs:
        report.update_docs(results, args.out, ROOT)
    print(f"bench: {len(args.only) - len({p.split(':')[0] for p in problems})}"
          f" scenarios well-formed of {len(args.only)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
