"""The scenario-file format: typed msgspec models of ``scenarios:`` YAML files, as authored.

A scenario file (``tests/*.yaml`` or ``*_test.yaml`` next to a policy set)
holds a list of scenarios: a starting state (``given``), then steps --
``track``, ``update_profile``, ``decide``, ``check`` -- each optionally
followed by ``expect``. ``docs/scenarios.md`` is the reference; the JSON
Schema of these models is ``schemas/scenario-file.schema.json``.

Shape only: every name a scenario uses (event types, channels, journeys,
stages, cap keys, actions, reason codes, attributes and their types) is
checked against the compiled policy by :mod:`.validate`, with
``file:line:col`` and "did you mean".
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

from arbiter.policies.effects import FeedbackKind
from arbiter.policies.snapshot import SnapshotPart

__all__ = [
    "CheckSpec",
    "ConsentGiven",
    "DecideSpec",
    "ErrorExpect",
    "EventSpec",
    "Expect",
    "Given",
    "JourneyExpect",
    "JourneyGiven",
    "ProfileSpec",
    "Scenario",
    "ScenarioFile",
    "StatusCode",
    "Step",
    "TimeText",
    "json_schema",
]

# A time: RFC 3339 with a zone (``2025-06-02T15:00:00Z``) or a signed offset from
# ``given.now`` in the policy duration syntax (``-2h``, ``+30m``). A bare number is
# refused by the validator (``0`` would silently mean 1970).
TimeText = str | int
# An error expectation: a status code name, or the code and a part of the message.
StatusCode = Literal[
    "INVALID_ARGUMENT",
    "UNAVAILABLE",
    "ABORTED",
    "DEADLINE_EXCEEDED",
    "FAILED_PRECONDITION",
    "NOT_FOUND",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "INTERNAL",
]


class _Spec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base: unknown fields are errors, so a typo in an expectation cannot pass silently."""


class ConsentGiven(_Spec, frozen=True, kw_only=True):
    """A consent record: ``state``, when it was written (``at``), by whom, until when."""

    state: Literal["granted", "denied"]
    at: TimeText | None = None
    source: str = "scenario"
    expires: TimeText | None = None


Consent = Literal["granted", "denied"] | ConsentGiven


class EventSpec(_Spec, frozen=True, kw_only=True):
    """An event, as ``Track`` receives it (``at``: default the scenario clock)."""

    type: str
    id: str | None = None
    at: TimeText | None = None
    properties: dict[str, Any] = {}
    version: int = 0
    decision_id: str = ""
    tracking_id: str = ""
    feedback: FeedbackKind | None = None
    # A feedback event about an action of the last decision: fills decision_id and tracking_id.
    on_action: str | None = None


class JourneyGiven(_Spec, frozen=True, kw_only=True):
    """A journey state set directly (``entered`` defaults to ``given.now``)."""

    stage: str
    status: Literal["active", "completed", "exited"] = "active"
    entered: TimeText | None = None
    stage_entered: TimeText | None = None
    entries: int = 1
    entry_event_id: str = "given"


class Given(_Spec, frozen=True, kw_only=True):
    """The starting state; written through the same service calls as production where one exists."""

    now: TimeText
    customer_id: str = "alice"
    profile: dict[str, Any] = {}
    consent: dict[str, Consent] = {}
    segments: tuple[str, ...] = ()
    events: tuple[EventSpec, ...] = ()
    journeys: dict[str, JourneyGiven] = {}
    caps: dict[str, list[TimeText]] = {}
    unavailable: tuple[SnapshotPart, ...] = ()
    paused: tuple[str, ...] = ()


class DecideSpec(_Spec, frozen=True, kw_only=True):
    """A ``Decide`` call (always with the explain trace)."""

    placement: str = ""
    channels: tuple[str, ...] = ()
    context: dict[str, Any] = {}
    limit: int = 1
    propensities: dict[str, float] = {}
    request_id: str | None = None
    dry_run: bool = False


