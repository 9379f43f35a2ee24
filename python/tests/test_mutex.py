"""The CacheMutex contract, for both mutexes get_mutex() can return."""
import threading
import time
import weakref

import pytest

import dogpiled
import support

KINDS = ["creator", "write_lock"]


@pytest.fixture(params=KINDS)
def kind(request):
    return request.param


@pytest.fixture
def handles(daemon, registry, kind):
    """handles(**arguments) -> get_mutex of a new region: a separate
    session, like another process."""
    made = []

    def make(**arguments):
        region = support.mutex_region(kind, daemon.address, registry,
                                      **arguments)
        made.append(region)
        return region.backend.get_mutex
    yield make
    for region in made:
        region.backend.close()


@pytest.fixture
def waiters(clients):
    observer = clients()
    return lambda: observer.stats().waiters


def blocking_acquire(mutex):
    """Starts mutex.acquire() on a thread; the event is set once it holds."""
    acquired = threading.Event()
    thread = threading.Thread(
        target=lambda: mutex.acquire() and acquired.set(), daemon=True)
    thread.start()
    return acquired


def test_try_lock_fails_while_held_elsewhere(handles):
    mine, other = handles()("k"), handles()("k")
    assert mine.acquire(False)
    assert not other.acquire(False)
    assert not mine.acquire(False), "grants are not re-entrant"
    mine.release()
    assert other.acquire(False)
    other.release()


def test_keys_are_independent(handles):
    get_mutex = handles()
    a, b = get_mutex("a"), get_mutex("b")
    assert a.acquire(False)
    assert b.acquire(False)
    a.release()
    b.release()


def test_blocking_acquire_parks_until_release(handles, waiters):
    holder, waiter = handles()("k"), handles()("k")
    parked_before = waiters()
    assert holder.acquire(False)
    acquired = blocking_acquire(waiter)
    support.wait_until(lambda: waiters() > parked_before,
                       what="the waiter to park on the daemon")
    assert not acquired.is_set()
    holder.release()
    assert acquired.wait(5)
    assert not holder.acquire(False)
    waiter.release()


@pytest.fixture
def holder(daemon, registry, kind):
    """holder(session_ttl) -> (process holding the mutex of "k", event that
    makes it release)."""
    started = []

    def start(session_ttl=None):
        held, release = support.SPAWN.Event(), support.SPAWN.Event()
        child = support.start(support.hold_mutex, kind, daemon.address,
                              registry, "k", session_ttl, held, release)
        started.append((child, release))
        assert held.wait(20), "child did not take the lock"
        return child, release
    yield start
    for child, release in started:
        # Never set() for a killed child: a multiprocessing Event's notify
        # waits for its sleepers to wake, and a dead one never does.
        if child.is_alive():
            release.set()
            child.join(10)
        child.kill()
        child.join(10)


def test_exclusion_across_processes(holder, handles):
    child, release = holder()
    mutex = handles()("k")
    assert not mutex.acquire(False)
    assert mutex.locked()
    acquired = blocking_acquire(mutex)
    assert not acquired.wait(0.2)
    release.set()
    assert acquired.wait(5)
    mutex.release()
    child.join(10)
    assert child.exitcode == 0


def test_lock_of_killed_process_passes_on(holder, handles, kind):
    ttl = 0.5
    child, _ = holder(ttl)
    mutex = handles()("k")
    acquired = blocking_acquire(mutex)
    child.kill()
    killed_at = time.monotonic()
    assert acquired.wait(ttl + 5)
    handoff = time.monotonic() - killed_at
    print(f"{kind}: lock of a SIGKILLed holder (ttl {ttl} s) passed on "
          f"after {handoff:.3f} s")
    assert handoff <= ttl + 0.5
    mutex.release()


def test_locked_reflects_the_daemon(handles):
    mine, other = handles()("k"), handles()("k")
    assert not other.locked()
    assert mine.acquire(False)
    assert mine.locked()
    assert other.locked()
    mine.release()
    assert not other.locked()
    assert not mine.locked()


def test_release_from_another_thread(handles):
    mine, other = handles()("k"), handles()("k")
    assert mine.acquire(False)
    releaser = threading.Thread(target=mine.release)
    releaser.start()
    releaser.join(5)
    assert other.acquire(False)
    other.release()


def test_weak_referenceable(handles):
    mutex = handles()("k")
    assert weakref.ref(mutex)() is mutex


def test_blocking_acquire_with_deadline_raises(handles):
    holder, waiter = handles()("k"), handles(lock_wait_timeout=0.2)("k")
    assert holder.acquire(False)
    started = time.monotonic()
    with pytest.raises(dogpiled.LockTimeout):
        waiter.acquire()
    assert 0.15 <= time.monotonic() - started < 3
    # The failed wait left nothing behind.
    holder.release()
    assert waiter.acquire(False)
    waiter.release()


def test_release_of_unheld_mutex_raises(handles):
    with pytest.raises(RuntimeError):
        handles()("k").release()
