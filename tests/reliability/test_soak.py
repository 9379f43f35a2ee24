"""Soak (issue 6): thousands of sessions churn through one daemon.

A few processes run many asyncio session lifecycles at once (soak_worker.py)
while the test samples the daemon's RSS, thread count and open sessions.
Passes when memory and threads stay flat, no call fails in a way the
workload did not ask for, and afterwards nothing is left but stored values.

Length: DOGPILED_SOAK_SECONDS, else 120 s in quick mode (CI), 600 s in full mode.
"""
import collections
import json
import statistics
import subprocess
import time

import settings
from harness import Daemon, dogpile_pb2, wait_until
from soak_worker import KEYS, registry_of

PROCESSES = 2
TASKS = 100  # concurrent session lifecycles per process
HORIZON_MS = 2000  # invalidations are forgotten soon, so nothing stays for them
# RSS, after warm-up, in thirds of the run. A leak grows all along: the last
# third over the middle one catches any that adds 16% or more over the run
# (the old first-to-last rule needed 20%). A one-time step is not a leak: a
# burst on a starved machine once left the allocator 3.8 MB more at 47 s,
# flat after (CI failed at 1.21x first-to-last); the total rule bounds those.
RSS_SLOPE = 1.08  # last-third median over middle-third median
RSS_TOTAL = 1.50  # last-third median over first-third median
# gRPC's pool may add a thread or two under a burst; a leak per session or
# stream would add thousands.
THREAD_GROWTH = 4


def thirds(samples):
    n = len(samples) // 3
    return samples[:n], samples[n:-n], samples[-n:]


def test_soak_memory_and_threads_stay_flat_and_nothing_leaks(tmp_path):
    seconds = settings.seconds("DOGPILED_SOAK_SECONDS", 120, 600)  # issue 6: 2 min in CI
    daemon = Daemon("--invalidation-horizon-ms", str(HORIZON_MS))
    samples = []  # (time, rss KiB, threads, sessions, stored bytes)
    workers = []
    try:
        daemon.start()
        ready = [tmp_path / f"soak-{i}.ready" for i in range(PROCESSES)]
        for i in range(PROCESSES):
            with open(tmp_path / f"soak-{i}.err", "wb") as err:
                workers.append(subprocess.Popen(
                    [settings.PYTHON, str(settings.HERE / "soak_worker.py"), daemon.target,
                     str(seconds), str(TASKS), str(i), str(ready[i])],
                    stdout=subprocess.PIPE, stderr=err, cwd=settings.HERE))

        def all_ready():
            for i, w in enumerate(workers):
                assert w.poll() is None, (tmp_path / f"soak-{i}.err").read_text()[-3000:]
            return all(r.exists() for r in ready)
        # The run is timed from the moment every worker has begun its load.
        wait_until(all_ready, timeout=120, what="the soak workers to start")
        started = time.monotonic()
        deadline = started + seconds + 120
        while any(w.poll() is None for w in workers) and time.monotonic() < deadline:
            stats = daemon.stats()
            samples.append((time.monotonic() - started, daemon.rss_kib(), daemon.threads(),
                            stats.sessions, stats.stored_bytes))
            time.sleep(0.5)
        outputs = []
        for i, w in enumerate(workers):
            out, _ = w.communicate(timeout=max(1, deadline - time.monotonic()))
            assert w.returncode == 0, (tmp_path / f"soak-{i}.err").read_text()[-3000:]
            outputs.append(json.loads(out))
        # Abandoned sessions lapse, then remembered invalidations; after that
        # only stored values may keep an entry alive.
        wait_until(lambda: daemon.stats().sessions == 0, timeout=30, what="sessions to lapse")
        time.sleep(HORIZON_MS / 1000 + 0.5)
        stored = {}  # (registry, key) -> value, for what is still stored
        for i in range(PROCESSES):
            for key in KEYS + ["probe"]:
                peek = daemon.dogpile.Peek(dogpile_pb2.PeekRequest(registry=registry_of(i),
                                                                   key=key.encode()))
                if peek.has_value:
                    stored[(registry_of(i), key)] = peek.value
        stats = daemon.stats()
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
        daemon.cleanup()

    counts = sum((collections.Counter(o["counts"]) for o in outputs), collections.Counter())
    unexpected = [m for o in outputs for m in o["unexpected"]]
    warm = [s for s in samples if s[0] >= min(10, seconds / 4)]
    first, middle, last = thirds(warm)
    rss_first = statistics.median(s[1] for s in first)
    rss_middle = statistics.median(s[1] for s in middle)
    rss_last = statistics.median(s[1] for s in last)
    threads_first = max(s[2] for s in first)
    threads_last = max(s[2] for s in last)
    summary = (f"sessions opened {counts['sessions']}, peak open {max(s[3] for s in samples)}, "
               f"rpcs {counts['rpc']}; RSS median by thirds {rss_first} -> {rss_middle} -> "
               f"{rss_last} KiB; threads max "
               f"{threads_first} -> {threads_last}; counts {dict(sorted(counts.items()))}")
    # Stored values grow as more keys get one: part of any RSS growth.
    timeline = " ".join(f"{t:.0f}s:{rss / 1024:.1f}M/{threads}t/{stored // 1024}K"
                        for t, rss, threads, _, stored in samples[::max(1, len(samples) // 10)])
    print(f"\n{summary}\nRSS/threads/stored values over time: {timeline}")

    assert not [k for k in counts if k.startswith("unexpected")], (summary, unexpected)
    # Busy enough to mean something: thousands over the run, hundreds at once.
    assert counts["sessions"] >= 10 * seconds, summary
    assert max(s[3] for s in samples) >= 100, summary
    assert counts["left_to_expire"] >= 100 and counts["probes"] >= 10, summary
    assert counts["expected_not_found"] >= counts["probes"], summary
    assert rss_last <= rss_middle * RSS_SLOPE, summary
    assert rss_last <= rss_first * RSS_TOTAL, summary
    assert threads_last <= threads_first + THREAD_GROWTH, summary
    # Nothing leaked: no session, waiter or entry beyond the stored values.
    assert stats.sessions == 0 and stats.waiters == 0, stats
    assert stats.entries == len(stored), (stats, len(stored))
    assert stats.stored_bytes == sum(len(k) + len(v) for (_, k), v in stored.items()), stats
    assert stats.registries == len({r for r, _ in stored}), stats
