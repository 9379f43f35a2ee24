"""What the daemon hands out: a creator role and a read or write lock.

Both belong to the session they were granted under, not to a thread: any
thread may publish, abandon or release them. Their fencing `token` strictly
increases per key; pass it to the systems you write to, so they can refuse
a holder that lost its grant.
"""
import logging
import threading

from dogpiled.errors import RoleLost, SessionLost

log = logging.getLogger(__name__)


class _Grant:
    def __init__(self, client, registry, key, session_id, token):
        self.client = client
        self.registry = registry
        self.key = key
        self.session_id = session_id  # the session it hangs on
        self.token = token


class Role(_Grant):
    """The creator role of one key: publish a value or abandon, once."""

    def __init__(self, client, registry, key, session_id, token,
                 deadline_ms):
        super().__init__(client, registry, key, session_id, token)
        # Milliseconds the daemon gave this creator to publish or abandon.
        self.deadline_ms = deadline_ms

    def publish(self, value, created_time=None):
        """Stores `value` and wakes every waiter with it. Returns the stored
        created_time. Raises RoleLost (or SessionLost) if the role was lost
        meanwhile: the stored value is then untouched."""
        return self.client._publish(self, value, created_time)

    def abandon(self, reason=""):
        """Gives the role to the next waiter; the previous value stays.
        Raises RoleLost (or SessionLost) if the role was lost meanwhile; not
        when a retry after a lost answer finds it abandoned by this call."""
        self.client._abandon(self, reason)

    def run(self, creator):
        """Runs `creator()`, publishes its value and returns it. A creator
        that raises abandons the role. A role lost meanwhile (timeout,
        invalidation) still returns the value, unstored."""
        try:
            value = creator()
        except BaseException as e:
            try:
                self.abandon(f"creator raised {type(e).__name__}: {e}"[:1024])
            except Exception as abandon_error:  # the creator's error matters
                log.info("dogpiled: abandon %s/%s: %s", self.registry,
                         self.key, abandon_error)
            raise
        try:
            self.publish(value)
        except (RoleLost, SessionLost) as e:
            log.info("dogpiled: value of %s/%s not stored: %s",
                     self.registry, self.key, e)
        return value


class LockGrant(_Grant):
    """A held read or write lock; a context manager that releases it."""

    def __init__(self, client, registry, key, session_id, token, mode):
        super().__init__(client, registry, key, session_id, token)
        self.mode = mode
        self.released = False
        self._lock = threading.Lock()

    def release(self):
        """Releases the lock once; later calls do nothing. Raises RoleLost
        or SessionLost if the daemon had already taken it away; not when a
        retry after a lost answer finds it released by this call."""
        with self._lock:
            if self.released:
                return
            self.released = True
        self.client._unlock(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()
