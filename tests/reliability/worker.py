"""One client process of the fault test.

Runs a few client threads. Each owns a session with its own KeepAlive stream
and loops over dogpile work (Acquire with waits; on CREATE sleep, then
Publish or Abandon; now and then Invalidate) and RW-mutex work (Lock, hold,
Unlock) on a few keys.
Every RPC is logged before it is sent ("inv") and when it ends ("ok" or
"fail"), so the checker can bound when the daemon acted on it.

Signals from the nemesis: SIGUSR1 closes and recreates the channel with calls
in flight; SIGUSR2 cuts the KeepAlive streams for a while; SIGTERM lets the
current operations finish, closes the sessions and exits 0.

The target file names one daemon, or the members of a replicated group
("h1:p1,h2:p2,h3:p3"): then the Python client's GroupChannel carries every
call to the leader, retrying a refused or unreachable one elsewhere with
the very same request (Acquire and Lock carry a request_id for that).

Usage: worker.py '<json config>' (see Cluster.spawn for the fields).
"""
import signal
import threading

# Before the slow imports: a SIGTERM that comes while gRPC loads still means
# "finish cleanly", not death.
STOP = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: STOP.set())

import collections  # noqa: E402
import ctypes  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

import settings  # noqa: E402  (puts the harness and stubs on sys.path)

if json.loads(sys.argv[1]).get("group"):
    settings.use_python_client()  # before the harness: GroupChannel

from history import History
from harness import dogpile_pb2, dogpile_pb2_grpc, rwmutex_pb2, rwmutex_pb2_grpc
from harness import sessions_pb2, sessions_pb2_grpc
import grpc

OUTCOMES = dogpile_pb2.AcquireResponse.Outcome
CREATE = dogpile_pb2.AcquireResponse.OUTCOME_CREATE
MODES = {"read": rwmutex_pb2.LockRequest.MODE_READ, "write": rwmutex_pb2.LockRequest.MODE_WRITE}


class Link:
    """The channel and its stubs. The nemesis may swap the channel at any
    moment; callers take a fresh snapshot for every call."""

    def __init__(self, target_file):
        self._target_file = target_file
        self._lock = threading.Lock()
        self._channel, self._stubs, self._born = self._connect()

    def _connect(self):
        with open(self._target_file) as f:
            target = f.read().strip()
        if "," in target:  # a group's members: follow the leader
            from dogpiled.channel import make_group_channel
            channel = make_group_channel(target)
        else:
            channel = grpc.insecure_channel(target)
        stubs = (sessions_pb2_grpc.SessionsStub(channel), dogpile_pb2_grpc.DogpileStub(channel),
                 rwmutex_pb2_grpc.RWMutexStub(channel))
        return channel, stubs, time.monotonic()

    def stubs(self):
        with self._lock:
            return self._stubs

    def drop(self):
        """Closes the channel: calls in flight on it end CANCELLED."""
        fresh = self._connect()
        with self._lock:
            old = self._channel
            self._channel, self._stubs, self._born = fresh
        old.close()

    def reconnect(self):
        """After a failed connect. A channel that lost its daemon waits out
        gRPC's reconnect backoff (seconds, whatever the channel options say
        in this grpcio), so a fresh one finds the restarted daemon sooner;
        it also picks up a new port from the target file."""
        if time.monotonic() - self._born > 0.3:  # one thread renews it, not all
            self.drop()


class Keeper:
    """Keeps one session alive over a KeepAlive stream in its own thread,
    reopening the stream when it breaks, until the session is gone.

    Each answer is logged with the time its request was handed to gRPC: the
    daemon renewed the lease after that, so the session lives at least until
    then plus the TTL."""

    def __init__(self, worker, session_id, ttl_ms):
        self._w = worker
        self.session_id = session_id
        self._period = ttl_ms / 4000
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._call = None
        self._cut_until = 0.0
        threading.Thread(target=self._run, daemon=True).start()

    def stop(self):
        self._done.set()
        self._cancel()

    def cut(self, seconds):
        self._cut_until = time.monotonic() + seconds
        self._cancel()

    def _cancel(self):
        with self._lock:
            if self._call is not None:
                self._call.cancel()

    def _run(self):
        while not self._done.is_set():
            pause = self._cut_until - time.monotonic()
            if pause > 0:
                self._done.wait(pause)
                continue
            if self._stream() == "NOT_FOUND":
                return
            self._done.wait(0.05)

    def _stream(self):
        sent = collections.deque()
        ended = threading.Event()

        def beats():
            while not ended.is_set() and not self._done.is_set():
                sent.append(time.monotonic())
                yield sessions_pb2.KeepAliveRequest(session_id=self.session_id)
                ended.wait(self._period)

        code = "OK"
        try:
            call = self._w.link.stubs()[0].KeepAlive(beats())
            with self._lock:
                self._call = call
            if self._done.is_set() or self._cut_until > time.monotonic():
                call.cancel()
            for _ in call:  # answers come in request order
                self._w.hist.log("ka", sid=self.session_id, sent=sent.popleft())
        except grpc.RpcError as e:
            code = e.code().name
        except ValueError:  # the channel was closed before the stream started
            code = "CLOSED"
        finally:
            ended.set()
            with self._lock:
                self._call = None
        self._w.hist.log("ka_end", sid=self.session_id, code=code)
        return code


