"""One soak client process: many concurrent session lifecycles on asyncio.

Each task loops: open a session, do a short burst of dogpile and RW-mutex
work, then close it or walk away and let it expire (sometimes still holding
a creator role or a lock, which the daemon must release). Some sessions keep
themselves alive over a KeepAlive stream for a while; some expired ones are
probed later, and must be gone.

Every error is sorted as expected (a wait that ran out, NOT_FOUND for a
session whose lease could have lapsed, a creator refused after an
invalidation it could have overlapped) or unexpected. Each process has a
registry of its own, so it knows every invalidation that touches its keys.
Prints one JSON line of counts at the end.

Usage: soak_worker.py TARGET SECONDS TASKS INDEX READY_FILE
READY_FILE is created once the imports are done and the run begins.
"""
import asyncio
import collections
import json
import math
import random
import sys
import time

import settings  # noqa: F401  (puts the harness and stubs on sys.path)
from harness import dogpile_pb2, dogpile_pb2_grpc, rwmutex_pb2, rwmutex_pb2_grpc
from harness import sessions_pb2, sessions_pb2_grpc
import grpc

KEYS = [f"key{i}" for i in range(200)]
CREATE = dogpile_pb2.AcquireResponse.OUTCOME_CREATE
READ, WRITE = rwmutex_pb2.LockRequest.MODE_READ, rwmutex_pb2.LockRequest.MODE_WRITE
RPC_SLACK_S = 30  # our own deadline past any wait: reaching it is an error
# Daemon deadlines are whole milliseconds of the same clock.
SLACK_S = 0.02


class Session:
    def __init__(self, sid, ttl_ms, renewed):
        self.sid, self.ttl = sid, ttl_ms / 1000
        self.renewed = renewed  # a renewal we know of was sent at this time

    def could_have_lapsed(self, now):
        return now >= self.renewed + self.ttl - SLACK_S


