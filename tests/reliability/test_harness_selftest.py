"""The fault test's harness, held to its own rule: a worker counts as
started only once it has said it is ready.

A worker stopped at once after its spawn (the nemesis had just respawned it
when the run ended) has not installed its SIGTERM handler yet, so it may die
of the default action. That is not a failure of the run, and the checker
has nothing of it to check.
"""
import signal

from checker import check
from cluster import Cluster
from test_faults import worker_config


def test_a_stop_before_ready_is_not_a_failure(tmp_path):
    cluster = Cluster(tmp_path, 2, worker_config(10), seed=1)
    try:
        cluster.start()
        # No wait: the workers' interpreters are still starting.
        cluster.stop_workers()
    finally:
        cluster.close()
    ends = [inc.proc.returncode for inc in cluster.incarnations]
    print(f"exit codes of workers stopped before ready: {ends}")
    assert not cluster.problems, "\n".join(cluster.problems)
    assert set(ends) <= {0, -signal.SIGTERM}, ends
    assert not check(tmp_path).violations
