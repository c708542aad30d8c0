"""The compiled plan: the immutable, versioned artefact the compiler produces and the engine only reads.

:func:`arbiter.policies.compiler.compile_policy` builds one
:class:`CompiledPolicy` per policy set; :mod:`arbiter.policies.engine`
evaluates it and never imports the compiler. Everything the hot path needs
is precomputed here, at compile time: candidate indexes per placement (and
journey stage), each action's cap increments, suppression rules and
thawed payloads, the snapshot parts each expression reads (for fail-safe
on unavailable state), quiet-hour windows in minutes, the first timer of
each stage, the activation bindings of the attributes the set reads.

A plan is shared by every request and thread. Its values are frozen msgspec
structs and read-only mappings; payload dicts are shared with the decisions
that return them and must be treated as read-only. The one mutable member,
:attr:`CompiledPolicy.channel_views`, is a bounded memo of derived candidate
indexes (for requests that name their channels) -- it never changes an
answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Final, Literal

import msgspec

from . import cel
from .diagnostics import Diagnostic, Location
from .effects import CapIncrement
from .snapshot import SnapshotNeeds, SnapshotPart

__all__ = [
    "EXIT",
    "Binding",
    "CandidateIndex",
    "CompiledAction",
    "CompiledArbitration",
    "CompiledCap",
    "CompiledChannel",
    "CompiledConsent",
    "CompiledExit",
    "CompiledField",
    "CompiledHoldout",
    "CompiledJourney",
    "CompiledPolicy",
    "CompiledStage",
    "CompiledSuppression",
    "CompiledTransition",
    "CompiledTrigger",
    "CompiledVariant",
    "CompiledVolumeGuard",
    "EventTypeContract",
    "Expression",
    "QuietWindow",
    "Reentry",
    "channel_purposes",
]

EXIT: Final = "exit"  # the pseudo stage ``to: exit`` leaves the journey

# (name, activation key, converter or None for identity, has default, default) of
# one profile attribute / context field the set reads (see ``activation``).
Binding = tuple[str, str, Callable[[Any], Any] | None, bool, Any]


class _Frozen(msgspec.Struct, frozen=True, kw_only=True):
    """Base of compiled values: immutable; compare by content."""


class Expression(_Frozen, frozen=True, kw_only=True):
    """A compiled CEL expression, where it was written, and what it reads.

    ``parts``: the snapshot parts the expression reads -- an expression
    reading a part the store could not read is not evaluated (fail safe).
    ``compact``: the text on one line, for explain details.
    """

    text: str
    location: Location
    program: cel.Program
    parts: frozenset[SnapshotPart] = frozenset()
    compact: str = ""

    @property
    def references(self) -> frozenset[str]:
        return self.program.references

    def evaluate(self, activation: Mapping[str, object]) -> object:
        return self.program.evaluate(activation)


class CompiledField(_Frozen, frozen=True, kw_only=True):
    """A contract field (profile attribute, context field, event property)."""

    name: str
    type: cel.Type
    type_text: str
    required: bool = False
    pii: bool = False
    has_default: bool = False
    default: Any = None  # a CEL runtime value
    values: frozenset[Any] = frozenset()
    # Snapshot / request value -> CEL runtime value (see ``activation``).
    convert: Callable[[Any], Any]


class EventTypeContract(_Frozen, frozen=True, kw_only=True):
    name: str
    version: int
    properties: Mapping[str, CompiledField]


class QuietWindow(_Frozen, frozen=True, kw_only=True):
    """Local-time window in minutes of the day; ``days`` (0 = Sunday) are the days it starts on."""

    start_minute: int
    end_minute: int
    days: frozenset[int]

    def contains(self, minute: int, weekday: int) -> bool:
        all_days = not self.days
        if self.start_minute < self.end_minute:
            return self.start_minute <= minute < self.end_minute and (
                all_days or weekday in self.days
            )
        if minute >= self.start_minute:
            return all_days or weekday in self.days
        if minute < self.end_minute:
            return all_days or (weekday - 1) % 7 in self.days
        return False


class CompiledCap(_Frozen, frozen=True, kw_only=True):
    id: str
    scope: str
    targets: frozenset[str]
    per_target: bool  # empty targets: one counter per channel / journey / action / tag
    channels: frozenset[str]  # only actions on these channels (empty = any)
    limit: int
    window_ms: int
    include_transactional: bool
    location: Location


class CompiledVolumeGuard(_Frozen, frozen=True, kw_only=True):
    """A fleet-wide grant-rate breaker (``volume_guards``): the server counts, the plan says what."""

    id: str
    scope: str  # "action", "journey" or "channel"
    target: str
    max_grants: int
    window_ms: int
    on_trip: str  # "alert" or "pause"
    actions: frozenset[str]  # the actions whose grants it counts
    location: Location


class CompiledChannel(_Frozen, frozen=True, kw_only=True):
    id: str
    purposes: tuple[str, ...]
    transactional: bool
    quiet_hours: tuple[QuietWindow, ...]
    placements: frozenset[str]
    # The declared payload fields of its actions (``None``: payloads unchecked).
    payload: Mapping[str, CompiledField] | None = None

    def quiet_at(self, minute: int, weekday: int) -> bool:
        """Whether local ``minute`` of the day on ``weekday`` (0 = Sunday) is quiet."""
        return any(w.contains(minute, weekday) for w in self.quiet_hours)


class CompiledConsent(_Frozen, frozen=True, kw_only=True):
    """Consent rules. ``defaults``: (regions or None for any, purposes or None for all, allow)."""

    purposes: frozenset[str]
    region_attribute: str | None
    defaults: tuple[tuple[frozenset[str] | None, frozenset[str] | None, bool], ...]
    unset_allows: bool
    do_not_contact: str | None

    def unset_allowed(self, region: str | None, purpose: str) -> bool:
        """What an unset (or expired) consent for ``purpose`` means in ``region``."""
        for regions, purposes, allow in self.defaults:
            if (regions is None or (region is not None and region in regions)) and (
                purposes is None or purpose in purposes
            ):
                return allow
        return self.unset_allows


class CompiledSuppression(_Frozen, frozen=True, kw_only=True):
    id: str
    reason: str
    when: Expression
    exempt_transactional: bool


class CompiledVariant(_Frozen, frozen=True, kw_only=True):
    id: str
    weight: int
    payload: dict[str, Any]  # the action's payload with the variant's merged over it; read-only


class CompiledAction(_Frozen, frozen=True, kw_only=True):
    """An action with everything the hot path reads, as plain attributes."""

    id: str
    order: int  # declaration order across the set (files sorted by path)
    journey: str  # "" for an always-on action
    stages: frozenset[str]  # empty with a journey = every stage
    always_on: bool
    channel: CompiledChannel
    channel_id: str  # = channel.id
    transactional: bool  # = channel.transactional
    placements: frozenset[str]
    eligibility: Expression | None
    priority: int
    journey_priority: int  # its journey's priority; 0 for an always-on action
    value: float
    value_expr: Expression | None
    caps: tuple[CapIncrement, ...]  # one per counter a grant counts against
    suppressions: tuple[CompiledSuppression, ...]  # the rules whose scope covers it
    # Actions covered by the same rules share one verdict per decision.
    suppression_key: str
    variants: tuple[CompiledVariant, ...]
    variant_weights: tuple[int, ...]
    payload: dict[str, Any]  # read-only, shared with the decisions that return it
    valid_from_ms: int | None
    valid_until_ms: int | None
    tags: tuple[str, ...]  # sorted
    fallback: bool
    location: Location


class CompiledTrigger(_Frozen, frozen=True, kw_only=True):
    journey: str
    event: str
    when: Expression | None
    dedup_key: Expression | None
    dedup_window_ms: int | None  # None: a dedup key enters once forever


class CompiledTransition(_Frozen, frozen=True, kw_only=True):
    journey: str
    stage: str
    to: str  # a stage id or EXIT
    on: str | None
    after_ms: int | None
    when: Expression | None


class CompiledStage(_Frozen, frozen=True, kw_only=True):
    id: str
    transitions: tuple[CompiledTransition, ...]
    actions: tuple[CompiledAction, ...]
    first_timer_ms: int | None = None  # the shortest ``after`` of its transitions


class CompiledExit(_Frozen, frozen=True, kw_only=True):
    journey: str
    on: str
    when: Expression | None
    reason: str


class Reentry(_Frozen, frozen=True, kw_only=True):
    kind: Literal["never", "always", "after"]
    after_ms: int = 0


class CompiledJourney(_Frozen, frozen=True, kw_only=True):
    id: str
    name: str
    owner: str
    status: Literal["active", "paused", "retired"]
    priority: int
    triggers: tuple[CompiledTrigger, ...]
    reentry: Reentry
    entry_stage: str
    stages: Mapping[str, CompiledStage]  # in declaration order
    exits: tuple[CompiledExit, ...]
    max_duration_ms: int | None
    holdout_buckets: int  # of bucketing.BUCKETS; 0 = no holdout
    holdout_salt: str
    tags: frozenset[str]


class CompiledHoldout(_Frozen, frozen=True, kw_only=True):
    percent: float
    buckets: int  # of bucketing.BUCKETS
    salt: str
    include_transactional: bool


class CompiledArbitration(_Frozen, frozen=True, kw_only=True):
    """The score formula and the constraints of arbitration.

    ``default_score``: the formula is the default one, which the engine
    computes without the CEL call (identical arithmetic). ``score_vars``: the
    per-candidate variables the formula reads (only those are bound).
    """

    score: Expression
    default_score: bool
    score_vars: tuple[str, ...]
    default_propensity: float
    max_per_journey: int
    max_per_channel: Mapping[str, int]
    max_actions: int | None


class CandidateIndex(_Frozen, frozen=True, kw_only=True):
    """The candidates of one request shape (placement, channels), in declaration order.

    ``always``: always-on actions; ``journeys``: per journey (declaration
    order) its stage -> actions map, so a decision only touches the actions
    of the stages its customer is in. ``purposes``: the consent purposes the
    request's channels require, sorted (the decision's consent summary);
    ``transactional_purposes``: those of them a transactional channel among
    the request's requires -- do-not-contact never blocks their use, so the
    consent summary does not report them as blocked by it.
    """

    always: tuple[CompiledAction, ...]
    journeys: tuple[tuple[str, Mapping[str, tuple[CompiledAction, ...]]], ...]
    purposes: tuple[str, ...]
    transactional_purposes: frozenset[str] = frozenset()


def channel_purposes(
    channels: Iterable[CompiledChannel],
) -> tuple[tuple[str, ...], frozenset[str]]:
    """The purposes ``channels`` require (sorted) and those a transactional one requires
    (see :class:`CandidateIndex`)."""
    listed = list(channels)
    purposes = {p for c in listed for p in c.purposes}
    transactional = {p for c in listed if c.transactional for p in c.purposes}
    return tuple(sorted(purposes)), frozenset(transactional)


class CompiledPolicy(_Frozen, frozen=True, kw_only=True):
    """An immutable compiled policy set. Share freely across threads and requests."""

    id: str
    version: str
    digest: str  # sha256 of the files, see loader.digest_sources
    compiler_version: str
    policy_version: str  # "<declared version>+<digest>", reported on every decision
    files: tuple[str, ...]

    profile: Mapping[str, CompiledField]
    context: Mapping[str, CompiledField]
    context_open: bool  # undeclared request-context keys are accepted (and ignored)
    events: Mapping[str, EventTypeContract]
    timezone_context: str | None
    timezone_attribute: str | None
    default_timezone: str

    channels: Mapping[str, CompiledChannel]
    channel_ids: tuple[str, ...]
    consent: CompiledConsent
    caps: Mapping[str, CompiledCap]
    suppressions: tuple[CompiledSuppression, ...]
    journeys: Mapping[str, CompiledJourney]
    actions: Mapping[str, CompiledAction]  # declaration order
    holdout: CompiledHoldout | None
    arbitration: CompiledArbitration

    # --- precomputed for the engine
    # Placement ("" = none) -> its candidates on every channel.
    candidates: Mapping[str, CandidateIndex]
    # Journey -> why it enrolls and offers nothing ("journey `x` is paused"); active ones absent.
    inactive_journeys: Mapping[str, str]
    # Journey -> (salt, buckets) of its holdout; journeys without one absent.
    journey_holdouts: Mapping[str, tuple[str, int]]
    has_timers: bool  # any stage `after` transition or journey max duration
    triggers_by_event: Mapping[str, tuple[CompiledTrigger, ...]]
    transitions_by_event: Mapping[str, tuple[CompiledTransition, ...]]
    exits_by_event: Mapping[str, tuple[CompiledExit, ...]]
    # The profile attributes / context fields the set reads, for the activation.
    profile_bindings: tuple[Binding, ...]
    context_bindings: tuple[Binding, ...]

    needs: SnapshotNeeds
    warnings: tuple[Diagnostic, ...]
    volume_guards: tuple[CompiledVolumeGuard, ...] = ()

    # Memo: (placement, channels) -> the candidates of a request naming its channels.
    channel_views: dict[tuple[str, tuple[str, ...]], CandidateIndex] = msgspec.field(
        default_factory=dict
    )
