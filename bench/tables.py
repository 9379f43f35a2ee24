"""Per-scenario detail tables: every system measured, side by side."""


def _ms(us):
    return f"{us / 1e3:,.2f}" if us is not None else "–"


def _lat(lat, unit="us"):
    if not lat or not lat.get("count"):
        return ["–", "–", "–"]
    if unit == "ms":
        return [_ms(lat[k]) for k in ("p50_us", "p99_us", "max_us")]
    return [f"{lat[k]:,.0f}" for k in ("p50_us", "p99_us", "p999_us")]


def _table(title, header, rows, note=None):
    out = [f"### {title}", "", "| " + " | ".join(header) + " |",
           "|" + " --- |" * len(header)]
    for cells in rows:
        cells = cells + [""] * (len(header) - len(cells))
        out.append("| " + " | ".join(cells) + " |")
    return out + ([""] + [note] if note else []) + [""]


def _rows(results, scenario, cells, name=lambda label: label):
    """One row per system; `cells(entry)` gives the cells after the name."""
    for label, entry in results["scenarios"].get(scenario, {}).items():
        if "error" in entry:
            yield [name(label), "error: " + entry["error"]]
        else:
            yield [name(label)] + cells(entry)


def _single(e):
    run = e["runs"][0]
    return [f"{run['ops_per_sec']:,.0f}",
            ", ".join(f"{r:,.0f}" for r in e.get("rounds", [])),
            f"{run['server_cpu_us_per_op']:,.1f}"
            if "server_cpu_us_per_op" in run else "–"] + _lat(run["latency"])


def _handoff(e):
    r = e["runs"][0]
    per = r["requests"] / r["handoffs"] if r["handoffs"] else 0
    cpu = r.get("server_cpu_us_per_handoff")
    return [f"{r['handoffs_per_sec']:,.0f}", f"{r['grants_per_sec']:,.0f}",
            f"{per:,.1f}", f"{cpu:,.1f}" if cpu is not None else "–"
            ] + _lat(r["latency"])


def _stampede(e):
    r = e["runs"][0]
    return [f"{r['creator_calls']:,}",
            f"{r['requests_per_waiter_mean']:,.1f} / "
            f"{r['requests_per_waiter_max']:,}"] + _lat(r["wake"], "ms") + [
                f"{r['total_ms']:,.0f}"]


def _parked(e):
    r = e["runs"][0]
    phases = ("before", "during", "after")
    return [f"{r['all_answered_ms']:,.1f} ("
            + ", ".join(f"{x:,.1f}" for x in e.get("rounds", [])) + ")",
            f"{_ms(r['wake']['p50_us'])} / {_ms(r['wake']['p99_us'])}",
            " / ".join(f"{r[p]['rss_kb'] / 1024:,.0f}" for p in phases),
            " / ".join(str(r[p]["threads"]) for p in phases)]


