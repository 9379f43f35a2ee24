"""The mutexes get_mutex() returns: dogpile.cache's CacheMutex contract
(acquire(wait=True) -> bool, release(), locked()), backed by the daemon.

Both are weak-referenceable (dogpile.cache keeps them in a NameRegistry)
and any thread may release them: a grant belongs to the backend's session,
not to a thread, which is what async creation runners need. A blocking
acquire that runs out of time raises LockTimeout rather than returning
False, because dogpile's Lock ignores what a blocking acquire returns.
"""
import logging
import threading
import time

from dogpiled.client import MAX_WAIT_MS
from dogpiled.errors import DogpiledError, LockTimeout, RoleLost, SessionLost

log = logging.getLogger(__name__)


def _deadline(timeout):
    return None if timeout is None else time.monotonic() + timeout


def _ms_left(deadline):
    if deadline is None:
        return MAX_WAIT_MS
    return max(0, int((deadline - time.monotonic()) * 1000))


class CreatorMutex:
    """The dogpile lock of one key of a DogpiledBackend: the daemon's
    creator role for that key.

    acquire(False) takes the role if nobody holds it. acquire() returns
    once this caller holds the role, or once the daemon holds a value that
    is neither expired nor invalidated: whoever created it just published,
    and dogpile.cache reads it rather than creating again. Waits are parked
    on the daemon, which answers the moment the value is published or the
    role is handed on.

    The backend's set() publishes through the held role, so a creator that
    lost its role (creation timeout, invalidation, dead session) stores
    nothing; release() abandons a role that published nothing, so the next
    waiter takes over at once.

    Thread-safe. A local lock admits one holder per process at a time, as
    the threading.Lock dogpile.cache would otherwise use does; across
    processes the daemon decides.
    """

    __slots__ = ("_backend", "_key", "_local", "_state", "_role",
                 "__weakref__")

    def __init__(self, backend, key):
        self._backend = backend
        self._key = key
        self._local = threading.Lock()  # one holder per process
        self._state = threading.Lock()  # guards _role
        self._role = None

    def acquire(self, wait=True):
        if wait:
            deadline = _deadline(self._backend.conn.lock_wait_timeout)
            if not self._local.acquire(
                    timeout=-1 if deadline is None
                    else max(0.0, deadline - time.monotonic())):
                raise LockTimeout(f"dogpile lock {self._key!r}: not "
                                  "acquired in time (held in this process)")
            # dogpile.cache saw no value: one published meanwhile will do.
            expire_ms, wait_ms = 0, _ms_left(deadline)
        else:
            if not self._local.acquire(False):
                return False
            # dogpile.cache saw an expired value: take the role or leave.
            expire_ms, wait_ms = -1, 0
        try:
            role = self._backend._take_role(self._key, expire_ms, wait_ms)
        except BaseException:
            self._local.release()
            raise
        if role is not None:
            with self._state:
                self._role = role
            return True
        if not wait:
            self._local.release()
            return False
        return True  # a value is there to read

    def release(self):
        with self._state:
            role, self._role = self._role, None
        try:
            if role is not None:
                role.abandon("released without publishing")
        except (RoleLost, SessionLost):
            pass  # already handed on by the daemon
        except DogpiledError as e:  # the daemon times the role out
            log.warning("dogpiled: abandon %r: %s", self._key, e)
        finally:
            self._local.release()

    def locked(self):
        """True while this process holds the mutex or any session holds
        the key's creator role."""
        return self._local.locked() or self._backend._creating(self._key)

    def publish(self, value, created_time):
        """Stores `value` with the role this mutex holds. Returns False if
        it holds none. A lost role stores nothing (fencing) and still ends
        the hold."""
        with self._state:
            if self._role is None:
                return False
            try:
                self._role.publish(value, created_time)
            except (RoleLost, SessionLost) as e:
                log.info("dogpiled: value of %r not stored: %s", self._key, e)
            self._role = None
            return True

    def __repr__(self):
        return f"<CreatorMutex {self._key!r} held={self._local.locked()}>"


class WriteLockMutex:
    """A plain distributed mutex: the daemon's write lock on one key, for
    DogpiledLockProxy, whose values live in another backend.

    Exclusive across threads, handles and processes (grants are not
    re-entrant, so a second acquire through the same handle fails too).
    Waiters are parked on the daemon and handed the lock at release. A
    holder that dies loses the lock when its session's TTL passes.
    """

    __slots__ = ("_conn", "_key", "_state", "_grant", "__weakref__")

    def __init__(self, conn, key):
        self._conn = conn
        self._key = key
        self._state = threading.Lock()  # guards _grant
        self._grant = None

    def acquire(self, wait=True):
        timeout = self._conn.lock_wait_timeout if wait else 0
        grant = self._conn.client.try_lock(self._conn.registry, self._key,
                                           "write", timeout)
        if grant is None:
            if wait:
                raise LockTimeout(f"lock {self._key!r}: not acquired within "
                                  f"{timeout} s")
            return False
        with self._state:
            self._grant = grant
        return True

    def release(self):
        with self._state:
            grant, self._grant = self._grant, None
        if grant is None:
            raise RuntimeError(f"release of unlocked mutex {self._key!r}")
        try:
            grant.release()
        except (RoleLost, SessionLost) as e:  # its session already ended
            log.info("dogpiled: lock %r was already gone: %s", self._key, e)

    def locked(self):
        """True while any session holds (or waits for) the write lock.

        The RWMutex API has no read-only query, so this tries a read lock
        and gives it straight back."""
        if self._grant is not None:
            return True
        probe = self._conn.client.try_lock(self._conn.registry, self._key,
                                           "read", 0)
        if probe is None:
            return True
        probe.release()
        return False

    def __repr__(self):
        return f"<WriteLockMutex {self._key!r}>"
