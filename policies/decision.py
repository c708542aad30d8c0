"""Domain types of a decision: the request the engine answers and the decision it returns.

These are plain, immutable msgspec values so that a decision is
reproducible byte for byte (``msgspec.json.encode``), can be stored as the
idempotency record and the decision-log entry, and converts one-to-one to
the wire types of ``proto/arbiter/v1/decision.proto`` (``server/`` owns that
conversion; the names here follow the proto, minus the ``REASON_`` prefix).

Instants are epoch milliseconds (``*_ms``), as in :mod:`policies.snapshot`.
"""

from __future__ import annotations

import hashlib
from enum import StrEnum
from typing import Any, Literal

import msgspec

__all__ = [
    "CandidateTrace",
    "CheckQuery",
    "ChosenAction",
    "Decision",
    "Degradation",
    "Outcome",
    "PurposeConsent",
    "ReasonCode",
    "Request",
]


class ReasonCode(StrEnum):
    """Why a candidate was or was not chosen, why a purpose is (not) allowed, why degraded.

    New values may be added; consumers treat unknown values as "unspecified"
    and rely on the detail text. ``ERROR`` has no proto counterpart (the
    server maps it to ``REASON_UNSPECIFIED`` with the detail).
    """

    SELECTED = "SELECTED"
    # Consent summary: the purpose counts as granted.
    ELIGIBLE = "ELIGIBLE"
    # A purpose the channel requires is explicitly denied.
    CONSENT_DENIED = "CONSENT_DENIED"
    # A purpose the channel requires is unset and the regional rule treats unset as denied.
    CONSENT_UNKNOWN = "CONSENT_UNKNOWN"
    # A purpose's record has expired and the regional rule treats unset as denied.
    CONSENT_EXPIRED = "CONSENT_EXPIRED"
    # The customer's do-not-contact flag: every non-transactional channel.
    DO_NOT_CONTACT = "DO_NOT_CONTACT"
    # A frequency cap is reached (in the snapshot, or by actions chosen earlier in this decision).
    CAPPED = "CAPPED"
    # A suppression rule matched (or failed to evaluate: fail safe); the detail names it.
    SUPPRESSED = "SUPPRESSED"
    # The eligibility condition is false or failed to evaluate.
    INELIGIBLE = "INELIGIBLE"
    QUIET_HOURS = "QUIET_HOURS"
    # The customer is in the journey's holdout.
    HOLDOUT = "HOLDOUT"
    # The customer is in the global control group.
    CONTROL_GROUP = "CONTROL_GROUP"
    # The journey is paused or retired (by the policy or an operator's kill switch).
    PAUSED = "PAUSED"
    OUTSIDE_VALIDITY = "OUTSIDE_VALIDITY"
    # Passed every filter but outranked: the request's ``limit`` was filled by better candidates,
    # or (fallbacks) a regular action was chosen.
    LOST_ARBITRATION = "LOST_ARBITRATION"
    # Another action of the same journey was chosen (``max_per_journey``).
    JOURNEY_CONSTRAINT = "JOURNEY_CONSTRAINT"
    # The channel's ``max_per_channel`` was filled.
    CHANNEL_LIMIT = "CHANNEL_LIMIT"
    # The policy's ``max_actions`` (lower than the request's ``limit``) was filled.
    LIMIT_REACHED = "LIMIT_REACHED"
    # A part of the snapshot the candidate needs could not be read; fail safe.
    STATE_UNAVAILABLE = "STATE_UNAVAILABLE"
    # Check: the action's channel is not the one asked about, or not allowed for the call.
    CHANNEL_NOT_ALLOWED = "CHANNEL_NOT_ALLOWED"
    # Check: the action belongs to a journey stage the customer is not in.
    NOT_IN_STAGE = "NOT_IN_STAGE"
    # The value or score expression failed; the candidate is not sent.
    ERROR = "ERROR"


class Outcome(StrEnum):
    """What happened to a candidate (proto ``CandidateOutcome``)."""

    SELECTED = "SELECTED"
    # Failed a filter (validity .. holdout); the reason names the first one.
    FILTERED = "FILTERED"
    # Passed every filter but was not chosen (arbitration, constraints, limit, fallback unused).
    NOT_SELECTED = "NOT_SELECTED"


class _Value(msgspec.Struct, frozen=True, kw_only=True):
    """Base: immutable, keyword-only; encodes with every field for stable bytes."""


class Request(_Value, frozen=True, kw_only=True):
    """A ``Decide`` call, validated by the server (ids, lengths) before it gets here.

    - ``placement``: the surface asking; ``""`` selects only actions that
      declare no placements, a placement selects only actions that list it.
    - ``channels``: the channels the caller can deliver on; empty = all the
      policy declares.
    - ``limit``: most actions to choose; ``<= 0`` means 1 (proto: 0 means 1);
      the policy's ``constraints.max_actions`` lowers it further.
    - ``propensities``: optional per-action propensity (e.g. from a model),
      the ``propensity`` variable of the arbitration score; missing actions
      use the policy's ``default_propensity``.
    - ``request_id``: the idempotency key; it also seeds the decision id.
    - ``dry_run``: the engine ignores it (it never writes); the server does
      not commit the returned :class:`~policies.effects.DecisionCommit`.
    """

    customer_id: str
    placement: str = ""
    channels: tuple[str, ...] = ()
    context: dict[str, Any] = {}
    limit: int = 1
    explain: bool = False
    request_id: str = ""
    propensities: dict[str, float] = {}
    dry_run: bool = False


