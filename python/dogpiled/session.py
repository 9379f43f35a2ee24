"""The session every grant hangs on, kept alive on a background thread."""
import logging
import os
import socket
import threading

import grpc

from dogpiled.errors import from_rpc
from dogpiled.v1 import sessions_pb2, sessions_pb2_grpc

log = logging.getLogger(__name__)


def default_client_name():
    return f"{socket.gethostname()} pid {os.getpid()} (python)"


class Session:
    """One lease on the daemon, opened on first use.

    A daemon thread renews it over a KeepAlive stream every third of its
    TTL. When the daemon reports the session unknown (its TTL passed, it was
    closed, or the daemon restarted), everything it held is gone: a new
    session replaces it and `on_lost(lost_session_id, reason)` is called on
    the thread that noticed. Grants made under the old id keep that id, so
    the daemon refuses them from then on (fencing).

    Thread-safe. close() ends the lease at once.
    """

    def __init__(self, channel, ttl=None, client_name=None, on_lost=None,
                 rpc_timeout=5.0, metadata=None):
        self._channel = channel
        # Credentials sent with Open, KeepAlive and Close: the daemon binds
        # the session to the identity that opened it.
        self._metadata = metadata
        self._stub = sessions_pb2_grpc.SessionsStub(channel)
        self._ttl_ms = 0 if ttl is None else int(ttl * 1000)
        self._client_name = client_name or default_client_name()
        self._on_lost = on_lost
        self._rpc_timeout = rpc_timeout
        self._lock = threading.Lock()
        self._id = 0  # 0: none open
        self._granted_ttl_ms = 0
        self._stream = None
        self._thread = None
        self._closed = False
        # Set to end the current KeepAlive stream (close, or id replaced).
        self._wake = threading.Event()
        self._reconnect = None  # see _keep_alive

    @property
    def id(self):
        """The current session id, opening a session if none is open."""
        with self._lock:
            if self._closed:
                raise RuntimeError("dogpiled session is closed")
            if not self._id:
                self._open_locked()
            return self._id

    @property
    def ttl(self):
        """The TTL the daemon granted, in seconds (0 before the first open)."""
        return self._granted_ttl_ms / 1000.0

    def lost(self, session_id, reason):
        """Called when the daemon said `session_id` is unknown: replaces it
        (if it is still current) and reports the loss once."""
        with self._lock:
            if self._closed or session_id != self._id:
                return
            self._id = 0
            self._wake.set()
            try:
                self._open_locked()
            except Exception as e:  # the next `id` retries the open
                log.warning("dogpiled: cannot reopen a session: %s", e)
        log.warning("dogpiled: session %d lost: %s", session_id, reason)
        if self._on_lost is not None:
            try:
                self._on_lost(session_id, reason)
            except Exception:
                log.exception("dogpiled: on_session_lost callback failed")

    def close(self):
        """Ends the session now: the daemon releases what it held."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            session_id, self._id = self._id, 0
            stream, thread = self._stream, self._thread
            self._wake.set()
        if stream is not None:
            stream.cancel()
        if self._reconnect is not None:
            self._reconnect.cancel()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)
        if session_id:
            try:
                self._stub.Close(
                    sessions_pb2.CloseRequest(session_id=session_id),
                    timeout=self._rpc_timeout, metadata=self._metadata)
            except grpc.RpcError as e:  # already ended, or daemon gone
                log.debug("dogpiled: Close(%d): %s", session_id, e.code())

    def _open_locked(self):
        try:
            response = self._stub.Open(
                sessions_pb2.OpenRequest(ttl_ms=self._ttl_ms,
                                         client_name=self._client_name),
                timeout=self._rpc_timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise from_rpc(e, "Open") from None
        self._id = response.session_id
        self._granted_ttl_ms = response.ttl_ms
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._keep_alive, name="dogpiled-keepalive",
                daemon=True)
            self._thread.start()

    def _requests(self, session_id, period):
        while True:
            yield sessions_pb2.KeepAliveRequest(session_id=session_id)
            if self._wake.wait(period):
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
                if session_id:
                    stream = self._stub.KeepAlive(
                        self._requests(session_id, period),
                        metadata=self._metadata)
                    self._stream = stream
            if not session_id:
                # Lost and not reopened yet: the next `id` reopens.
                self._wake.wait(period)
                continue
            try:
                for response in stream:
                    self._granted_ttl_ms = response.ttl_ms
                    retry = 0.05
            except grpc.RpcError as e:
                if self._closed:
                    return
                if e.code() == grpc.StatusCode.NOT_FOUND:
                    self.lost(session_id, f"keep-alive: {e.details()}")
                elif e.code() != grpc.StatusCode.CANCELLED:
                    # Daemon unreachable: retry well inside the TTL; if the
                    # lease ran out meanwhile, the next stream says so.
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
