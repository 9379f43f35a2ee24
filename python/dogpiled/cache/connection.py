"""Arguments and the daemon connection shared by the backend and the proxy."""
import os
import re
import sys
import threading
import warnings

from dogpiled.client import Client

_REGISTRY = re.compile(r"[A-Za-z0-9._:-]{1,128}\Z")
DEFAULT_ADDRESS = "127.0.0.1:7420"


def region_name_from_stack():
    """The name of the CacheRegion whose configure() is building us, if any.

    dogpile.cache hands backends their arguments but not their region, and
    the region's name is the natural registry: configure() is a few frames
    up, with the region as `self`.
    """
    from dogpile.cache.region import CacheRegion
    frame = sys._getframe(1)
    for _ in range(8):
        if frame is None:
            return None
        owner = frame.f_locals.get("self")
        if isinstance(owner, CacheRegion):
            return owner.name
        frame = frame.f_back
    return None


def check_registry(name, origin):
    if not isinstance(name, str) or not _REGISTRY.match(name):
        raise ValueError(
            f"{origin} {name!r} is not a valid dogpiled registry name "
            "(1..128 of A-Za-z0-9._:-); pass arguments={'registry': ...}")
    return name


class Connection:
    """The settings of one backend (or proxy) and its Client.

    The Client, and with it the session, is made on first use rather than
    at configure() time, and remade in a forked child: regions are often
    configured at import, before a pre-forking server forks, and a gRPC
    channel does not survive fork. Thread-safe.
    """

    def __init__(self, arguments, registry=None):
        args = dict(arguments)
        self.address = args.pop("address", DEFAULT_ADDRESS)
        if "registry" in args:
            self.registry = check_registry(args.pop("registry"), "registry")
        elif registry:
            self.registry = check_registry(registry, "region name")
        else:
            self.registry = "dogpile"
        # Seconds a blocking acquire waits before raising LockTimeout
        # (None: as long as the daemon allows).
        self.lock_wait_timeout = args.pop("lock_wait_timeout", None)
        # Seconds a creator may take before the daemon hands its role on
        # (None: the daemon's default, 30 s).
        self.creation_timeout = args.pop("creation_timeout", None)
        self._client_args = {
            "session_ttl": args.pop("session_ttl", None),
            "client_name": args.pop("client_name", None),
            "on_session_lost": args.pop("on_session_lost", None),
            "reopen_session": args.pop("reopen_session", True),
            "rpc_timeout": args.pop("rpc_timeout", 5.0),
            "token": args.pop("token", None),
            "channel_options": args.pop("channel_options", ()),
            "near_cache_bytes": args.pop("near_cache_bytes", 0),
            "max_stale_on_error": args.pop("max_stale_on_error", 0.0),
        }
        for tls in ("tls", "tls_ca", "tls_cert", "tls_key"):
            self._client_args[tls] = args.pop(tls, None)
        if args:
            # dogpile.cache backends ignore arguments they do not know (a
            # region configured for several backends passes them all); one
            # warning still catches a misspelt name.
            warnings.warn(f"dogpiled: ignoring unknown backend arguments "
                          f"{sorted(args)}", UserWarning, stacklevel=4)
        self._lock = threading.Lock()
        self._client = None
        self._pid = None

    @property
    def client(self):
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                # A parent's client is left alone: closing it here would end
                # the parent's session.
                self._client = Client(self.address, **self._client_args)
                self._pid = os.getpid()
            return self._client

    def close(self):
        with self._lock:
            client, self._client = self._client, None
        if client is not None and self._pid == os.getpid():
            client.close()
