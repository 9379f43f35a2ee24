"""Near-caches over a replicated group (docs/near-cache.md, "In a
replicated group"): the Python SDK's near-cache watches the leader, and a
leader change never lets an Invalidate return while a near-cache still
holds the value it voids. The new leader does not know what the old one's
watches covered, so it holds every Invalidate and Publish until each
session that watched shows it dropped its near-cache (a new watch, a
KeepAlive naming none, or its end).

What is asserted is the guarantee itself: once an Invalidate has returned,
the reader's near-cache holds no value of the key, and a read finds none.
"""
import contextlib
import os
import pathlib
import signal
import sys
import time

import pytest

import dogpiled  # conftest.py: this checkout's python/

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from test_group import PATIENCE_S, Group, group  # noqa: E402,F401  (the fixture)


def every_member(group):
    return ",".join(d.target for d in group.members.values())


def cached(client, key):
    """The value the near-cache would serve for reg/key now, or None."""
    entry = client.near_cache.lookup("reg", key.encode(), 0)
    return None if entry is None else entry.value


def wait_cached(client, key, value):
    """Reads until the near-cache serves `value` from memory: its watch at
    the leader is up and trusted, and the value is kept."""
    deadline = time.monotonic() + PATIENCE_S
    while time.monotonic() < deadline:
        read = client.read("reg", key)
        assert read.value == value and not read.is_expired, read
        if cached(client, key) == value:
            return
        time.sleep(0.05)
    raise AssertionError(f"reg/{key} never served from the near-cache")


@contextlib.contextmanager
def writer_and_reader(group, **reader_options):
    """A writer, and a reader whose near-cache holds reg/k = v1."""
    with dogpiled.Client(every_member(group), rpc_timeout=30.0) as writer, \
            dogpiled.Client(every_member(group), near_cache_bytes=1 << 20,
                            session_ttl=10.0, rpc_timeout=30.0,
                            **reader_options) as reader:
        assert writer.get_or_create("reg", "k", lambda: b"v1") == b"v1"
        wait_cached(reader, "k", b"v1")
        yield writer, reader


@contextlib.contextmanager
def leader_stopped(group):
    """SIGSTOPs the leader until the others have elected a new one, and
    wakes it at the end."""
    lead = group.leader()
    stopped = group.members[lead].proc.pid
    os.kill(stopped, signal.SIGSTOP)
    try:
        group.leader(among=[i for i in group.members if i != lead])
        yield
    finally:
        os.kill(stopped, signal.SIGCONT)


def assert_dropped(reader, key, value, read=True):
    assert cached(reader, key) is None, (
        "Invalidate returned while a near-cache still held the value")
    if not read:
        return
    read = reader.read("reg", key)
    assert not (read.value == value and not read.is_expired), read


def test_a_near_cache_serves_a_groups_values_and_drops_them_on_invalidate(
        group):
    with writer_and_reader(group) as (writer, reader):
        hits = reader.near_cache.hits
        for _ in range(100):
            assert reader.read("reg", "k").value == b"v1"
        assert reader.near_cache.hits >= hits + 100, "reads went to the daemon"
        writer.invalidate("reg", "k", hard=True)
        assert_dropped(reader, "k", b"v1")


def test_a_new_leader_waits_for_the_near_caches_of_a_killed_one(group):
    with writer_and_reader(group) as (writer, reader):
        lead = group.leader()
        group.members[lead].proc.kill()
        group.members[lead].proc.wait()

        writer.invalidate("reg", "k", hard=True)  # at the new leader
        assert_dropped(reader, "k", b"v1")

        # The near-cache works again at the new leader, pushes included.
        assert writer.get_or_create("reg", "k", lambda: b"v2") == b"v2"
        wait_cached(reader, "k", b"v2")
        writer.invalidate("reg", "k", hard=True)
        assert_dropped(reader, "k", b"v2")


@pytest.fixture
def quiet_group():
    """Watch heartbeats every 5 s: a reader notices a silent watch only
    after 15 s, so its near-cache is still trusted for as long as its
    session's local lease (8 s of a 10 s TTL)."""
    g = Group(extra=("--watch-heartbeat-ms", "5000"))
    try:
        yield g.start()
    finally:
        g.cleanup()


def test_a_new_leader_waits_for_the_near_caches_of_a_stopped_one(
        quiet_group):
    """The stopped leader's streams stay open and silent. This reader does
    not ping (gRPC keepalive off), so it keeps serving from its near-cache
    until its session's local lease runs out, seconds after the others
    elect a new leader; an Invalidate answered there before then would
    leave it serving the voided value. The new leader holds it instead,
    until the reader's session shows it dropped (here: it expires)."""
    group = quiet_group
    no_pings = {"grpc.keepalive_time_ms": 2**31 - 1}
    with writer_and_reader(group, channel_options=no_pings) as (
            writer, reader), leader_stopped(group):
        writer.invalidate("reg", "k", hard=True)
        # Not read through: without pings, the reader's calls would wait
        # on the stopped leader until their timeout.
        assert_dropped(reader, "k", b"v1", read=False)


def test_the_sdk_leaves_a_stopped_leader_and_keeps_its_session(group):
    """With the SDK's keepalive pings, a hung leader is found out in about
    2 s: the watch and the session's stream move to the new leader, the
    session is kept, and the near-cache serves again there."""
    with writer_and_reader(group) as (writer, reader):
        session = reader.session.id
        with leader_stopped(group):
            writer.invalidate("reg", "k", hard=True)
            assert_dropped(reader, "k", b"v1")
            assert writer.get_or_create("reg", "k", lambda: b"v2") == b"v2"
            wait_cached(reader, "k", b"v2")
            assert reader.session.id == session, "the session was kept"