def details(results):
    sc, out = results["scenarios"], []
    single = [row for scenario in ("ceiling", "fresh", "election")
              for row in _rows(results, scenario, _single,
                               lambda label, s=scenario: f"{s}: {label}")]
    if single:
        out += _table("Single calls (scenarios 1 to 3)",
                      ["system", "calls/s", "rounds (calls/s)",
                       "server CPU µs per call", "p50 µs", "p99 µs",
                       "p999 µs"], single)
    handoff_columns = ["system", "handoffs/s", "grants/s",
                       "requests per handoff", "server CPU µs per handoff",
                       "p50 µs", "p99 µs", "p999 µs"]
    if "handoff" in sc:
        out += _table("Contended handoff (scenario 4)", handoff_columns,
                      list(_rows(results, "handoff", _handoff)),
                      "Latency: from the holder sending its release to the "
                      "next holder having the grant.")
    if "handoff_sweep" in sc:
        out += _table("Contended handoff by number of contenders",
                      handoff_columns,
                      list(_rows(results, "handoff_sweep", _handoff)))
    if "replicated" in sc:
        rep = sc["replicated"]
        out += _table(
            "Replicated mode: a group of three's leader, a single node and "
            "etcd, same run",
            ["system", "calls/s", "rounds (calls/s)", "server CPU µs per call",
             "p50 µs", "p99 µs", "p999 µs"],
            [[label] + _single(e) for label, e in rep.items()
             if "error" not in e and "fresh" in label] +
            [[label] + [f"{e['runs'][0]['handoffs_per_sec']:,.0f}",
                        ", ".join(f"{r:,.0f}" for r in e.get("rounds", [])),
                        f"{e['runs'][0].get('server_cpu_us_per_handoff', 0):,.1f}"
                        ] + _lat(e["runs"][0]["latency"])
             for label, e in rep.items()
             if "error" not in e and "handoff" in label],
            "Handoff rows count handoffs, and their CPU is per handoff; the "
            "leader's CPU leaves out its followers'.")
    if "stampede" in sc:
        out += _table("Stampede (scenario 5)",
                      ["system", "creator calls",
                       "requests per waiting client (mean / max)",
                       "wake p50 ms", "wake p99 ms", "wake max ms",
                       "total ms"], list(_rows(results, "stampede", _stampede)),
                      "Wake: from the first write of the new value to a "
                      "waiting client having it (no lock: nobody waits, every "
                      "client creates). Total: from the stampede's start to "
                      "the last client having a value.")
    for scenario, title in (("parked", "Parked waiters (scenario 6)"),
                            ("parked_values",
                             "Parked waiters by value size (issue 10)")):
        if scenario in sc:
            out += _table(title, ["server", "all answered ms (rounds)",
                                  "wake p50 / p99 ms",
                                  "RSS MiB before / during / after",
                                  "threads before / during / after"],
                          list(_rows(results, scenario, _parked)))
    if "values" in sc:
        rows = []
        for label, e in sc["values"].items():
            for system in ("noop", "dogpiled"):
                if "error" in e[system]:
                    rows.append([f"{label}: {system}", "error: "
                                 + e[system]["error"]])
                else:
                    rows.append([f"{label}: {system}"] + _single(e[system]))
        out += _table("Fresh reads by value size (issue 10)",
                      ["value, calls in flight: server", "calls/s",
                       "rounds (calls/s)", "server CPU µs per call", "p50 µs",
                       "p99 µs", "p999 µs"], rows,
                      "noop is the floor: a Ping answered with as many bytes "
                      "as the value.")
    if "slow_disk" in sc:
        out += _table("Slow disk (issue 10, bench/slow_disk.py)",
                      ["disk, fsync policy", "fresh reads", "p50 ms",
                       "p99 ms", "max ms", "publishes alongside",
                       "server CPU µs per call"],
                      list(_rows(results, "slow_disk", lambda r: [
                          f"{r['reads']:,}", f"{r['p50']:.2f}",
                          f"{r['p99']:.2f}", f"{r['max']:.2f}",
                          f"{r['publishes']:,}",
                          f"{r['cpu_us_per_call']:.1f}"])),
                      "One thread publishes new keys back to back (each "
                      "Publish waits for its fsync under --fsync always) "
                      "while another reads one fresh key; the slow disk is "
                      "the LD_PRELOAD shim making every fsync take 300 ms.")
    for _label, e in sc.get("scale", {}).items():
        rows = ([["error: " + e["error"]]] if "error" in e else
                [[f"{r['keys']:,}", f"{r['ops_per_sec']:,.0f}"]
                 + _lat(r["latency"])
                 + [f"{r.get('store_seconds', 0):,.1f}",
                    f"{r['server']['rss_kb'] / 1024:,.0f}"]
                 for r in e["runs"]])
        out += _table("Scale (scenario 7)",
                      ["keys stored", "reads/s", "p50 µs", "p99 µs",
                       "p999 µs", "storing them took s", "daemon RSS MiB"],
                      rows)
    return out
