"""A client process that holds one key in its near-cache: it opens a
session, a watch and a tracked read of reg/k, keeps the session alive,
prints "<session> <watch>", and then never acks anything (the test
SIGSTOPs it)."""
import queue
import sys
import threading
import time

import harness  # noqa: F401  (puts the stubs on sys.path)
from harness import sessions_pb2, sessions_pb2_grpc, dogpile_pb2, dogpile_pb2_grpc
import grpc

target, ttl_ms = sys.argv[1], int(sys.argv[2])
channel = grpc.insecure_channel(target)
sessions = sessions_pb2_grpc.SessionsStub(channel)
dogpile = dogpile_pb2_grpc.DogpileStub(channel)
session_id = sessions.Open(sessions_pb2.OpenRequest(ttl_ms=ttl_ms, client_name="child")).session_id
requests = queue.Queue()
requests.put(dogpile_pb2.WatchRequest(session_id=session_id))
events = dogpile.Watch(iter(requests.get, None))
watch_id = next(events).watch_id


def beats():
    while True:
        yield sessions_pb2.KeepAliveRequest(session_id=session_id, watch_id=watch_id)
        time.sleep(ttl_ms / 10000)


def keep_alive():
    for _ in sessions.KeepAlive(beats()):
        pass


threading.Thread(target=keep_alive, daemon=True).start()
got = dogpile.Acquire(dogpile_pb2.AcquireRequest(
    registry="reg", key=b"k", session_id=session_id, expire_ms=60_000, near_cache=True))
assert got.outcome == dogpile_pb2.AcquireResponse.OUTCOME_FRESH, got
assert got.near_cache_watch_id == watch_id
print(session_id, watch_id, flush=True)
for _ in events:  # read, never ack
    pass
time.sleep(3600)
