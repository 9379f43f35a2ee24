"""region.invalidate() through the daemon: fleet-wide, soft and hard."""
import threading

import pytest
from dogpile.cache import make_region
from dogpile.cache.api import NO_VALUE
from dogpile.cache.exception import DogpileCacheException

import dogpiled.cache
import support


class HeldCreator:
    def __init__(self, value):
        self.value = value
        self.calls = 0
        self.started = threading.Event()
        self.go = threading.Event()

    def __call__(self):
        self.calls += 1
        self.started.set()
        assert self.go.wait(10)
        return self.value


def in_thread(fn):
    result = []
    thread = threading.Thread(target=lambda: result.append(fn()))
    thread.start()
    return thread, result


def test_soft_invalidation_serves_stale_while_one_creates(regions):
    admin, region = regions(expiration_time=60), regions(expiration_time=60)
    region.set("k", "old")
    admin.invalidate(hard=False)
    creator = HeldCreator("new")
    thread, result = in_thread(lambda: region.get_or_create("k", creator))
    assert creator.started.wait(5)
    others = regions(expiration_time=60)
    assert others.get_or_create("k", HeldCreator("never")) == "old"
    assert region.get_or_create("k", HeldCreator("never")) == "old"
    creator.go.set()
    thread.join(5)
    assert result == ["new"]
    assert others.get("k") == "new" and creator.calls == 1


def test_hard_invalidation_makes_everyone_wait_for_one_creator(regions,
                                                                clients):
    admin, region = regions(expiration_time=60), regions(expiration_time=60)
    region.set("k", "old")
    admin.invalidate(hard=True)
    assert region.get("k") is NO_VALUE
    creator = HeldCreator("new")
    parked_before = clients().stats().waiters
    first, r1 = in_thread(lambda: region.get_or_create("k", creator))
    assert creator.started.wait(5)
    second, r2 = in_thread(
        lambda: regions(expiration_time=60).get_or_create(
            "k", HeldCreator("never")))
    support.wait_until(lambda: clients().stats().waiters > parked_before,
                       what="the other region to park")
    creator.go.set()
    first.join(5)
    second.join(5)
    assert r1 == r2 == ["new"]


def test_creation_at_work_during_invalidation_is_not_stored(regions):
    admin, region = regions(expiration_time=60), regions(expiration_time=60)
    creator = HeldCreator("computed from old data")
    thread, result = in_thread(lambda: region.get_or_create("k", creator))
    assert creator.started.wait(5)
    admin.invalidate(hard=True)
    creator.go.set()
    thread.join(5)
    assert result == ["computed from old data"]  # the caller still gets it
    assert admin.get("k") is NO_VALUE


def test_soft_invalidation_needs_an_expiration_time(regions):
    admin, region = regions(), regions()
    region.set("k", "old")
    admin.invalidate(hard=False)
    with pytest.raises(DogpileCacheException, match="expiration time"):
        region.get_or_create("k", lambda: "new")


def test_default_invalidation_stays_local(regions):
    local_only, other = regions(fleet=False), regions()
    other.set("k", "v")
    local_only.invalidate()
    assert local_only.get("k") is NO_VALUE
    assert other.get("k") == "v"


def test_fleet_invalidation_needs_the_dogpiled_backend():
    region = make_region()
    region.configure("dogpile.cache.memory",
                     region_invalidator=dogpiled.cache.FleetInvalidation(
                         region))
    with pytest.raises(TypeError, match="dogpiled"):
        region.invalidate()
