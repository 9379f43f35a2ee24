"""dogpile.cache's Lock over the daemon, ten threads hammering one key: one
creator per expiry, everyone else served the stale value meanwhile."""
import threading
import time

EXPIRE = 0.5      # region expiration_time
CREATE = 0.15     # how long the creator works
RUN_FOR = 2.2     # how long the threads keep calling
THREADS = 10


def test_one_creator_per_expiry_with_stale_values_meanwhile(regions):
    region = regions(expiration_time=EXPIRE)
    creations = []  # (start, end) per generation; generation = index + 1
    active = []
    lock = threading.Lock()

    def creator():
        with lock:
            active.append(1)
            concurrent = len(active)
        start = time.time()
        time.sleep(CREATE)  # the work being protected
        with lock:
            creations.append((start, time.time(), concurrent))
            active.pop()
            return len(creations)

    calls = []  # (called, returned, generation)

    def hammer(stop_at):
        while time.time() < stop_at:
            called = time.time()
            generation = region.get_or_create("k", creator)
            calls.append((called, time.time(), generation))
            time.sleep(0.02)  # pacing, as real callers have

    stop_at = time.time() + RUN_FOR
    threads = [threading.Thread(target=hammer, args=(stop_at,))
               for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(RUN_FOR + 10)

    late = [round(creations[i][0] - creations[i - 1][1] - EXPIRE, 3)
            for i in range(1, len(creations))]
    print(f"{len(creations)} creations, {len(calls)} calls; each re-creation "
          f"started this long after expiry: {late}")
    assert all(concurrent == 1 for _, _, concurrent in creations)
    assert 2 <= len(creations) <= RUN_FOR / EXPIRE + 1
    for i in range(1, len(creations)):
        expired_at = creations[i - 1][1] + EXPIRE
        # Not before the value expired (dogpile.cache stamps it after the
        # creator returns)...
        assert creations[i][0] >= expired_at, (i, creations[i][0] - expired_at)
        # ...and promptly once a call saw it expired. Measured from that
        # call, not from the expiry: on a loaded machine the paced threads
        # themselves may not run for a while.
        first_after = min((called for called, _, _ in calls
                           if called >= expired_at), default=creations[i][0])
        assert creations[i][0] - first_after <= 0.5, (i, first_after)
        # Calls that returned the previous generation before this creation
        # ended were served stale instead of waiting for it.
        start, end, _ = creations[i]
        assert any(start < returned < end and generation == i
                   for _, returned, generation in calls), \
            f"no stale value served while generation {i + 1} was created"
    # Nobody ever got an empty answer: the first creation was waited for.
    assert min(g for _, _, g in calls) == 1
