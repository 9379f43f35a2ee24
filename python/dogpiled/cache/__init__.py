"""dogpile.cache integration: values and the dogpile lock in dogpiled.

    region = make_region("users")
    region.configure(
        "dogpiled", expiration_time=300,
        arguments={"address": "dogpiled.internal:7420"},
        # region.invalidate() then reaches every process:
        region_invalidator=FleetInvalidation(region))

Keeping values in memcached or redis and only the lock in dogpiled:

    region.configure(
        "dogpile.cache.redis", arguments={...},
        wrap=[DogpiledLockProxy(address="dogpiled.internal:7420")])

Importing this module registers the backend; an installed package also
registers it through the "dogpile.cache" entry point.
"""
from dogpile.cache import register_backend

from dogpiled.cache.backend import DogpiledBackend
from dogpiled.cache.invalidation import SOFT_INVALIDATED_CT, FleetInvalidation
from dogpiled.cache.mutex import CreatorMutex, WriteLockMutex
from dogpiled.cache.proxy import DogpiledLockProxy

register_backend("dogpiled", "dogpiled.cache.backend", "DogpiledBackend")

__all__ = ["CreatorMutex", "DogpiledBackend", "DogpiledLockProxy",
           "FleetInvalidation", "SOFT_INVALIDATED_CT", "WriteLockMutex"]
