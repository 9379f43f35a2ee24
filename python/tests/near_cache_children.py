"""Near-cache tests: the coherence checker, and the code their child
processes run (started with support.SPAWN, so importable by name).

Times are time.monotonic(): CLOCK_MONOTONIC, one clock for every process
of the machine, so histories from several processes can be compared.
"""
import collections
import threading
import time

import dogpiled
import support

# A read as a client saw it: when it began and returned, what it yielded,
# and whether that was FRESH (neither expired, invalidated nor stale).
Read = collections.namedtuple("Read", "start end value fresh")
# A write that returned: "publish" (with its value) or "invalidate".
Write = collections.namedtuple("Write", "kind value returned")

NEAR_CACHE_BYTES = 1 << 20


def incoherent_reads(writes, reads):
    """The reads that yielded a value as FRESH although they began after
    the write that voided it had returned (the next write after its
    publish), or yielded a value nobody published. `writes` are in the
    order they were made, one after the other."""
    voided = {}
    published = set()
    for write, after in zip(writes, writes[1:] + [None]):
        if write.kind == "publish":
            published.add(write.value)
            if after is not None:
                voided[write.value] = after.returned
    return [r for r in reads if r.fresh and (
        r.value not in published
        or (r.value in voided and r.start > voided[r.value]))]


def traced_read(client, registry, key):
    start = time.monotonic()
    read = client.read(registry, key)
    end = time.monotonic()
    fresh = read.has_value and not read.is_expired and not read.stale
    return Read(start, end, read.value if read.has_value else None, fresh)


def near_cached_client(address, **kw):
    """A client with a near-cache whose watch is already trusted."""
    client = dogpiled.Client(address, near_cache_bytes=NEAR_CACHE_BYTES,
                             **kw)
    client.session.id  # the watch follows the session
    if not client._watcher.wait_trusted(support.CHILD_PATIENCE):
        raise AssertionError("the near-cache's watch was never trusted")
    return client


# --- Child processes --------------------------------------------------------

def coherence_reader(address, registry, key, threads, ready, stop, results):
    """Reads `key` from `threads` threads through one near-cache until
    `stop`; puts (history, hits, invalidations applied)."""
    client = near_cached_client(address)
    histories = [[] for _ in range(threads)]

    def loop(history):
        while not stop.is_set():
            history.append(traced_read(client, registry, key))

    workers = [threading.Thread(target=loop, args=(h,)) for h in histories]
    ready.wait(support.CHILD_PATIENCE)
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    results.put(([r for h in histories for r in h], client.near_cache.hits,
                 client._watcher.applied))
    client.close()


def stopped_holder(address, registry, key, ttl, session, held, resumed,
                   results):
    """Holds `key` in its near-cache (served from memory at least once),
    puts its session id in `session` and sets `held`. The parent SIGSTOPs
    and SIGCONTs it, then sets `resumed`: it reads the key again and
    reports that read."""
    client = near_cached_client(address, session_ttl=ttl)
    first = traced_read(client, registry, key)
    hits = client.near_cache.hits
    again = traced_read(client, registry, key)
    if client.near_cache.hits != hits + 1:
        results.put(("not held", first, again))
        return
    session.value = client.session.id
    held.set()
    resumed.wait(support.CHILD_PATIENCE)
    results.put(("read", first, traced_read(client, registry, key)))
    client.close()
