"""The near-cache: FRESH values kept in process memory, bounded in bytes.

It only stores and forgets; dogpiled.watch decides when a watch is trusted
and when it is lost, following docs/near-cache.md. The rules kept here:

- a value is served only while a watch is trusted, the lease's local
  deadline has not passed, the watch was heard from within 3 heartbeat
  intervals, and the value is fresh for the caller's expire_ms by the
  daemon's clock (its age counted from when the read was *sent*);
- a read in flight is kept only if the watch trusted when it was sent is
  still trusted when it comes back, the daemon registered it under that
  watch, and no INVALIDATED event in its scope arrived meanwhile.

Memory: each entry is charged len(registry) + len(key) + len(value) +
ENTRY_OVERHEAD bytes; past `max_bytes` the least recently used go first.

Thread-safe: one lock guards everything; no method blocks or calls out.
"""
import collections
import math
import threading
import time

# Bytes charged per entry besides its registry, key and value: about what
# CPython spends on the entry object, its dict slot and the key tuple.
ENTRY_OVERHEAD = 200


class StaleValue(bytes):
    """A value served from the near-cache while the daemon could not be
    reached (Client(max_stale_on_error=...)): its freshness is unknown.
    `stale_for` is how many seconds it is past its expiry (or past the
    moment its watch broke, for a value that never expires)."""

    stale = True
    stale_for = 0.0


class _Entry:
    __slots__ = ("value", "created_time", "origin", "size", "dropped_at")

    def __init__(self, value, created_time, origin, size):
        self.value = value
        self.created_time = created_time
        # Monotonic time at which the value's age was 0 by the daemon's
        # answer: the read's send time minus the age it reported, so early
        # rather than late.
        self.origin = origin
        self.size = size
        self.dropped_at = None  # set when moved to the stale shelf

    def fresh_until(self, expire_ms):
        if expire_ms == 0:
            return math.inf
        return self.origin + expire_ms / 1000.0


class PendingRead:
    """A tracked read in flight (see NearCache.begin)."""

    __slots__ = ("registry", "key", "epoch", "watch_id", "sent", "poisoned")

    def __init__(self, registry, key, epoch, watch_id, sent):
        self.registry = registry
        self.key = key
        self.epoch = epoch
        self.watch_id = watch_id
        self.sent = sent
        self.poisoned = False


def _in_scope(registry, key, entry_registry, entry_key):
    """An INVALIDATED event's scope: empty key is the registry, empty
    registry too is everything."""
    if not registry:
        return True
    return registry == entry_registry and (not key or key == entry_key)


