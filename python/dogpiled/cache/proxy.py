"""Only the lock in dogpiled, for values kept in another backend."""
from dogpile.cache.proxy import ProxyBackend

from dogpiled.cache.connection import Connection, region_name_from_stack
from dogpiled.cache.mutex import WriteLockMutex


class DogpiledLockProxy(ProxyBackend):
    """Wraps any dogpile.cache backend (memcached, redis, ...) so that its
    dogpile lock is a dogpiled write lock; values stay where they were.

        region.configure("dogpile.cache.redis", arguments={...},
                         wrap=[DogpiledLockProxy(address="dogpiled:7420")])

    Takes the same keyword arguments as the "dogpiled" backend's
    `arguments` (address, registry, session_ttl, lock_wait_timeout, ...).
    The registry defaults to the region's name, else "dogpile". Turn off the
    wrapped backend's own distributed lock: this one replaces it.
    """

    def __init__(self, **arguments):
        super().__init__()
        self._arguments = arguments
        self.conn = None

    def wrap(self, backend):
        # configure() calls wrap(), which is where the region is known.
        self.conn = Connection(self._arguments, region_name_from_stack())
        return super().wrap(backend)

    def has_lock_timeout(self):
        return True  # a dead holder's lock ends with its session

    def get_mutex(self, key):
        if self.conn is None:
            raise RuntimeError("DogpiledLockProxy is used before wrap()")
        return WriteLockMutex(self.conn, key)

    def close(self):
        if self.conn is not None:
            self.conn.close()
