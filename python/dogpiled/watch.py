"""The watch that keeps a near-cache coherent (docs/near-cache.md, steps
2 to 7): one Dogpile.Watch stream for the client's current session.

- SUBSCRIBED makes the new watch the one every KeepAlive names; it is
  trusted (values may be kept and served) only once a KeepAlive naming it
  was answered with watch_lost false.
- INVALIDATED is applied to the near-cache (entries dropped, reads in
  flight poisoned) before it is acked.
- The watch is lost, the near-cache dropped at once and a KeepAlive naming
  no watch sent at once, when the stream ends or fails, when nothing
  arrived for 3 heartbeat intervals, when a KeepAlive answer says
  watch_lost, when the KeepAlive stream breaks, and when the session's
  local lease deadline passes or the session is lost. Then a new watch is
  opened.

Thread-safe. Two daemon threads: one reads the stream, one notices
silence. Session calls the hooks (named, answered, lease, session_lost,
keep_alive_broken) from its own threads.
"""
import logging
import queue
import threading
import time

import grpc

from dogpiled.v1 import dogpile_pb2

log = logging.getLogger(__name__)

_Event = dogpile_pb2.WatchEvent
# A watch silent for this many heartbeat intervals is lost.
SILENT_HEARTBEATS = 3
# Pause before re-subscribing after a failure, doubling up to the maximum.
RESUBSCRIBE_FIRST_PAUSE = 0.05
RESUBSCRIBE_MAX_PAUSE = 1.0


