"""The "dogpiled" dogpile.cache backend: values and the lock in the daemon."""
import json
import logging
import threading
import weakref

from dogpile.cache.api import NO_VALUE, BytesBackend, CachedValue

from dogpiled.client import UNREACHABLE, wait_ms
from dogpiled.errors import DogpiledError, RoleLost, SessionLost
from dogpiled.cache.connection import Connection, region_name_from_stack
from dogpiled.cache.invalidation import mark_soft_invalidated
from dogpiled.cache.mutex import CreatorMutex

log = logging.getLogger(__name__)

# Tries of a set() that finds another creator at work (see _store).
_SET_ATTEMPTS = 3


class DogpiledBackend(BytesBackend):
    """Stores a region's values in a dogpiled registry and uses the
    daemon's creator role as the dogpile lock.

    Arguments (all optional):

    - address: "host:port" of the daemon (default 127.0.0.1:7420).
    - registry: the daemon registry (default: the region's name, else
      "dogpile"). Regions of the fleet that share it share values.
    - session_ttl: seconds a dead process keeps its locks (daemon default
      10 s); client_name: shown in the daemon's log.
    - lock_wait_timeout: seconds a blocking acquire waits before raising
      dogpiled.LockTimeout (default: as long as the daemon allows).
    - creation_timeout: seconds a creator may take before its role passes
      on and its value is refused (daemon default 30 s).
    - on_session_lost: callable(session_id, reason), called when this
      process's session is lost (its local lease deadline passed, or the
      daemon ended it): its locks are gone. reopen_session (default True)
      opens a new one by itself; see docs/sessions.md.
    - rpc_timeout: seconds for calls that do not wait (default 5).
    - token: for a registry the daemon protects with a bearer token.
    - tls_ca, tls_cert, tls_key: PEM files for TLS (tls_ca alone) or
      mutual TLS (all three); tls=True uses the system's roots.
    - near_cache_bytes: > 0 keeps values in process memory, up to that
      many bytes, coherent with the daemon (docs/near-cache.md): get()
      is then served from memory while the value is neither invalidated
      nor replaced. 0 (the default) reads the daemon every time.
    - max_stale_on_error: seconds (0: off). With a near-cache, when the
      daemon cannot be reached, get() may return a value the near-cache
      dropped because its watch broke, stamped soft-invalidated: dogpile
      .cache then serves it as a stale value while it cannot take the
      lock, and region.get() returns it only with ignore_expiration.

    Values are dogpile.cache's serialized bytes (pickle unless the region
    sets a serializer). get() and get_multi() read without locking; set()
    publishes through the creator role when this process holds it, so a
    creator that lost its role stores nothing; delete() is a hard
    invalidation of the key, which also refuses creators already at work.
    """

    def __init__(self, arguments):
        self.conn = Connection(arguments, region_name_from_stack())
        self._mutexes = weakref.WeakValueDictionary()
        self._mutexes_lock = threading.Lock()
        # Per thread, {key: created_time} of what the last get handed to
        # dogpile.cache, which decides on it before calling acquire().
        self._seen = threading.local()

    @property
    def registry(self):
        return self.conn.registry

    def has_lock_timeout(self):
        # Roles end with creation_timeout, and with the session of a dead
        # process.
        return True

    def get_mutex(self, key):
        # One mutex per key and backend, so that set() finds the role.
        with self._mutexes_lock:
            mutex = self._mutexes.get(key)
            if mutex is None:
                mutex = self._mutexes[key] = CreatorMutex(self, key)
            return mutex

    def get_serialized(self, key):
        read = self.conn.client.read(self.registry, key)
        self._seen.created = {key: read.created_time}
        self._seen.stale = {key} if read.stale else set()
        return _value_of(read)

    def get_serialized_multi(self, keys):
        if not keys:
            return []
        client = self.conn.client
        if client.near_cache is None:
            reads = client.peek_many(self.registry, keys)
        else:  # one by one: most come from memory
            reads = [client.read(self.registry, k) for k in keys]
        self._seen.created = {k: r.created_time for k, r in zip(keys, reads)}
        self._seen.stale = {k for k, r in zip(keys, reads)
                            if getattr(r, "stale", False)}
        return [_value_of(r) for r in reads]

    # The object-level API, for callers that bypass the region's serializer
    # (proxies, tools): dogpile.cache's own "metadata|payload" format.

    def get(self, key):
        return self._parse(self.get_serialized(key))

    def get_multi(self, keys):
        return [self._parse(v) for v in self.get_serialized_multi(keys)]

    def set(self, key, value):
        self.set_serialized(key, self._format(value))

    def set_multi(self, mapping):
        for key, value in mapping.items():
            self.set(key, value)

    def set_serialized(self, key, value):
        created_time = _created_time(value)
        with self._mutexes_lock:
            mutex = self._mutexes.get(key)
        if mutex is not None and mutex.publish(value, created_time):
            return
        self._store(key, value, created_time)

    def set_serialized_multi(self, mapping):
        for key, value in mapping.items():
            self.set_serialized(key, value)

    def delete(self, key):
        self.conn.client.invalidate(self.registry, key, hard=True)

    def delete_multi(self, keys):
        if keys:
            self.conn.client.invalidate_many(self.registry, list(keys),
                                             hard=True)

    def invalidate_registry(self, hard):
        """Invalidates every value of the registry, fleet-wide."""
        self.conn.client.invalidate(self.registry, "", hard=hard)

    def close(self):
        """Ends the session (releasing its locks) and the channel."""
        self.conn.close()

    # --- Used by CreatorMutex ----------------------------------------------

    def _take_role(self, key, expire_ms, wait_timeout_ms):
        seen = getattr(self._seen, "created", {}).get(key)
        try:
            response, role = self.conn.client.acquire(
                self.registry, key, expire_ms=expire_ms,
                wait_timeout_ms=wait_timeout_ms,
                creation_timeout_ms=self._creation_timeout_ms())
        except DogpiledError as e:
            if (expire_ms < 0 and e.code in UNREACHABLE
                    and key in getattr(self._seen, "stale", ())):
                # dogpile.cache holds a stale value (max_stale_on_error)
                # and asks whether it may create: no, so it serves that.
                return None
            raise
        if (role is not None and expire_ms < 0 and seen is not None
                and response.has_value and response.created_time != seen):
            # dogpile.cache judged an older value expired; a creator has
            # published since (between its read and this call), so there is
            # nothing to create. It serves what it read, as for any STALE.
            try:
                role.abandon("value already replaced")
            except (RoleLost, SessionLost):
                pass  # handed on anyway
            return None
        return role

    def _creating(self, key):
        return self.conn.client.peek(self.registry, key).creating

    # --- Plumbing ----------------------------------------------------------

    def _parse(self, serialized):
        if serialized is NO_VALUE:
            return NO_VALUE
        metadata, _, payload = serialized.partition(b"|")
        return CachedValue(self.deserializer(payload), json.loads(metadata))

    def _format(self, value):
        return b"%b|%b" % (json.dumps(value.metadata).encode("ascii"),
                           self.serializer(value.payload))

    def _creation_timeout_ms(self):
        timeout = self.conn.creation_timeout
        return 0 if timeout is None else wait_ms(timeout, "creation_timeout")

    def _store(self, key, value, created_time):
        """A set() outside the dogpile lock (region.set(), or a creator whose
        blocking acquire found a value). The daemon stores values only
        through a creator role, so take one: "always expired" gets the role
        at once if it is free, or waits for a creator of a missing value.
        A direct write supersedes a creation already at work (as memcache
        leases do): that creator is invalidated, and refused if it publishes.
        """
        client = self.conn.client
        wait = wait_ms(self.conn.lock_wait_timeout, "lock_wait_timeout")
        for _ in range(_SET_ATTEMPTS):
            _, role = client.acquire(
                self.registry, key, expire_ms=-1, wait_timeout_ms=wait,
                creation_timeout_ms=self._creation_timeout_ms())
            if role is not None:
                try:
                    role.publish(value, created_time)
                except (RoleLost, SessionLost) as e:  # a delete came after
                    log.info("dogpiled: set %r not stored: %s", key, e)
                return
            client.invalidate(self.registry, key, hard=False)
        raise DogpiledError(f"set {key!r}: other creators kept taking the "
                            f"role ({_SET_ATTEMPTS} attempts)")


def _value_of(peeked):
    if not peeked.has_value:
        return NO_VALUE
    if peeked.is_expired:  # only an invalidation does that with expire_ms 0
        return mark_soft_invalidated(peeked.value)
    return peeked.value


def _created_time(serialized):
    """dogpile.cache's own stamp ("ct" of its JSON metadata), handed to the
    daemon so both agree on the value's age."""
    metadata, sep, _ = serialized.partition(b"|")
    try:
        ct = json.loads(metadata)["ct"] if sep else None
    except (ValueError, KeyError, TypeError):
        return None
    return float(ct) if isinstance(ct, (int, float)) else None
