"""Section 5 of the contract: what users check first, over the wire."""
import os
import signal
import subprocess
import sys
import time

import grpc

from harness import CREATE, FRESH, READ, WRITE, as_key, rwmutex_pb2, wait_until

HERE = os.path.dirname(os.path.abspath(__file__))


def test_fifty_callers_one_creator_rest_get_its_value(daemon):
    sessions = [daemon.open() for _ in range(50)]
    futures = [daemon.dogpile.Acquire.future(daemon.acquire(s, wait_timeout_ms=20_000))
               for s in sessions]
    # Stats counts the CREATE before its answer reaches us: wait for the
    # answer itself too, or the check below races the network.
    wait_until(lambda: any(f.done() for f in futures) and daemon.stats().waiters == 49,
               what="one answer and 49 parked")
    assert daemon.stats().acquires_create == 1
    creators = [f.result() for f in futures if f.done() and f.result().outcome == CREATE]
    assert len(creators) == 1
    creator_session = sessions[[f.done() and f.result().outcome == CREATE
                                for f in futures].index(True)]
    assert sum(f.done() for f in futures) == 1
    daemon.publish(creator_session, creators[0].token, b"the value")
    answers = [f.result(timeout=10) for f in futures]
    assert sum(a.outcome == CREATE for a in answers) == 1
    fresh = [a for a in answers if a.outcome == FRESH]
    assert len(fresh) == 49
    assert all(a.value == b"the value" and a.has_value for a in fresh)
    stats = daemon.stats()
    assert stats.acquires_create == 1
    assert stats.acquires_fresh == 49
    assert stats.waiters == 0


def test_killed_creator_next_waiter_elected_within_ttl(daemon):
    ttl_ms = 1000
    child = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "creator_child.py"), daemon.target, str(ttl_ms)],
        stdout=subprocess.PIPE, text=True)
    try:
        dead_session, dead_token = map(int, child.stdout.readline().split())
        waiter_session = daemon.open(ttl_ms=60_000)
        future = daemon.dogpile.Acquire.future(
            daemon.acquire(waiter_session, wait_timeout_ms=30_000))
        wait_until(lambda: daemon.stats().waiters == 1, what="the waiter to park")
        killed_at = time.monotonic()
        child.send_signal(signal.SIGKILL)
        child.wait()
        elected = future.result(timeout=30)
        elapsed_ms = (time.monotonic() - killed_at) * 1000
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert elected.outcome == CREATE
    assert elected.token > dead_token
    # The child kept its lease alive until it died: the role passes within one
    # TTL of the kill (plus scheduling slack on a shared machine).
    assert elapsed_ms <= ttl_ms + 500, elapsed_ms
    assert daemon.stats().session_expiries == 1
    # The dead creator's token can no longer publish, from any session.
    try:
        daemon.publish(dead_session, dead_token, b"zombie")
        raise AssertionError("dead session published")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.NOT_FOUND
    try:
        daemon.publish(waiter_session, dead_token, b"zombie")
        raise AssertionError("dead token published")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.FAILED_PRECONDITION
    daemon.publish(waiter_session, elected.token, b"fresh")


def lock(daemon, session, mode, wait_ms=0, key=b"m"):
    return rwmutex_pb2.LockRequest(registry="reg", key=as_key(key), session_id=session,
                                   mode=mode, wait_timeout_ms=wait_ms)


