"""Typed results and inputs of the Arbiter client: enums mirroring the proto enums, frozen dataclasses."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum

from ._errors import ArbiterError
from ._values import PyValue

__all__ = [
    "Action",
    "Candidate",
    "CandidateOutcome",
    "CheckResult",
    "ConsentState",
    "ConsentUpdate",
    "Decision",
    "Degradation",
    "Event",
    "EventResult",
    "EventStatus",
    "FallbackReason",
    "FeedbackKind",
    "ProfileFieldKind",
    "ProfileFieldResult",
    "ProfileUpdateResult",
    "ProfileWriteOutcome",
    "PurposeConsent",
    "Reason",
    "TrackResult",
]

# Each enum mirrors the proto enum of the same name without its value prefix
# (REASON_CAPPED -> Reason.CAPPED). A unit test keeps them in step. Values a
# newer server sends that this client does not know read as UNSPECIFIED.


class Reason(StrEnum):
    """Why a candidate was or was not chosen, why Check answered as it did, or why a response is degraded."""

    UNSPECIFIED = "UNSPECIFIED"
    SELECTED = "SELECTED"
    ELIGIBLE = "ELIGIBLE"
    CONSENT_DENIED = "CONSENT_DENIED"
    CONSENT_UNKNOWN = "CONSENT_UNKNOWN"
    CONSENT_EXPIRED = "CONSENT_EXPIRED"
    DO_NOT_CONTACT = "DO_NOT_CONTACT"
    CAPPED = "CAPPED"
    SUPPRESSED = "SUPPRESSED"
    INELIGIBLE = "INELIGIBLE"
    QUIET_HOURS = "QUIET_HOURS"
    HOLDOUT = "HOLDOUT"
    CONTROL_GROUP = "CONTROL_GROUP"
    PAUSED = "PAUSED"
    OUTSIDE_VALIDITY = "OUTSIDE_VALIDITY"
    LOST_ARBITRATION = "LOST_ARBITRATION"
    JOURNEY_CONSTRAINT = "JOURNEY_CONSTRAINT"
    CHANNEL_LIMIT = "CHANNEL_LIMIT"
    LIMIT_REACHED = "LIMIT_REACHED"
    STATE_UNAVAILABLE = "STATE_UNAVAILABLE"
    CHANNEL_NOT_ALLOWED = "CHANNEL_NOT_ALLOWED"
    NOT_IN_STAGE = "NOT_IN_STAGE"


class CandidateOutcome(StrEnum):
    """What happened to a candidate action in a decision."""

    UNSPECIFIED = "UNSPECIFIED"
    SELECTED = "SELECTED"
    FILTERED = "FILTERED"
    NOT_SELECTED = "NOT_SELECTED"


class ConsentState(StrEnum):
    """A recorded consent decision; UNSPECIFIED means no valid record."""

    UNSPECIFIED = "UNSPECIFIED"
    GRANTED = "GRANTED"
    DENIED = "DENIED"


class FeedbackKind(StrEnum):
    """The kind of a feedback event on a chosen action."""

    UNSPECIFIED = "UNSPECIFIED"
    IMPRESSION = "IMPRESSION"
    CLICK = "CLICK"
    CONVERSION = "CONVERSION"
    DISMISS = "DISMISS"


class EventStatus(StrEnum):
    """The result of ingesting one event."""

    UNSPECIFIED = "UNSPECIFIED"
    APPLIED = "APPLIED"
    DUPLICATE = "DUPLICATE"
    REJECTED = "REJECTED"


class ProfileWriteOutcome(StrEnum):
    """The result of writing one profile field."""

    UNSPECIFIED = "UNSPECIFIED"
    APPLIED = "APPLIED"
    IGNORED_STALE = "IGNORED_STALE"


class ProfileFieldKind(StrEnum):
    """Which part of the profile a write result is about."""

    UNSPECIFIED = "UNSPECIFIED"
    TRAIT = "TRAIT"
    CONSENT = "CONSENT"
    DO_NOT_CONTACT = "DO_NOT_CONTACT"
    SEGMENTS = "SEGMENTS"


class FallbackReason(StrEnum):
    """Why the client answered on its own instead of with the server's answer (client-side only)."""

    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    UNAVAILABLE = "UNAVAILABLE"
    # The server refused the call to shed load (RESOURCE_EXHAUSTED); not retried.
    OVERLOADED = "OVERLOADED"


@dataclass(frozen=True, slots=True)
class Action:
    """An action to show or send, as chosen by a decision."""

    action_id: str
    channel: str
    journey_id: str = ""
    stage: str = ""
    variant: str = ""
    payload: dict[str, PyValue] = field(default_factory=dict)
    tracking_id: str = ""
    score: float = 0.0
    tags: tuple[str, ...] = ()
    policy_fallback: bool = False