class CheckQuery(_Value, frozen=True, kw_only=True):
    """A ``Check`` call: may ``action`` go to the customer on ``channel`` now?

    - ``decision_id``: the decision the send belongs to (its tracking id
      joins feedback to it); empty: the check's own decision id.
    - ``record``: count the send against the action's caps, idempotently per
      ``request_id`` (see :attr:`record_key`).
    """

    customer_id: str
    action: str
    channel: str
    context: dict[str, Any] = {}
    request_id: str = ""
    decision_id: str = ""
    record: bool = False

    @property
    def record_key(self) -> str | None:
        """The idempotency key of a recording Check (``None`` when it records nothing): a
        valid store id derived from ``request_id``, disjoint from Decide's request ids, so a
        Check can never replay a Decide's answer."""
        if not self.record:
            return None
        return "check:" + hashlib.sha256(self.request_id.encode()).hexdigest()[:40]


class ChosenAction(_Value, frozen=True, kw_only=True):
    """One action to show or send (proto ``ChosenAction``).

    ``payload`` is the action's payload with the variant's merged over it;
    it is shared with the compiled policy's plan -- treat it as read-only.
    ``tracking_id`` is ``<decision_id>.<action_id>``: feedback events carry
    it (and the decision id) so that impressions, clicks, conversions and
    dismissals join back to the decision.
    """

    action: str
    journey: str = ""
    stage: str = ""
    channel: str
    variant: str = ""
    payload: dict[str, Any] = {}
    tracking_id: str
    score: float
    tags: tuple[str, ...] = ()
    fallback: bool = False


class CandidateTrace(_Value, frozen=True, kw_only=True):
    """One candidate of the explain trace (proto ``Candidate``).

    ``score`` is ``None`` when the candidate was filtered before scoring.
    ``detail`` is for people and logs, not a stable interface.
    ``not_before_ms``: refused only by quiet hours or a full cap, the instant
    both would let it pass (``engine/defer.py``); ``None`` otherwise.
    """

    action: str
    journey: str = ""
    stage: str = ""
    channel: str
    outcome: Outcome
    reason: ReasonCode
    detail: str = ""
    score: float | None = None
    variant: str = ""
    not_before_ms: int | None = None


class PurposeConsent(_Value, frozen=True, kw_only=True):
    """Consent of one purpose as the decision saw it (proto ``PurposeConsent``).

    ``state`` is the recorded, unexpired state (``""`` when there is none);
    ``allowed`` is the effective answer after regional defaults and
    do-not-contact; ``reason`` is ``ELIGIBLE`` when allowed.
    """

    purpose: str
    state: Literal["granted", "denied", ""] = ""
    allowed: bool
    reason: ReasonCode
    source: str = ""
    updated_ms: int | None = None
    expires_ms: int | None = None


class Degradation(_Value, frozen=True, kw_only=True):
    """The decision fell back toward not sending because something was missing or failed."""

    reason: ReasonCode
    detail: str


class Decision(_Value, frozen=True, kw_only=True):
    """The engine's answer.

    - ``decision_id``: deterministic (see :func:`arbiter.policies.engine.decision_id`),
      so a replay of the same request at the same instant names the same decision.
    - ``policy_version``: ``<declared version>+<content digest>``.
    - ``actions``: chosen, best first; empty = show or send nothing.
    - ``held_out``: for customers in the control group or a journey
      holdout, what they would have received (for measurement); never sent.
    - ``consent``: every purpose the request's channels require (all the
      policy's channels when the request names none), sorted by purpose.
    - ``candidates``: the explain trace, in candidate order (action
      declaration order); empty unless the request set ``explain``.
    - ``degradations``: why the decision may have withheld something it
      would otherwise have sent (unavailable state, failing expressions).
    - ``not_before_ms``: the earliest instant at which a candidate refused
      only by quiet hours or a full cap would pass them (``None``: none was
      deferred) -- when an outbound sender should ask again.
    """

    decision_id: str
    request_id: str
    customer_id: str
    policy_version: str
    decided_ms: int
    actions: tuple[ChosenAction, ...] = ()
    held_out: tuple[ChosenAction, ...] = ()
    control_group: bool = False
    consent: tuple[PurposeConsent, ...] = ()
    degradations: tuple[Degradation, ...] = ()
    candidates: tuple[CandidateTrace, ...] = ()
    not_before_ms: int | None = None

    @property
    def degraded(self) -> bool:
        return bool(self.degradations)

    def candidate(self, action: str) -> CandidateTrace | None:
        """The trace entry of ``action`` (``None`` when it was not a candidate or explain was off)."""
        for entry in self.candidates:
            if entry.action == action:
                return entry
        return None