class Client(threading.Thread):
    """One session and the loop of operations that use it."""

    def __init__(self, worker, index):
        super().__init__(daemon=True)
        self._w = worker
        self.cfg = worker.cfg
        self.name_ = f"{worker.cfg['name']}c{index}"
        self.rng = random.Random(f"{worker.cfg['seed']}:{index}")
        self.sid = None
        self.keeper = None
        self._n = 0

    # --- one logged RPC ---------------------------------------------------
    def call(self, kind, service, method, request, wait_ms=0, describe=None, **fields):
        """Logs the invocation, sends, logs the outcome. Returns (answer,
        code); code is None on success."""
        op = f"{self.name_}-{self._n}"
        self._n += 1
        timeout = wait_ms / 1000 + self.cfg["rpc_slack_s"]
        self._w.hist.log("inv", op=op, kind=kind, **fields)
        try:
            answer = getattr(self._w.link.stubs()[service], method)(request, timeout=timeout)
        except grpc.RpcError as e:
            detail = (e.details() or "")[:160]
            code = e.code().name
            # The daemon names wait_timeout_ms when a wait runs out; anything
            # else is our own deadline: the daemon never answered in time.
            late = code == "DEADLINE_EXCEEDED" and "wait_timeout_ms" not in detail
            self._w.hist.log("fail", op=op, code=code, late=late, detail=detail)
            if "failed to connect" in detail:
                self._w.link.reconnect()
            return None, "LATE" if late else code
        except ValueError:  # the channel was closed under us before sending
            self._w.hist.log("fail", op=op, code="CLOSED", late=False, detail="")
            return None, "CLOSED"
        self._w.hist.log("ok", op=op, **(describe(answer) if describe else {}))
        return answer, None

    # --- sessions ---------------------------------------------------------
    def open_session(self):
        ttl = self.cfg["ttl_ms"]
        got, code = self.call("open", 0, "Open", sessions_pb2.OpenRequest(
            ttl_ms=ttl, client_name=self.name_),
            describe=lambda r: {"sid": r.session_id, "ttl": r.ttl_ms})
        if code is not None:
            self.backoff()
            return
        self.sid = got.session_id
        self.keeper = Keeper(self._w, self.sid, got.ttl_ms)

    def forget_session(self, close):
        """Leaves the session; closing it first frees any grant whose answer
        we lost (a cancelled call may still have been granted)."""
        self.keeper.stop()
        if close:
            self.call("close", 0, "Close", sessions_pb2.CloseRequest(session_id=self.sid),
                      sid=self.sid)
        self.sid, self.keeper = None, None

    def backoff(self):
        time.sleep(self.rng.uniform(0.05, 0.2))

    def request_id(self):
        """A fresh one per Acquire or Lock: a retry of the same request (the
        GroupChannel's, after a refusal or a lost answer) gets its grant
        again instead of a second one."""
        return self.rng.randrange(1, 2 ** 64)

    def react(self, code):
        """Returns True when the session can keep being used."""
        if code in (None, "FAILED_PRECONDITION", "DEADLINE_EXCEEDED"):
            return True
        if code == "UNAVAILABLE":
            # The daemon is going down or coming back: the session may have
            # died with it, and the next call will say so with NOT_FOUND.
            self.backoff()
            return True
        if code == "NOT_FOUND":  # expired, closed or the daemon restarted
            self.forget_session(close=False)
        else:  # cancelled or never answered: free whatever we might hold
            self.forget_session(close=True)
            self.backoff()
        return False

    # --- the work ---------------------------------------------------------
    def run(self):
        try:
            while not self._w.stopping.is_set():
                roll = self.rng.random()
                if self.sid is None:
                    self.open_session()
                elif roll < self.cfg["invalidate_share"]:
                    self.invalidate()
                elif roll < self.cfg["dogpile_share"]:
                    self.dogpile()
                else:
                    self.rw()
            if self.sid is not None:
                self.forget_session(close=True)
        except BaseException:
            self._w.crash(traceback.format_exc())

    def dogpile(self):
        rng, key = self.rng, self.rng.choice(self.cfg["keys"])
        wait = rng.choice([0, 400, 2500])
        ct = self.cfg["creation_timeout_ms"]
        lock_only = rng.random() < 0.1
        request = dogpile_pb2.AcquireRequest(
            registry=self.cfg["registry"], key=key.encode(), session_id=self.sid,
            expire_ms=rng.choice([-1, 150, 400, 0]), max_stale_ms=rng.choice([0, 0, 150]),
            wait_timeout_ms=wait, creation_timeout_ms=ct, request_id=self.request_id())
        if lock_only:
            request.client_created_time = 0.0  # "I have no value": wait or create
        got, code = self.call(
            "acquire", 1, "Acquire", request, wait_ms=wait, key=key, sid=self.sid,
            wait=wait, ct=ct, lock_only=lock_only, rid=request.request_id,
            describe=lambda r: {"outcome": OUTCOMES.Name(r.outcome)[8:], "token": r.token,
                                "value": r.value.decode() if r.has_value else None})
        if code is not None:
            self.react(code)
            return
        if got.outcome != CREATE:
            return
        late = rng.random() < self.cfg["late_creator_share"]
        # A late creator outlives its creation timeout: its publish must fail.
        time.sleep(ct / 1000 + rng.uniform(0.2, 0.4) if late else rng.uniform(0.005, 0.06))
        common = dict(registry=self.cfg["registry"], key=key.encode(), session_id=self.sid, token=got.token)
        if rng.random() < self.cfg["abandon_share"]:
            retry = rng.choice([0, 0, 100])
            _, code = self.call("abandon", 1, "Abandon", dogpile_pb2.AbandonRequest(
                reason="fault test", retry_after_ms=retry, **common),
                key=key, sid=self.sid, token=got.token, late_creator=late)
        else:
            # Lock-only publishes are marked: the daemon must never serve them.
            value = f"{'L' if lock_only else ''}{got.token}"
            _, code = self.call("publish", 1, "Publish", dogpile_pb2.PublishRequest(
                value=value.encode(), **common),
                key=key, sid=self.sid, token=got.token, value=value, late_creator=late)
        self.react(code)

    def invalidate(self):
        # "" invalidates the whole registry.
        key = self.rng.choice(self.cfg["keys"] + [""])
        hard = self.rng.random() < 0.5
        _, code = self.call("invalidate", 1, "Invalidate", dogpile_pb2.InvalidateRequest(
            registry=self.cfg["registry"], key=key.encode(), hard=hard), key=key, hard=hard)
        if code in ("UNAVAILABLE", "LATE"):
            self.backoff()

    def rw(self):
        rng, key = self.rng, self.rng.choice(self.cfg["keys"])
        mode = "write" if rng.random() < 0.35 else "read"
        wait = rng.choice([0, 300, 1500])
        request = rwmutex_pb2.LockRequest(
            registry=self.cfg["registry"], key=key.encode(), session_id=self.sid,
            mode=MODES[mode], wait_timeout_ms=wait, request_id=self.request_id())
        got, code = self.call(
            "lock", 2, "Lock", request,
            wait_ms=wait, key=key, sid=self.sid, mode=mode, wait=wait, rid=request.request_id,
            describe=lambda r: {"acquired": r.acquired, "token": r.token})
        if code is not None:
            self.react(code)
            return
        if not got.acquired:
            return
        time.sleep(rng.uniform(0.005, 0.04))
        _, code = self.call("unlock", 2, "Unlock", rwmutex_pb2.UnlockRequest(
            registry=self.cfg["registry"], key=key.encode(), session_id=self.sid, token=got.token),
            key=key, sid=self.sid, token=got.token)
        self.react(code)


