"""What the sync and asyncio clients share: settings, request building and the fallback rule."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

import grpc

from arbiter.v1 import decision_pb2

from . import _convert
from ._auth import TokenSource
from ._config import DEFAULT_CHANNEL_OPTIONS, RetryPolicy, Timeouts, service_config_json
from ._errors import (
    ArbiterError,
    CancelledError,
    DeadlineExceededError,
    ResourceExhaustedError,
    UnavailableError,
)
from ._types import CheckResult, ConsentUpdate, Decision, Event, FallbackReason, Reason

__all__ = ["RETRYABLE", "ClientBase"]

# What is retried (by gRPC: _config.RETRIED_CODES; same request, same request_id, so the
# server's idempotency makes it safe) and,
# after the retries, falls back. A CANCELLED the client receives was sent by the server -- a
# server that stops cancels the calls it had not finished -- because the client's own
# cancellations never arrive as a status (an asyncio cancel raises asyncio.CancelledError), so
# it is treated like UNAVAILABLE: another connection (another server) may answer.
RETRYABLE = (UnavailableError, CancelledError)

logger = logging.getLogger("arbiter_client")

ChannelOptions = Sequence[tuple[str, int | str]]


def new_request_id() -> str:
    """A fresh idempotency key."""
    return str(uuid.uuid4())


class ClientBase:
    """Settings and request building shared by :class:`ArbiterClient` and :class:`AsyncArbiterClient`."""

    def __init__(
        self,
        target: str,
        *,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        credentials: grpc.ChannelCredentials | None = None,
        metadata: Sequence[tuple[str, str]] = (),
        channel_options: ChannelOptions = (),
        raise_on_error: bool = False,
        token: TokenSource | None = None,
    ) -> None:
        self.target = target
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self.raise_on_error = raise_on_error
        self._credentials = credentials
        self._metadata = tuple(metadata)
        self._token = token
        # Caller options override defaults of the same name. Retries are gRPC's: the
        # service config of ``retry`` (no method timeouts: each call sets its deadline).
        merged = dict(DEFAULT_CHANNEL_OPTIONS)
        merged["grpc.service_config"] = service_config_json(self.retry)
        merged.update(dict(channel_options))
        self._channel_options = tuple(merged.items())

    def _call_metadata(self) -> tuple[tuple[str, str], ...] | None:
        """The metadata of one attempt: the fixed metadata plus the current bearer token."""
        token = self._token
        if token is None:
            return self._metadata or None
        value = token if isinstance(token, str) else token()
        return (*self._metadata, ("authorization", f"Bearer {value}"))

    # -- request building ------------------------------------------------------

    @staticmethod
    def _decide_request(
        *,
        customer_id: str,
        placement: str,
        channels: Sequence[str] | str,
        context: Mapping[str, object] | None,
        limit: int,
        explain: bool,
        dry_run: bool,
        request_id: str | None,
    ) -> decision_pb2.DecideRequest:
        return _convert.decide_request(
            request_id=request_id or new_request_id(),
            customer_id=customer_id,
            placement=placement,
            channels=channels,
            context=context,
            limit=limit,
            explain=explain,
            dry_run=dry_run,
        )

    @staticmethod
    def _check_request(
        *,
        customer_id: str,
        action_id: str,
        channel: str,
        record: bool,
        context: Mapping[str, object] | None,
        decision_id: str,
        request_id: str | None,
    ) -> decision_pb2.CheckRequest:
        return _convert.check_request(
            request_id=request_id or new_request_id(),
            customer_id=customer_id,
            action_id=action_id,
            channel=channel,
            record=record,
            context=context,
            decision_id=decision_id,
        )

    @staticmethod
    def _track_request(events: Event | Iterable[Event]) -> decision_pb2.TrackRequest:
        return _convert.track_request((events,) if isinstance(events, Event) else events)

    @staticmethod
    def _update_profile_request(
        *,
        customer_id: str,
        source: str,
        timestamp: datetime | None,
        traits: Mapping[str, object] | None,
        consents: Iterable[ConsentUpdate],
        do_not_contact: bool | None,
        segments: Iterable[str] | None,
        request_id: str | None,
    ) -> decision_pb2.UpdateProfileRequest:
        return _convert.update_profile_request(
            request_id=request_id or new_request_id(),
            customer_id=customer_id,
            source=source,
            timestamp=timestamp or datetime.now(UTC),
            traits=traits,
            consents=consents,
            do_not_contact=do_not_contact,
            segments=segments,
        )

    # -- the fallback rule -------------------------------------------------------

    def _should_fall_back(self, error: ArbiterError, raise_on_error: bool | None) -> bool:
        """Deadline passed, server unreachable or stopping (after retries) or shedding load
        (``RESOURCE_EXHAUSTED``, never retried), and the caller did not ask to raise."""
        wants_raise = self.raise_on_error if raise_on_error is None else raise_on_error
        fallible = (
            DeadlineExceededError | UnavailableError | CancelledError | ResourceExhaustedError
        )
        return not wants_raise and isinstance(error, fallible)

    @staticmethod
    def _fallback_reason(error: ArbiterError) -> FallbackReason:
        if isinstance(error, DeadlineExceededError):
            return FallbackReason.DEADLINE_EXCEEDED
        if isinstance(error, ResourceExhaustedError):
            return FallbackReason.OVERLOADED
        return FallbackReason.UNAVAILABLE

    def _fallback_decision(self, request_id: str, error: ArbiterError) -> Decision:
        reason = self._fallback_reason(error)
        logger.warning("arbiter decide fell back to no action (%s): %s", reason, error.details)
        return Decision(request_id=request_id, fallback=True, fallback_reason=reason, error=error)

    def _fallback_check(self, request_id: str, error: ArbiterError) -> CheckResult:
        reason = self._fallback_reason(error)
        logger.warning("arbiter check fell back to not allowed (%s): %s", reason, error.details)
        return CheckResult(
            request_id=request_id,
            allowed=False,
            reason=Reason.STATE_UNAVAILABLE,
            detail=f"client fallback: {reason}",
            fallback=True,
            fallback_reason=reason,
            error=error,
        )

    def _timeout(self, override: float | None, default: float) -> float:
        timeout = default if override is None else override
        if not timeout > 0:
            raise ValueError("timeout must be > 0 seconds")
        return timeout
