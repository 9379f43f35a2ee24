"""NearCache alone, on a fake clock: the keeping rules of docs/near-cache.md
step 4, expiry by the daemon's lifetime, the deadlines checked on every
hit, and the stale shelf of max_stale_on_error."""
import types

import pytest

from dogpiled.near_cache import ENTRY_OVERHEAD, NearCache, StaleValue

WATCH = 7


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def answer(value=b"v", watch=WATCH, fresh_for_ms=-1, age_ms=0):
    """The fields of a FRESH AcquireResponse that NearCache reads."""
    return types.SimpleNamespace(
        has_value=True, value=value, created_time=1.0, age_ms=age_ms,
        fresh_for_ms=fresh_for_ms, near_cache_watch_id=watch)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def near(clock):
    cache = NearCache(1 << 20, clock=clock)
    cache.trust(WATCH, heard_until=clock.now + 3, lease_until=clock.now + 8)
    return cache


def keep(near, key=b"k", registry="r", **kw):
    pending = near.begin(registry, key)
    near.complete(pending, answer(**kw))
    near.end(pending)


def test_nothing_is_kept_or_served_without_a_trusted_watch(clock):
    cache = NearCache(1 << 20, clock=clock)
    assert cache.begin("r", b"k") is None
    cache.trust(WATCH, clock.now + 3, clock.now + 8)
    keep(cache)
    assert cache.lookup("r", b"k", 0).value == b"v"
    cache.lose()
    assert cache.lookup("r", b"k", 0) is None and len(cache) == 0


def test_a_read_poisoned_in_flight_is_not_kept(near):
    pending = near.begin("r", b"k")
    other = near.begin("r", b"other")
    near.invalidate("r", b"k")
    near.complete(pending, answer())
    near.complete(other, answer())
    assert near.lookup("r", b"k", 0) is None
    assert near.lookup("r", b"other", 0) is not None


def test_a_registry_or_global_event_poisons_everything_in_scope(near):
    reads = [near.begin(r, k) for r, k in (("r", b"a"), ("s", b"b"))]
    near.invalidate("r", b"")
    assert [p.poisoned for p in reads] == [True, False]
    near.invalidate("", b"")
    assert reads[1].poisoned


def test_a_read_across_a_lost_watch_is_not_kept(near, clock):
    pending = near.begin("r", b"k")
    near.lose()
    # Even a watch with the same id (a restarted daemon reuses them).
    near.trust(WATCH, clock.now + 3, clock.now + 8)
    near.complete(pending, answer())
    assert near.lookup("r", b"k", 0) is None


def test_an_answer_not_registered_under_the_watch_is_not_kept(near):
    keep(near, watch=0)
    keep(near, key=b"other", watch=WATCH + 1)
    assert len(near) == 0


def test_expiry_counts_from_the_send_time_minus_the_age(near, clock):
    pending = near.begin("r", b"k")
    clock.now += 0.5  # the answer took half a second
    near.complete(pending, answer(fresh_for_ms=1000, age_ms=1000))
    near.end(pending)
    # Age 0 at 99.0 (sent at 100.0, 1 s old), minus a millisecond.
    clock.now = 100.0 + 0.998
    assert near.lookup("r", b"k", 2000) is not None
    clock.now = 100.0 + 0.9995
    assert near.lookup("r", b"k", 2000) is None
    assert near.lookup("r", b"k", 5000) is not None  # a longer expire
    assert near.lookup("r", b"k", 0) is not None  # never expires
    assert near.lookup("r", b"k", -1) is None  # always expired


def test_silence_and_the_lease_deadline_stop_hits_at_once(near, clock):
    keep(near)
    clock.now += 2.9
    assert near.lookup("r", b"k", 0) is not None
    clock.now += 0.2
    assert near.lookup("r", b"k", 0) is None and not near.serviceable()
    near.heard(clock.now + 3)
    assert near.lookup("r", b"k", 0) is not None
    clock.now = 108.0
    assert near.lookup("r", b"k", 0) is None


def test_lru_eviction_by_bytes(clock):
    size = 1 + 1 + 10 + ENTRY_OVERHEAD
    cache = NearCache(2 * size, clock=clock)
    cache.trust(WATCH, clock.now + 3, clock.now + 8)
    for key in (b"a", b"b"):
        keep(cache, key=key, value=b"x" * 10)
    cache.lookup("r", b"a", 0)
    keep(cache, key=b"c", value=b"x" * 10)
    assert [cache.lookup("r", k, 0) is not None for k in (b"a", b"b", b"c")
            ] == [True, False, True]
    assert cache.bytes == 2 * size


def test_only_what_a_break_dropped_is_served_stale_and_bounded(clock):
    cache = NearCache(1 << 20, max_stale_on_error=10, clock=clock)
    cache.trust(WATCH, clock.now + 3, clock.now + 8)
    keep(cache, key=b"kept")
    keep(cache, key=b"voided")
    keep(cache, key=b"timed", fresh_for_ms=1000)
    cache.invalidate("r", b"voided")
    assert cache.stale("r", b"kept", 0) is None  # not dropped by a break
    cache.lose()
    assert cache.stale("r", b"voided", 0) is None
    clock.now += 5
    got = cache.stale("r", b"kept", 0)
    assert isinstance(got, StaleValue) and got == b"v"
    assert got.stale and got.stale_for == pytest.approx(5)
    # Counted from its expiry when it has one (100.999 + 10 s).
    assert cache.stale("r", b"timed", 1000) is not None
    clock.now = 111.0
    assert cache.stale("r", b"timed", 1000) is None
    assert cache.stale("r", b"kept", 0) is None  # 10 s after the break
    clock.now = 105.0
    cache.forget("r", b"kept")  # the daemon answered for the key
    assert cache.stale("r", b"kept", 0) is None
