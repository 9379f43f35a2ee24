"""What dogpile.cache's own generic backend and mutex suites check
(dogpile/testing/fixtures.py upstream, left out of Debian's package),
asserted here against the "dogpiled" backend and the real daemon.

Threaded timing tests of that suite (test_threaded_dogpile and friends)
are covered by test_lock_timing.py and test_mutex.py without sleeps.
"""
import itertools
import uuid
import warnings

import pytest
from dogpile.cache.api import NO_VALUE, CacheMutex
from dogpile.cache.region import _backend_loader

import support


def _nonsense():
    return dict(str(uuid.uuid4()).split("-", 1) for _ in range(5))


@pytest.fixture
def backend(daemon, registry):
    """A bare backend, as the suites' _backend() makes it."""
    made = _backend_loader.load("dogpiled")(
        {"address": daemon.address, "registry": registry,
         "lock_wait_timeout": support.CHILD_PATIENCE / 3})
    yield made
    made.close()


# --- arguments ---------------------------------------------------------------

def test_arguments_dictionary_unmodified(daemon, registry):
    arguments = {"address": daemon.address, "registry": registry,
                 "session_ttl": 5, "rpc_timeout": 2.0}
    expected = dict(arguments)
    _backend_loader.load("dogpiled")(arguments).close()
    assert arguments == expected


def test_unknown_arguments_are_ignored_with_one_warning(daemon, registry):
    arguments = {"address": daemon.address, "registry": registry,
                 **_nonsense()}
    expected = dict(arguments)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        backend = _backend_loader.load("dogpiled")(arguments)
    try:
        assert arguments == expected
        ours = [w for w in caught if "dogpiled" in str(w.message)]
        assert len(ours) == 1
        assert all(k in str(ours[0].message)
                   for k in expected if k not in ("address", "registry"))
        # The known arguments still took effect.
        assert backend.registry == registry
        backend.set_serialized("k", b"v")
        assert backend.get_serialized("k") == b"v"
    finally:
        backend.close()


# --- get / set / delete ------------------------------------------------------

def test_backend_get_and_delete_nothing(backend):
    assert backend.get_serialized("never-set") is NO_VALUE
    backend.delete("never-set")  # no error
    assert backend.get_serialized("never-set") is NO_VALUE


def test_backend_set_get_delete(backend):
    backend.set_serialized("k", b"some value")
    assert backend.get_serialized("k") == b"some value"
    backend.delete("k")
    assert backend.get_serialized("k") is NO_VALUE


def test_region_set_get_delete(regions):
    region = regions()
    region.set("k", "some value")
    assert region.get("k") == "some value"
    region.delete("k")
    region.delete("k")
    assert region.get("k") is NO_VALUE


# --- multi-key calls ---------------------------------------------------------

def test_region_multi_calls(regions):
    region = regions()
    assert region.get_multi([]) == []
    region.set_multi({})
    assert region.get_or_create_multi([], lambda: 0) == []
    region.delete_multi(["key1", "key2", "key3", "key4", "key5"])
    region.set_multi({"key1": "value1", "key3": "value3", "key5": "value5"})
    assert region.get_multi(["key1", "key2", "key3", "key4", "key5",
                             "key6"]) == [
        "value1", NO_VALUE, "value3", NO_VALUE, "value5", NO_VALUE]
    region.delete_multi(["key3", "key10"])
    assert region.get_multi(["key1", "key3", "key10"]) == [
        "value1", NO_VALUE, NO_VALUE]


def test_get_or_create_multi_with_should_cache_none(regions):
    region = regions()
    values = region.get_or_create_multi(
        ["key1", "key2", "key3"], lambda *keys: [None, None, None],
        should_cache_fn=lambda v: v is not None)
    assert values == [None, None, None]
    assert region.get_multi(["key1", "key2", "key3"]) == [NO_VALUE] * 3


def test_region_creator_decorator_and_exploding_creator(regions):
    region = regions()
    counter = itertools.count(1)

    @region.cache_on_arguments()
    def add(x, y):
        return next(counter) + x + y

    add.invalidate(3, 4)
    assert add(3, 4) == 8
    assert add(5, 6) == 13
    assert add(3, 4) == 8
    add.invalidate(3, 4)
    assert add(3, 4) == 10

    def boom():
        raise RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        region.get_or_create("exploding", boom)
    # The role was handed on: the next caller creates.
    assert region.get_or_create("exploding", lambda: "ok") == "ok"


def test_reentrant_dogpile_across_keys(regions):
    region = regions()

    def create_foo():
        return "foo" + region.get_or_create("bar", lambda: "bar")
    assert region.get_or_create("foo", create_foo) == "foobar"
    assert region.get_or_create("foo", create_foo) == "foobar"


# --- the mutex ---------------------------------------------------------------

def test_mutex_is_a_cache_mutex(backend):
    assert isinstance(backend.get_mutex("foo"), CacheMutex)


def test_mutex_is_not_reentrant_through_one_handle(backend):
    mutex = backend.get_mutex("foo")
    assert not mutex.locked()
    assert mutex.acquire()
    # A second try through the same handle fails (grants are not
    # re-entrant), and the first grant stays held.
    assert not mutex.acquire(False)
    assert mutex.locked()
    mutex.release()
    assert not mutex.locked()
    assert mutex.acquire()
    mutex.release()


def test_mutexes_of_other_keys_are_independent(backend):
    for _ in range(3):
        foo, bar = backend.get_mutex("foo"), backend.get_mutex("bar")
        assert foo.acquire()
        try:
            assert bar.acquire(False)
            assert not bar.acquire(False)
            bar.release()
            assert bar.acquire(False)
            assert not bar.acquire(False)
            bar.release()
        finally:
            foo.release()


def test_key_is_locked_does_not_take_the_lock(regions):
    region = regions()
    key = str(uuid.uuid1())
    assert region.get(key) is NO_VALUE
    assert region.key_is_locked(key) is False
    assert region.key_is_locked(key) is False
    mutex = region.backend.get_mutex(key)
    mutex.acquire()
    assert region.key_is_locked(key) is True
    mutex.release()
    assert region.key_is_locked(key) is False