class Watcher:
    def __init__(self, stub, session, near, metadata=None,
                 clock=time.monotonic):
        self._stub = stub
        self._session = session
        self._near = near
        self._metadata = metadata
        self._clock = clock
        self._lock = threading.Condition()
        self._closed = False
        self._call = None
        self._session_id = 0  # the session of the watch below
        self._watch_id = 0  # subscribed and not lost; named in KeepAlives
        # Tells answers to a KeepAlive naming an older watch apart from one
        # naming this one, even if a restarted daemon reuses the id.
        self._generation = 0
        self._trusted = False
        self._silent_after = None  # monotonic; None: no heartbeat known yet
        self._heartbeat = 1.0  # seconds, from SUBSCRIBED
        self._lease_until = 0.0
        self.losses = 0  # watches lost so far (gauges, for tests)
        self.applied = 0  # INVALIDATED events applied and acked
        session.watch_hooks = self
        self._threads = [
            threading.Thread(target=self._run, name="dogpiled-watch",
                             daemon=True),
            threading.Thread(target=self._watch_silence,
                             name="dogpiled-watch-silence", daemon=True)]
        for t in self._threads:
            t.start()

    def stop(self):
        """Stops serving and watching; join() waits for the threads (after
        the session is closed, so none waits for a lease)."""
        with self._lock:
            self._closed = True
            call = self._call
            self._lock.notify_all()
        self._near.lose()
        if call is not None:
            call.cancel()

    def join(self):
        for t in self._threads:
            if t is not threading.current_thread():
                t.join(timeout=5)

    def check(self):
        """Acts on a passed deadline (silence, lease) at once, instead of
        waiting for the threads that watch them."""
        now = self._clock()
        with self._lock:
            silent = (self._silent_after is not None
                      and now >= self._silent_after)
            expired = self._trusted and now >= self._lease_until
        if silent:
            self._lose("no event for "
                       f"{SILENT_HEARTBEATS} heartbeat intervals")
        elif expired:
            self._lose("the session's local lease deadline passed")

    def wait_trusted(self, timeout):
        """True once a watch is trusted (for tests and benchmarks)."""
        deadline = self._clock() + timeout
        with self._lock:
            while not self._trusted:
                left = deadline - self._clock()
                if left <= 0 or self._closed:
                    return False
                self._lock.wait(left)
            return True

    # --- hooks called by Session --------------------------------------------

    def named(self, session_id):
        with self._lock:
            if session_id != self._session_id or not self._watch_id:
                return 0, None
            return self._watch_id, self._generation

    def answered(self, session_id, named, watch_lost):
        watch_id, generation = named
        with self._lock:
            current = (watch_id and session_id == self._session_id
                       and generation == self._generation)
            if not current:
                return
            if not watch_lost and not self._trusted:
                self._trusted = True
                self._near.trust(watch_id, self._silent_after,
                                 self._lease_until)
                self._lock.notify_all()
                log.debug("dogpiled: watch %d trusted", watch_id)
                return
        if watch_lost:
            self._lose("the daemon reports it lost (KeepAlive)")

    def lease(self, session_id, until):
        # Only the current lease is renewed (Session checks), and a watch
        # is only ever opened for the current lease.
        with self._lock:
            self._lease_until = until
            self._near.lease(until)

    def session_lost(self, session_id):
        self._lose(f"session {session_id} lost", session_id)

    def keep_alive_broken(self, session_id):
        self._lose("the KeepAlive stream broke", session_id)

    # --- the stream ---------------------------------------------------------

    def _lose(self, why, session_id=None):
        """Drops the near-cache, stops trusting and naming the watch, sends
        a KeepAlive naming none, and ends the stream (the reader thread then
        opens a new one)."""
        with self._lock:
            if session_id is not None and session_id != self._session_id:
                return
            had = self._watch_id
            self._watch_id = 0
            self._generation += 1
            self._trusted = False
            self._silent_after = None
            call, self._call = self._call, None
            self._lock.notify_all()
        dropped = self._near.lose()
        if had:
            self.losses += 1
            log.info("dogpiled: near-cache watch %d lost (%s): %d values "
                     "dropped", had, why, dropped)
        self._session.kick()
        if call is not None:
            call.cancel()

    def _run(self):
        pause = RESUBSCRIBE_FIRST_PAUSE
        while True:
            session_id = self._session.current_id(timeout=1.0)
            with self._lock:
                if self._closed:
                    return
            if not session_id:
                continue
            heard = self._subscribe_and_read(session_id)
            pause = RESUBSCRIBE_FIRST_PAUSE if heard else min(
                pause * 2, RESUBSCRIBE_MAX_PAUSE)
            with self._lock:
                if not self._closed:
                    self._lock.wait(pause)

    def _subscribe_and_read(self, session_id):
        """One watch, until it ends. Returns whether it was subscribed."""
        requests = queue.SimpleQueue()
        requests.put(dogpile_pb2.WatchRequest(session_id=session_id))
        with self._lock:
            if self._closed:
                return False
            call = self._stub.Watch(iter(requests.get, None),
                                    metadata=self._metadata)
            self._call = call
            self._session_id = session_id
        subscribed = False
        why = "the stream ended"
        try:
            for event in call:
                if event.kind == _Event.KIND_SUBSCRIBED:
                    subscribed = True
                    self._subscribed(call, event)
                    continue
                self._heard()
                if event.kind == _Event.KIND_INVALIDATED:
                    # Applied before the ack: the daemon answers the
                    # Invalidate or Publish on the ack.
                    self._near.invalidate(event.registry, event.key)
                    requests.put(dogpile_pb2.WatchRequest(ack_seq=event.seq))
                    self.applied += 1
        except grpc.RpcError as e:
            why = f"{e.code().name}: {e.details()}"
        finally:
            requests.put(None)
        with self._lock:
            ours = self._call is call
        if ours:
            self._lose(why)
        return subscribed

    def _subscribed(self, call, event):
        heartbeat = max(event.heartbeat_ms, 1) / 1000.0
        with self._lock:
            if self._call is not call:
                return  # already lost
            self._heartbeat = heartbeat
            self._watch_id = event.watch_id
            self._generation += 1
            self._silent_after = self._clock() + SILENT_HEARTBEATS * heartbeat
            self._lock.notify_all()
        self._session.kick()  # step 3: name it in a KeepAlive at once

    def _heard(self):
        with self._lock:
            if self._silent_after is None:
                return
            self._silent_after = (self._clock()
                                  + SILENT_HEARTBEATS * self._heartbeat)
            until = self._silent_after
            trusted = self._trusted
        if trusted:
            self._near.heard(until)

    def _watch_silence(self):
        while True:
            with self._lock:
                if self._closed:
                    return
                after = self._silent_after
                now = self._clock()
                if after is None or now < after:
                    self._lock.wait(None if after is None else after - now)
                    continue
            self._lose(f"no event for {SILENT_HEARTBEATS} heartbeat "
                       "intervals")
