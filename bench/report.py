"""Turns a run's results.json into the Markdown table, the plots, and the
well-formedness check. Figures are always quoted beside the no-op ceiling
(or floor) and the peers measured in the same run."""

import os
import re
import shutil

import plots
import tables


def _run(results, scenario, label):
    entry = results["scenarios"].get(scenario, {}).get(label)
    if not entry or "error" in entry or not entry.get("runs"):
        return None
    return entry["runs"][0]


def headline(scenario, result):
    """One progress line for a finished bench invocation."""
    parts = []
    for run in result.get("runs", []):
        lat = run.get("latency", {})
        if scenario == "stampede":
            parts.append(
                f"creators {run['creator_calls']}, requests/waiter "
                f"{run['requests_per_waiter_mean']:.1f}, wake p99 "
                f"{run['wake'].get('p99_us', 0) / 1e3:.1f} ms, total "
                f"{run['total_ms']:.0f} ms")
        elif scenario == "parked":
            parts.append(
                f"{run['answered']} answered in {run['all_answered_ms']:.1f} "
                f"ms; during: {run['during']['rss_kb'] / 1024:.0f} MiB, "
                f"{run['during']['threads']} threads")
        else:
            keys = f"{run['keys']:>8} keys: " if "keys" in run else ""
            parts.append(f"{keys}{run.get('ops_per_sec', 0):>9,.0f}/s p50 "
                         f"{lat.get('p50_us', 0):,.0f} us p99 "
                         f"{lat.get('p99_us', 0):,.0f} us")
    return "; ".join(parts)


