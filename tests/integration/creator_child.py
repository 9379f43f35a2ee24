"""A client process that takes the creator role, keeps its session alive,
prints "<session> <token>", and waits to be killed."""
import sys
import threading
import time

import harness  # noqa: F401  (puts the stubs on sys.path)
from harness import sessions_pb2, sessions_pb2_grpc, dogpile_pb2, dogpile_pb2_grpc
import grpc

target, ttl_ms = sys.argv[1], int(sys.argv[2])
channel = grpc.insecure_channel(target)
sessions = sessions_pb2_grpc.SessionsStub(channel)
session_id = sessions.Open(sessions_pb2.OpenRequest(ttl_ms=ttl_ms, client_name="child")).session_id


def beats():
    while True:
        yield sessions_pb2.KeepAliveRequest(session_id=session_id)
        time.sleep(ttl_ms / 10000)


def keep_alive():
    for _ in sessions.KeepAlive(beats()):
        pass


threading.Thread(target=keep_alive, daemon=True).start()
got = dogpile_pb2_grpc.DogpileStub(channel).Acquire(dogpile_pb2.AcquireRequest(
    registry="reg", key=b"k", session_id=session_id, expire_ms=60_000))
assert got.outcome == dogpile_pb2.AcquireResponse.OUTCOME_CREATE
print(session_id, got.token, flush=True)
time.sleep(3600)
