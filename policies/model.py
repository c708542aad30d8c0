"""The policy-set format: typed msgspec models of the YAML files, as authored.

A policy set is a directory of YAML files. Every file is a mapping of
*sections* (:class:`PolicyFile`); the loader (:mod:`policies.loader`) merges the
files into one :class:`PolicySet`. List sections (``channels``, ``caps``,
``suppressions``, ``journeys``, ``actions``) and the mappings of ``contracts``
are concatenated across files; the singleton sections (``policy_set``,
``consent``, ``holdouts``, ``arbitration``) may appear in one file only.

These models describe what the author wrote; they are validated for shape
here and for meaning (cross-references, CEL, durations) by
:mod:`arbiter.policies.compiler`, which turns them into the evaluation-shaped,
immutable :class:`~arbiter.policies.plan.CompiledPolicy`. Defaults are the safe
choice: no caps unless declared, unset consent denies, suppressions apply to
transactional actions unless exempted, journeys never re-enter.

Durations in the policy format (``window``, ``after``, ``max_duration``,
``reentry: after <d>``) are strings of one or more ``<int><unit>`` terms with
units ``ms``, ``s``, ``m``, ``h``, ``d`` (24h) and ``w`` (7d), e.g. ``30m``,
``24h``, ``7d``, ``1h30m``. (CEL ``duration("...")`` literals inside
expressions follow CEL and have no ``d``/``w`` units.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Final, Literal

import msgspec

__all__ = [
    "DEFAULT_SCORE",
    "SECTIONS",
    "Action",
    "Arbitration",
    "Cap",
    "CapScope",
    "Channel",
    "Consent",
    "Constraints",
    "Contracts",
    "Dedup",
    "EventType",
    "Exit",
    "FieldSpec",
    "GlobalHoldout",
    "Holdouts",
    "InlineCap",
    "Journey",
    "JourneyHoldout",
    "JourneyStatus",
    "PolicyFile",
    "PolicySet",
    "PolicySetInfo",
    "Purpose",
    "QuietHours",
    "RegionalDefault",
    "Stage",
    "Suppression",
    "SuppressionScope",
    "TimezoneRule",
    "Transition",
    "Trigger",
    "Variant",
    "VolumeGuard",
    "VolumeGuardTrip",
    "Weekday",
    "json_schema",
]

# Identifiers of channels, journeys, actions, caps, ...: stable, URL- and
# Redis-key-safe, and readable in decision logs.
Id = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")]
# A reason code reported in explain traces, e.g. ``OPEN_COMPLAINT``.
ReasonCode = Annotated[str, msgspec.Meta(pattern=r"^[A-Z][A-Z0-9_]{0,63}$")]
Percent = Annotated[float, msgspec.Meta(ge=0.0, le=100.0)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
# Validated (with a located, readable message) when the set compiles.
DurationText = str
CelText = str
TypeText = str  # "string", "int", "double", "bool", "timestamp", "duration", "bytes", "dyn", "list(T)", "map(K, V)"
Timestamp = Annotated[datetime, msgspec.Meta(tz=True)]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
JourneyStatus = Literal["active", "paused", "retired"]
CapScope = Literal["global", "channel", "journey", "action", "tag"]

DEFAULT_SCORE: Final = "double(priority) * 1000.0 + value * propensity"


class _Model(
    msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True, omit_defaults=True
):
    """Base: immutable, keyword-only, unknown fields are errors (typos must not pass silently)."""


# --------------------------------------------------------------------------- contracts


class FieldSpec(_Model, frozen=True, kw_only=True):
    """A typed field of the profile, of the request context or of an event.

    In YAML a field may also be written as its type alone (``amount: double``).
    """

    type: TypeText
    required: bool = False
    pii: bool = False
    # Used when the snapshot has no value. Without one, an expression reading an
    # unset field is an evaluation error, which the engine treats fail-safe.
    default: Any = None
    # Allowed values (an enumeration); empty = any value of the type.
    values: tuple[Any, ...] = ()
    description: str = ""


class EventType(_Model, frozen=True, kw_only=True):
    """An event type the set may react to; ``version`` is the current schema version."""

    version: Annotated[int, msgspec.Meta(ge=1)] = 1
    properties: dict[str, FieldSpec | TypeText] = {}
    description: str = ""


class Contracts(_Model, frozen=True, kw_only=True):
    """What expressions may read: profile attributes, event types, request-context fields."""

    profile: dict[str, FieldSpec | TypeText] = {}
    events: dict[str, EventType] = {}
    context: dict[str, FieldSpec | TypeText] = {}
    # Accept request-context keys that ``context`` does not declare (kept unchecked; expressions
    # still read declared fields only). Default: an undeclared key is INVALID_ARGUMENT.
    context_open: bool = False


# --------------------------------------------------------------------------- channels, consent


class QuietHours(_Model, frozen=True, kw_only=True):
    """A window of the customer's local time in which the channel must not be used.

    ``start``/``end`` are ``HH:MM``; a window with ``end <= start`` wraps past
    midnight (``21:00``-``08:00``). ``days`` names the weekdays on which the
    window *starts*; empty means every day.
    """

    start: str
    end: str
    days: tuple[Weekday, ...] = ()


class InlineCap(_Model, frozen=True, kw_only=True):
    """A cap written inside a channel or an action: it applies to that channel/action only.

    Without ``id`` it is named ``<channel or action id>#<index>``.
    """

    limit: NonNegative
    window: DurationText
    id: Id | None = None
    include_transactional: bool = False


class Channel(_Model, frozen=True, kw_only=True):
    """A delivery channel: ``email``, ``push``, ``sms``, ``in_app``, ``web``, ..."""

    id: Id
    description: str = ""
    # Consent purposes that must all be allowed to use the channel.
    purposes: tuple[Id, ...] = ()
    # Transactional channels bypass marketing caps, quiet hours,
    # do-not-contact and the global control group -- never their own purposes.
    transactional: bool = False
    quiet_hours: tuple[QuietHours, ...] = ()
    caps: tuple[InlineCap, ...] = ()
    # Surfaces of an in-app / web channel (``home_banner``, ``cart_drawer``).
    placements: tuple[Id, ...] = ()
    # The fields an action's payload on this channel may carry (the contract of
    # the sender's template): checked when the set compiles. Unset: unchecked.
    payload: dict[str, FieldSpec | TypeText] | None = None


class Purpose(_Model, frozen=True, kw_only=True):
    id: Id
    description: str = ""


class RegionalDefault(_Model, frozen=True, kw_only=True):
    """What an *unset* (or expired) consent means for customers of some regions.

    ``regions`` are values of the consent ``region_attribute`` (``"*"`` matches
    any region, including an unknown one); ``purposes`` restricts the rule to
    some purposes (empty = all). The first matching rule wins.
    """

    regions: tuple[str, ...]
    unset: Literal["allow", "deny"]
    purposes: tuple[Id, ...] = ()
    description: str = ""


class Consent(_Model, frozen=True, kw_only=True):
    purposes: tuple[Purpose, ...] = ()
    # Profile attribute holding the customer's region (e.g. ``EU``, ``US``).
    region_attribute: str | None = None
    defaults: tuple[RegionalDefault, ...] = ()
    # When no regional rule matches: the safe default is to deny.
    unset: Literal["allow", "deny"] = "deny"
    # Profile attribute (bool) that, when true, denies every non-transactional channel.
    do_not_contact: str | None = None


# --------------------------------------------------------------------------- caps, suppressions


class Cap(_Model, frozen=True, kw_only=True):
    """``limit`` grants per rolling ``window``.

    ``scope`` + ``targets``: a ``global`` cap counts every grant. For the other
    scopes, ``targets`` lists channel / journey / action ids or tags: the
    listed targets *share* one counter; an empty ``targets`` applies the cap
    to *each* channel / journey / action / tag separately.
    ``channels`` restricts any scope to actions on those channels (e.g. a
    per-action cap for in-app messages only).
    Transactional actions are exempt unless ``include_transactional``.
    """

    id: Id
    scope: CapScope
    targets: tuple[str, ...] = ()
    channels: tuple[Id, ...] = ()
    limit: NonNegative
    window: DurationText
    include_transactional: bool = False
    description: str = ""


class SuppressionScope(_Model, frozen=True, kw_only=True):
    """Which actions a suppression rule covers: an action is covered when it
    matches any listed channel, tag, journey or action; all empty = every action."""

    channels: tuple[Id, ...] = ()
    tags: tuple[str, ...] = ()
    journeys: tuple[Id, ...] = ()
    actions: tuple[Id, ...] = ()


class Suppression(_Model, frozen=True, kw_only=True):
    """While ``when`` is true, the covered actions are suppressed with ``reason``."""

    id: Id
    reason: ReasonCode
    when: CelText
    scope: SuppressionScope = SuppressionScope()
    # Safe default: a suppression also blocks transactional actions unless exempted.
    exempt_transactional: bool = False
    description: str = ""


# --------------------------------------------------------------------------- journeys


class Dedup(_Model, frozen=True, kw_only=True):
    """Entry de-duplication beyond event ids: triggers with the same ``key``
    (a CEL expression over ``event``) enter once per ``window`` (forever if unset)."""

    key: CelText
    window: DurationText | None = None


class Trigger(_Model, frozen=True, kw_only=True):
    """An entry trigger: an event type and an optional condition."""

    event: str
    when: CelText | None = None
    dedup: Dedup | None = None


class Transition(_Model, frozen=True, kw_only=True):
    """Move to stage ``to`` on an event (``on``) or after time in the stage (``after``).

    Exactly one of ``on`` and ``after`` is set; ``when`` is an optional condition.
    ``to: exit`` leaves the journey (completion).
    """

    to: str
    on: str | None = None
    after: DurationText | None = None
    when: CelText | None = None


class Stage(_Model, frozen=True, kw_only=True):
    id: Id
    description: str = ""
    transitions: tuple[Transition, ...] = ()


class Exit(_Model, frozen=True, kw_only=True):
    """Leave the journey when event ``on`` happens (and ``when`` holds)."""

    on: str
    when: CelText | None = None
    reason: str = ""


class JourneyHoldout(_Model, frozen=True, kw_only=True):
    """A per-journey holdout: ``percent`` of customers never enter the
    journey's actions (bucketed by hash of ``salt`` and customer id; salt
    defaults to the journey id)."""

    percent: Percent
    salt: str | None = None


class Journey(_Model, frozen=True, kw_only=True):
    id: Id
    owner: str
    status: JourneyStatus  # required: activation is a deliberate act
    name: str = ""
    description: str = ""
    priority: int = 0
    triggers: tuple[Trigger, ...] = ()
    # "never" | "always" | "after <duration>"
    reentry: str = "never"
    # Defaults to the first stage.
    entry_stage: Id | None = None
    stages: tuple[Stage, ...]
    exits: tuple[Exit, ...] = ()
    max_duration: DurationText | None = None
    holdout: JourneyHoldout | None = None
    tags: tuple[str, ...] = ()


# --------------------------------------------------------------------------- actions


class Variant(_Model, frozen=True, kw_only=True):
    """A variant of an action; its payload is merged over the action's (shallow)."""

    id: Id
    weight: NonNegative = 1
    payload: dict[str, Any] = {}