def test_waiting_writer_not_starved_by_readers(daemon):
    first_reader = daemon.open()
    held = daemon.rw.Lock(lock(daemon, first_reader, READ))
    assert held.acquired
    writer = daemon.open()
    writer_future = daemon.rw.Lock.future(lock(daemon, writer, WRITE, 30_000))
    wait_until(lambda: daemon.stats().waiters == 1, what="the writer to park")
    # A stream of readers arrives: none gets in ahead of the writer.
    late = []
    for _ in range(20):
        s = daemon.open()
        assert not daemon.rw.Lock(lock(daemon, s, READ)).acquired
        late.append((s, daemon.rw.Lock.future(lock(daemon, s, READ, 30_000))))
    wait_until(lambda: daemon.stats().waiters == 21, what="the readers to park")
    assert not writer_future.done()
    daemon.rw.Unlock(rwmutex_pb2.UnlockRequest(registry="reg", key=b"m",
                                               session_id=first_reader, token=held.token))
    granted = writer_future.result(timeout=10)
    assert granted.acquired
    assert not any(f.done() for _, f in late)
    daemon.rw.Unlock(rwmutex_pb2.UnlockRequest(registry="reg", key=b"m",
                                               session_id=writer, token=granted.token))
    results = [f.result(timeout=10) for _, f in late]
    assert all(r.acquired for r in results)
    assert min(r.token for r in results) > granted.token


def test_thousand_parked_waiters_few_threads_one_publish(daemon):
    creator = daemon.open()
    token = daemon.dogpile.Acquire(daemon.acquire(creator)).token
    threads_idle = daemon.threads()
    session = daemon.open()  # waits are not grants: one session can park many
    futures = [daemon.dogpile.Acquire.future(daemon.acquire(session, wait_timeout_ms=60_000))
               for _ in range(1000)]
    wait_until(lambda: daemon.stats().waiters == 1000, timeout=30, what="1000 parked")
    threads_parked = daemon.threads()
    assert threads_parked < 50, threads_parked
    assert threads_parked <= threads_idle + 10, (threads_idle, threads_parked)
    daemon.publish(creator, token, b"v")
    answers = [f.result(timeout=30) for f in futures]
    assert all(a.outcome == FRESH and a.value == b"v" for a in answers)
    assert daemon.stats().waiters == 0


def test_restart_never_repeats_a_token(make_daemon, tmp_path):
    state = str(tmp_path / "state")
    seen = []
    for stop_signal in (signal.SIGTERM, signal.SIGKILL, signal.SIGTERM):
        d = make_daemon(state_dir=state)
        s = d.open()
        for i in range(5):
            seen.append(d.dogpile.Acquire(d.acquire(s, key=f"k{i}".encode())).token)
            seen.append(d.rw.Lock(lock(d, s, WRITE, key=f"k{i}".encode())).token)
        d.stop(stop_signal)
    assert seen == sorted(seen)
    assert len(set(seen)) == len(seen)
    assert os.path.exists(os.path.join(state, "fencing-token"))
    assert int(open(os.path.join(state, "fencing-token")).read()) > max(seen)


def test_values_survive_restart_and_crash(make_daemon, tmp_path):
    """A restarted daemon still has its values: no stampede on the backend."""
    state = str(tmp_path / "state")
    d = make_daemon("--fsync", "always", state_dir=state)
    s = d.open()
    for key in ("a", "b"):
        d.publish(s, d.dogpile.Acquire(d.acquire(s, key=key, expire_ms=0)).token,
                  key.encode() * 3, key=key)
    assert d.stop(signal.SIGTERM) == 0
    d = make_daemon("--fsync", "always", state_dir=state)
    s = d.open()
    got = d.dogpile.Acquire(d.acquire(s, key=b"a", expire_ms=0))
    assert got.outcome == FRESH and got.value == b"aaa"
    d.publish(s, d.dogpile.Acquire(d.acquire(s, key=b"c", expire_ms=0)).token, b"ccc", key=b"c")
    d.stop(signal.SIGKILL)  # crash: the log, not a final snapshot, must carry "c"
    d = make_daemon(state_dir=state)
    s = d.open()
    for key in ("a", "b", "c"):
        got = d.dogpile.Acquire(d.acquire(s, key=key, expire_ms=0))
        assert got.outcome == FRESH and got.value == key.encode() * 3, key
    assert d.stats().acquires_create == 0
