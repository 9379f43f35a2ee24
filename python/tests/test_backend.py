"""The "dogpiled" dogpile.cache backend: storage operations and arguments."""
import json
import pickle
import threading

import pytest
from dogpile.cache import make_region
from dogpile.cache.api import NO_VALUE, CachedValue


def test_values_live_in_the_daemon(regions):
    writer, reader = regions(), regions()
    writer.set("k", {"answer": 42})
    assert reader.get("k") == {"answer": 42}
    assert reader.get("missing") is NO_VALUE


def test_multi_operations(regions):
    region = regions()
    region.set_multi({"a": 1, "b": [2], "c": "three"})
    assert region.get_multi(["c", "missing", "a", "b"]) == [
        "three", NO_VALUE, 1, [2]]
    region.delete_multi(["a", "c", "never-set"])
    assert region.get_multi(["a", "b", "c"]) == [NO_VALUE, [2], NO_VALUE]
    region.delete("b")
    region.delete("b")  # idempotent
    assert region.get("b") is NO_VALUE
    assert region.backend.get_serialized_multi([]) == []


def test_object_level_api_matches_the_region(regions):
    region = regions()
    backend = region.backend
    backend.set("k", CachedValue("payload", {"ct": 1e9, "v": 1}))
    backend.set_multi({"a": CachedValue(1, {"ct": 1.5e9, "v": 1})})
    assert region.get("k", ignore_expiration=True) == "payload"
    assert backend.get("k") == ("payload", {"ct": 1e9, "v": 1})
    assert backend.get_multi(["a", "missing"]) == [
        (1, {"ct": 1.5e9, "v": 1}), NO_VALUE]


def test_stored_bytes_are_dogpile_caches_own_serialization(regions, clients,
                                                           registry):
    region = regions()
    region.set("k", ("tuple", 1))
    raw = clients().peek(registry, "k")
    metadata, _, payload = raw.value.partition(b"|")
    assert pickle.loads(payload) == ("tuple", 1)
    # The daemon keeps dogpile.cache's own creation time.
    assert json.loads(metadata)["ct"] == pytest.approx(raw.created_time)


def test_region_serializer_is_honoured(daemon, registry):
    region = make_region(serializer=lambda v: json.dumps(v).encode(),
                         deserializer=json.loads).configure(
        "dogpiled", arguments={"address": daemon.address,
                               "registry": registry})
    region.set("k", {"json": True})
    assert region.backend.get_serialized("k").endswith(b'|{"json": true}')
    assert region.get("k") == {"json": True}
    region.backend.close()


def test_get_or_create_and_cache_on_arguments(regions):
    region = regions(expiration_time=60)
    calls = []

    @region.cache_on_arguments()
    def square(x):
        calls.append(x)
        return x * x
    assert [square(3), square(3), square(4)] == [9, 9, 16]
    assert calls == [3, 4]
    square.invalidate(3)
    assert square(3) == 9 and calls == [3, 4, 3]


def test_get_or_create_multi(regions):
    region = regions(expiration_time=60)
    made = []

    def creator(*keys):
        made.extend(keys)
        return [k.upper() for k in keys]
    region.set("b", "cached")
    assert region.get_or_create_multi(["a", "b", "c"], creator) == [
        "A", "cached", "C"]
    assert sorted(made) == ["a", "c"]
    assert region.get_multi(["a", "c"]) == ["A", "C"]


def test_creator_that_lost_its_role_stores_nothing(regions):
    region, other = regions(expiration_time=60), regions()

    def creator():
        other.delete("k")  # arrives while this creation is at work
        return "computed before the delete"
    assert region.get_or_create("k", creator) == "computed before the delete"
    assert region.get("k") is NO_VALUE


def test_direct_set_supersedes_a_creation_at_work(regions, clients, registry):
    region, creator_side = regions(), regions()
    region.set("k", "old")
    mutex = creator_side.backend.get_mutex("k")
    # dogpile.cache saw "old" expired and elected this creator.
    assert mutex.acquire(False)
    region.set("k", "explicit")
    assert region.get("k") == "explicit"
    creator_side.backend.set_serialized("k", b'{"ct": 1.5e9, "v": 1}|late')
    assert region.get("k") == "explicit", "the superseded creator was fenced"
    mutex.release()


def test_registry_defaults_to_the_region_name(daemon):
    region = make_region("pricing.v2").configure(
        "dogpiled", arguments={"address": daemon.address})
    assert region.backend.registry == "pricing.v2"
    unnamed = make_region().configure(
        "dogpiled", arguments={"address": daemon.address})
    assert unnamed.backend.registry == "dogpile"
    with pytest.raises(ValueError, match="registry"):
        make_region("has spaces").configure(
            "dogpiled", arguments={"address": daemon.address})




def test_has_lock_timeout(regions):
    assert regions().backend.has_lock_timeout() is True


def test_async_creation_runner_releases_from_its_thread(daemon, registry):
    def runner(cache, key, creator, mutex):
        def run():
            try:
                cache.set(key, creator())
            finally:
                mutex.release()
        threading.Thread(target=run).start()

    region = make_region(async_creation_runner=runner).configure(
        "dogpiled", expiration_time=60,
        arguments={"address": daemon.address, "registry": registry})
    region.set("k", "stale")
    region.invalidate(hard=False)  # local: only this process marks it old
    created = threading.Event()

    def creator():
        created.set()
        return "fresh"
    assert region.get_or_create("k", creator) == "stale"
    assert created.wait(5)
    mutex = region.backend.get_mutex("k")
    assert mutex.acquire()  # waits for the runner's release, then no role
    mutex.release()
    assert region.backend.get_serialized("k").endswith(pickle.dumps("fresh"))
    region.backend.close()