class Action(_Model, frozen=True, kw_only=True):
    """Something that can be shown or sent.

    An action belongs to ``journey`` at ``stages`` (all stages when empty),
    or is ``always_on`` (no journey needed). ``value`` is a number or a CEL
    expression yielding a number.
    """

    id: Id
    channel: Id
    description: str = ""
    journey: Id | None = None
    stages: tuple[Id, ...] = ()
    always_on: bool = False
    placements: tuple[Id, ...] = ()
    eligibility: CelText | None = None
    priority: int = 0
    value: float | CelText = 0.0
    caps: tuple[InlineCap, ...] = ()
    variants: tuple[Variant, ...] = ()
    payload: dict[str, Any] = {}
    valid_from: Timestamp | None = None
    valid_until: Timestamp | None = None
    tags: tuple[str, ...] = ()
    # Returned only when nothing else is chosen.
    fallback: bool = False


# --------------------------------------------------------------------------- volume guards


VolumeGuardTrip = Literal["alert", "pause"]


class VolumeGuard(_Model, frozen=True, kw_only=True):
    """A message-storm breaker: at most ``max_grants`` grants of one action, journey or
    channel per ``window``, counted across every replica (in Redis; in the process on the
    embedded store).

    Unlike a cap, it counts the whole fleet's grants, not one customer's: it exists to
    catch a policy change or an upstream bug that suddenly makes everyone eligible.
    Exactly one of ``action``, ``journey``, ``channel`` names what it counts. Windows are
    fixed (aligned to the epoch), not rolling. ``on_trip: alert`` counts a metric and logs
    one line; ``pause`` also stops granting what the guard counts (reason ``PAUSED``) for
    one ``window`` after the trip.
    """

    id: Id
    action: Id | None = None
    journey: Id | None = None
    channel: Id | None = None
    max_grants: Annotated[int, msgspec.Meta(ge=1)]
    window: DurationText
    on_trip: VolumeGuardTrip = "alert"
    description: str = ""


