"""The session every grant hangs on, kept alive on a background thread."""
import collections
import logging
import os
import socket
import threading
import time

import grpc

from dogpiled.errors import SessionLost, from_rpc
from dogpiled.v1 import sessions_pb2, sessions_pb2_grpc

log = logging.getLogger(__name__)


def default_client_name():
    return f"{socket.gethostname()} pid {os.getpid()} (python)"


# The lease counts as lost this fraction of its TTL after the last renewal
# the daemon answered: before the daemon can end it, so a holder that stops
# on loss never overlaps with the next one (the C++ SDK does the same).
LOST_AFTER_TTL_FRACTION = 0.8


class Session:
    """One lease on the daemon, opened on first use. docs/sessions.md
    describes the behaviour, the same in the C++ SDK.

    A daemon thread renews it over a KeepAlive stream every third of its
    TTL. The lease counts as lost 4/5 of the TTL after the last renewal the
    daemon answered (the local lease deadline), or at once when the daemon
    reports it unknown. Then every role and lock taken under it is lost:
    `on_lost(lost_session_id, reason)` is called, and publishing,
    abandoning or releasing one of them raises SessionLost without reaching
    the daemon, so a lost grant is never carried into the next lease. The
    old lease is closed on the daemon if it can be reached (its grants pass
    on at once) and, unless `reopen` is false, a new one is opened; with
    reopen false, `id` raises SessionLost from then on.

    Thread-safe. close() ends the lease at once.
    """

    def __init__(self, channel, ttl=None, client_name=None, on_lost=None,
                 rpc_timeout=5.0, metadata=None, reopen=True):
        self._channel = channel
        # Credentials sent with Open, KeepAlive and Close: the daemon binds
        # the session to the identity that opened it.
        self._metadata = metadata
        self._stub = sessions_pb2_grpc.SessionsStub(channel)
        self._ttl_ms = 0 if ttl is None else int(ttl * 1000)
        self._client_name = client_name or default_client_name()
        self._on_lost = on_lost
        self._rpc_timeout = rpc_timeout
        self._reopen = reopen
        self._lock = threading.Lock()
        self._id = 0  # 0: none open
        self._granted_ttl_ms = 0
        self._lost_at = None  # monotonic local lease deadline of self._id
        self._lost_reason = None  # why the last lease was lost
        self._stream = None
        self._thread = None
        self._watchdog = None
        self._closed = False
        # Set to end the current KeepAlive stream (close, or id replaced).
        self._wake = threading.Event()
        # Set to send a KeepAlive now (the near-cache's watch changed); _wake
        # sets it too.
        self._kick = threading.Event()
        # The near-cache's watcher (dogpiled.watch.Watcher), if any: named in
        # every KeepAlive and told of answers, renewals and losses.
        self.watch_hooks = None
        # Notified when the deadline moves or the session closes.
        self._deadline_moved = threading.Condition(self._lock)
        self._reconnect = None  # see _keep_alive

    @property
    def id(self):
        """The current session id, opening a session if none is open."""
        with self._lock:
            if self._closed:
                raise RuntimeError("dogpiled session is closed")
            if not self._id:
                if self._lost_reason is not None and not self._reopen:
                    raise SessionLost(
                        f"session lost: {self._lost_reason} (reopen is off)",
                        reason="SESSION_NOT_FOUND")
                self._open_locked()
            return self._id

    @property
    def ttl(self):
        """The TTL the daemon granted, in seconds (0 before the first open)."""
        return self._granted_ttl_ms / 1000.0

    def current_id(self, timeout):
        """The live lease's id without opening one: waits up to `timeout`
        for one to be open. 0 if none (or closed)."""
        with self._lock:
            if not self._id and not self._closed:
                self._deadline_moved.wait(timeout)
            return 0 if self._closed else self._id

    def kick(self):
        """Sends a KeepAlive now, naming the near-cache's watch."""
        self._kick.set()

    def holds(self, session_id):
        """Raises SessionLost unless `session_id` is the current, live
        lease: a grant taken under a lost lease is gone."""
        with self._lock:
            if session_id and session_id == self._id:
                return
        raise SessionLost(
            f"session {session_id} was lost, and every grant taken under "
            "it with it", grpc.StatusCode.NOT_FOUND,
            reason="SESSION_NOT_FOUND",
            metadata={"field": "session_id", "session_id": str(session_id)})

    def lost(self, session_id, reason):
        """`session_id` is lost (the daemon said it is unknown, or its local
        deadline passed): if it is still current, closes it on the daemon
        (best effort), replaces it unless reopen is off, and reports the
        loss once."""
        with self._lock:
            if self._closed or session_id != self._id:
                return
            self._id = 0
            self._lost_at = None
            self._lost_reason = reason
            self._wake.set()
            self._kick.set()
            self._deadline_moved.notify_all()
        log.warning("dogpiled: session %d lost: %s", session_id, reason)
        if self.watch_hooks is not None:  # stop serving before telling
            self.watch_hooks.session_lost(session_id)
        if self._on_lost is not None:
            try:
                self._on_lost(session_id, reason)
            except Exception:
                log.exception("dogpiled: on_session_lost callback failed")
        try:  # the daemon may still hold it (a partition): free it now
            self._stub.Close(sessions_pb2.CloseRequest(session_id=session_id),
                             timeout=min(self._rpc_timeout,
                                         max(self.ttl, 0.1)))
        except grpc.RpcError:
            pass  # already ended, or unreachable: its TTL ends it
        if not self._reopen:
            return
        with self._lock:
            if self._closed or self._id:
                return
            try:
                self._open_locked()
            except Exception as e:  # the next `id` retries the open
                log.warning("dogpiled: cannot reopen a session: %s", e)

    def close(self):
        """Ends the session now: the daemon releases what it held."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            session_id, self._id = self._id, 0
            stream, thread = self._stream, self._thread
            watchdog = self._watchdog
            self._wake.set()
            self._kick.set()
            self._deadline_moved.notify_all()
        if stream is not None:
            stream.cancel()
        if self._reconnect is not None:
            self._reconnect.cancel()
        for t in (thread, watchdog):
            if t is not None and t is not threading.current_thread():
                t.join(timeout=5)
        if session_id:
            try:
                self._stub.Close(
                    sessions_pb2.CloseRequest(session_id=session_id),
                    timeout=self._rpc_timeout, metadata=self._metadata)
            except grpc.RpcError as e:  # already ended, or daemon gone
                log.debug("dogpiled: Close(%d): %s", session_id, e.code())

    def _open_locked(self):
        sent = time.monotonic()
        try:
            response = self._stub.Open(
                sessions_pb2.OpenRequest(ttl_ms=self._ttl_ms,
                                         client_name=self._client_name),
                # After an outage the channel may still be backing off:
                # wait for it (within rpc_timeout) rather than fail at once.
                timeout=self._rpc_timeout, wait_for_ready=True,
                metadata=self._metadata)
        except grpc.RpcError as e:
            raise from_rpc(e, "Open") from None
        self._id = response.session_id
        self._granted_ttl_ms = response.ttl_ms
        self._lost_at = sent + LOST_AFTER_TTL_FRACTION * response.ttl_ms / 1e3
        self._deadline_moved.notify_all()
        if self.watch_hooks is not None:
            self.watch_hooks.lease(self._id, self._lost_at)
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._keep_alive, name="dogpiled-keepalive",
                daemon=True)
            self._thread.start()
            self._watchdog = threading.Thread(
                target=self._watch_deadline, name="dogpiled-lease-deadline",
                daemon=True)
            self._watchdog.start()

    def _renewed(self, session_id, sent, ttl_ms):
        with self._lock:
            if session_id != self._id:
                return  # a late answer for a lease already lost
            self._granted_ttl_ms = ttl_ms
            deadline = sent + LOST_AFTER_TTL_FRACTION * ttl_ms / 1e3
            if self._lost_at is None or deadline > self._lost_at:
                self._lost_at = deadline
                self._deadline_moved.notify_all()
                if self.watch_hooks is not None:
                    self.watch_hooks.lease(session_id, deadline)

    def _watch_deadline(self):
        """Declares the lease lost when its local deadline passes."""
        while True:
            with self._lock:
                if self._closed:
                    return
                session_id, deadline = self._id, self._lost_at
                now = time.monotonic()
                if not session_id or deadline is None or now < deadline:
                    self._deadline_moved.wait(
                        None if deadline is None else deadline - now)
                    continue
            self.lost(session_id, "not renewed within its TTL of "
                      f"{self._granted_ttl_ms} ms")

    def _requests(self, session_id, period, sent):
        hooks = self.watch_hooks
        while True:
            # Cleared before naming the watch, so a change after this point
            # sends another KeepAlive at once.
            self._kick.clear()
            named = hooks.named(session_id) if hooks else (0, None)
            sent.append((time.monotonic(), named))
            yield sessions_pb2.KeepAliveRequest(session_id=session_id,
                                                watch_id=named[0])
            self._kick.wait(period)
            if self._wake.is_set():
                return  # half-close: the stream ends and the loop moves on

    def _keep_alive(self):
        retry = 0.05
        while True:
            with self._lock:
                if self._closed:
                    return
                session_id = self._id
                self._wake.clear()
                period = max(self._granted_ttl_ms / 3000.0, 0.02)
                sent = collections.deque()  # send times of unanswered renewals
                if session_id:
                    stream = self._stub.KeepAlive(
                        self._requests(session_id, period, sent),
                        metadata=self._metadata)
                    self._stream = stream
            if not session_id:
                # Lost and not reopened yet: the next `id` reopens.
                self._wake.wait(period)
                continue
            hooks = self.watch_hooks
            try:
                for response in stream:
                    # Answers come in order: this one renewed the lease no
                    # earlier than the oldest unanswered request was sent,
                    # and answers the watch that request named.
                    sent_at, named = (sent.popleft() if sent else
                                      (time.monotonic(), (0, None)))
                    self._renewed(session_id, sent_at, response.ttl_ms)
                    if hooks is not None:
                        hooks.answered(session_id, named,
                                       response.watch_lost)
                    retry = 0.05
            except grpc.RpcError as e:
                if self._closed:
                    return
                if hooks is not None:
                    # A new stream could be answered before requests of the
                    # broken one still in flight: trust nothing across it.
                    hooks.keep_alive_broken(session_id)
                if e.code() == grpc.StatusCode.NOT_FOUND:
                    self.lost(session_id, f"keep-alive: {e.details()}")
                elif e.code() != grpc.StatusCode.CANCELLED:
                    # Daemon unreachable: retry well inside the TTL; the
                    # local deadline declares the lease lost if need be.
                    log.info("dogpiled: keep-alive of session %d: %s",
                             session_id, e.code())
                    # gRPC 1.51 lets a channel that lost its connection sit
                    # idle for seconds; watching for readiness reconnects it
                    # at once.
                    if self._reconnect is None or self._reconnect.done():
                        self._reconnect = grpc.channel_ready_future(
                            self._channel)
                    self._wake.wait(min(retry, period))
                    retry = min(retry * 2, period)
