"""Python client for the Arbiter decision service (``arbiter.v1.DecisionService``).

Quick use::

    from arbiter_client import ArbiterClient

    with ArbiterClient("localhost:50051") as arbiter:
        decision = arbiter.decide("cust-42", "home_banner", channels=["in_app"],
                                  context={"cart_value": 59.9})
        for action in decision.actions:
            ...

Exceptions (all carry the gRPC ``code``)::

    ArbiterError
    ├── InvalidArgumentError, NotFoundError, FailedPreconditionError,
    ├── UnauthenticatedError, PermissionDeniedError, ResourceExhaustedError,
    ├── UnavailableError, DeadlineExceededError, CancelledError, InternalError
    ValueConversionError (a ValueError): a value has no ``arbiter.v1.Value`` form

Secured servers: ``credentials=tls_credentials(ca, certificate_chain=..., private_key=...)``
for TLS (and mutual TLS), ``token="..."`` or ``token=RefreshingToken(fetch)``
for a bearer token sent on every call.

``decide()`` and ``check()`` do not raise on DEADLINE_EXCEEDED, UNAVAILABLE or
CANCELLED from a stopping server (after retries): they answer "no action" / "not allowed" with
``fallback=True``, unless called with ``raise_on_error=True``.

The generated protobuf and gRPC modules are ``arbiter.v1.*_pb2`` and
``arbiter.v1.*_pb2_grpc``.
"""

from ._aio import AsyncArbiterClient
from ._auth import RefreshingToken, TokenSource, tls_credentials
from ._client import ArbiterClient
from ._config import (
    DEFAULT_CHANNEL_OPTIONS,
    RetryPolicy,
    Timeouts,
    service_config,
    service_config_json,
)
from ._errors import (
    ArbiterError,
    CancelledError,
    DeadlineExceededError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    UnauthenticatedError,
    UnavailableError,
)
from ._types import (
    Action,
    Candidate,
    CandidateOutcome,
    CheckResult,
    ConsentState,
    ConsentUpdate,
    Decision,
    Degradation,
    Event,
    EventResult,
    EventStatus,
    FallbackReason,
    FeedbackKind,
    ProfileFieldKind,
    ProfileFieldResult,
    ProfileUpdateResult,
    ProfileWriteOutcome,
    PurposeConsent,
    Reason,
    TrackResult,
)
from ._values import (
    PyValue,
    ValueConversionError,
    fill_timestamp,
    fill_value_map,
    from_value,
    from_value_map,
    timestamp_to_datetime,
    to_value,
    to_value_map,
)

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_CHANNEL_OPTIONS",
    "Action",
    "ArbiterClient",
    "ArbiterError",
    "AsyncArbiterClient",
    "CancelledError",
    "Candidate",
    "CandidateOutcome",
    "CheckResult",
    "ConsentState",
    "ConsentUpdate",
    "DeadlineExceededError",
    "Decision",
    "Degradation",
    "Event",
    "EventResult",
    "EventStatus",
    "FailedPreconditionError",
    "FallbackReason",
    "FeedbackKind",
    "InternalError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermissionDeniedError",
    "ProfileFieldKind",
    "ProfileFieldResult",
    "ProfileUpdateResult",
    "ProfileWriteOutcome",
    "PurposeConsent",
    "PyValue",
    "Reason",
    "RefreshingToken",
    "ResourceExhaustedError",
    "RetryPolicy",
    "Timeouts",
    "TokenSource",
    "TrackResult",
    "UnauthenticatedError",
    "UnavailableError",
    "ValueConversionError",
    "fill_timestamp",
    "fill_value_map",
    "from_value",
    "from_value_map",
    "service_config",
    "service_config_json",
    "timestamp_to_datetime",
    "tls_credentials",
    "to_value",
    "to_value_map",
]