def median_parked(results):
    good = [r for r in results if "error" not in r]
    if not good:
        return results[0]
    key = lambda r: r["runs"][0]["all_answered_ms"]  # noqa: E731
    chosen = sorted(good, key=key)[len(good) // 2]
    chosen["rounds"] = [key(r) for r in good]
    return chosen


def _ratio(a, b):
    if not a or not b:
        return "–"
    return f"{a / b:.2f}×" if a / b >= 0.1 else f"1/{b / a:,.0f}×"


def _big_ratio(a, b):
    if not a or not b:
        return "–"
    r = a / b
    return f"{r:,.0f}×" if r >= 10 else f"{r:.2f}×"


def _verdict(ok):
    return "–" if ok is None else ("**met**" if ok else "**missed**")


def _us(v):
    return f"{v:,.0f} µs" if v < 10_000 else f"{v / 1e3:,.1f} ms"


def summary_rows(results):
    """(figure, dogpiled, vs ceiling, vs peers, target, verdict) rows."""
    rows = []
    ceil = _run(results, "ceiling", "noop")
    c = ceil["ops_per_sec"] if ceil else 0
    if ceil:
        rows.append(("1. no-op gRPC call (ceiling), 32 in flight",
                     f"{c:,.0f}/s", "1.00×", "", "", "–"))
    fresh = _run(results, "fresh", "dogpiled")
    if fresh:
        redis = _run(results, "fresh", "redis GET")
        f = fresh["ops_per_sec"]
        rows.append(("2. fresh reads (Acquire → FRESH)", f"{f:,.0f}/s",
                     _ratio(f, c),
                     f"redis GET {redis['ops_per_sec']:,.0f}/s: "
                     f"{_ratio(f, redis['ops_per_sec'])}" if redis else "",
                     "≥ 0.90× ceiling", _verdict(f >= 0.9 * c if c else None)))
        cpu, ccpu = (fresh.get("server_cpu_us_per_op"),
                     ceil.get("server_cpu_us_per_op") if ceil else None)
        if cpu:
            rows.append(("2. server CPU per fresh read (per no-op call)",
                         f"{cpu:,.1f} µs", _ratio(cpu, ccpu) + (
                             f" (no-op {ccpu:,.1f} µs)" if ccpu else ""),
                         "", "", "–"))
        lat, clat = fresh["latency"], ceil["latency"] if ceil else {}
        rows.append(("2. fresh read latency p50 / p99 / p999",
                     " / ".join(_us(lat[k]) for k in
                                ("p50_us", "p99_us", "p999_us")),
                     " / ".join(_ratio(lat[k], clat.get(k)) for k in
                                ("p50_us", "p99_us", "p999_us")),
                     "", "", "–"))
    election = _run(results, "election", "dogpiled")
    if election:
        e = election["ops_per_sec"]
        rows.append(("3. uncontended election (Acquire CREATE + Publish)",
                     f"{e:,.0f}/s", _ratio(e, c) + " (2 calls each)", "",
                     "", "–"))
    etcd = _run(results, "handoff", "etcd lock")
    for label in ("dogpiled write lock", "dogpiled creator role"):
        h = _run(results, "handoff", label)
        if not h:
            continue
        rate = h["handoffs_per_sec"]
        peers = []
        for peer in ("etcd lock", "etcd lock, data on tmpfs",
                     "redis lock, 100 ms poll", "redis lock, 5 ms poll"):
            p = _run(results, "handoff", peer)
            if p:
                peers.append(f"{peer} {p['handoffs_per_sec']:,.0f}/s: "
                             f"{_big_ratio(rate, p['handoffs_per_sec'])}")
        ok = rate >= 50 * etcd["handoffs_per_sec"] if etcd else None
        rows.append((f"4. contended handoff, {label}", f"{rate:,.0f}/s",
                     _ratio(rate, c), "; ".join(peers), "≥ 50× etcd",
                     _verdict(ok)))
    c1 = _run(results, "ceiling", "noop (1 in flight)")
    w = _run(results, "handoff", "dogpiled write lock")
    if c1 and w and c1["latency"].get("p50_us"):
        # A handoff needs at least one round trip (release in, grant out).
        bound = 1e6 / c1["latency"]["p50_us"]
        rows.append(("4. bound for any lock served over gRPC here: one no-op "
                     "round trip (p50) per handoff", f"{bound:,.0f}/s", "",
                     f"dogpiled write lock reaches "
                     f"{_ratio(w['handoffs_per_sec'], bound)} of it", "",
                     "–"))
    sweep = results["scenarios"].get("handoff_sweep", {})
    for label in sweep:
        if not label.startswith("dogpiled"):
            continue
        n = label.rsplit(", ", 1)[1]
        h, e = _run(results, "handoff_sweep", label), _run(
            results, "handoff_sweep", f"etcd lock, {n}")
        if h and e:
            rate, peer = h["handoffs_per_sec"], e["handoffs_per_sec"]
            rows.append((f"4. contended handoff, write lock, {n}",
                         f"{rate:,.0f}/s", _ratio(rate, c),
                         f"etcd lock {peer:,.0f}/s: {_big_ratio(rate, peer)}",
                         "≥ 50× etcd", _verdict(rate >= 50 * peer)))
    st = _run(results, "stampede", "dogpiled")
    if st:
        r5 = _run(results, "stampede", "redis lock, 5 ms poll")
        nolock = _run(results, "stampede", "no lock")
        r100 = _run(results, "stampede", "redis lock, 100 ms poll")
        peers = [f"{name}: {r['creator_calls']:,} / "
                 f"{r['requests_per_waiter_max']:,}"
                 for name, r in (("redis lock, 100 ms poll", r100),
                                 ("5 ms poll", r5), ("no lock", nolock)) if r]
        rows.append(("5. stampede: creator calls / requests per waiting "
                     "client (max)",
                     f"{st['creator_calls']} / "
                     f"{st['requests_per_waiter_max']}", "", "; ".join(peers),
                     "exactly 1 / exactly 1",
                     _verdict(st["creator_calls"] == 1 and
                              st["requests_per_waiter_max"] == 1 and
                              st["unanswered"] == 0)))
        w = st["wake"].get("p99_us", 0)
        pw = r5["wake"].get("p99_us", 0) if r5 else 0
        rv = _run(results, "stampede", "redis lock, 5 ms value poll")
        peers = [f"{name} {_us(r['wake'].get('p99_us', 0))}: "
                 f"{_ratio(w, r['wake'].get('p99_us', 0))}"
                 for name, r in (("redis lock, 5 ms poll", r5),
                                 ("5 ms value poll", rv)) if r]
        rows.append(("5. stampede: wake-up p99 after publish", _us(w), "",
                     "; ".join(peers), "≤ redis lock 5 ms poll",
                     _verdict(w <= pw if r5 else None)))
        rows.append(("5. stampede: total time", f"{st['total_ms']:,.0f} ms",
                     "", "; ".join(
                         f"{name} {r['total_ms']:,.0f} ms"
                         for name, r in (("redis lock, 100 ms poll", r100),
                                         ("5 ms poll", r5),
                                         ("5 ms value poll", rv),
                                         ("no lock", nolock)) if r),
                     "", "–"))
    pk, floor = _run(results, "parked", "dogpiled"), _run(results, "parked",
                                                          "noop")
    if pk:
        t, ft = pk["all_answered_ms"], floor["all_answered_ms"] if floor else 0
        rows.append((f"6. {pk['waiters']:,} parked waiters: all answered "
                     "after one Publish", f"{t:,.1f} ms",
                     f"floor {ft:,.1f} ms: {_ratio(t, ft)}", "",
                     "≤ 1.25× floor", _verdict(t <= 1.25 * ft if ft else None)))
        cpu, fcpu = (pk.get("release_server_cpu_ms"),
                     floor.get("release_server_cpu_ms") if floor else None)
        if cpu:
            rows.append(("6. server CPU to answer them all", f"{cpu:,.0f} ms",
                         f"floor {fcpu:,.0f} ms: {_ratio(cpu, fcpu)}"
                         if fcpu else "", "", "", "–"))
        d = pk["during"]
        rows.append((f"6. daemon while {pk['waiters']:,} are parked",
                     f"{d['rss_kb'] / 1024:,.0f} MiB, {d['threads']} threads",
                     f"noop server {floor['during']['rss_kb'] / 1024:,.0f} "
                     f"MiB, {floor['during']['threads']} threads"
                     if floor else "", "", "< 200 MiB, < 50 threads",
                     _verdict(d["rss_kb"] < 200 * 1024 and d["threads"] < 50)))
    sc = _run(results, "scale", "dogpiled")
    if sc:
        runs = results["scenarios"]["scale"]["dogpiled"]["runs"]
        base = runs[0]["ops_per_sec"]
        for run in runs:
            keys = f"{run['keys']:,} key{'s' if run['keys'] != 1 else ''}"
            big = run["keys"] >= 1_000_000
            rows.append((f"7. fresh reads with {keys} stored",
                         f"{run['ops_per_sec']:,.0f}/s",
                         _ratio(run["ops_per_sec"], c),
                         f"vs 1 key: {_ratio(run['ops_per_sec'], base)}",
                         "≥ 0.85× 1 key" if big else "",
                         _verdict(run["ops_per_sec"] >= 0.85 * base)
                         if big else "–"))
    rows += (_value_rows(results) + _slow_disk_rows(results)
             + _near_cache_rows(results) + _replicated_rows(results))
    return rows


def _value_rows(results):
    """Issue 10's value-size sweep and the parked waiters by value size."""
    rows = []
    for label, e in results["scenarios"].get("values", {}).items():
        d, f = e.get("dogpiled", {}), e.get("noop", {})
        if "error" in d or "error" in f or not d.get("runs"):
            continue
        d, f = d["runs"][0], f["runs"][0]
        rate, floor = d["ops_per_sec"], f["ops_per_sec"]
        cpu, fcpu = (d.get("server_cpu_us_per_op"),
                     f.get("server_cpu_us_per_op"))
        ok = (rate >= 0.9 * floor and cpu is not None and fcpu is not None
              and cpu <= 1.15 * fcpu)
        rows.append((f"2. fresh reads, {label}", f"{rate:,.0f}/s, "
                     f"{cpu or 0:,.1f} µs CPU/call",
                     f"floor {floor:,.0f}/s, {fcpu or 0:,.1f} µs: "
                     f"{_ratio(rate, floor)} rate, {_ratio(cpu, fcpu)} CPU",
                     "", "≥ 0.90× floor, CPU ≤ 1.15×", _verdict(ok)))
    small = _run(results, "parked_values", "dogpiled, 64 B")
    for label in results["scenarios"].get("parked_values", {}):
        r = _run(results, "parked_values", label)
        if not r or not label.startswith("dogpiled"):
            continue
        size = label.split(", ", 1)[1]
        floor = _run(results, "parked_values", f"noop, {size}")
        t = r["all_answered_ms"]
        rows.append((f"6. {r['waiters']:,} parked waiters answered after one "
                     f"Publish of {size}", f"{t:,.1f} ms",
                     f"floor {floor['all_answered_ms']:,.1f} ms: "
                     f"{_ratio(t, floor['all_answered_ms'])}" if floor else "",
                     f"vs 64 B: {_ratio(t, small['all_answered_ms'])}"
                     if small else "", "", "–"))
    return rows


def _slow_disk_rows(results):
    rows = []
    for label, r in results["scenarios"].get("slow_disk", {}).items():
        if "error" in r or not r.get("fsync_delay_ms"):
            continue
        rows.append((f"fresh reads while publishing, {label}",
                     f"p99 {r['p99']:.2f} ms, max {r['max']:.2f} ms",
                     "", f"{r['publishes']:,} publishes alongside",
                     "p99 < 5 ms, max < 50 ms",
                     _verdict(r["p99"] < 5 and r["max"] < 50)))
    return rows


def _replicated_rows(results):
    """Issue 11: the leader of a group of three against a single node and
    etcd, measured in the same run."""
    def run(label):
        return _run(results, "replicated", label)
    rows = []
    single, lead = run("fresh reads, single node"), run("fresh reads, leader of 3")
    if single and lead:
        f, s = lead["ops_per_sec"], single["ops_per_sec"]
        rows.append(("replicated: fresh reads, leader of 3 (server CPU/call)",
                     f"{f:,.0f}/s ({lead.get('server_cpu_us_per_op', 0):,.1f} µs)",
                     f"single node {s:,.0f}/s "
                     f"({single.get('server_cpu_us_per_op', 0):,.1f} µs): "
                     f"{_ratio(f, s)}", "", "≥ 0.90× single node",
                     _verdict(f >= 0.9 * s)))
    single = run("write lock handoff, single node")
    lead, etcd = run("write lock handoff, leader of 3"), run("etcd lock handoff")
    # The goal is judged against etcd replicated as dogpiled is (three
    # members on the same cores); the single member is shown beside it.
    etcd3 = run("etcd lock handoff, 3 members")
    if lead:
        h = lead["handoffs_per_sec"]
        peers = [f"{name} {r['handoffs_per_sec']:,.0f}/s "
                 f"({r.get('server_cpu_us_per_handoff', 0):,.0f} µs): "
                 f"{_big_ratio(h, r['handoffs_per_sec'])}"
                 for name, r in (("single node", single),
                                 ("etcd lock, 3 members", etcd3),
                                 ("etcd lock, 1 member", etcd))
                 if r]
        judge = etcd3 or etcd
        rows.append(("replicated: contended write-lock handoff, leader of 3 "
                     "(server CPU/handoff)",
                     f"{h:,.0f}/s "
                     f"({lead.get('server_cpu_us_per_handoff', 0):,.0f} µs)",
                     "; ".join(peers), "",
                     "≥ 20× etcd" + (" (3 members)" if etcd3 else ""),
                     _verdict(h >= 20 * judge["handoffs_per_sec"])
                     if judge else "–"))
    return rows


def _near_cache_rows(results):
    """Issue 12: reads in process, and what the holders cost a writer."""
    r = results["scenarios"].get("near_cache", {}).get("dogpiled")
    if not r or "error" in r:
        return []
    reads, cpu = r["fresh_reads_per_s"], r.get("server_cpu_us_per_read", {})
    rows = [("near-cache: fresh reads of one key, one thread",
             f"{reads['near_cache']:,.0f}/s, "
             f"{cpu.get('near_cache', 0):,.2f} µs daemon CPU/read",
             f"RPC reads {reads['rpc']:,.0f}/s, "
             f"{cpu.get('rpc', 0):,.1f} µs CPU: "
             f"{_big_ratio(reads['near_cache'], reads['rpc'])}", "",
             "≥ 100× RPC", _verdict(reads["ratio"] >= 100))]
    n = r["holders"]
    for call, name in (("invalidate", "Invalidate"),
                       ("acquire_and_publish", "Acquire + Publish")):
        held, none = r[call]["holders"], r[call]["no_holder"]
        rows.append((
            f"near-cache: {name} with {n} holders, p50 / p99 (daemon CPU)",
            f"{_us(held['p50_us'])} / {_us(held['p99_us'])} "
            f"({_us(held.get('server_cpu_us', 0))})",
            f"no holder {_us(none['p50_us'])} / {_us(none['p99_us'])} "
            f"({_us(none.get('server_cpu_us', 0))})", "",
            "p99 ≤ 2 ms with 100 holders" if call == "invalidate" else "",
            _verdict(held["p99_us"] <= 2000) if call == "invalidate"
            and n >= 100 else "–"))
    return rows


def markdown(results, img_prefix=""):
    m = results["machine"]
    out = [f"Mode `{results['mode']}`, {results['started']}, "
           f"{results.get('seconds', 0):.0f} s. Machine: {m.get('nproc')} "
           f"CPUs ({m.get('cpu', '?')}), {m.get('memory_gib', '?')} GiB, "
           f"Linux {m.get('kernel')}; gRPC {m.get('grpc')}, "
           f"{m.get('redis', '').split(' sha=')[0]}, {m.get('etcd')}.", "",
           f"Command: `{results['command']}` (checkout "
           f"{results.get('commit', '?')}).", "",
           "| figure | dogpiled | vs ceiling / floor | vs peers | target | |",
           "| --- | --- | --- | --- | --- | --- |"]
    for row in summary_rows(results):
        out.append("| " + " | ".join(row) + " |")
    out += ["", *tables.details(results), ""]
    for name, title in plots.PLOTS:
        out.append(f"![{title}]({img_prefix}{name})")
    return "\n".join(out) + "\n"


def write(results, out_dir):
    plots.draw_all(results, out_dir)
    with open(os.path.join(out_dir, "results.md"), "w") as f:
        f.write(markdown(results))


def check(results, only):
    """Problems that make the run's figures unusable; empty when fine."""
    problems = []
    sc = results["scenarios"]
    for name in only:
        entries = sc.get(name)
        if not entries:
            problems.append(f"{name}: no results")
            continue
        if name == "handoff":
            entries = {**entries, **sc.get("handoff_sweep", {})}
        if name == "replicated":
            entries = {label: dict(e, kind="handoff" if "handoff" in label
                                   else "fresh")
                       for label, e in entries.items()}
        if name == "values":
            entries = {f"{label}, {system}": e[system]
                       for label, e in entries.items()
                       for system in ("noop", "dogpiled")}
        for label, entry in entries.items():
            where = f"{name}: {label}"
            if "error" in entry:
                problems.append(f"{where}: {entry['error']}")
                continue
            for run in entry.get("runs", []) or [entry]:
                problems += [f"{where}: {p}" for p in
                             _check_run(entry.get("kind", name), run)]
    return problems


def _check_run(name, run):
    p = []
    if run.get("errors", 0):
        p.append(f"{run['errors']} errors, first: {run.get('first_error')}")
    if name == "near_cache":
        reads = run.get("fresh_reads_per_s", {})
        if not (reads.get("rpc", 0) > 0 and reads.get("near_cache", 0) > 0):
            p.append("no read rates")
        for call in ("invalidate", "acquire_and_publish"):
            for held in ("holders", "no_holder"):
                if not run.get(call, {}).get(held, {}).get("p99_us", 0) > 0:
                    p.append(f"no {call} latency with {held}")
    elif name == "slow_disk":
        if not run.get("reads", 0) > 0 or not run.get("publishes", 0) > 0:
            p.append("no reads or no publishes measured")
    elif name in ("ceiling", "fresh", "election", "scale", "values"):
        if not run.get("ops_per_sec", 0) > 0 or not run.get("latency", {}).get(
                "p99_us", 0) > 0:
            p.append("no positive rate and latency")
    elif name == "handoff":
        if not run.get("handoffs", 0) > 0:
            p.append("no handoff measured")
        if run.get("violations", 0):
            p.append(f"{run['violations']} times two clients held the lock")
    elif name == "stampede":
        if "creator_calls" not in run or run["creator_calls"] < 1:
            p.append("creator calls not recorded")
        if run.get("unanswered", 1) != 0 or not run.get("total_ms", 0) > 0:
            p.append("not every client got the value")
    elif name in ("parked", "parked_values"):
        if run.get("answered") != run.get("waiters"):
            p.append("not every parked call was answered")
        for phase in ("before", "during", "after"):
            s = run.get(phase, {})
            if not (s.get("rss_kb", 0) > 0 and s.get("threads", 0) > 0):
                p.append(f"no RSS/thread sample {phase}")
    return p


def update_docs(results, out_dir, root):
    """Puts the table and plots between the markers of docs/benchmarks.md."""
    docs = os.path.join(root, "docs")
    images = os.path.join(docs, "benchmarks")
    os.makedirs(images, exist_ok=True)
    for name, _title in plots.PLOTS:
        shutil.copy(os.path.join(out_dir, name), images)
    path = os.path.join(docs, "benchmarks.md")
    with open(path) as f:
        text = f.read()
    block = ("<!-- results:begin (written by bench/run.py --update-docs) -->\n"
             + markdown(results, "benchmarks/") + "<!-- results:end -->")
    text = re.sub(r"<!-- results:begin.*?<!-- results:end -->", lambda _: block,
                  text, flags=re.S)
    with open(path, "w") as f:
        f.write(text)
