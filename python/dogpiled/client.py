"""A client of one dogpiled daemon: dogpile get-or-create and RW locks."""
import collections
import concurrent.futures
import logging
import random
import threading
import time

import grpc

from dogpiled import errors
from dogpiled.channel import make_group_channel
from dogpiled.grants import LockGrant, Role
from dogpiled.near_cache import NearCache
from dogpiled.session import Session
from dogpiled.watch import Watcher
from dogpiled.v1 import (admin_pb2, admin_pb2_grpc, dogpile_pb2,
                         dogpile_pb2_grpc, rwmutex_pb2, rwmutex_pb2_grpc)

log = logging.getLogger(__name__)

_Acquired = dogpile_pb2.AcquireResponse
FRESH = _Acquired.OUTCOME_FRESH
STALE = _Acquired.OUTCOME_STALE
CREATE = _Acquired.OUTCOME_CREATE
NOT_READY = _Acquired.OUTCOME_NOT_READY

# Grant-taking calls that meet UNAVAILABLE are sent again this many times
# in all, pausing 50 ms, 100 ms, ... in between (within their deadline).
RETRY_ATTEMPTS = 4
RETRY_FIRST_PAUSE = 0.05

_ids = random.SystemRandom()

# Codes that mean the daemon could not be reached in time: a near-cached
# value may then be served stale (max_stale_on_error).
UNREACHABLE = (grpc.StatusCode.UNAVAILABLE,
                grpc.StatusCode.DEADLINE_EXCEEDED)

# What Client.read() returns; the fields of a PeekResponse, plus `stale`
# (a near-cached value served because the daemon could not be reached).
Read = collections.namedtuple(
    "Read", "has_value value created_time is_expired stale")


def new_request_id():
    """A random non-zero request_id, one per logical Acquire or Lock."""
    return _ids.randrange(1, 2 ** 64)


# The daemon's default cap on any wait: "as long as it takes".
MAX_WAIT_MS = 24 * 3600 * 1000

_MODES = {"read": rwmutex_pb2.LockRequest.MODE_READ,
          "write": rwmutex_pb2.LockRequest.MODE_WRITE}


def key_bytes(key):
    """A key as the daemon sees it: bytes of anything. Text is sent UTF-8
    encoded, so "k" and b"k" name the same key."""
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    raise TypeError(f"key: str or bytes, got {type(key).__name__}")


def wait_ms(seconds, name):
    """Seconds (None: as long as the daemon allows) to whole milliseconds."""
    if seconds is None:
        return MAX_WAIT_MS
    if seconds < 0:
        raise ValueError(f"{name}: must not be negative, got {seconds!r}")
    return int(round(seconds * 1000))