# --------------------------------------------------------------------------- holdouts, arbitration


class GlobalHoldout(_Model, frozen=True, kw_only=True):
    """The global control group: ``percent`` of customers get no action."""

    percent: Percent
    salt: str
    include_transactional: bool = False
    description: str = ""


class Holdouts(_Model, frozen=True, kw_only=True):
    global_: GlobalHoldout | None = msgspec.field(default=None, name="global")


class Constraints(_Model, frozen=True, kw_only=True):
    max_per_journey: Annotated[int, msgspec.Meta(ge=1)] = 1
    # Channel id -> most actions of that channel in one decision.
    max_per_channel: dict[str, NonNegative] = {}
    # Upper bound on the request's ``limit``.
    max_actions: Annotated[int, msgspec.Meta(ge=1)] | None = None


class Arbitration(_Model, frozen=True, kw_only=True):
    """How candidates are scored and constrained.

    ``score`` is CEL over ``priority`` (int), ``value`` (double),
    ``propensity`` (double: the request's propensity for the action, else
    ``default_propensity``), ``action.*`` and everything eligibility sees.
    Ties: higher ``priority``, then action id (ascending).
    """

    score: CelText = DEFAULT_SCORE
    default_propensity: float = 1.0
    constraints: Constraints = Constraints()