class Worker:
    def __init__(self, cfg):
        self.cfg = cfg
        self.hist = History(cfg["history"])
        self.link = Link(cfg["target_file"])
        self.stopping = STOP
        self.crashed = threading.Event()
        self.clients = [Client(self, i) for i in range(cfg["clients"])]

    def crash(self, text):
        self.hist.log("crash", traceback=text)
        self.crashed.set()

    def drop_channel(self):
        self.hist.log("drop_channel")
        self.link.drop()

    def cut_keepalives(self):
        pause = random.uniform(0, 1.2) * self.cfg["ttl_ms"] / 1000
        self.hist.log("cut_keepalive", seconds=pause)
        for client in self.clients:
            keeper = client.keeper
            if keeper is not None:
                keeper.cut(pause)

    def run(self):
        # The ready signal (Incarnation.ready): main() has installed every
        # handler by now, so any signal from here on is handled.
        self.hist.log("start", pid=os.getpid(), name=self.cfg["name"])
        for client in self.clients:
            client.start()
        give_up = time.monotonic() + self.cfg["max_run_s"]
        # The main thread only waits, so signal handlers run promptly.
        while any(c.is_alive() for c in self.clients) and not self.crashed.is_set():
            time.sleep(0.05)
            if time.monotonic() > give_up:
                self.stopping.set()
        self.hist.log("exit")
        self.hist.close()
        return 3 if self.crashed.is_set() else 0


def die_with_parent(parent_pid):
    """The kernel SIGKILLs us if the test process dies first."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent_pid:
        os._exit(1)


def main():
    cfg = json.loads(sys.argv[1])
    die_with_parent(cfg["parent_pid"])
    worker = Worker(cfg)
    signal.signal(signal.SIGUSR1, lambda *_: worker.drop_channel())
    signal.signal(signal.SIGUSR2, lambda *_: worker.cut_keepalives())
    code = worker.run()
    os._exit(code)  # gRPC's threads must not hold the exit up


if __name__ == "__main__":
    main()