class CheckSpec(_Spec, frozen=True, kw_only=True):
    """A ``Check`` call: may ``action`` go out on ``channel`` now (and record the send)?"""

    action: str
    channel: str | None = None  # default: the action's channel
    context: dict[str, Any] = {}
    record: bool = False
    request_id: str | None = None
    # The decision the send belongs to; ``on_last_decision: true`` takes the last decide's.
    decision_id: str = ""
    on_last_decision: bool = False


class ProfileSpec(_Spec, frozen=True, kw_only=True):
    """An ``UpdateProfile`` call."""

    traits: dict[str, Any] = {}
    consent: dict[str, Consent] = {}
    do_not_contact: bool | None = None
    segments: tuple[str, ...] | None = None  # the complete membership, as a CDP sync sends it
    source: str = "scenario"
    at: TimeText | None = None  # the source timestamp; default: the clock


class JourneyExpect(_Spec, frozen=True, kw_only=True):
    """A subset of a stored journey state."""

    status: Literal["active", "completed", "exited"] | None = None
    stage: str | None = None
    entries: int | None = None
    exit_reason: str | None = None
    # The event id (or timer cause, ``timer:...``) of the last change / of the entry.
    last_event: str | None = None
    entry_event: str | None = None


class ChangeExpect(_Spec, frozen=True, kw_only=True):
    """One journey change and what caused it (an event id, or a timer: ``timer:<...>``)."""

    change: str  # <kind>:<journey>
    cause: str | None = None


class ErrorExpect(_Spec, frozen=True, kw_only=True):
    """The call fails with ``code``; ``message`` is a part of the status message."""

    code: StatusCode
    message: str = ""


class Expect(_Spec, frozen=True, kw_only=True):
    """What to check after a step; every key optional (``docs/scenarios.md``, "expect")."""

    # any call
    error: StatusCode | ErrorExpect | None = None
    # decide
    actions: tuple[str, ...] | None = None
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()
    reasons: dict[str, str] = {}
    details: dict[str, str] = {}
    held_out: tuple[str, ...] | None = None
    control_group: bool | None = None
    variants: dict[str, str] = {}
    payload: dict[str, dict[str, Any]] = {}
    degraded: bool | None = None
    consent: dict[str, str] = {}
    fallback: bool | None = None
    replayed: bool | None = None
    not_before: dict[str, TimeText | None] = {}  # action -> instant (None: not deferred)
    # check
    allowed: bool | None = None
    reason: str | None = None
    detail: str | None = None
    recorded: bool | None = None
    # track
    status: Literal["applied", "duplicate", "rejected"] | None = None
    feedback: int | None = None
    # track and decide: journey changes in order, ``<kind>:<journey>`` or with the cause
    changes: tuple[str | ChangeExpect, ...] | None = None
    # update_profile
    applied: dict[str, bool] = {}
    # state, any step
    journeys: dict[str, JourneyExpect | None] = {}
    caps: dict[str, int] = {}
    counters: dict[str, int] = {}
    profile: dict[str, Any] = {}
    consent_state: dict[str, Literal["granted", "denied", "unset"]] = {}


class Step(_Spec, frozen=True, kw_only=True):
    """At most one call, after an optional clock move, then ``expect``."""

    at: TimeText | None = None
    advance: str | None = None
    track: EventSpec | None = None
    update_profile: ProfileSpec | None = None
    decide: DecideSpec | None = None
    check: CheckSpec | None = None
    expect: Expect | None = None
    description: str = ""


class Scenario(_Spec, frozen=True, kw_only=True):
    name: str
    description: str = ""
    tags: tuple[str, ...] = ()
    given: Given
    steps: tuple[Step, ...] = ()


class ScenarioFile(_Spec, frozen=True, kw_only=True):
    """One scenario file."""

    scenarios: tuple[Scenario, ...]


def json_schema() -> dict[str, Any]:
    """JSON Schema of one scenario file, for editors (yaml-language-server) and validators."""
    schema: dict[str, Any] = msgspec.json.schema(ScenarioFile)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Arbiter scenario file"
    return schema
