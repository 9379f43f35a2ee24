"""Sessions: opened on first use, kept alive on a thread, replaced and
reported when the daemon ends them."""
import signal
import threading
import time

import grpc
import pytest

import dogpiled
from dogpiled.v1 import sessions_pb2, sessions_pb2_grpc


def close_behind_its_back(address, session_id):
    with grpc.insecure_channel(address) as channel:
        sessions_pb2_grpc.SessionsStub(channel).Close(
            sessions_pb2.CloseRequest(session_id=session_id), timeout=5)


def test_keep_alive_outlives_the_ttl(clients, registry):
    # Long enough that a starved process still renews within the local lease
    # deadline (4/5 of the TTL after the last answered renewal): with 0.5 s,
    # a machine with a load of 10 missed it now and then.
    client = clients(session_ttl=2.0)
    grant = client.write_lock(registry, "k")
    session_id = client.session.id
    assert client.session.ttl == pytest.approx(2.0)
    # Only the keep-alive thread can carry the lease over 2.5 TTLs (seven
    # renewals).
    threading.Event().wait(5.0)
    assert client.session.id == session_id
    assert clients().try_lock(registry, "k") is None
    grant.release()  # the daemon still knows the grant


def test_lost_session_is_replaced_and_reported(daemon, clients, registry):
    lost = []
    reported = threading.Event()

    def on_lost(session_id, reason):
        lost.append((session_id, reason))
        reported.set()

    client = clients(session_ttl=1.0, on_session_lost=on_lost)
    grant = client.write_lock(registry, "k")
    old_id = client.session.id
    close_behind_its_back(daemon.address, old_id)
    assert reported.wait(5), "the keep-alive thread did not notice"
    assert [s for s, _ in lost] == [old_id]
    assert "keep-alive" in lost[0][1]
    assert client.session.id != old_id
    # Everything the old session held is gone, and its grant is refused.
    clients().write_lock(registry, "k", timeout=0).release()
    with pytest.raises(dogpiled.SessionLost):
        grant.release()


def test_call_on_an_ended_session_reopens_once(daemon, clients, registry):
    lost = []
    client = clients(on_session_lost=lambda s, r: lost.append(s))
    old_id = client.session.id
    close_behind_its_back(daemon.address, old_id)
    # Whoever notices first (this call or the keep-alive thread) reopens.
    with client.write_lock(registry, "k", timeout=0) as grant:
        assert grant.session_id != old_id
    assert lost == [old_id]


def test_close_releases_everything(clients, registry):
    holder = clients()
    holder.write_lock(registry, "k")
    waiter = clients()
    assert waiter.try_lock(registry, "k") is None
    holder.close()
    waiter.write_lock(registry, "k", timeout=0).release()


def test_open_failure_is_a_clear_error():
    client = dogpiled.Client("127.0.0.1:1", rpc_timeout=0.5)
    with pytest.raises(dogpiled.DogpiledError, match="Open"):
        client.session.id
    client.close()


def test_daemon_restart_is_survived(restartable_daemon, registry):
    reported = threading.Event()
    # A TTL long enough that the new session outlives a starved keep-alive
    # thread (the SDK gives a lease up 4/5 of its TTL after its last
    # renewal): the loss to report is the restart's, found on reconnecting.
    client = dogpiled.Client(restartable_daemon.address, session_ttl=5.0,
                             on_session_lost=lambda s, r: reported.set())
    try:
        before = client.write_lock(registry, "k")
        client.get_or_create(registry, "v", lambda: b"kept")
        restartable_daemon.restart()
        restarted = time.monotonic()
        # The keep-alive thread rides out the outage, reconnects at once,
        # then learns that the new daemon does not know its session.
        assert reported.wait(10)
        assert time.monotonic() - restarted < 3, "slow to reconnect"
        with client.write_lock(registry, "k", timeout=0) as after:
            assert after.token > before.token, "tokens never repeat"
        assert client.peek(registry, "v").value == b"kept"
    finally:
        client.close()


def test_local_deadline_reports_loss_while_the_daemon_is_silent(
        restartable_daemon, registry):
    lost_at = []
    reported = threading.Event()

    def on_lost(session_id, reason):
        lost_at.append(time.monotonic())
        reported.set()

    # The SDK gives up 4/5 of the TTL after its last renewal; a 2 s TTL
    # leaves 0.4 s for a loaded machine to run its keep-alive thread.
    client = dogpiled.Client(restartable_daemon.address, session_ttl=2.0,
                             on_session_lost=on_lost)
    try:
        grant = client.write_lock(registry, "k")
        old_id = client.session.id
        restartable_daemon.proc.send_signal(signal.SIGSTOP)
        stopped = time.monotonic()
        try:
            assert reported.wait(10)
            # Before the daemon could end the lease (its TTL is 2 s from the
            # last renewal, which was before the stop).
            assert lost_at[0] - stopped < 2.0
        finally:
            restartable_daemon.proc.send_signal(signal.SIGCONT)
        # The lost lock is refused here, never sent under the new lease.
        with pytest.raises(dogpiled.SessionLost) as refused:
            grant.release()
        assert refused.value.reason == "SESSION_NOT_FOUND"
        # A new lease took over; the old one was closed, so the lock is free.
        with client.write_lock(registry, "k", timeout=5) as again:
            assert again.session_id != old_id
    finally:
        client.close()


def test_without_reopen_a_lost_session_stays_lost(daemon, registry):
    reported = threading.Event()
    client = dogpiled.Client(daemon.address, reopen_session=False,
                             on_session_lost=lambda s, r: reported.set())
    try:
        old_id = client.session.id
        close_behind_its_back(daemon.address, old_id)
        assert reported.wait(5)
        with pytest.raises(dogpiled.SessionLost) as refused:
            client.write_lock(registry, "k", timeout=0)
        assert refused.value.reason == "SESSION_NOT_FOUND"
    finally:
        client.close()
