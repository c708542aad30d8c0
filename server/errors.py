"""The one table that maps domain errors to a status, for every transport (gRPC codes; Connect's mirror them).

==========================================  ====================  ======================================
domain error                                status                message to the client
==========================================  ====================  ======================================
``parse.ValidationError``                   INVALID_ARGUMENT      ``<field>: <why>`` (never the value)
``registry.PolicyNotLoaded``                UNAVAILABLE           no policy loaded yet (retryable)
``arbiter.state.StoreUnavailable``          UNAVAILABLE           customer state unavailable (retryable)
``arbiter.policies.StateUnavailableError``  UNAVAILABLE           customer state unavailable (retryable)
``arbiter.policies.StateConflict``          ABORTED               concurrent update, retry (after the
                                                                  service's own bounded retries)
``TimeoutError``                            DEADLINE_EXCEEDED     deadline exceeded
``admission.Overloaded``                    RESOURCE_EXHAUSTED    ``server overloaded: <why>`` (counted
                                                                  in ``arbiter_shed_total``, logged at
                                                                  debug: overload must not flood logs)
anything else                               INTERNAL              ``internal error (ref <id>)``
==========================================  ====================  ======================================

Connect and gRPC-Web answers use the same table: Connect's codes mirror
gRPC's one for one (:func:`connect_code`), so a refusal reads the same on
every protocol. Decide and Check do not let ``StoreUnavailable`` reach this
table on their read path: they answer fail-safe instead
(``docs/architecture.md``, "Fail safe"). Details of unexpected errors are
logged with a reference id that the client's message carries; the client
never sees a stack trace or an ``UNKNOWN`` status.
"""

from __future__ import annotations

import logging
import uuid
from typing import Final, NamedTuple

import grpc
from connectrpc.code import Code as ConnectCode

from arbiter.policies import StateConflict, StateUnavailableError
from arbiter.server.admission import Overloaded
from arbiter.server.logs import Throttled
from arbiter.server.parse import ValidationError
from arbiter.server.registry import PolicyNotLoaded
from arbiter.state import StoreUnavailable

__all__ = ["CallFailed", "Status", "connect_code", "status_for"]

_log = logging.getLogger("arbiter.server")
# UNAVAILABLE / DEADLINE_EXCEEDED / ABORTED repeat for every call during an outage.
_repeated = Throttled(_log)


class Status(NamedTuple):
    """What the client gets: a code and a message safe to show."""

    code: grpc.StatusCode
    message: str


class CallFailed(Exception):
    """An RPC ended with a non-OK status (already mapped and logged); transports send it as it is."""

    def __init__(self, status: Status) -> None:
        super().__init__(f"{status.code.name}: {status.message}")
        self.status = status


def connect_code(code: grpc.StatusCode) -> ConnectCode:
    """The Connect code of a gRPC status code (the same code; Connect spells CANCELLED ``canceled``)."""
    return _CONNECT_CODES[code]


_TABLE: Final[tuple[tuple[type[BaseException], grpc.StatusCode, str | None], ...]] = (
    # (exception type, code, fixed message; None = the exception's own, safe, text)
    (ValidationError, grpc.StatusCode.INVALID_ARGUMENT, None),
    (PolicyNotLoaded, grpc.StatusCode.UNAVAILABLE, "no policy set is loaded yet; retry"),
    (StoreUnavailable, grpc.StatusCode.UNAVAILABLE, "customer state is unavailable; retry"),
    (StateUnavailableError, grpc.StatusCode.UNAVAILABLE, "customer state is unavailable; retry"),
    (
        StateConflict,
        grpc.StatusCode.ABORTED,
        "customer state changed concurrently; retry the call (it is idempotent)",
    ),
    (TimeoutError, grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded"),
    (Overloaded, grpc.StatusCode.RESOURCE_EXHAUSTED, None),
)
_QUIET: Final = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED)


_CONNECT_CODES: Final[dict[grpc.StatusCode, ConnectCode]] = {
    **{c: ConnectCode[c.name] for c in grpc.StatusCode if c.name in ConnectCode.__members__},
    grpc.StatusCode.CANCELLED: ConnectCode.CANCELED,
}


def status_for(exc: BaseException, method: str) -> Status:
    """The status for an exception raised by ``method``; logs it (unexpected ones with a trace)."""
    for kind, code, message in _TABLE:
        if isinstance(exc, kind):
            text = str(exc) if message is None else message
            if code in _QUIET:
                _log.debug("%s: %s: %s", method, code.name, text)
            else:
                _repeated.warning(
                    f"{method}:{code.name}:{type(exc).__name__}",
                    "%s: %s: %s",
                    method,
                    code.name,
                    exc,
                )
            return Status(code, text)
    ref = uuid.uuid4().hex[:12]
    _log.error("%s: unexpected error (ref %s)", method, ref, exc_info=exc)
    return Status(grpc.StatusCode.INTERNAL, f"internal error (ref {ref})")
