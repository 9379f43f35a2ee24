"""Exceptions raised by the dogpiled client, one per thing a caller handles.

Every error the daemon returns carries a stable `reason` (a name of
dogpiled.v1.ErrorReason, see proto/dogpiled/v1/errors.proto: for example
"VALUE_TOO_LARGE", "SESSION_NOT_FOUND", "NOT_HOLDER") and `metadata`
naming the field and the limit, read from the google.rpc.ErrorInfo in the
grpc-status-details-bin trailer; caps also carry `retry_delay` (seconds,
from google.rpc.RetryInfo). Act on those, not on the message text.
"""
import functools
import os

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_DETAILS_KEY = "grpc-status-details-bin"
_DESCRIPTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "v1",
                            "google_rpc.desc")


class DogpiledError(Exception):
    """A dogpiled call failed. `code` is the gRPC status code, if any;
    `reason`, `metadata` and `retry_delay` come from the daemon's
    ErrorInfo and RetryInfo ("", {} and None when it sent none)."""

    def __init__(self, message, code=None, reason="", metadata=None,
                 retry_delay=None):
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.metadata = dict(metadata or {})
        self.retry_delay = retry_delay


class LockTimeout(DogpiledError):
    """A blocking wait for a lock, a creator role or a value ran out."""


class RoleLost(DogpiledError):
    """A grant no longer holds: it timed out, was invalidated, or its
    session ended. Its fencing token is refused from now on."""


class SessionLost(DogpiledError):
    """The session a grant hung on has ended; everything it held is gone."""


@functools.lru_cache(maxsize=1)
def _rpc_types():
    """google.rpc.Status, ErrorInfo and RetryInfo classes from a private
    descriptor pool (see build_stubs.py), or None without the descriptors."""
    try:
        with open(_DESCRIPTORS, "rb") as f:
            files = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    except OSError:
        return None
    pool = descriptor_pool.DescriptorPool()
    for file in files.file:
        pool.Add(file)

    def cls(name):
        desc = pool.FindMessageTypeByName(name)
        if hasattr(message_factory, "GetMessageClass"):
            return message_factory.GetMessageClass(desc)
        return message_factory.MessageFactory(pool).GetPrototype(desc)
    return (cls("google.rpc.Status"), cls("google.rpc.ErrorInfo"),
            cls("google.rpc.RetryInfo"))


def error_details(error):
    """(reason, metadata, retry_delay seconds or None) of a grpc.RpcError."""
    types = _rpc_types()
    trailers = getattr(error, "trailing_metadata", None)
    if types is None or trailers is None:
        return "", {}, None
    status_cls, info_cls, retry_cls = types
    reason, metadata, retry = "", {}, None
    for key, value in trailers() or ():
        if key != _DETAILS_KEY:
            continue
        status = status_cls.FromString(value)
        for detail in status.details:
            name = detail.type_url.rsplit("/", 1)[-1]
            if name == "google.rpc.ErrorInfo":
                info = info_cls.FromString(detail.value)
                reason, metadata = info.reason, dict(info.metadata)
            elif name == "google.rpc.RetryInfo":
                delay = retry_cls.FromString(detail.value).retry_delay
                retry = delay.seconds + delay.nanos / 1e9
    return reason, metadata, retry


def released_before(error):
    """Whether a refused Unlock or Abandon (a DogpiledError) repeated this
    session's own earlier release of that token, which went through: a
    retry after a lost answer. The daemon says so on NOT_HOLDER with
    metadata "released" = "true"; the grant is released, as asked. Any
    other NOT_HOLDER means the grant was lost."""
    return (error.reason == "NOT_HOLDER"
            and error.metadata.get("released") == "true")


def from_rpc(error, what):
    """Turns a grpc.RpcError into the matching DogpiledError."""
    code = error.code()
    reason, metadata, retry = error_details(error)
    message = f"{what}: {code.name}: {error.details()}"
    kind = DogpiledError
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        kind = LockTimeout
    elif code == grpc.StatusCode.FAILED_PRECONDITION:
        kind = RoleLost
    elif code == grpc.StatusCode.NOT_FOUND:
        kind = SessionLost
    return kind(message, code, reason, metadata, retry)
