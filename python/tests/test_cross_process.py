"""Two processes share one dogpile lock and one cache through the daemon."""
import queue

import pytest

import support


@pytest.mark.parametrize("values_in", ["dogpiled", "dbm file"])
def test_get_or_create_from_two_processes_creates_once(
        daemon, registry, clients, tmp_path, values_in):
    dbm_file = str(tmp_path / "cache.dbm") if values_in == "dbm file" else ""
    observer = clients()
    start_line = support.SPAWN.Barrier(2)
    creating, go = support.SPAWN.Event(), support.SPAWN.Event()
    creations = support.SPAWN.Value("i", 0)
    results = support.SPAWN.Queue()
    parked_before = observer.stats().waiters
    children = [support.start(support.get_or_create_once, daemon.address,
                              registry, "k", dbm_file, start_line, creating,
                              go, creations, results) for _ in range(2)]
    try:
        assert creating.wait(support.CHILD_PATIENCE), "nobody started creating"
        # The other process is parked on the daemon, not polling.
        support.wait_until(
            lambda: observer.stats().waiters > parked_before,
            what="the second process to park")
        go.set()
        values = [results.get(timeout=support.CHILD_PATIENCE) for _ in children]
    finally:
        go.set()
        for child in children:
            child.join(support.CHILD_PATIENCE)
    assert creations.value == 1
    assert values[0] == values[1] and values[0].startswith("made by pid")
    assert [c.exitcode for c in children] == [0, 0]


class Child:
    """A process running region calls on command (support.region_commands)."""

    def __init__(self, daemon, registry, key):
        self.commands = support.SPAWN.Queue()
        self.results = support.SPAWN.Queue()
        self.proc = support.start(support.region_commands, daemon.address,
                                  registry, key, self.commands, self.results)

    def __call__(self, command):
        self.commands.put(command)
        try:
            return self.results.get(timeout=support.CHILD_PATIENCE)
        except queue.Empty:
            raise AssertionError(f"child did not answer {command!r}")

    def stop(self):
        self.commands.put("stop")
        self.proc.join(support.CHILD_PATIENCE)
        if self.proc.is_alive():
            self.proc.kill()
        return self.proc.exitcode


@pytest.fixture
def shared_value(daemon, registry, regions):
    """(this process's region, a child process) sharing "k" = "before"."""
    region = regions(expiration_time=60)
    region.set("k", "before")
    child = Child(daemon, registry, "k")
    yield region, child
    assert child.stop() == 0


def test_hard_invalidation_reaches_another_process(shared_value):
    region, child = shared_value
    assert child("get_or_create") == "before"
    region.invalidate(hard=True)
    assert child("get") == "NO_VALUE"
    assert child("get_or_create") == "child value 1"
    assert region.get("k") == "child value 1"


def test_soft_invalidation_reaches_another_process(shared_value):
    region, child = shared_value
    assert child("get") == "before"
    region.invalidate(hard=False)
    # Expired for everyone, yet kept as the stale fallback.
    assert child("get") == "NO_VALUE"
    assert child("get_ignoring_expiration") == "before"
    assert child("get_or_create") == "child value 1"
    assert child("get") == "child value 1"
