"""Fault injection with a history checker (issue 6).

Client processes do dogpile and RW-mutex work on a few keys against the real
daemon while a nemesis SIGKILLs and SIGSTOPs them, closes their channels,
cuts their KeepAlive streams, and restarts the daemon with SIGTERM and
SIGKILL on the same port and state folder (values and invalidations kept
with --fsync always). Afterwards checker.py reads every
history and must find no violation; the run must also have been busy enough
that a pass means something.

Length: DOGPILED_FAULTS_SECONDS, else 60 s in quick mode, 180 s in full mode.
"""
import time

import settings
from checker import check
from cluster import Cluster
from harness import wait_until

KEYS = ["k0", "k1", "k2", "k3"]
TTL_MS = 2000


def worker_config(run_seconds):
    return {
        "clients": 2,
        "registry": "faults",
        "keys": KEYS,
        # Long against an RPC on one machine, short against the run: paused
        # workers lose their sessions, slow ones rarely do.
        "ttl_ms": TTL_MS,
        "creation_timeout_ms": 1500,
        "rpc_slack_s": 15,  # our own deadline past the wait: "never answered"
        "invalidate_share": 0.03,  # of all operations; dogpile_share includes it
        "dogpile_share": 0.55,
        "abandon_share": 0.15,
        "late_creator_share": 0.02,
        "max_run_s": run_seconds + 120,  # a worker orphaned by a crash ends
    }


def test_faults_history_is_consistent(tmp_path):
    seconds = settings.seconds("DOGPILED_FAULTS_SECONDS", 60, 180)
    workers = 6 if settings.quick() else 8
    seed = int(time.time())
    # Every answered Invalidate must survive a SIGKILL: the checker holds the
    # restarted daemon to it.
    cluster = Cluster(tmp_path, workers, worker_config(seconds), seed=seed,
                      daemon_args=("--fsync", "always"))
    try:
        cluster.start()
        cluster.run(seconds, interval=(0.6, 1.6))
        cluster.stop_workers()
        # What killed and paused workers held lapses with their sessions;
        # then nothing may be left behind but stored values.
        wait_until(lambda: cluster.daemon.stats().sessions == 0, timeout=TTL_MS / 1000 * 3 + 10,
                   what="every session to end")
        stats = cluster.daemon.stats()
    finally:
        cluster.close()
    report = check(tmp_path)
    text = report.text()
    (tmp_path / "report.txt").write_text(text + "\n")
    print(f"\n{text}\nhistories: {tmp_path} (nemesis seed {seed})")

    assert not cluster.problems, "\n".join(cluster.problems)
    assert not report.violations, text
    assert stats.waiters == 0, stats
    assert stats.entries <= len(KEYS), stats
    # A quiet run proves nothing: demand real traffic and every fault.
    counts = report.counts
    assert counts["completed"] >= 10 * seconds, text
    assert counts["grants_create"] >= seconds, text
    assert counts["grants_write"] >= seconds / 2 and counts["grants_read"] >= seconds, text
    # Handoffs seen within 5 ms of the previous holder's known end: the
    # overlap checks were tight, not vacuous.
    assert counts["tight_two_creators"] >= 1 and counts["tight_rw_overlap"] >= 1, text
    assert counts["publish_refused"] >= 1, text  # late creators were fenced off
    assert counts["fail_NOT_FOUND"] >= 1, text   # sessions were lost and reopened
    assert counts["invalidate_ok"] >= seconds / 10, text
    for kind in ("kill_client", "pause_client", "drop_channel", "cut_keepalive",
                 "restart_daemon_term", "restart_daemon_kill"):
        assert report.faults[kind] >= 1, text