@dataclass(frozen=True, slots=True)
class Candidate:
    """A candidate action of an explained decision, with its outcome and reason."""

    action_id: str
    channel: str
    outcome: CandidateOutcome
    reason: Reason
    detail: str = ""
    journey_id: str = ""
    stage: str = ""
    score: float | None = None
    variant: str = ""


@dataclass(frozen=True, slots=True)
class PurposeConsent:
    """Consent of one purpose as a decision saw it."""

    purpose: str
    state: ConsentState
    allowed: bool
    reason: Reason
    source: str = ""
    updated_at: datetime | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Degradation:
    """The server fell back toward not sending because it lacked something."""

    reason: Reason
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to ``decide()``.

    ``actions`` empty means: show or send nothing. ``fallback`` is True when
    the client answered on its own because the server did not answer in time
    or could not be reached (``fallback_reason`` says which, ``error`` holds
    the underlying error); a fallback decision never has actions.
    """

    request_id: str
    decision_id: str = ""
    policy_version: str = ""
    decided_at: datetime | None = None
    actions: tuple[Action, ...] = ()
    consent: tuple[PurposeConsent, ...] = ()
    degradations: tuple[Degradation, ...] = ()
    candidates: tuple[Candidate, ...] = ()
    replayed: bool = False
    dry_run: bool = False
    fallback: bool = False
    fallback_reason: FallbackReason | None = None
    error: ArbiterError | None = field(default=None, compare=False)

    @property
    def action(self) -> Action | None:
        """The best action, or None."""
        return self.actions[0] if self.actions else None

    @property
    def degraded(self) -> bool:
        """True when the server fell back toward not sending, or the client did."""
        return self.fallback or bool(self.degradations)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The answer to ``check()``.

    On a client fallback (see :class:`Decision`) ``allowed`` is False:
    errors fall toward not sending.
    """

    request_id: str
    allowed: bool
    reason: Reason
    detail: str = ""
    recorded: bool = False
    policy_version: str = ""
    degradations: tuple[Degradation, ...] = ()
    replayed: bool = False
    fallback: bool = False
    fallback_reason: FallbackReason | None = None
    error: ArbiterError | None = field(default=None, compare=False)


def _new_id() -> str:
    return str(uuid.uuid4())


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Event:
    """A customer event to ``track()``.

    ``event_id`` defaults to a fresh UUID, so retries of one call are applied
    once; pass the producer's own id to deduplicate across calls.
    ``timestamp`` defaults to now and must be timezone-aware.
    """

    customer_id: str
    type: str
    properties: dict[str, object] = field(default_factory=dict)
    event_id: str = field(default_factory=_new_id)
    timestamp: datetime = field(default_factory=_utc_now)
    version: int = 0
    decision_id: str = ""
    tracking_id: str = ""
    feedback: FeedbackKind | None = None


@dataclass(frozen=True, slots=True)
class EventResult:
    """The result of ingesting one event."""

    event_id: str
    status: EventStatus
    field: str = ""
    detail: str = ""


@dataclass(frozen=True, slots=True)
class TrackResult:
    """The answer to ``track()``: one result per event, in request order."""

    results: tuple[EventResult, ...]

    @property
    def applied(self) -> tuple[EventResult, ...]:
        """Events that were applied."""
        return tuple(r for r in self.results if r.status is EventStatus.APPLIED)

    @property
    def duplicates(self) -> tuple[EventResult, ...]:
        """Events whose event_id was already applied."""
        return tuple(r for r in self.results if r.status is EventStatus.DUPLICATE)

    @property
    def rejected(self) -> tuple[EventResult, ...]:
        """Events that failed their type's contract."""
        return tuple(r for r in self.results if r.status is EventStatus.REJECTED)


@dataclass(frozen=True, slots=True)
class ConsentUpdate:
    """A consent decision for one purpose, for ``update_profile()``."""

    purpose: str
    state: ConsentState
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProfileFieldResult:
    """The result of writing one profile field."""

    kind: ProfileFieldKind
    name: str
    outcome: ProfileWriteOutcome
    stored_timestamp: datetime | None = None


@dataclass(frozen=True, slots=True)
class ProfileUpdateResult:
    """The answer to ``update_profile()``."""

    request_id: str
    results: tuple[ProfileFieldResult, ...]

    @property
    def applied(self) -> tuple[ProfileFieldResult, ...]:
        """Fields that were written."""
        return tuple(r for r in self.results if r.outcome is ProfileWriteOutcome.APPLIED)

    @property
    def stale(self) -> tuple[ProfileFieldResult, ...]:
        """Fields ignored because the stored value is newer."""
        return tuple(r for r in self.results if r.outcome is ProfileWriteOutcome.IGNORED_STALE)
