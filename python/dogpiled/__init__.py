"""Python client of dogpiled, the networked dogpile lock and cache.

    from dogpiled import Client
    with Client("127.0.0.1:7420") as client:
        value = client.get_or_create("users", "42", make_user_bytes, expire=60)

dogpile.cache users: configure a region with the "dogpiled" backend, see
dogpiled.cache.
"""
from dogpiled.client import Client, Read
from dogpiled.errors import (DogpiledError, LockTimeout, RoleLost,
                             SessionLost)
from dogpiled.grants import LockGrant, Role
from dogpiled.near_cache import StaleValue

__all__ = ["Client", "DogpiledError", "LockGrant", "LockTimeout", "Read",
           "Role", "RoleLost", "SessionLost", "StaleValue"]
