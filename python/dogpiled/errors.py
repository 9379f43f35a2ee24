"""Exceptions raised by the dogpiled client, one per thing a caller handles."""
import grpc


class DogpiledError(Exception):
    """A dogpiled call failed. `code` is the gRPC status code, if any."""

    def __init__(self, message, code=None):
        super().__init__(message)
        self.code = code


class LockTimeout(DogpiledError):
    """A blocking wait for a lock, a creator role or a value ran out."""


class RoleLost(DogpiledError):
    """A grant no longer holds: it timed out, was invalidated, or its
    session ended. Its fencing token is refused from now on."""


class SessionLost(DogpiledError):
    """The session a grant hung on has ended; everything it held is gone."""


def from_rpc(error, what):
    """Turns a grpc.RpcError into the matching DogpiledError."""
    code = error.code()
    message = f"{what}: {code.name}: {error.details()}"
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return LockTimeout(message, code)
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return RoleLost(message, code)
    if code == grpc.StatusCode.NOT_FOUND:
        return SessionLost(message, code)
    return DogpiledError(message, code)