class NearCache:
    def __init__(self, max_bytes, max_stale_on_error=0.0,
                 clock=time.monotonic):
        if max_bytes < 0:
            raise ValueError(f"near_cache_bytes: must not be negative, got "
                             f"{max_bytes!r}")
        if max_stale_on_error < 0:
            raise ValueError(f"max_stale_on_error: must not be negative, got "
                             f"{max_stale_on_error!r}")
        self.max_bytes = max_bytes
        self.max_stale_on_error = max_stale_on_error
        self._clock = clock
        self._lock = threading.Lock()
        self._entries = collections.OrderedDict()  # (registry, key) -> _Entry
        # Entries dropped because the watch broke, kept only for
        # max_stale_on_error; never served as FRESH.
        self._shelf = collections.OrderedDict()
        self._bytes = 0
        self._pending = set()
        self._watch_id = 0  # the trusted watch, 0: none
        self._epoch = 0  # changes whenever trust is given or taken
        self._heard_until = 0.0  # 3 heartbeat intervals after the last event
        self._lease_until = 0.0  # the session's local lease deadline
        self.hits = 0  # served from memory (read without the lock: a gauge)

    # --- reads --------------------------------------------------------------

    def lookup(self, registry, key, expire_ms):
        """The value of (registry, key) if it may be served as FRESH for
        `expire_ms` (the Acquire field) now, else None."""
        if expire_ms < 0:
            return None
        now = self._clock()
        with self._lock:
            if (not self._watch_id or now >= self._heard_until
                    or now >= self._lease_until):
                return None
            entry = self._entries.get((registry, key))
            if entry is None or now >= entry.fresh_until(expire_ms):
                return None
            self._entries.move_to_end((registry, key))
            self.hits += 1
            return entry

    def serviceable(self):
        """False once a deadline passed that the watcher has yet to act on
        (silence, lease): the caller should have it checked."""
        now = self._clock()
        return not self._watch_id or (now < self._heard_until
                                      and now < self._lease_until)

    def begin(self, registry, key):
        """Records a read about to be sent. Returns None when no watch is
        trusted (send it untracked), else the PendingRead to pass to
        complete() and then end()."""
        with self._lock:
            if not self._watch_id:
                return None
            pending = PendingRead(registry, key, self._epoch, self._watch_id,
                                  self._clock())
            self._pending.add(pending)
            return pending

    def complete(self, pending, response):
        """Keeps a FRESH AcquireResponse of a tracked read if the rules
        allow (see the module docstring). The daemon answered: any stale
        copy of the key is superseded either way."""
        with self._lock:
            self._drop_from(self._shelf, (pending.registry, pending.key))
            if (pending.poisoned or pending.epoch != self._epoch
                    or response.near_cache_watch_id != pending.watch_id
                    or not response.has_value or response.fresh_for_ms == 0):
                return
            size = (len(pending.registry) + len(pending.key)
                    + len(response.value) + ENTRY_OVERHEAD)
            if size > self.max_bytes:
                return
            # age_ms is whole milliseconds: count one more, so the entry
            # never outlives the daemon's own verdict.
            entry = _Entry(response.value, response.created_time,
                           pending.sent - (response.age_ms + 1) / 1000.0,
                           size)
            self._drop_from(self._entries, (pending.registry, pending.key))
            self._entries[(pending.registry, pending.key)] = entry
            self._bytes += size
            self._evict()

    def end(self, pending):
        if pending is not None:
            with self._lock:
                self._pending.discard(pending)

    def forget(self, registry, key):
        """The daemon answered a read of the key: a stale copy is moot."""
        with self._lock:
            self._drop_from(self._shelf, (registry, key))

    def stale(self, registry, key, expire_ms):
        """A value the watch's break dropped, if still within
        max_stale_on_error past its expiry: a StaleValue, else None."""
        if not self.max_stale_on_error:
            return None
        now = self._clock()
        with self._lock:
            entry = self._shelf.get((registry, key))
            if entry is None:
                return None
            since = entry.fresh_until(max(expire_ms, 0))
            if since == math.inf:
                since = entry.dropped_at
            if now > since + self.max_stale_on_error:
                return None
            value = StaleValue(entry.value)
            value.stale_for = max(0.0, now - since)
            return value

    # --- from the watcher ---------------------------------------------------

    def trust(self, watch_id, heard_until, lease_until):
        with self._lock:
            self._watch_id = watch_id
            self._epoch += 1
            self._heard_until = heard_until
            self._lease_until = lease_until

    def heard(self, until):
        with self._lock:
            self._heard_until = max(self._heard_until, until)

    def lease(self, until):
        with self._lock:
            self._lease_until = until

    def lose(self):
        """Stops trusting the watch and drops every value at once (onto the
        stale shelf if max_stale_on_error is set). Returns how many values
        were dropped."""
        now = self._clock()
        with self._lock:
            self._watch_id = 0
            self._epoch += 1
            dropped = len(self._entries)
            if self.max_stale_on_error:
                for k, entry in self._entries.items():
                    entry.dropped_at = now
                    self._shelf.pop(k, None)
                    self._shelf[k] = entry
                self._bytes = sum(e.size for e in self._shelf.values())
            else:
                self._bytes = 0
            self._entries.clear()
            return dropped

    def invalidate(self, registry, key):
        """Applies an INVALIDATED event: drops what it covers, stale copies
        included, and poisons reads in flight in its scope."""
        with self._lock:
            for table in (self._entries, self._shelf):
                if registry and key:
                    self._drop_from(table, (registry, key))
                    continue
                for k in [k for k in table if _in_scope(registry, key, *k)]:
                    self._drop_from(table, k)
            for pending in self._pending:
                if _in_scope(registry, key, pending.registry, pending.key):
                    pending.poisoned = True

    def clear(self):
        with self._lock:
            self._entries.clear()
            self._shelf.clear()
            self._bytes = 0

    # --- gauges -------------------------------------------------------------

    @property
    def trusted_watch(self):
        return self._watch_id

    def __len__(self):
        return len(self._entries)

    @property
    def bytes(self):
        return self._bytes

    # --- plumbing (lock held) ----------------------------------------------

    def _drop_from(self, table, k):
        entry = table.pop(k, None)
        if entry is not None:
            self._bytes -= entry.size

    def _evict(self):
        # Stale copies go before anything that may still be served fresh.
        for table in (self._shelf, self._entries):
            while self._bytes > self.max_bytes and table:
                _, entry = table.popitem(last=False)
                self._bytes -= entry.size