# --------------------------------------------------------------------------- the set


class TimezoneRule(_Model, frozen=True, kw_only=True):
    """Where the customer's IANA time zone comes from (quiet hours, ``customer.local_hour()``):
    the request-context field, else the profile attribute, else ``default``."""

    context: str | None = None
    attribute: str | None = None
    default: str = "UTC"


class PolicySetInfo(_Model, frozen=True, kw_only=True):
    id: Id
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    description: str = ""
    timezone: TimezoneRule = TimezoneRule()


class PolicyFile(_Model, frozen=True, kw_only=True):
    """One YAML file: any subset of the sections."""

    policy_set: PolicySetInfo | None = None
    contracts: Contracts | None = None
    consent: Consent | None = None
    channels: tuple[Channel, ...] = ()
    caps: tuple[Cap, ...] = ()
    suppressions: tuple[Suppression, ...] = ()
    journeys: tuple[Journey, ...] = ()
    actions: tuple[Action, ...] = ()
    holdouts: Holdouts | None = None
    arbitration: Arbitration | None = None
    volume_guards: tuple[VolumeGuard, ...] = ()


class PolicySet(_Model, frozen=True, kw_only=True):
    """All files merged (see the module docstring)."""

    policy_set: PolicySetInfo
    contracts: Contracts = Contracts()
    consent: Consent = Consent()
    channels: tuple[Channel, ...] = ()
    caps: tuple[Cap, ...] = ()
    suppressions: tuple[Suppression, ...] = ()
    journeys: tuple[Journey, ...] = ()
    actions: tuple[Action, ...] = ()
    holdouts: Holdouts = Holdouts()
    arbitration: Arbitration = Arbitration()
    volume_guards: tuple[VolumeGuard, ...] = ()


SECTIONS: Final = tuple(field.encode_name for field in msgspec.structs.fields(PolicyFile))


def json_schema() -> dict[str, Any]:
    """JSON Schema of one policy file, for editors (yaml-language-server) and validators.

    Published as ``schemas/policy-file.schema.json`` (``make schemas``); the
    compiler checks much more (references, CEL, durations) than a schema can.
    """
    schema: dict[str, Any] = msgspec.json.schema(PolicyFile)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Arbiter policy file"
    return schema
