"""Sessions over the wire: TTL bounds, the KeepAlive stream, Close."""
import queue
import threading
import time

import grpc
import pytest

from harness import CREATE, sessions_pb2


def keepalive_stream(daemon, session_id, period_s, stop):
    def beats():
        while not stop.is_set():
            yield sessions_pb2.KeepAliveRequest(session_id=session_id)
            stop.wait(period_s)
    return daemon.sessions.KeepAlive(beats())


def test_open_default_and_bounds(daemon):
    got = daemon.sessions.Open(sessions_pb2.OpenRequest(ttl_ms=0, client_name="x"))
    assert got.ttl_ms == 10_000 and got.session_id != 0
    assert daemon.sessions.Open(sessions_pb2.OpenRequest(ttl_ms=100)).ttl_ms == 100
    assert daemon.sessions.Open(sessions_pb2.OpenRequest(ttl_ms=3_600_000)).ttl_ms == 3_600_000
    for bad in (99, 3_600_001, -5):
        with pytest.raises(grpc.RpcError) as e:
            daemon.sessions.Open(sessions_pb2.OpenRequest(ttl_ms=bad))
        assert e.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "ttl_ms" in e.value.details()


def test_keepalive_renews_and_lapse_ends_session(daemon):
    sid = daemon.open(ttl_ms=1000)
    stop = threading.Event()
    answers = queue.Queue()
    stream = keepalive_stream(daemon, sid, 0.1, stop)
    reader = threading.Thread(target=lambda: [answers.put(a) for a in stream])
    reader.start()
    try:
        first = answers.get(timeout=5)
        assert first.session_id == sid and first.ttl_ms == 1000
        time.sleep(2.5)  # 2.5 TTLs: only the keep-alives keep it open
        assert daemon.stats().sessions == 1
        assert daemon.stats().session_expiries == 0
    finally:
        stop.set()
        reader.join(timeout=5)
    # The stream closed; the session lives on until its TTL passes.
    assert daemon.stats().sessions == 1
    deadline = time.monotonic() + 5
    while daemon.stats().sessions and time.monotonic() < deadline:
        time.sleep(0.02)
    assert daemon.stats().sessions == 0
    assert daemon.stats().session_expiries == 1


def test_keepalive_unknown_session_is_not_found(daemon):
    stop = threading.Event()
    stream = keepalive_stream(daemon, 424242, 0.05, stop)
    with pytest.raises(grpc.RpcError) as e:
        list(stream)
    stop.set()
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert "session_id" in e.value.details()


def test_close_releases_role_to_waiter_and_is_not_found_twice(daemon):
    creator = daemon.open()
    assert daemon.dogpile.Acquire(daemon.acquire(creator)).outcome == CREATE
    waiter = daemon.dogpile.Acquire.future(daemon.acquire(daemon.open(), wait_timeout_ms=10_000))
    daemon.sessions.Close(sessions_pb2.CloseRequest(session_id=creator))
    assert waiter.result(timeout=10).outcome == CREATE
    with pytest.raises(grpc.RpcError) as e:
        daemon.sessions.Close(sessions_pb2.CloseRequest(session_id=creator))
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    assert daemon.stats().session_expiries == 0