class Client:
    """A channel to one daemon and one session (opened on first use).

    `address` is "host:port", or for a replicated group (docs/
    replication.md) every member's "host:port,host:port,...": calls then go
    to the leader, follow it when it changes, and keep the session across
    the change. One member's "host:port" is followed to the leader it
    names too; list every member so the group stays reachable while that
    one is down.

    Thread-safe: share one per process. Times are seconds; the daemon's
    clock decides expiry.

    near_cache_bytes > 0 keeps FRESH values in process memory, up to that
    many bytes (LRU; see dogpiled.near_cache for how entries are counted),
    served without a round trip and kept coherent by a watch on the daemon
    (docs/near-cache.md): get_or_create() and read() use it. 0, the
    default, turns it off. max_stale_on_error (seconds, 0: off) lets those
    calls, when the daemon cannot be reached, return a value the
    near-cache dropped because its watch broke, up to that long past its
    expiry, as a StaleValue (bytes with `stale` true); without it they
    raise as usual. fail_open=True makes get_or_create(), when the daemon
    cannot be reached and no stale value may be served, run the creator in
    this process and return its value unstored, instead of raising. `token` is sent as "authorization: Bearer" for
    registries the daemon protects; tls_* are PEM files (see
    dogpiled.channel). close() (or leaving a `with` block) waits for
    background creators, then ends the session, which releases every grant
    it held.
    """

    def __init__(self, address, *, session_ttl=None, client_name=None,
                 on_session_lost=None, rpc_timeout=5.0, token=None,
                 tls=False, tls_ca=None, tls_cert=None, tls_key=None,
                 channel_options=(), background_workers=4,
                 reopen_session=True, near_cache_bytes=0,
                 max_stale_on_error=0.0, fail_open=False):
        self.address = address
        self._rpc_timeout = rpc_timeout
        # Registries the daemon protects with a token need it on every call.
        self._metadata = ((("authorization", f"Bearer {token}"),)
                          if token else None)
        self._channel = make_group_channel(
            address, tls=tls, tls_ca=tls_ca, tls_cert=tls_cert,
            tls_key=tls_key, options=channel_options)
        self._dogpile = dogpile_pb2_grpc.DogpileStub(self._channel)
        self._rwmutex = rwmutex_pb2_grpc.RWMutexStub(self._channel)
        self._admin = admin_pb2_grpc.AdminStub(self._channel)
        # The session is bound to the identity that opens it (the token,
        # here): Open, KeepAlive and Close carry it like every other call.
        self.session = Session(self._channel, session_ttl, client_name,
                               on_session_lost, rpc_timeout,
                               metadata=self._metadata,
                               reopen=reopen_session)
        self._workers = background_workers
        self._fail_open = fail_open
        self.near_cache = None
        self._watcher = None
        if near_cache_bytes:
            self.near_cache = NearCache(near_cache_bytes, max_stale_on_error)
            self._watcher = Watcher(self._dogpile, self.session,
                                    self.near_cache, self._metadata)
        self._executor = None
        self._pending = set()
        self._pending_lock = threading.Lock()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self, timeout=None):
        self.drain(timeout)
        if self._executor is not None:
            self._executor.shutdown(wait=False)
        if self._watcher is not None:
            self._watcher.stop()
        self.session.close()
        if self._watcher is not None:
            self._watcher.join()
        self._channel.close()

    # --- Dogpile -----------------------------------------------------------

    def get_or_create(self, registry, key, creator, expire=None, *,
                      async_creator=False, wait_timeout=None,
                      creation_timeout=None, early_refresh_beta=0.0):
        """The value of `key`, made by `creator()` (bytes) when needed.

        Fresh value: returned. Expired while someone else creates: the stale
        value, at once. Expired or missing and nobody creating: this caller
        runs `creator()` and publishes; with `async_creator` and a stale
        value to hand, the creator runs on a background thread and the
        stale value comes back now. Missing while someone creates: waits
        (parked on the daemon, no polling) for their value, or for the role
        if they give up; LockTimeout after `wait_timeout` seconds.
        `expire`: seconds a value stays fresh (None: forever).

        With a near-cache, a value it holds that is fresh for `expire` comes
        back without a round trip (not with early_refresh_beta, which the
        daemon decides on each read); see the class docstring for
        max_stale_on_error.
        """
        if expire is not None and expire <= 0:
            raise ValueError(f"expire: must be positive or None, got "
                             f"{expire!r}")
        expire_ms = 0 if expire is None else max(1, round(expire * 1000))
        near = self.near_cache if not early_refresh_beta else None
        if near is not None:
            hit = near.lookup(registry, key_bytes(key), expire_ms)
            if hit is not None:
                return hit.value
        try:
            response, role = self._acquire(
                registry, key, near, expire_ms=expire_ms,
                wait_timeout_ms=wait_ms(wait_timeout, "wait_timeout"),
                creation_timeout_ms=(0 if creation_timeout is None else
                                     wait_ms(creation_timeout,
                                             "creation_timeout")),
                early_refresh_beta=early_refresh_beta)
        except errors.DogpiledError as e:
            stale = self._stale_on_error(e, near, registry, key, expire_ms)
            if stale is not None:
                return stale
            if not (self._fail_open and e.code in UNREACHABLE):
                raise
            # Every caller of the fleet may be doing the same: the dogpile
            # this daemon exists to prevent, chosen by the application.
            log.warning("dogpiled: %s/%s created locally (fail_open): %s",
                        registry, key, e)
            return _bytes_creator(creator, key)()
        if role is None:
            return response.value
        checked = _bytes_creator(creator, key)
        if async_creator and response.has_value:
            self._run_in_background(role, checked)
            return response.value
        return role.run(checked)

    def acquire(self, registry, key, *, expire_ms=0, wait_timeout_ms=0,
                creation_timeout_ms=0, client_created_time=None,
                early_refresh_beta=0.0):
        """The raw Acquire call: returns (AcquireResponse, Role or None).
        See dogpile.proto for every field. Never served from, nor kept in,
        the near-cache."""
        return self._acquire(registry, key, None, expire_ms=expire_ms,
                             wait_timeout_ms=wait_timeout_ms,
                             creation_timeout_ms=creation_timeout_ms,
                             client_created_time=client_created_time,
                             early_refresh_beta=early_refresh_beta)

    def read(self, registry, key):
        """The stored value of `key` without waiting or taking a role, as a
        Read (the fields of a PeekResponse, and `stale`).

        Without a near-cache this is peek(). With one, a value it holds is
        served from memory. A miss peeks; only a value that Peek finds
        valid is read again with a tracked Acquire, whose FRESH answer the
        near-cache keeps (two round trips, once per value). Acquire is not
        sent for a missing or invalidated value because it would take the
        creator role, in the way of real creators; if the value vanished
        between the two calls, the role it got is abandoned at once.
        """
        if self.near_cache is None:
            return self._read_of(self.peek(registry, key), False)
        near, k = self.near_cache, key_bytes(key)
        hit = near.lookup(registry, k, 0)
        if hit is not None:
            return Read(True, hit.value, hit.created_time, False, False)
        try:
            peeked = self.peek(registry, key)
            if not peeked.has_value or peeked.is_expired:
                near.forget(registry, k)
                return self._read_of(peeked, False)
            response, role = self._acquire(registry, key, near)
        except errors.DogpiledError as e:
            stale = self._stale_on_error(e, near, registry, key, 0)
            if stale is None:
                raise
            return Read(True, stale, 0.0, True, True)
        if role is not None:
            try:
                role.abandon("a read, not a creator")
            except (errors.RoleLost, errors.SessionLost):
                pass  # handed on already
        return self._read_of(response, False)

    @staticmethod
    def _read_of(response, stale):
        # Acquire with expire_ms 0 finds a value expired only when it was
        # invalidated, as Peek does.
        return Read(response.has_value, response.value,
                    response.created_time, response.is_expired, stale)

    def _stale_on_error(self, error, near, registry, key, expire_ms):
        if near is None or error.code not in UNREACHABLE:
            return None
        stale = near.stale(registry, key_bytes(key), expire_ms)
        if stale is not None:
            log.warning("dogpiled: %s/%s served stale (%.3f s past its "
                        "expiry): %s", registry, key, stale.stale_for, error)
        return stale

    def _acquire(self, registry, key, near, *, expire_ms=0,
                 wait_timeout_ms=0, creation_timeout_ms=0,
                 client_created_time=None, early_refresh_beta=0.0):
        """Acquire, tracked for `near` (a NearCache, or None) when the
        answer can be kept: not lock-only, no early refresh."""
        k = key_bytes(key)
        pending = None
        if (near is not None and client_created_time is None
                and not early_refresh_beta):
            if not near.serviceable():
                self._watcher.check()
            pending = near.begin(registry, k)
        try:
            response, role = self._acquire_sent(
                registry, key, pending is not None, expire_ms, wait_timeout_ms,
                creation_timeout_ms, client_created_time, early_refresh_beta)
            if pending is not None and response.outcome == FRESH:
                near.complete(pending, response)
            elif near is not None:
                near.forget(registry, k)
            return response, role
        finally:
            if near is not None:
                near.end(pending)

    def _acquire_sent(self, registry, key, near_cache, expire_ms,
                      wait_timeout_ms, creation_timeout_ms,
                      client_created_time, early_refresh_beta):
        def request(session_id):
            r = dogpile_pb2.AcquireRequest(
                registry=registry, key=key_bytes(key), session_id=session_id,
                expire_ms=expire_ms, wait_timeout_ms=wait_timeout_ms,
                creation_timeout_ms=creation_timeout_ms,
                early_refresh_beta=early_refresh_beta, near_cache=near_cache)
            if client_created_time is not None:
                r.client_created_time = client_created_time
            return r
        response, session_id = self._with_session(
            f"Acquire {registry}/{key}", request, self._dogpile.Acquire,
            self._rpc_timeout + wait_timeout_ms / 1000.0)
        if response.outcome != CREATE:
            return response, None
        return response, Role(self, registry, key, session_id, response.token,
                              response.creation_deadline_ms)

    def peek(self, registry, key, expire_ms=0):
        """Reads a key without taking any role (PeekResponse)."""
        return self._call(f"Peek {registry}/{key}", self._dogpile.Peek,
                          dogpile_pb2.PeekRequest(registry=registry, key=key_bytes(key),
                                                  expire_ms=expire_ms))

    def peek_many(self, registry, keys, expire_ms=0):
        """Peeks several keys concurrently; PeekResponses in key order."""
        futures = [self._dogpile.Peek.future(
            dogpile_pb2.PeekRequest(registry=registry, key=key_bytes(k),
                                    expire_ms=expire_ms),
            timeout=self._rpc_timeout, metadata=self._metadata)
            for k in keys]
        return [self._result(f, f"Peek {registry}/{k}")
                for f, k in zip(futures, keys)]

    def invalidate(self, registry, key="", hard=False):
        """Marks `key`, or with no key the whole registry, as expired (soft:
        values stay as stale fallbacks) or absent (hard), fleet-wide."""
        self._call(f"Invalidate {registry}/{key}", self._dogpile.Invalidate,
                   dogpile_pb2.InvalidateRequest(registry=registry, key=key_bytes(key),
                                                 hard=hard))

    def invalidate_many(self, registry, keys, hard=False):
        futures = [self._dogpile.Invalidate.future(
            dogpile_pb2.InvalidateRequest(registry=registry, key=key_bytes(k),
                                          hard=hard),
            timeout=self._rpc_timeout, metadata=self._metadata)
            for k in keys]
        for f, k in zip(futures, keys):
            self._result(f, f"Invalidate {registry}/{k}")

    def drain(self, timeout=None):
        """Waits for background creators started by get_or_create."""
        with self._pending_lock:
            pending = list(self._pending)
        concurrent.futures.wait(pending, timeout=timeout)

    # --- RWMutex -----------------------------------------------------------

    def lock(self, registry, key, mode="write", timeout=None):
        """Takes a read or write lock, waiting up to `timeout` seconds
        (None: as long as the daemon allows; 0: try once). Returns a
        LockGrant (a context manager); raises LockTimeout if not granted."""
        grant = self.try_lock(registry, key, mode, timeout)
        if grant is None:
            raise errors.LockTimeout(
                f"{mode} lock {registry}/{key}: not granted within "
                f"{timeout} s")
        return grant

    def try_lock(self, registry, key, mode="write", timeout=0):
        """Like lock(), but returns None when not granted in time."""
        if mode not in _MODES:
            raise ValueError(f"mode: 'read' or 'write', got {mode!r}")
        wait = wait_ms(timeout, "timeout")
        response, session_id = self._with_session(
            f"Lock {registry}/{key}",
            lambda sid: rwmutex_pb2.LockRequest(
                registry=registry, key=key_bytes(key), session_id=sid,
                mode=_MODES[mode], wait_timeout_ms=wait),
            self._rwmutex.Lock, self._rpc_timeout + wait / 1000.0)
        if not response.acquired:
            return None
        return LockGrant(self, registry, key, session_id, response.token, mode)

    def read_lock(self, registry, key, timeout=None):
        return self.lock(registry, key, "read", timeout)

    def write_lock(self, registry, key, timeout=None):
        return self.lock(registry, key, "write", timeout)

    # --- Admin -------------------------------------------------------------

    def stats(self):
        """The daemon's gauges and counters (a StatsResponse)."""
        return self._call("Stats", self._admin.Stats,
                          admin_pb2.StatsRequest())

    # --- Used by Role and LockGrant ----------------------------------------

    def _publish(self, role, value, created_time):
        request = dogpile_pb2.PublishRequest(
            registry=role.registry, key=key_bytes(role.key), session_id=role.session_id,
            token=role.token, value=value)
        if created_time is not None:
            request.created_time = created_time
        return self._call_for(role, "Publish", self._dogpile.Publish,
                              request).created_time

    def _abandon(self, role, reason):
        self._release(role, "Abandon", self._dogpile.Abandon,
                      dogpile_pb2.AbandonRequest(
                          registry=role.registry, key=key_bytes(role.key),
                          session_id=role.session_id, token=role.token,
                          reason=reason))

    def _unlock(self, grant):
        self._release(grant, "Unlock", self._rwmutex.Unlock,
                      rwmutex_pb2.UnlockRequest(
                          registry=grant.registry, key=key_bytes(grant.key),
                          session_id=grant.session_id, token=grant.token))

    def _release(self, grant, name, method, request):
        """An Unlock or Abandon. Sent again after a lost answer (to a new
        leader), it may be refused as a repeat of its own release, which
        went through: that is success, not a lost grant."""
        try:
            self._call_for(grant, name, method, request)
        except errors.RoleLost as e:
            if not errors.released_before(e):
                raise

    def _call_for(self, grant, name, method, request):
        """A call on a grant. A grant of a lost lease is refused here, never
        sent under the lease that replaced it; its session found ended by
        the daemon is reported at once, without waiting for the keep-alive
        thread to notice."""
        self.session.holds(grant.session_id)
        try:
            return self._call(f"{name} {grant.registry}/{grant.key}", method,
                              request)
        except errors.SessionLost as e:
            self.session.lost(grant.session_id, str(e))
            raise

    # --- Plumbing ----------------------------------------------------------

    def _call(self, what, method, request, timeout=None):
        try:
            return method(request, timeout=timeout or self._rpc_timeout,
                          metadata=self._metadata)
        except grpc.RpcError as e:
            raise errors.from_rpc(e, what) from None

    def _result(self, future, what):
        try:
            return future.result()
        except grpc.RpcError as e:
            raise errors.from_rpc(e, what) from None

    def _with_session(self, what, make_request, method, timeout):
        """Makes a grant-taking call (Acquire, Lock) with a request_id.

        UNAVAILABLE (a dropped connection, a restarting daemon) is retried
        with the very same request, so the daemon can answer with the grant
        a lost answer carried: a few tries with growing pauses, all within
        `timeout` from the first. If the daemon no longer knows the session,
        it is replaced and the call made once more under a new request_id:
        a call refused for its session changed nothing."""
        deadline = time.monotonic() + timeout
        for attempt in (1, 2):
            session_id = self.session.id
            request = make_request(session_id)
            request.request_id = new_request_id()
            try:
                return self._send_retrying(method, request, deadline), \
                    session_id
            except grpc.RpcError as e:
                if e.code() == grpc.StatusCode.NOT_FOUND and attempt == 1:
                    self.session.lost(session_id, f"{what}: {e.details()}")
                    continue
                raise errors.from_rpc(e, what) from None

    def _send_retrying(self, method, request, deadline):
        pause = RETRY_FIRST_PAUSE
        for attempt in range(1, RETRY_ATTEMPTS + 1):
            try:
                return method(request,
                              timeout=max(0.001, deadline - time.monotonic()),
                              metadata=self._metadata)
            except grpc.RpcError as e:
                if (e.code() != grpc.StatusCode.UNAVAILABLE
                        or attempt == RETRY_ATTEMPTS
                        or time.monotonic() + pause >= deadline):
                    raise
                log.info("dogpiled: retrying request_id %d after %s",
                         request.request_id, e.code().name)
                # A pause between tries, not an ordering of threads.
                threading.Event().wait(pause)
                pause *= 2

    def _run_in_background(self, role, creator):
        with self._pending_lock:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    self._workers, thread_name_prefix="dogpiled-creator")
            future = self._executor.submit(role.run, creator)
            self._pending.add(future)
        future.add_done_callback(self._background_done)

    def _background_done(self, future):
        with self._pending_lock:
            self._pending.discard(future)
        if future.exception() is not None:
            log.error("dogpiled: background creator failed",
                      exc_info=future.exception())


def _bytes_creator(creator, key):
    def checked():
        value = creator()
        if not isinstance(value, (bytes, bytearray, memoryview)):
            raise TypeError(f"creator of {key!r} returned "
                            f"{type(value).__name__}, not bytes")
        return bytes(value)
    return checked
