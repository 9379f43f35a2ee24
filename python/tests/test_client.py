"""The plain client: dogpile get-or-create (sync and async) and RW locks."""
import threading

import pytest

import dogpiled
import support


class Creator:
    """A creator that counts its calls and can be held until released."""

    def __init__(self, value=b"v", hold=False):
        self.value = value
        self.calls = 0
        self.started = threading.Event()
        self.go = threading.Event()
        if not hold:
            self.go.set()

    def __call__(self):
        self.calls += 1
        self.started.set()
        assert self.go.wait(10)
        return self.value


def test_get_or_create_creates_once_then_serves(clients, registry):
    client = clients()
    creator = Creator(b"one")
    assert client.get_or_create(registry, "k", creator, expire=60) == b"one"
    assert client.get_or_create(registry, "k", creator, expire=60) == b"one"
    assert creator.calls == 1


def test_keys_are_text_or_bytes(clients, registry):
    client = clients()
    creator = Creator(b"one")
    # Text is its UTF-8 bytes: one key, whichever way it is written.
    assert client.get_or_create(registry, "ключ", creator, expire=60) == b"one"
    assert client.get_or_create(registry, "ключ".encode(), creator, expire=60) == b"one"
    assert creator.calls == 1
    raw = b"\xff\x00not utf-8"
    assert client.get_or_create(registry, raw, Creator(b"raw"), expire=60) == b"raw"
    assert client.peek(registry, raw).value == b"raw"
    with client.write_lock(registry, raw, timeout=0):
        pass
    with pytest.raises(TypeError, match="key"):
        client.peek(registry, 42)


def test_waiters_get_the_creators_value(clients, registry):
    client, observer = clients(), clients()
    creator = Creator(b"shared", hold=True)
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        client.get_or_create(registry, "k", creator, expire=60)))
        for _ in range(5)]
    for t in threads:
        t.start()
    assert creator.started.wait(5)
    support.wait_until(lambda: observer.stats().waiters >= 4,
                       what="four callers parked on the daemon")
    creator.go.set()
    for t in threads:
        t.join(5)
    assert results == [b"shared"] * 5
    assert creator.calls == 1


def test_async_creator_returns_the_stale_value_at_once(clients, registry):
    client = clients()
    client.get_or_create(registry, "k", Creator(b"old"), expire=60)
    client.invalidate(registry, "k")  # soft: b"old" stays as a fallback
    creator = Creator(b"new", hold=True)
    assert client.get_or_create(registry, "k", creator, expire=60,
                                async_creator=True) == b"old"
    assert creator.started.wait(5)
    # While it runs, others get the stale value without waiting.
    assert client.get_or_create(registry, "k", Creator(), expire=60) == b"old"
    creator.go.set()
    client.drain(5)
    assert client.peek(registry, "k").value == b"new"
    assert creator.calls == 1


def test_failing_creator_hands_the_role_on(clients, registry):
    client = clients()

    def fails():
        raise RuntimeError("backend down")
    with pytest.raises(RuntimeError, match="backend down"):
        client.get_or_create(registry, "k", fails, expire=60)
    assert not client.peek(registry, "k").creating
    assert client.get_or_create(registry, "k", Creator(b"ok")) == b"ok"


def test_invalidated_creator_is_fenced(clients, registry):
    client = clients()
    response, role = client.acquire(registry, "k", expire_ms=60_000)
    assert role is not None and role.token > 0
    client.invalidate(registry, "k", hard=True)
    with pytest.raises(dogpiled.RoleLost):
        role.publish(b"computed before the invalidation")
    assert not client.peek(registry, "k").has_value
    # Role.run still hands the caller its value, unstored.
    _, role = client.acquire(registry, "k2", expire_ms=60_000)

    def slow_creator():
        client.invalidate(registry, "k2", hard=True)
        return b"late"
    assert role.run(slow_creator) == b"late"
    assert not client.peek(registry, "k2").has_value


def test_creator_must_return_bytes(clients, registry):
    with pytest.raises(TypeError, match="not bytes"):
        clients().get_or_create(registry, "k", lambda: "text")


def test_readers_share_writers_exclude(clients, registry):
    a, b = clients(), clients()
    with a.read_lock(registry, "k") as r1, b.read_lock(registry, "k") as r2:
        assert r1.token != r2.token
        assert b.try_lock(registry, "k", "write") is None
    with a.write_lock(registry, "k", timeout=0):
        assert b.try_lock(registry, "k", "read") is None
        with pytest.raises(dogpiled.LockTimeout):
            b.read_lock(registry, "k", timeout=0.1)
    b.write_lock(registry, "k", timeout=0).release()


def test_waiting_writer_blocks_new_readers(clients, registry):
    a, b, c = clients(), clients(), clients()
    reader = a.read_lock(registry, "k")
    granted = threading.Event()
    threading.Thread(target=lambda: b.write_lock(registry, "k") and
                     granted.set(), daemon=True).start()
    support.wait_until(lambda: c.stats().waiters >= 1,
                       what="the writer to park")
    assert c.try_lock(registry, "k", "read") is None
    reader.release()
    assert granted.wait(5)


def test_lock_released_from_another_thread(clients, registry):
    a, b = clients(), clients()
    grant = a.write_lock(registry, "k")
    t = threading.Thread(target=grant.release)
    t.start()
    t.join(5)
    b.write_lock(registry, "k", timeout=0).release()


def test_bad_input_names_the_field(clients):
    with pytest.raises(dogpiled.DogpiledError, match="registry") as e:
        clients().write_lock("bad name!", "k")
    assert e.value.code.name == "INVALID_ARGUMENT"
    with pytest.raises(ValueError, match="mode"):
        clients().lock("r", "k", mode="exclusive")