class Soak:
    def __init__(self, target, index):
        self.target = target
        self.registry = registry_of(index)
        self.rng = random.Random()
        # key ("" for the registry) -> [(sent, answered)] of invalidations
        self.invalidations = collections.defaultdict(list)
        self.counts = collections.Counter()
        self.unexpected = []
        self.probes = set()

    # --- calls and their errors -------------------------------------------
    async def call(self, what, method, request, session=None, wait_ms=0, elected=None):
        """Returns the answer, or None after sorting the error. `elected`:
        for a creator's call, when its Acquire was sent."""
        self.counts["rpc"] += 1
        try:
            return await method(request, timeout=wait_ms / 1000 + RPC_SLACK_S)
        except grpc.aio.AioRpcError as e:
            self.sort_error(what, e, session, elected and (request.key.decode(), elected))
            return None

    def invalidated_since(self, key, elected):
        """An invalidation of the key could have come after the election."""
        return any(answered >= elected for k in (key, "")
                   for _, answered in self.invalidations[k])

    def sort_error(self, what, e, session, creator=None):
        code, detail = e.code().name, e.details() or ""
        if code == "DEADLINE_EXCEEDED" and "wait_timeout_ms" in detail:
            self.counts["expected_wait_timeout"] += 1
        elif code == "NOT_FOUND" and session and session.could_have_lapsed(time.monotonic()):
            self.counts["expected_not_found"] += 1
        elif code == "FAILED_PRECONDITION" and creator and self.invalidated_since(*creator):
            self.counts["expected_invalidated_creator"] += 1
        else:
            self.counts["unexpected_" + code] += 1
            if len(self.unexpected) < 20:
                self.unexpected.append(f"{what}: {code} {detail}")

    def acquire_request(self, s, key, wait):
        r = dogpile_pb2.AcquireRequest(
            registry=self.registry, key=key.encode(), session_id=s.sid, wait_timeout_ms=wait,
            expire_ms=self.rng.choice([-1, 50, 500, 0]), creation_timeout_ms=10_000)
        if self.rng.random() < 0.1:
            r.client_created_time = self.rng.choice([0.0, time.time() - 1])
        return r

    async def dogpile_op(self, s, hold=False):
        key, wait = self.rng.choice(KEYS), self.rng.choice([0, 50, 300])
        elected = time.monotonic()
        got = await self.call("acquire", self.dogpile.Acquire,
                              self.acquire_request(s, key, wait), s, wait)
        if got is None or got.outcome != CREATE:
            return
        self.counts["create"] += 1
        if hold:
            return  # walk away holding the role: the session's end must free it
        common = dict(registry=self.registry, key=key.encode(), session_id=s.sid, token=got.token)
        if self.rng.random() < 0.1:
            await self.call("abandon", self.dogpile.Abandon, dogpile_pb2.AbandonRequest(
                reason="soak", retry_after_ms=self.rng.choice([0, 200]), **common), s,
                elected=elected)
        else:
            await self.call("publish", self.dogpile.Publish, dogpile_pb2.PublishRequest(
                value=b"v" * self.rng.randint(1, 2000), **common), s, elected=elected)

    async def rw_op(self, s, hold=False):
        key, wait = self.rng.choice(KEYS), self.rng.choice([0, 50, 200])
        mode = WRITE if self.rng.random() < 0.3 else READ
        got = await self.call("lock", self.rw.Lock, rwmutex_pb2.LockRequest(
            registry=self.registry, key=key.encode(), session_id=s.sid, mode=mode, wait_timeout_ms=wait),
            s, wait)
        if got is None or not got.acquired or hold:
            return
        await asyncio.sleep(self.rng.uniform(0, 0.05))
        await self.call("unlock", self.rw.Unlock, rwmutex_pb2.UnlockRequest(
            registry=self.registry, key=key.encode(), session_id=s.sid, token=got.token), s)

    async def invalidate(self):
        key = self.rng.choice(KEYS + [""])  # "": the whole registry
        mark = [time.monotonic(), math.inf]  # in flight: it may land any time
        self.invalidations[key].append(mark)
        await self.call("invalidate", self.dogpile.Invalidate, dogpile_pb2.InvalidateRequest(
            registry=self.registry, key=key.encode(), hard=self.rng.random() < 0.5))
        mark[1] = time.monotonic()

    # --- a session's life -------------------------------------------------
    async def keep_alive(self, s, stop):
        sent = collections.deque()

        async def beats():
            while not stop.is_set():
                sent.append(time.monotonic())
                yield sessions_pb2.KeepAliveRequest(session_id=s.sid)
                try:
                    await asyncio.wait_for(stop.wait(), s.ttl / 4)
                except asyncio.TimeoutError:
                    pass

        call = self.sessions.KeepAlive(beats())
        try:
            async for _ in call:
                s.renewed = sent.popleft()
                self.counts["keepalive"] += 1
        except grpc.aio.AioRpcError as e:
            self.sort_error("keepalive", e, s)

    async def lifecycle(self):
        style = self.rng.choices(["close", "expire", "keep"], [6, 3, 1])[0]
        ttl = 15_000 if style == "close" else self.rng.choice([500, 800, 1000])
        opened_at = time.monotonic()
        got = await self.call("open", self.sessions.Open, sessions_pb2.OpenRequest(
            ttl_ms=ttl, client_name="soak"))
        if got is None:
            return
        self.counts["sessions"] += 1
        s = Session(got.session_id, got.ttl_ms, opened_at)
        stop, keeper = asyncio.Event(), None
        if style == "keep":
            keeper = asyncio.create_task(self.keep_alive(s, stop))
        burst = self.rng.randint(1, 3) if style == "expire" else self.rng.randint(3, 8)
        for _ in range(burst):
            await asyncio.sleep(self.rng.uniform(0.3, 0.8))
            roll = self.rng.random()
            if roll < 0.02:
                await self.invalidate()
            elif roll < 0.55:
                await self.dogpile_op(s)
            else:
                await self.rw_op(s)
        if keeper is not None:
            await asyncio.sleep(self.rng.uniform(0, 2 * s.ttl))
            stop.set()
            await keeper
        if style == "close" or (style == "keep" and self.rng.random() < 0.5):
            await self.call("close", self.sessions.Close, sessions_pb2.CloseRequest(
                session_id=s.sid), s)
            self.counts["closed"] += 1
            return
        self.counts["left_to_expire"] += 1
        if self.rng.random() < 0.3:
            await (self.dogpile_op if self.rng.random() < 0.5 else self.rw_op)(s, hold=True)
        if self.rng.random() < 0.2:
            probe = asyncio.create_task(self.probe(s))
            self.probes.add(probe)
            probe.add_done_callback(self.probes.discard)

    async def probe(self, s):
        """An abandoned session must be gone a while after its TTL."""
        await asyncio.sleep(s.ttl + 3)
        self.counts["probes"] += 1
        got = await self.call("probe", self.rw.Lock, rwmutex_pb2.LockRequest(
            registry=self.registry, key=b"probe", session_id=s.sid, mode=WRITE), s)
        if got is not None:
            self.counts["unexpected_probe_alive"] += 1
            self.unexpected.append(f"session {s.sid} alive {time.monotonic() - s.renewed:.1f}s "
                                   f"after its last renewal (TTL {s.ttl}s)")

    async def task(self, until):
        while time.monotonic() < until:
            await self.lifecycle()

    async def run(self, seconds, tasks):
        # An aio channel belongs to the loop it is made in.
        self.channel = grpc.aio.insecure_channel(self.target)
        self.sessions = sessions_pb2_grpc.SessionsStub(self.channel)
        self.dogpile = dogpile_pb2_grpc.DogpileStub(self.channel)
        self.rw = rwmutex_pb2_grpc.RWMutexStub(self.channel)
        until = time.monotonic() + seconds
        await asyncio.gather(*(self.task(until) for _ in range(tasks)))
        await asyncio.gather(*list(self.probes))
        await self.channel.close()


def registry_of(index):
    return f"soak-{index}"


def main():
    target, seconds, tasks, index = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    soak = Soak(target, index)
    # Imports can take seconds on a busy machine: the test's clock for
    # warm-up and samples starts from here, not from the spawn.
    open(sys.argv[5], "w").close()
    asyncio.run(soak.run(seconds, tasks))
    print(json.dumps({"counts": soak.counts, "unexpected": soak.unexpected}), flush=True)


if __name__ == "__main__":
    main()
