"""Exceptions raised by the Arbiter client, one class per gRPC status code that callers act on.

Hierarchy::

    ArbiterError                    any failed call; ``code`` is the grpc.StatusCode
    ├── InvalidArgumentError        INVALID_ARGUMENT, OUT_OF_RANGE: fix the request
    ├── NotFoundError               NOT_FOUND
    ├── FailedPreconditionError     FAILED_PRECONDITION
    ├── UnauthenticatedError        UNAUTHENTICATED
    ├── PermissionDeniedError       PERMISSION_DENIED
    ├── ResourceExhaustedError      RESOURCE_EXHAUSTED
    ├── UnavailableError            UNAVAILABLE (after the client's retries)
    ├── DeadlineExceededError       DEADLINE_EXCEEDED
    ├── CancelledError              CANCELLED
    └── InternalError               INTERNAL, UNKNOWN, DATA_LOSS, UNIMPLEMENTED

Conversion helpers raise :class:`arbiter_client.ValueConversionError` (a
``ValueError``) before any call is made.
"""

from __future__ import annotations

import grpc

__all__ = [
    "ArbiterError",
    "CancelledError",
    "DeadlineExceededError",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "UnavailableError",
    "error_from_code",
    "error_from_rpc",
]


class ArbiterError(Exception):
    """A call to Arbiter failed.

    ``code`` is the gRPC status code, ``details`` the server's message, and
    ``request_id`` the idempotency key of the call (empty for Track).
    """

    def __init__(self, code: grpc.StatusCode, details: str, *, request_id: str = "") -> None:
        super().__init__(f"{code.name}: {details}" if details else code.name)
        self.code = code
        self.details = details
        self.request_id = request_id


class InvalidArgumentError(ArbiterError):
    """The server rejected the request; ``details`` names the field."""


class NotFoundError(ArbiterError):
    """Something the request names (an action, a decision) does not exist."""


class FailedPreconditionError(ArbiterError):
    """The server is not in a state to answer, e.g. no policy is loaded."""


class UnauthenticatedError(ArbiterError):
    """The call carried no valid credentials."""


class PermissionDeniedError(ArbiterError):
    """The credentials do not allow this call."""


class ResourceExhaustedError(ArbiterError):
    """The server shed load or a message was too large."""


class UnavailableError(ArbiterError):
    """The server could not be reached, after the client's retries."""


class DeadlineExceededError(ArbiterError):
    """The call's deadline passed before an answer arrived."""


class CancelledError(ArbiterError):
    """The call was cancelled."""


class InternalError(ArbiterError):
    """The server failed; the request may be fine."""


_BY_CODE: dict[grpc.StatusCode, type[ArbiterError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.CANCELLED: CancelledError,
    grpc.StatusCode.INTERNAL: InternalError,
    grpc.StatusCode.UNKNOWN: InternalError,
    grpc.StatusCode.DATA_LOSS: InternalError,
    grpc.StatusCode.UNIMPLEMENTED: InternalError,
}


def error_from_code(code: grpc.StatusCode, details: str, *, request_id: str = "") -> ArbiterError:
    """Build the :class:`ArbiterError` subclass for a status code."""
    return _BY_CODE.get(code, ArbiterError)(code, details, request_id=request_id)


def error_from_rpc(exc: grpc.RpcError, *, request_id: str = "") -> ArbiterError:
    """Map a failed gRPC call (sync ``grpc.RpcError`` or ``grpc.aio.AioRpcError``)."""
    code_fn = getattr(exc, "code", None)
    details_fn = getattr(exc, "details", None)
    code = code_fn() if callable(code_fn) else grpc.StatusCode.UNKNOWN
    details = details_fn() if callable(details_fn) else str(exc)
    if not isinstance(code, grpc.StatusCode):
        code = grpc.StatusCode.UNKNOWN
    return error_from_code(code, details or "", request_id=request_id)
