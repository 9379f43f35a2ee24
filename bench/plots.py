"""PNG plots of a run, with Debian's matplotlib (no display needed)."""

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PLOTS = [
    ("cdf_fresh.png", "Latency CDF: fresh reads against the no-op ceiling"),
    ("cdf_election.png", "Latency CDF: uncontended election"),
    ("cdf_handoff.png", "Latency CDF: contended lock handoff"),
    ("cdf_stampede.png", "Latency CDF: stampede wake-up after publish"),
    ("stampede_timeline.png", "Stampede timeline"),
    ("cdf_parked.png", "Parked waiters answered after one Publish"),
]


def _cdf(ax, lat, label, scale=1.0, **style):
    if not lat or not lat.get("cdf"):
        return
    xs = [max(p[0] * scale, 1e-3) for p in lat["cdf"]]
    ys = [p[1] for p in lat["cdf"]]
    ax.plot(xs, ys, label=label, **style)


def _axes(title, xlabel):
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=90)
    ax.set_title(title, fontsize=11)
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of calls")
    ax.grid(True, which="both", alpha=0.3)
    return fig, ax


def _save(fig, ax, path):
    if ax.lines:
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _lat(results, scenario, label, key="latency"):
    entry = results["scenarios"].get(scenario, {}).get(label)
    if not entry or "error" in entry or not entry.get("runs"):
        return None
    return entry["runs"][0].get(key)


def draw_all(results, out):
    sc = results["scenarios"]
    fig, ax = _axes(PLOTS[0][1], "latency (µs)")
    for scenario, label, legend, style in (
            ("ceiling", "noop", "no-op ceiling, 32 in flight",
             dict(color="gray")),
            ("fresh", "dogpiled", "dogpiled, 32 in flight", dict(color="C0")),
            ("fresh", "redis GET", "redis GET, 32 in flight",
             dict(color="C3")),
            ("ceiling", "noop (1 in flight)", "no-op ceiling, 1 in flight",
             dict(color="gray", ls="--")),
            ("fresh", "dogpiled (1 in flight)", "dogpiled, 1 in flight",
             dict(color="C0", ls="--"))):
        _cdf(ax, _lat(results, scenario, label), legend, **style)
    _save(fig, ax, os.path.join(out, PLOTS[0][0]))

    fig, ax = _axes(PLOTS[1][1], "latency of Acquire + Publish (µs)")
    _cdf(ax, _lat(results, "election", "dogpiled"), "dogpiled election")
    _cdf(ax, _lat(results, "ceiling", "noop"), "no-op call (one)",
         color="gray")
    _save(fig, ax, os.path.join(out, PLOTS[1][0]))

    fig, ax = _axes(PLOTS[2][1], "release sent → next holder granted (µs)")
    for label in sc.get("handoff", {}):
        _cdf(ax, _lat(results, "handoff", label), label)
    _save(fig, ax, os.path.join(out, PLOTS[2][0]))

    fig, ax = _axes(PLOTS[3][1], "first publish → waiter has the value (ms)")
    for label in sc.get("stampede", {}):
        if label != "no lock":
            _cdf(ax, _lat(results, "stampede", label, "wake"), label, 1e-3)
    _save(fig, ax, os.path.join(out, PLOTS[3][0]))

    _timeline(results, os.path.join(out, PLOTS[4][0]))

    fig, ax = _axes(PLOTS[5][1], "Publish (Release) sent → call answered (ms)")
    for label in sc.get("parked", {}):
        _cdf(ax, _lat(results, "parked", label, "wake"),
             "dogpiled" if label == "dogpiled" else "no-op floor", 1e-3)
    _save(fig, ax, os.path.join(out, PLOTS[5][0]))


def _timeline(results, path):
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6.5), dpi=90,
                                      sharex=True)
    top.set_title(PLOTS[4][1] + ": clients holding the value", fontsize=11)
    bottom.set_title("requests sent to the coordinator, cumulative",
                     fontsize=10)
    entries = list(enumerate(
        results["scenarios"].get("stampede", {}).items()))
    # dogpiled last, so no peer's line hides it.
    entries.sort(key=lambda item: item[1][0] == "dogpiled")
    for i, (label, entry) in entries:
        if "error" in entry:
            continue
        run = entry["runs"][0]
        ready = run["timeline"]["ready_ms"]
        width = 2.2 if label == "dogpiled" else 1.2
        top.step(ready, range(1, len(ready) + 1), where="post", label=label,
                 color=f"C{i}", lw=width)
        if run.get("publish_ms", -1) >= 0:
            top.axvline(run["publish_ms"], color=f"C{i}", ls=":", lw=0.8)
        total, xs, ys = 0, [], []
        for ms, n in enumerate(run["timeline"]["requests_per_ms"]):
            if n:
                total += n
                xs.append(ms + 1)
                ys.append(total)
        bottom.step(xs, ys, where="post", color=f"C{i}", label=label,
                    lw=width)
    top.set_ylabel("clients with the value")
    bottom.set_yscale("log")
    bottom.set_ylabel("requests")
    bottom.set_xlabel("ms since the stampede began (dotted: first publish); "
                      "linear to 1 s, log after")
    for ax in (top, bottom):
        ax.set_xscale("symlog", linthresh=1000, linscale=2)
        ax.set_xlim(left=0)
        ax.grid(True, alpha=0.3)
    top.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
