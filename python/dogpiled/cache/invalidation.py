"""region.invalidate() for the whole fleet, through the daemon.

dogpile.cache's own invalidation is a timestamp in one process's memory.
With FleetInvalidation the region's invalidate() becomes the daemon's
registry-wide Invalidate instead, which every process sees at its next read:

- hard: the daemon drops the values; reads find nothing, and one creator
  makes the value again while everyone else waits for it;
- soft: the daemon keeps the values as stale fallbacks. The backend hands
  such a value to dogpile.cache stamped SOFT_INVALIDATED_CT, a creation
  time this strategy reports as soft-invalidated, so dogpile.cache elects
  one creator and serves the stale value meanwhile, exactly as with a local
  soft invalidation. Like dogpile.cache, it needs an expiration_time.

In both cases creators already at work when the invalidation arrives are
refused when they publish, so no value computed before it survives it.
"""
import json

from dogpile.cache.region import RegionInvalidationStrategy

# One second after the epoch: positive, so dogpile.cache still has the
# stale value to serve; ancient, so every expiration_time finds it expired.
SOFT_INVALIDATED_CT = 1.0


def mark_soft_invalidated(serialized):
    """Restamps a serialized dogpile.cache value as soft-invalidated."""
    metadata, sep, payload = serialized.partition(b"|")
    try:
        fields = json.loads(metadata)
    except ValueError:
        return serialized  # not written by dogpile.cache: leave it alone
    if not sep or not isinstance(fields, dict):
        return serialized
    fields["ct"] = SOFT_INVALIDATED_CT
    return json.dumps(fields).encode("ascii") + b"|" + payload


class FleetInvalidation(RegionInvalidationStrategy):
    """Pass as configure(region_invalidator=FleetInvalidation(region)) to a
    region whose backend is "dogpiled"."""

    def __init__(self, region):
        self._region = region
        self._hard = None  # mode of this process's last invalidate()

    def invalidate(self, hard=True):
        backend = self._region.actual_backend
        if not hasattr(backend, "invalidate_registry"):
            raise TypeError("FleetInvalidation needs the 'dogpiled' backend, "
                            f"not {type(backend).__name__}")
        backend.invalidate_registry(bool(hard))
        self._hard = bool(hard)

    def is_invalidated(self, timestamp):
        return timestamp == SOFT_INVALIDATED_CT

    def is_soft_invalidated(self, timestamp):
        return timestamp == SOFT_INVALIDATED_CT

    def is_hard_invalidated(self, timestamp):
        return False  # the daemon no longer returns such values

    def was_soft_invalidated(self):
        return self._hard is False

    def was_hard_invalidated(self):
        return self._hard is True
