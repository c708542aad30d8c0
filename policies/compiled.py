"""Compile a loaded policy set into the immutable, evaluation-shaped :class:`CompiledPolicy`.

Compilation validates every cross-reference, parses every duration and
compiles every CEL expression against the contract-derived environment (so
an expression error points into the YAML file), then precomputes what the
decision hot path needs: candidate indexes by placement / channel / journey
stage, the cap bindings and suppression rules of each action, consent
defaults, quiet-hour windows in minutes. All problems are reported at once
as :class:`~policies.loader.Diagnostic` values sorted by file, line, column.

Errors make the set unusable; warnings (unreachable stages, caps that can
never bind, journeys nobody can enter, ...) are kept on the compiled policy.
Decisions documented in ``docs/policy-language.md``:

- A non-transactional channel that requires no consent purpose is an
  **error**, unless it says so explicitly with ``purposes: []`` (a warning).
- Evaluation-time errors are the engine's to treat fail-safe; compile time
  only rejects what can be known statically.

Nothing here reads a clock or does I/O (except :func:`load_policy`, which
reads the directory through :mod:`policies.loader`).
"""

from __future__ import annotations

import difflib
import os
import re
from collections import defaultdict, deque
from collections.abc import Callable, Collection, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final, Literal

import msgspec

from . import cel
from .cel import timefns
from .cel.ast import Source
from .contracts import DOMAIN_FUNCTIONS as _DOMAIN_FUNCTIONS
from .contracts import (
    CustomerView,
    EventsView,
    FieldsView,
    JourneysView,
    SegmentsView,
    base_variables,
    event_variables,
    parse_type,
    score_variables,
)
from .loader import (
    Diagnostic,
    LoadedPolicySet,
    Location,
    Locator,
    ModelPath,
    PolicyError,
    Severity,
    load_directory,
)
from .model import (
    Action,
    FieldSpec,
    InlineCap,
    Journey,
    PolicySet,
)
from .snapshot import ConsentRecord, CustomerSnapshot, SnapshotNeeds, SnapshotPart

__all__ = [
    "COMPILER_VERSION",
    "EXIT",
    "CapBinding",
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
    "EventTypeContract",
    "Expression",
    "QuietWindow",
    "Reentry",
    "build_activation",
    "check_policy",
    "compile_policy",
    "event_activation",
    "load_policy",
    "parse_duration_ms",
    "score_activation",
]

COMPILER_VERSION: Final = "1"
EXIT: Final = "exit"  # the pseudo stage ``to: exit`` leaves the journey
BUCKETS: Final = 10_000  # holdout / variant bucketing resolution

_NS_PER_MS: Final = 1_000_000
_DURATION_UNITS: Final = {
    "ms": 1,
    "s": 1_000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
}
_DURATION_TERM: Final = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")
_HHMM: Final = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_WEEKDAYS: Final = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
_EVENTS_CALL: Final = re.compile(
    r"\bevents\s*\.\s*(?:count|since|seen|last)\s*\(\s*(?:\"([^\"\\]*)\"|'([^'\\]*)')?"
)


def parse_duration_ms(text: str) -> int:
    """A policy duration (``30m``, ``24h``, ``7d``, ``4w``, ``1h30m``) in ms; ``ValueError`` if invalid."""
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty duration")
    pos = 0
    total = 0
    while pos < len(stripped):
        match = _DURATION_TERM.match(stripped, pos)
        if match is None:
            raise ValueError(
                f"invalid duration `{text}`: use an integer and a unit ms, s, m, h, d or w "
                "(e.g. 30m, 24h, 7d, 1h30m)"
            )
        total += int(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    return total


# =========================================================================== compiled types

_Binding = tuple[str, str, Callable[[Any], Any] | None, bool, Any]


class _Frozen(msgspec.Struct, frozen=True, kw_only=True):
    """Base of compiled values: immutable; compare by identity of content."""


class Expression(_Frozen, frozen=True, kw_only=True):
    """A compiled CEL expression with its text and where it was written."""

    text: str
    location: Location
    program: cel.Program

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
    # Snapshot / request value -> CEL runtime value (see ``build_activation``).
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


class CapBinding(_Frozen, frozen=True, kw_only=True):
    """One counter a grant of an action counts against. ``key`` is the
    snapshot / store key: the cap id, or ``<cap id>/<target>`` for per-target caps."""

    cap_id: str
    key: str
    limit: int
    window_ms: int


class CompiledChannel(_Frozen, frozen=True, kw_only=True):
    id: str
    purposes: tuple[str, ...]
    transactional: bool
    quiet_hours: tuple[QuietWindow, ...]
    placements: frozenset[str]

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

    def allows(
        self, record: ConsentRecord | None, region: str | None, purpose: str, now_ms: int
    ) -> bool:
        """Effective consent: an unexpired record decides; else the regional default."""
        if record is not None and (record.expires_ms is None or record.expires_ms > now_ms):
            return record.state == "granted"
        return self.unset_allowed(region, purpose)


class CompiledSuppression(_Frozen, frozen=True, kw_only=True):
    id: str
    reason: str
    when: Expression
    exempt_transactional: bool


class CompiledVariant(_Frozen, frozen=True, kw_only=True):
    id: str
    weight: int
    payload: Mapping[str, Any]  # action payload with the variant's merged over it


class CompiledAction(_Frozen, frozen=True, kw_only=True):
    """An action with everything the hot path needs precomputed."""

    id: str
    order: int  # declaration order across the set (files sorted by path)
    journey: str | None
    stages: frozenset[str]  # empty with a journey = every stage
    always_on: bool
    channel: CompiledChannel
    transactional: bool  # = channel.transactional
    placements: frozenset[str]
    eligibility: Expression | None
    priority: int
    value: float
    value_expr: Expression | None
    caps: tuple[CapBinding, ...]
    suppressions: tuple[CompiledSuppression, ...]  # the rules whose scope covers it
    variants: tuple[CompiledVariant, ...]
    total_weight: int
    payload: Mapping[str, Any]
    valid_from_ms: int | None
    valid_until_ms: int | None
    tags: frozenset[str]
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
    holdout_buckets: int  # of BUCKETS; 0 = no holdout
    holdout_salt: str
    tags: frozenset[str]


class CompiledHoldout(_Frozen, frozen=True, kw_only=True):
    percent: float
    buckets: int  # of BUCKETS
    salt: str
    include_transactional: bool


class CompiledArbitration(_Frozen, frozen=True, kw_only=True):
    score: Expression
    default_propensity: float
    max_per_journey: int
    max_per_channel: Mapping[str, int]
    max_actions: int | None


class CompiledPolicy(_Frozen, frozen=True, kw_only=True):
    """An immutable compiled policy set. Share freely across threads and requests."""

    id: str
    version: str
    digest: str  # sha256 of the files, see policies.loader.digest_sources
    compiler_version: str
    model: PolicySet
    files: tuple[str, ...]

    profile: Mapping[str, CompiledField]
    context: Mapping[str, CompiledField]
    events: Mapping[str, EventTypeContract]
    timezone_context: str | None
    timezone_attribute: str | None
    default_timezone: str

    channels: Mapping[str, CompiledChannel]
    consent: CompiledConsent
    caps: Mapping[str, CompiledCap]
    suppressions: tuple[CompiledSuppression, ...]
    journeys: Mapping[str, CompiledJourney]
    actions: Mapping[str, CompiledAction]  # declaration order
    holdout: CompiledHoldout | None
    arbitration: CompiledArbitration

    # --- indexes for the hot path (tuples in declaration order)
    actions_by_placement: Mapping[str, tuple[CompiledAction, ...]]
    actions_by_channel: Mapping[str, tuple[CompiledAction, ...]]
    actions_by_stage: Mapping[tuple[str, str], tuple[CompiledAction, ...]]
    always_on: tuple[CompiledAction, ...]
    fallbacks: tuple[CompiledAction, ...]
    triggers_by_event: Mapping[str, tuple[CompiledTrigger, ...]]
    transitions_by_event: Mapping[str, tuple[CompiledTransition, ...]]
    exits_by_event: Mapping[str, tuple[CompiledExit, ...]]

    needs: SnapshotNeeds
    warnings: tuple[Diagnostic, ...]

    # Precomputed for build_activation: (name, activation key, converter, has default, default)
    # of the profile attributes / context fields the set reads.
    profile_bindings: tuple[_Binding, ...] = ()
    context_bindings: tuple[_Binding, ...] = ()


# =========================================================================== activation


def build_activation(
    policy: CompiledPolicy,
    snapshot: CustomerSnapshot,
    request_context: Mapping[str, Any],
    now_ms: int,
    *,
    placement: str = "",
    channels: Iterable[str] = (),
) -> dict[str, object]:
    """The CEL activation of one decision: every variable of the base environment.

    Profile attributes are bound when the snapshot has a value (else their
    declared default; else unbound, so reading them is an evaluation error).
    Context fields likewise from ``request_context`` (undeclared keys are
    ignored). Cheap: one dict, O(declared attributes read by the set).
    Add the score variables with :func:`score_activation` and the event
    variables with :func:`event_activation`.
    """
    now = cel.Timestamp(now_ms * _NS_PER_MS)
    activation: dict[str, object] = {
        "now": now,
        "request.customer_id": snapshot.customer_id,
        "request.placement": placement,
        "request.channels": list(channels),
    }
    profile = snapshot.profile
    for name, key, convert, has_default, default in policy.profile_bindings:
        entry = profile.get(name)
        if entry is not None and entry.value is not None:
            activation[key] = entry.value if convert is None else convert(entry.value)
        elif has_default:
            activation[key] = default
    for name, key, convert, has_default, default in policy.context_bindings:
        value = request_context.get(name)
        if value is not None:
            activation[key] = value if convert is None else convert(value)
        elif has_default:
            activation[key] = default
    activation["profile"] = FieldsView(profile)
    activation["context"] = FieldsView(request_context)
    activation["request"] = None
    activation["events"] = EventsView(snapshot.events, now_ms)
    activation["segments"] = SegmentsView(snapshot.segments)
    activation["journeys"] = JourneysView(snapshot.journeys)
    activation["customer"] = CustomerView(
        now, _timezone(policy, snapshot, request_context), policy.default_timezone
    )
    return activation


def _timezone(
    policy: CompiledPolicy, snapshot: CustomerSnapshot, request_context: Mapping[str, Any]
) -> str:
    if policy.timezone_context is not None:
        tz = request_context.get(policy.timezone_context)
        if isinstance(tz, str) and tz:
            return tz
    if policy.timezone_attribute is not None:
        entry = snapshot.profile.get(policy.timezone_attribute)
        if entry is not None and isinstance(entry.value, str) and entry.value:
            return entry.value
    return policy.default_timezone


def score_activation(
    base: Mapping[str, object], action: CompiledAction, value: float, propensity: float
) -> dict[str, object]:
    """``base`` plus the arbitration-score variables for one candidate."""
    activation = dict(base)
    activation["priority"] = action.priority
    activation["value"] = float(value)
    activation["propensity"] = float(propensity)
    activation["action"] = None
    activation["action.id"] = action.id
    activation["action.channel"] = action.channel.id
    activation["action.journey"] = action.journey or ""
    activation["action.tags"] = sorted(action.tags)
    return activation


def event_activation(
    base: Mapping[str, object],
    policy: CompiledPolicy,
    *,
    event_type: str,
    event_id: str,
    time_ms: int,
    properties: Mapping[str, Any],
    version: int = 1,
) -> dict[str, object]:
    """``base`` plus the ``event.*`` variables (properties converted by the event contract)."""
    activation = dict(base)
    activation["event"] = None
    activation["event.type"] = event_type
    activation["event.id"] = event_id
    activation["event.time"] = cel.Timestamp(time_ms * _NS_PER_MS)
    activation["event.version"] = version
    activation["event.properties"] = FieldsView(properties)
    contract = policy.events.get(event_type)
    if contract is not None:
        for name, spec in contract.properties.items():
            value = properties.get(name)
            if value is not None:
                activation[f"event.properties.{name}"] = spec.convert(value)
            elif spec.has_default:
                activation[f"event.properties.{name}"] = spec.default
    return activation


# =========================================================================== value conversion


def _identity(value: Any) -> Any:
    return value


def _to_int(value: Any) -> Any:
    if type(value) is float and value.is_integer():
        return int(value)
    return value


def _to_float(value: Any) -> Any:
    if type(value) is int:
        return float(value)
    return value


def _to_uint(value: Any) -> Any:
    value = _to_int(value)
    return cel.UInt(value) if type(value) is int and value >= 0 else value


def _to_timestamp(value: Any) -> Any:
    if type(value) is int:
        return cel.Timestamp(value * _NS_PER_MS)
    if isinstance(value, str):
        return timefns.parse_timestamp(value)
    return value


def _to_duration(value: Any) -> Any:
    if type(value) is int:
        return cel.Duration(value * _NS_PER_MS)
    if isinstance(value, str):
        return cel.Duration(parse_duration_ms(value) * _NS_PER_MS)
    return value


def _to_bytes(value: Any) -> Any:
    return value.encode("utf-8") if isinstance(value, str) else value


def _converter(t: cel.Type) -> Callable[[Any], Any]:
    if t == cel.INT:
        return _to_int
    if t == cel.DOUBLE:
        return _to_float
    if t == cel.UINT:
        return _to_uint
    if t == cel.TIMESTAMP:
        return _to_timestamp
    if t == cel.DURATION:
        return _to_duration
    if t == cel.BYTES:
        return _to_bytes
    return _identity


def _value_matches(t: cel.Type, value: Any) -> bool:
    """Static check of a YAML default / enum value against a declared type."""
    if t == cel.DYN:
        return True
    if t == cel.STRING:
        return isinstance(value, str)
    if t == cel.BOOL:
        return isinstance(value, bool)
    if t in (cel.INT, cel.UINT):
        return type(value) is int and (t == cel.INT or value >= 0)
    if t == cel.DOUBLE:
        return type(value) in (int, float)
    if t in (cel.TIMESTAMP, cel.DURATION, cel.BYTES):
        return isinstance(value, str)
    if isinstance(t, cel.ListType):
        return isinstance(value, list) and all(_value_matches(t.elem, v) for v in value)
    if isinstance(t, cel.MapType):
        return isinstance(value, dict) and all(_value_matches(t.value, v) for v in value.values())
    return False


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    return value


# =========================================================================== the compiler


class _Compiler:
    def __init__(self, loaded: LoadedPolicySet, model: PolicySet) -> None:
        self.loaded = loaded
        self.model = model
        self.locator: Locator = loaded.locator
        self.diags: list[Diagnostic] = []
        self.programs: list[Expression] = []
        # Filled from the contracts before any expression compiles.
        self.event_names: frozenset[str] = frozenset()
        self.model_profile_names: frozenset[str] = frozenset()
        self.model_context_names: frozenset[str] = frozenset()

    # -- reporting -------------------------------------------------------------
    def report(
        self, path: ModelPath, message: str, severity: Severity = "error", *, key: bool = False
    ) -> None:
        self.diags.append(Diagnostic(self.locator.locate(path, key=key), severity, message))

    def at(self, location: Location, message: str, severity: Severity = "error") -> None:
        self.diags.append(Diagnostic(location, severity, message))

    def duration(self, text: str | None, path: ModelPath) -> int | None:
        if text is None:
            return None
        try:
            return parse_duration_ms(text)
        except ValueError as exc:
            self.report(path, str(exc))
            return None

    def expect_known(
        self, value: str, known: Collection[str], what: str, path: ModelPath, suffix: str = ""
    ) -> bool:
        if value in known:
            return True
        close = difflib.get_close_matches(value, list(known), n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        self.report(path, f"unknown {what} `{value}`{suffix}{hint}")
        return False

    # -- CEL ---------------------------------------------------------------------
    def _source(self, text: str, path: ModelPath) -> tuple[Source, int, int]:
        """The CEL Source positioned in the file; plus (first line, indent) of
        block scalars so later lines' columns can be shifted too."""
        loc = self.locator.locate(path)
        style = self.locator.scalar_style(path)
        if style in ('"', "'"):
            return Source(text, loc.file, loc.line - 1, loc.column), 0, 0
        if style in ("|", ">"):
            line = loc.line + 1
            raw = ""
            for line in range(loc.line + 1, loc.line + 200):
                raw = self.locator.line_text(loc.file, line)
                if raw.strip():
                    break
            indent = len(raw) - len(raw.lstrip(" "))
            return Source(text, loc.file, line - 1, indent), line, indent
        return Source(text, loc.file, loc.line - 1, loc.column - 1), 0, 0

    def expr(
        self,
        text: str | None,
        path: ModelPath,
        env: cel.Env,
        expect: tuple[cel.Type, ...],
        what: str,
    ) -> Expression | None:
        if text is None:
            return None
        source, first_line, indent = self._source(text, path)
        self._check_event_literals(text, source, first_line, indent)
        try:
            program = cel.compile(source, env)
        except cel.CompileError as exc:
            for issue in exc.issues:
                column = (
                    issue.column + indent
                    if first_line and issue.line > first_line
                    else issue.column
                )
                location = Location(source.description, issue.line, column)
                self.at(
                    location,
                    self._explain(
                        issue.message,
                        text,
                        source=source,
                        line=issue.line,
                        column=column,
                        indent=indent,
                    ),
                )
            return None
        except cel.CelError as exc:  # pragma: no cover - compile raises CompileError
            self.report(path, f"{what}: {exc}")
            return None
        if program.result_type != cel.DYN and program.result_type not in expect:
            wanted = " or ".join(str(t) for t in expect)
            self.report(
                path, f"{what} must be {wanted}, but this expression is {program.result_type}"
            )
            return None
        expression = Expression(text=text, location=self.locator.locate(path), program=program)
        self.programs.append(expression)
        return expression

    @staticmethod
    def _offset_in_text(text: str, *, line: int, column: int, source: Source, indent: int) -> int:
        """Map a file (line, column) back to an offset in the expression text."""
        rel_line = line - source.line_offset
        lines = text.split("\n")
        if rel_line < 1 or rel_line > len(lines):
            return -1
        col = column - (source.column_offset if rel_line == 1 else indent)
        return sum(len(x) + 1 for x in lines[: rel_line - 1]) + col - 1

    def _explain(
        self, message: str, text: str, *, source: Source, line: int, column: int, indent: int
    ) -> str:
        """Make checker messages about the opaque domain variables speak the policy's language."""
        if "does not support field selection" not in message:
            return message
        offset = self._offset_in_text(text, line=line, column=column, source=source, indent=indent)
        word = re.match(r"[A-Za-z_][A-Za-z0-9_]*", text[offset:]) if offset >= 0 else None
        before = text[:offset].rstrip()
        if "arbiter.Profile" in message:
            if before.endswith("has(profile") or re.match(r"has\s*\(\s*profile\b", text[offset:]):
                return 'has() does not apply to profile attributes; use profile.has("name")'
            name = word.group(0) if word else "?"
            return self._unknown_field(name, self.model_profile_names, "profile attribute")
        if "arbiter.Context" in message:
            name = word.group(0) if word else "?"
            return self._unknown_field(name, self.model_context_names, "context field")
        if "arbiter.EventProperties" in message:
            name = word.group(0) if word else "?"
            return f"unknown property `{name}` of this event type"
        if "arbiter." in message:
            return message + " (only its declared functions can be called)"
        return message

    @staticmethod
    def _unknown_field(name: str, known: frozenset[str], what: str) -> str:
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        return f"unknown {what} `{name}`{hint}"

    def _check_event_literals(
        self, text: str, source: Source, first_line: int, indent: int
    ) -> None:
        for match in _EVENTS_CALL.finditer(text):
            name = match.group(1) if match.group(1) is not None else match.group(2)
            if name is None or name in self.event_names:
                continue
            start = match.start(1) if match.group(1) is not None else match.start(2)
            line, column = source.location(start)
            if first_line and line > first_line:
                column += indent
            self.at(
                Location(source.description, line, column),
                f"unknown event type `{name}` (not in contracts.events)",
            )

    # -- pipeline ----------------------------------------------------------------
    def run(self) -> CompiledPolicy | None:
        model = self.model
        profile = self.fields(model.contracts.profile, ("contracts", "profile"))
        context = self.fields(model.contracts.context, ("contracts", "context"))
        events: dict[str, EventTypeContract] = {}
        for name, event in model.contracts.events.items():
            props = self.fields(event.properties, ("contracts", "events", name, "properties"))
            events[name] = EventTypeContract(
                name=name, version=event.version, properties=MappingProxyType(props)
            )
        self.event_names = frozenset(events)
        self.model_profile_names = frozenset(profile)
        self.model_context_names = frozenset(context)

        functions = _DOMAIN_FUNCTIONS
        base = cel.Env(
            variables=base_variables(
                {n: f.type for n, f in profile.items()}, {n: f.type for n, f in context.items()}
            )
        ).with_functions(*functions)
        event_envs = {
            name: base.with_variables(
                **event_variables({n: f.type for n, f in e.properties.items()})
            )
            for name, e in events.items()
        }
        score_env = base.with_variables(**score_variables())

        tz = model.policy_set.timezone
        if tz.context is not None:
            self.expect_known(
                tz.context, context, "context field", ("policy_set", "timezone", "context")
            )
        if tz.attribute is not None:
            self.expect_known(
                tz.attribute, profile, "profile attribute", ("policy_set", "timezone", "attribute")
            )
        try:
            timefns.local_hour(cel.Timestamp(0), tz.default)
        except cel.EvalError:
            self.report(("policy_set", "timezone", "default"), f"unknown time zone `{tz.default}`")

        purposes = self.check_unique(
            [p.id for p in model.consent.purposes], ("consent", "purposes"), "purpose"
        )
        consent = self.consent(profile, purposes)
        channels = self.channels(purposes)
        journeys_raw = self.check_unique([j.id for j in model.journeys], ("journeys",), "journey")
        actions_raw = self.check_unique([a.id for a in model.actions], ("actions",), "action")
        suppressions = self.suppressions(base, channels, journeys_raw, actions_raw)
        actions = self.actions(base, channels, suppressions)
        caps = self.caps(channels, journeys_raw, actions)
        self.cap_dominance(caps, actions)
        journeys = self.journeys(base, event_envs, actions)
        holdout = self.holdout()
        arbitration = self.arbitration(score_env, channels)
        self.check_channel_consent(channels, actions)

        if any(d.severity == "error" for d in self.diags):
            return None

        bound = {d.action.id: d for d in actions}
        return self.assemble(
            profile,
            context,
            events,
            channels,
            consent,
            caps,
            suppressions,
            journeys,
            bound,
            holdout,
            arbitration,
        )

    # -- contracts -----------------------------------------------------------------
    def fields(
        self, specs: Mapping[str, FieldSpec | str], path: ModelPath
    ) -> dict[str, CompiledField]:
        result: dict[str, CompiledField] = {}
        for name, raw in specs.items():
            spec = FieldSpec(type=raw) if isinstance(raw, str) else raw
            where = (*path, name) if isinstance(raw, str) else (*path, name, "type")
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                self.report(
                    (*path, name),
                    f"invalid field name `{name}`: use letters, digits and '_'",
                    key=True,
                )
                continue
            try:
                t = parse_type(spec.type)
            except ValueError as exc:
                self.report(where, str(exc))
                continue
            convert = _converter(t)
            has_default = spec.default is not None
            default: Any = None
            if has_default:
                if not _value_matches(t, spec.default):
                    self.report(
                        (*path, name, "default"), f"default does not match type {spec.type}"
                    )
                    continue
                try:
                    default = convert(
                        _freeze(spec.default) if isinstance(spec.default, dict) else spec.default
                    )
                except (cel.EvalError, ValueError) as exc:
                    self.report((*path, name, "default"), f"invalid default: {exc}")
                    continue
            for index, allowed in enumerate(spec.values):
                if not _value_matches(t, allowed):
                    self.report(
                        (*path, name, "values", index), f"value does not match type {spec.type}"
                    )
            result[name] = CompiledField(
                name=name,
                type=t,
                type_text=spec.type,
                required=spec.required,
                pii=spec.pii,
                has_default=has_default,
                default=default,
                values=frozenset(v for v in spec.values if not isinstance(v, list | dict)),
                convert=convert,
            )
        return result

    def check_unique(self, ids: list[str], path: ModelPath, what: str) -> set[str]:
        seen: dict[str, int] = {}
        for index, ident in enumerate(ids):
            if ident in seen:
                first = self.locator.locate((*path, seen[ident], "id"))
                self.report(
                    (*path, index, "id"),
                    f"duplicate {what} id `{ident}` (first defined at {first})",
                )
            else:
                seen[ident] = index
        return set(seen)

    # -- consent & channels -------------------------------------------------------------
    def consent(self, profile: Mapping[str, CompiledField], purposes: set[str]) -> CompiledConsent:
        c = self.model.consent
        for name, wanted, path in (
            (c.region_attribute, cel.STRING, ("consent", "region_attribute")),
            (c.do_not_contact, cel.BOOL, ("consent", "do_not_contact")),
        ):
            if name is None or not self.expect_known(name, profile, "profile attribute", path):
                continue
            if profile[name].type not in (wanted, cel.DYN):
                self.report(path, f"`{name}` must be declared {wanted} for this use")
        defaults: list[tuple[frozenset[str] | None, frozenset[str] | None, bool]] = []
        for i, rule in enumerate(c.defaults):
            for j, purpose in enumerate(rule.purposes):
                self.expect_known(
                    purpose,
                    frozenset(purposes),
                    "consent purpose",
                    ("consent", "defaults", i, "purposes", j),
                )
            if not rule.regions:
                self.report(
                    ("consent", "defaults", i, "regions"),
                    'a regional default needs regions (or "*")',
                )
            if c.region_attribute is None and any(r != "*" for r in rule.regions):
                self.report(
                    ("consent", "defaults", i, "regions"),
                    "regional defaults need `consent.region_attribute`",
                )
            regions = None if "*" in rule.regions else frozenset(rule.regions)
            defaults.append((regions, frozenset(rule.purposes) or None, rule.unset == "allow"))
        return CompiledConsent(
            purposes=frozenset(purposes),
            region_attribute=c.region_attribute,
            defaults=tuple(defaults),
            unset_allows=c.unset == "allow",
            do_not_contact=c.do_not_contact,
        )

    def channels(self, purposes: set[str]) -> dict[str, CompiledChannel]:
        ids = self.check_unique([c.id for c in self.model.channels], ("channels",), "channel")
        del ids
        result: dict[str, CompiledChannel] = {}
        for i, ch in enumerate(self.model.channels):
            path: ModelPath = ("channels", i)
            for j, purpose in enumerate(ch.purposes):
                self.expect_known(
                    purpose, frozenset(purposes), "consent purpose", (*path, "purposes", j)
                )
            windows = []
            for j, q in enumerate(ch.quiet_hours):
                start = self.hhmm(q.start, (*path, "quiet_hours", j, "start"))
                end = self.hhmm(q.end, (*path, "quiet_hours", j, "end"))
                if start is not None and end is not None:
                    if start == end and not q.days:
                        # start == end is a whole day; on every day, the channel is never usable.
                        self.report(
                            (*path, "quiet_hours", j),
                            "quiet hours start and end at the same time on every day: "
                            "the channel is always quiet",
                            "warning",
                        )
                    windows.append(
                        QuietWindow(
                            start_minute=start,
                            end_minute=end,
                            days=frozenset(_WEEKDAYS[d] for d in q.days),
                        )
                    )
            if len(set(ch.placements)) != len(ch.placements):
                self.report((*path, "placements"), "duplicate placement")
            if ch.id not in result:
                result[ch.id] = CompiledChannel(
                    id=ch.id,
                    purposes=tuple(ch.purposes),
                    transactional=ch.transactional,
                    quiet_hours=tuple(windows),
                    placements=frozenset(ch.placements),
                )
        return result

    def hhmm(self, text: str, path: ModelPath) -> int | None:
        match = _HHMM.match(text)
        if match is None:
            self.report(path, f"invalid time `{text}`: use HH:MM (00:00-23:59)")
            return None
        return int(match.group(1)) * 60 + int(match.group(2))

    def check_channel_consent(
        self, channels: Mapping[str, CompiledChannel], actions: list[_ActionDraft]
    ) -> None:
        used = {a.action.channel for a in actions}
        for i, ch in enumerate(self.model.channels):
            if ch.transactional or ch.purposes or ch.id not in used:
                continue
            if self.locator.written(("channels", i, "purposes")):
                self.report(
                    ("channels", i, "purposes"),
                    f"channel `{ch.id}` is not transactional and requires no consent purpose (explicit `purposes: []`)",
                    "warning",
                )
            else:
                self.report(
                    ("channels", i, "id"),
                    f"channel `{ch.id}` is not transactional and requires no consent purpose: add `purposes` (or `purposes: []` to opt out explicitly, or `transactional: true`)",
                )

    # -- suppressions ------------------------------------------------------------------
    def suppressions(
        self,
        env: cel.Env,
        channels: Mapping[str, CompiledChannel],
        journeys: set[str],
        actions: set[str],
    ) -> list[tuple[CompiledSuppression, Any]]:
        self.check_unique([s.id for s in self.model.suppressions], ("suppressions",), "suppression")
        tags = {t for a in self.model.actions for t in a.tags}
        result = []
        for i, s in enumerate(self.model.suppressions):
            path: ModelPath = ("suppressions", i)
            for j, c in enumerate(s.scope.channels):
                self.expect_known(c, channels, "channel", (*path, "scope", "channels", j))
            for j, jn in enumerate(s.scope.journeys):
                self.expect_known(
                    jn, frozenset(journeys), "journey", (*path, "scope", "journeys", j)
                )
            for j, a in enumerate(s.scope.actions):
                self.expect_known(a, frozenset(actions), "action", (*path, "scope", "actions", j))
            for j, t in enumerate(s.scope.tags):
                if t not in tags:
                    self.report((*path, "scope", "tags", j), f"no action has tag `{t}`", "warning")
            when = self.expr(s.when, (*path, "when"), env, (cel.BOOL,), "a suppression condition")
            if when is not None:
                result.append(
                    (
                        CompiledSuppression(
                            id=s.id,
                            reason=s.reason,
                            when=when,
                            exempt_transactional=s.exempt_transactional,
                        ),
                        s.scope,
                    )
                )
        return result

    # -- actions ------------------------------------------------------------------------
    def actions(
        self,
        env: cel.Env,
        channels: Mapping[str, CompiledChannel],
        suppressions: list[tuple[CompiledSuppression, Any]],
    ) -> list[_ActionDraft]:
        journeys = {j.id: j for j in self.model.journeys}
        drafts: list[_ActionDraft] = []
        for i, a in enumerate(self.model.actions):
            path: ModelPath = ("actions", i)
            ok = True
            channel = channels.get(a.channel)
            if channel is None:
                self.expect_known(a.channel, channels, "channel", (*path, "channel"))
                ok = False
            if a.journey is None and not a.always_on:
                self.report(path, "an action needs a `journey` (and `stages`) or `always_on: true`")
                ok = False
            if a.journey is not None and a.always_on:
                self.report(
                    (*path, "always_on"),
                    "an action is either in a journey or `always_on`, not both",
                )
                ok = False
            if a.journey is not None:
                journey = journeys.get(a.journey)
                if journey is None:
                    self.expect_known(a.journey, journeys, "journey", (*path, "journey"))
                    ok = False
                else:
                    stage_ids = {s.id for s in journey.stages}
                    for j, st in enumerate(a.stages):
                        if not self.expect_known(
                            st,
                            frozenset(stage_ids),
                            "stage",
                            (*path, "stages", j),
                            f" in journey `{journey.id}`",
                        ):
                            ok = False
            elif a.stages:
                self.report((*path, "stages"), "`stages` needs a `journey`")
            if channel is not None:
                if channel.placements and not a.placements:
                    self.report(
                        (*path, "channel"),
                        f"channel `{channel.id}` has placements: list the action's `placements`",
                    )
                for j, pl in enumerate(a.placements):
                    if not channel.placements:
                        self.report(
                            (*path, "placements", j),
                            f"channel `{channel.id}` declares no placements",
                        )
                        break
                    if not self.expect_known(
                        pl,
                        channel.placements,
                        "placement",
                        (*path, "placements", j),
                        f" on channel `{channel.id}`",
                    ):
                        ok = False
            eligibility = self.expr(
                a.eligibility, (*path, "eligibility"), env, (cel.BOOL,), "eligibility"
            )
            if a.eligibility is not None and eligibility is None:
                ok = False
            value = 0.0
            value_expr = None
            if isinstance(a.value, str):
                value_expr = self.expr(
                    a.value, (*path, "value"), env, (cel.INT, cel.DOUBLE, cel.UINT), "value"
                )
                if value_expr is None:
                    ok = False
            else:
                value = float(a.value)
            inline = []
            for j, c in enumerate(a.caps):
                cap = self.inline_cap(c, f"action:{a.id}#{j}", "action", a.id, (*path, "caps", j))
                if cap is not None:
                    inline.append(cap)
            variant_ids = self.check_unique(
                [v.id for v in a.variants], (*path, "variants"), "variant"
            )
            del variant_ids
            total = sum(v.weight for v in a.variants)
            if a.variants and total == 0:
                self.report((*path, "variants"), "variant weights sum to 0")
                ok = False
            for j, v in enumerate(a.variants):
                if v.weight == 0:
                    self.report(
                        (*path, "variants", j, "weight"),
                        f"variant `{v.id}` has weight 0 and is never chosen",
                        "warning",
                    )
            for payload, where in [(a.payload, (*path, "payload"))] + [
                (v.payload, (*path, "variants", j, "payload")) for j, v in enumerate(a.variants)
            ]:
                try:
                    msgspec.json.encode(payload)
                except (TypeError, ValueError, OverflowError) as exc:
                    self.report(where, f"payload is not JSON-serialisable: {exc}")
                    ok = False
            valid_from = int(a.valid_from.timestamp() * 1000) if a.valid_from else None
            valid_until = int(a.valid_until.timestamp() * 1000) if a.valid_until else None
            if valid_from is not None and valid_until is not None and valid_until <= valid_from:
                self.report((*path, "valid_until"), "`valid_until` is not after `valid_from`")
            if a.fallback and not a.always_on:
                self.report(
                    (*path, "fallback"),
                    "a fallback action should be `always_on` (it is chosen when nothing else is)",
                    "warning",
                )
            if not ok or channel is None:
                continue
            transactional = channel.transactional
            covered = tuple(
                s
                for s, scope in suppressions
                if not (transactional and s.exempt_transactional)
                and (
                    not (scope.channels or scope.tags or scope.journeys or scope.actions)
                    or a.channel in scope.channels
                    or a.id in scope.actions
                    or (a.journey is not None and a.journey in scope.journeys)
                    or bool(set(a.tags) & set(scope.tags))
                )
            )
            drafts.append(
                _ActionDraft(
                    action=a,
                    index=i,
                    channel=channel,
                    eligibility=eligibility,
                    value=value,
                    value_expr=value_expr,
                    inline=inline,
                    suppressions=covered,
                    valid_from=valid_from,
                    valid_until=valid_until,
                )
            )
        return drafts

    def inline_cap(
        self, c: InlineCap, default_id: str, scope: str, target: str, path: ModelPath
    ) -> CompiledCap | None:
        window = self.duration(c.window, (*path, "window"))
        if window is None:
            return None
        if window == 0:
            self.report((*path, "window"), "a cap window must be longer than 0")
            return None
        if c.limit == 0:
            self.report((*path, "limit"), "cap limit 0: it never grants anything", "warning")
        return CompiledCap(
            id=c.id or default_id,
            scope=scope,
            targets=frozenset({target}),
            per_target=False,
            channels=frozenset(),
            limit=c.limit,
            window_ms=window,
            include_transactional=c.include_transactional,
            location=self.locator.locate(path),
        )

    # -- caps ------------------------------------------------------------------------
    def caps(
        self,
        channels: Mapping[str, CompiledChannel],
        journeys: set[str],
        actions: list[_ActionDraft],
    ) -> dict[str, CompiledCap]:
        result: dict[str, CompiledCap] = {}

        def add(cap: CompiledCap, path: ModelPath) -> None:
            if cap.id in result:
                self.report(
                    path,
                    f"duplicate cap id `{cap.id}` (first defined at {result[cap.id].location})",
                )
            else:
                result[cap.id] = cap

        for i, ch in enumerate(self.model.channels):
            for j, c in enumerate(ch.caps):
                cap = self.inline_cap(
                    c, f"channel:{ch.id}#{j}", "channel", ch.id, ("channels", i, "caps", j)
                )
                if cap is not None:
                    add(cap, ("channels", i, "caps", j))
        action_ids = {d.action.id for d in actions} | {a.id for a in self.model.actions}
        tags = {t for a in self.model.actions for t in a.tags}
        for i, spec in enumerate(self.model.caps):
            path: ModelPath = ("caps", i)
            window = self.duration(spec.window, (*path, "window"))
            if window is None:
                continue
            if window == 0:
                self.report((*path, "window"), "a cap window must be longer than 0")
                continue
            if spec.limit == 0:
                self.report((*path, "limit"), "cap limit 0: it never grants anything", "warning")
            if spec.scope == "global" and spec.targets:
                self.report((*path, "targets"), "a global cap has no targets")
                continue
            known: Collection[str] = {
                "channel": channels,
                "journey": frozenset(journeys),
                "action": frozenset(action_ids),
                "tag": frozenset(tags),
                "global": frozenset(),
            }[spec.scope]
            for j, ch_id in enumerate(spec.channels):
                self.expect_known(ch_id, channels, "channel", (*path, "channels", j))
            for j, t in enumerate(spec.targets):
                if spec.scope == "tag":
                    if t not in tags:
                        self.report((*path, "targets", j), f"no action has tag `{t}`", "warning")
                else:
                    self.expect_known(t, known, spec.scope, (*path, "targets", j))
            add(
                CompiledCap(
                    id=spec.id,
                    scope=spec.scope,
                    targets=frozenset(spec.targets),
                    per_target=spec.scope != "global" and not spec.targets,
                    channels=frozenset(spec.channels),
                    limit=spec.limit,
                    window_ms=window,
                    include_transactional=spec.include_transactional,
                    location=self.locator.locate(path),
                ),
                (*path, "id"),
            )
        for d in actions:
            for cap in d.inline:
                add(cap, ("actions", d.index, "caps"))
        # Bind caps to actions.
        for d in actions:
            bindings: list[CapBinding] = []
            a = d.action
            for cap in result.values():
                if d.channel.transactional and not cap.include_transactional:
                    continue
                for key in _cap_keys(cap, a):
                    bindings.append(
                        CapBinding(cap_id=cap.id, key=key, limit=cap.limit, window_ms=cap.window_ms)
                    )
            d.bindings = tuple(bindings)
        for cap in result.values():
            if not any(b.cap_id == cap.id for d in actions for b in d.bindings):
                self.at(cap.location, f"cap `{cap.id}` applies to no action", "warning")
        return result

    def cap_dominance(self, caps: Mapping[str, CompiledCap], actions: list[_ActionDraft]) -> None:
        """Warn about caps none of whose counters can ever be the one that stops a grant:
        another counter with a lower limit over at least as long a window covers
        every action the counter covers."""
        members: dict[str, set[str]] = defaultdict(set)
        info: dict[str, CapBinding] = {}
        for d in actions:
            for b in d.bindings:
                members[b.key].add(d.action.id)
                info[b.key] = b
        by_cap: dict[str, list[str]] = defaultdict(list)
        for key, binding in info.items():
            by_cap[binding.cap_id].append(key)

        def dominator(key: str) -> CapBinding | None:
            mine = info[key]
            for other_key, other_acts in members.items():
                other = info[other_key]
                if other.cap_id == mine.cap_id or not members[key] <= other_acts:
                    continue
                if other.window_ms < mine.window_ms:
                    continue
                if other.limit < mine.limit or (
                    other.limit == mine.limit and other.window_ms > mine.window_ms
                ):
                    return other
            return None

        for cap_id, keys in by_cap.items():
            if info[keys[0]].limit == 0:
                continue
            found = [dominator(k) for k in sorted(keys)]
            if not all(found):
                continue
            other = found[0]
            assert other is not None
            mine = info[sorted(keys)[0]]
            scope = "" if len(keys) == 1 else f" (none of its {len(keys)} counters)"
            self.at(
                caps[cap_id].location,
                f"cap `{cap_id}` ({mine.limit} per {_fmt_ms(mine.window_ms)}) can never be reached{scope}: "
                f"cap `{other.cap_id}` ({other.limit} per {_fmt_ms(other.window_ms)}) covers all its actions",
                "warning",
            )

    # -- journeys -----------------------------------------------------------------------
    def journeys(
        self, base: cel.Env, event_envs: Mapping[str, cel.Env], actions: list[_ActionDraft]
    ) -> dict[str, tuple[CompiledJourney, _StageDrafts]]:
        result: dict[str, tuple[CompiledJourney, _StageDrafts]] = {}
        for i, j in enumerate(self.model.journeys):
            compiled = self.journey(i, j, base, event_envs, actions)
            if compiled is not None and j.id not in result:
                result[j.id] = compiled
        return result

    def event_env(
        self, event: str, event_envs: Mapping[str, cel.Env], path: ModelPath
    ) -> cel.Env | None:
        if event in event_envs:
            return event_envs[event]
        self.expect_known(event, event_envs, "event type", path)
        return None

    def journey(
        self,
        i: int,
        j: Journey,
        base: cel.Env,
        event_envs: Mapping[str, cel.Env],
        actions: list[_ActionDraft],
    ) -> tuple[CompiledJourney, _StageDrafts] | None:
        path: ModelPath = ("journeys", i)
        ok = True
        stage_ids = self.check_unique([s.id for s in j.stages], (*path, "stages"), "stage")
        if not j.stages:
            self.report((*path, "stages"), "a journey needs at least one stage")
            return None
        if EXIT in stage_ids:
            self.report((*path, "stages"), f"`{EXIT}` is reserved (`to: exit` leaves the journey)")
            ok = False
        entry = j.entry_stage or j.stages[0].id
        if j.entry_stage is not None and not self.expect_known(
            j.entry_stage, frozenset(stage_ids), "stage", (*path, "entry_stage")
        ):
            ok = False
        triggers = []
        for k, t in enumerate(j.triggers):
            tpath = (*path, "triggers", k)
            env = self.event_env(t.event, event_envs, (*tpath, "event"))
            if env is None:
                ok = False
                continue
            when = self.expr(t.when, (*tpath, "when"), env, (cel.BOOL,), "a trigger condition")
            key = None
            window = None
            if t.dedup is not None:
                key = self.expr(
                    t.dedup.key,
                    (*tpath, "dedup", "key"),
                    env,
                    (cel.STRING, cel.INT, cel.UINT),
                    "a dedup key",
                )
                window = self.duration(t.dedup.window, (*tpath, "dedup", "window"))
            triggers.append(
                CompiledTrigger(
                    journey=j.id, event=t.event, when=when, dedup_key=key, dedup_window_ms=window
                )
            )
        if not j.triggers and j.status == "active":
            self.report(
                (*path, "id"),
                f"journey `{j.id}` has no triggers: no customer can enter it",
                "warning",
            )
        reentry = self.reentry(j.reentry, (*path, "reentry"))
        transitions_by_stage: dict[str, list[CompiledTransition]] = defaultdict(list)
        graph: dict[str, set[str]] = defaultdict(set)
        for s_index, stage in enumerate(j.stages):
            for k, tr in enumerate(stage.transitions):
                tpath = (*path, "stages", s_index, "transitions", k)
                if (tr.on is None) == (tr.after is None):
                    self.report(
                        tpath,
                        "a transition needs exactly one of `on` (an event) or `after` (a duration)",
                    )
                    ok = False
                    continue
                if tr.to != EXIT and not self.expect_known(
                    tr.to, frozenset(stage_ids), "stage", (*tpath, "to")
                ):
                    ok = False
                env = base
                if tr.on is not None:
                    found = self.event_env(tr.on, event_envs, (*tpath, "on"))
                    if found is None:
                        ok = False
                        continue
                    env = found
                after = self.duration(tr.after, (*tpath, "after"))
                when = self.expr(
                    tr.when, (*tpath, "when"), env, (cel.BOOL,), "a transition condition"
                )
                graph[stage.id].add(tr.to)
                transitions_by_stage[stage.id].append(
                    CompiledTransition(
                        journey=j.id, stage=stage.id, to=tr.to, on=tr.on, after_ms=after, when=when
                    )
                )
        # Reachability from the entry stage.
        reached = {entry}
        queue = deque([entry])
        while queue:
            for nxt in graph.get(queue.popleft(), ()):
                if nxt not in reached:
                    reached.add(nxt)
                    queue.append(nxt)
        for s_index, stage in enumerate(j.stages):
            if stage.id not in reached:
                self.report(
                    (*path, "stages", s_index, "id"),
                    f"stage `{stage.id}` is unreachable from the entry stage `{entry}`",
                    "warning",
                )
        exits = []
        for k, ex in enumerate(j.exits):
            epath = (*path, "exits", k)
            env_or_none = self.event_env(ex.on, event_envs, (*epath, "on"))
            if env_or_none is None:
                ok = False
                continue
            when = self.expr(
                ex.when, (*epath, "when"), env_or_none, (cel.BOOL,), "an exit condition"
            )
            exits.append(
                CompiledExit(journey=j.id, on=ex.on, when=when, reason=ex.reason or f"exit:{ex.on}")
            )
        max_duration = self.duration(j.max_duration, (*path, "max_duration"))
        holdout_buckets = 0
        salt = j.id
        if j.holdout is not None:
            holdout_buckets = round(j.holdout.percent * BUCKETS / 100)
            salt = j.holdout.salt or j.id
        my_actions = [d for d in actions if d.action.journey == j.id]
        if j.status == "active" and not my_actions:
            self.report((*path, "id"), f"journey `{j.id}` has no actions", "warning")
        if not ok or reentry is None:
            return None
        stages: _StageDrafts = {}
        for stage in j.stages:
            stage_actions = tuple(
                d for d in my_actions if not d.action.stages or stage.id in d.action.stages
            )
            stages[stage.id] = (tuple(transitions_by_stage.get(stage.id, ())), stage_actions)
        journey = CompiledJourney(
            id=j.id,
            name=j.name or j.id,
            owner=j.owner,
            status=j.status,
            priority=j.priority,
            triggers=tuple(triggers),
            reentry=reentry,
            entry_stage=entry,
            stages=MappingProxyType({}),  # built in assemble()
            exits=tuple(exits),
            max_duration_ms=max_duration,
            holdout_buckets=holdout_buckets,
            holdout_salt=salt,
            tags=frozenset(j.tags),
        )
        return journey, stages

    def reentry(self, text: str, path: ModelPath) -> Reentry | None:
        stripped = text.strip()
        if stripped in ("never", "always"):
            return Reentry(kind="never" if stripped == "never" else "always")
        if stripped.startswith("after "):
            ms = self.duration(stripped[len("after ") :].strip(), path)
            return None if ms is None else Reentry(kind="after", after_ms=ms)
        self.report(
            path,
            f"invalid reentry `{text}`: use never, always or `after <duration>` (e.g. after 30d)",
        )
        return None

    # -- holdouts, arbitration -------------------------------------------------------------
    def holdout(self) -> CompiledHoldout | None:
        g = self.model.holdouts.global_
        if g is None:
            return None
        return CompiledHoldout(
            percent=g.percent,
            buckets=round(g.percent * BUCKETS / 100),
            salt=g.salt,
            include_transactional=g.include_transactional,
        )

    def arbitration(
        self, env: cel.Env, channels: Mapping[str, CompiledChannel]
    ) -> CompiledArbitration | None:
        arb = self.model.arbitration
        for channel in arb.constraints.max_per_channel:
            self.expect_known(
                channel,
                channels,
                "channel",
                ("arbitration", "constraints", "max_per_channel", channel),
            )
        score = self.expr(
            arb.score,
            ("arbitration", "score"),
            env,
            (cel.DOUBLE, cel.INT, cel.UINT),
            "the arbitration score",
        )
        if score is None:
            return None
        return CompiledArbitration(
            score=score,
            default_propensity=arb.default_propensity,
            max_per_journey=arb.constraints.max_per_journey,
            max_per_channel=MappingProxyType(dict(arb.constraints.max_per_channel)),
            max_actions=arb.constraints.max_actions,
        )

    # -- assembly ---------------------------------------------------------------------------
    def assemble(  # noqa: PLR0917 - one call site, in pipeline order
        self,
        profile: dict[str, CompiledField],
        context: dict[str, CompiledField],
        events: dict[str, EventTypeContract],
        channels: dict[str, CompiledChannel],
        consent: CompiledConsent,
        caps: dict[str, CompiledCap],
        suppressions: list[tuple[CompiledSuppression, Any]],
        journeys: dict[str, tuple[CompiledJourney, _StageDrafts]],
        drafts: dict[str, _ActionDraft],
        holdout: CompiledHoldout | None,
        arbitration: CompiledArbitration | None,
    ) -> CompiledPolicy:
        assert arbitration is not None
        model = self.model
        actions: dict[str, CompiledAction] = {}
        for order, d in enumerate(drafts.values()):
            actions[d.action.id] = d.build(order, self.locator.locate(("actions", d.index)))
        final_journeys: dict[str, CompiledJourney] = {}
        for jid, (j, stage_data) in journeys.items():
            stages = {}
            for sid, (stage_transitions, stage_drafts) in stage_data.items():
                stages[sid] = CompiledStage(
                    id=sid,
                    transitions=stage_transitions,
                    actions=tuple(actions[d.action.id] for d in stage_drafts),
                )
            final_journeys[jid] = msgspec.structs.replace(j, stages=MappingProxyType(stages))
        by_placement: dict[str, list[CompiledAction]] = defaultdict(list)
        by_channel: dict[str, list[CompiledAction]] = defaultdict(list)
        by_stage: dict[tuple[str, str], list[CompiledAction]] = defaultdict(list)
        for a in actions.values():
            by_channel[a.channel.id].append(a)
            for pl in sorted(a.placements):
                by_placement[pl].append(a)
        for jid, j in final_journeys.items():
            for sid, stage in j.stages.items():
                by_stage[jid, sid].extend(stage.actions)
        triggers: dict[str, list[CompiledTrigger]] = defaultdict(list)
        transitions: dict[str, list[CompiledTransition]] = defaultdict(list)
        exits: dict[str, list[CompiledExit]] = defaultdict(list)
        for j in final_journeys.values():
            for t in j.triggers:
                triggers[t.event].append(t)
            for stage in j.stages.values():
                for tr in stage.transitions:
                    if tr.on is not None:
                        transitions[tr.on].append(tr)
            for ex in j.exits:
                exits[ex.on].append(ex)

        needs = self.needs(profile, context, channels, actions, final_journeys)
        freeze = MappingProxyType
        return CompiledPolicy(
            id=model.policy_set.id,
            version=model.policy_set.version,
            digest=self.loaded.digest,
            compiler_version=COMPILER_VERSION,
            model=model,
            files=tuple(f.path for f in self.loaded.files),
            profile=freeze(profile),
            context=freeze(context),
            events=freeze(events),
            timezone_context=model.policy_set.timezone.context,
            timezone_attribute=model.policy_set.timezone.attribute,
            default_timezone=model.policy_set.timezone.default,
            channels=freeze(channels),
            consent=consent,
            caps=freeze(caps),
            suppressions=tuple(s for s, _ in suppressions),
            journeys=freeze(final_journeys),
            actions=freeze(actions),
            holdout=holdout,
            arbitration=arbitration,
            actions_by_placement=freeze({k: tuple(v) for k, v in by_placement.items()}),
            actions_by_channel=freeze({k: tuple(v) for k, v in by_channel.items()}),
            actions_by_stage=freeze({k: tuple(v) for k, v in by_stage.items()}),
            always_on=tuple(a for a in actions.values() if a.always_on),
            fallbacks=tuple(a for a in actions.values() if a.fallback),
            triggers_by_event=freeze({k: tuple(v) for k, v in triggers.items()}),
            transitions_by_event=freeze({k: tuple(v) for k, v in transitions.items()}),
            exits_by_event=freeze({k: tuple(v) for k, v in exits.items()}),
            needs=needs,
            warnings=tuple(sorted(d for d in self.diags if d.severity == "warning")),
            profile_bindings=_bindings("profile", profile, needs.profile_attributes),
            context_bindings=_bindings("context", context, needs.context_fields),
        )

    def needs(
        self,
        profile: Mapping[str, CompiledField],
        context: Mapping[str, CompiledField],
        channels: Mapping[str, CompiledChannel],
        actions: Mapping[str, CompiledAction],
        journeys: Mapping[str, CompiledJourney],
    ) -> SnapshotNeeds:
        refs: set[str] = set()
        event_types: set[str] | None = set()
        for e in self.programs:
            refs |= e.program.references
            if "events" in e.program.references:
                for match in _EVENTS_CALL.finditer(e.text):
                    name = match.group(1) if match.group(1) is not None else match.group(2)
                    if name is None:
                        event_types = None
                    elif event_types is not None:
                        event_types.add(name)
                if not _EVENTS_CALL.search(e.text):
                    event_types = None
        attributes = {r.split(".", 2)[1] for r in refs if r.startswith("profile.")}
        if "profile" in refs:
            attributes |= set(profile)
        for extra in (
            self.model.consent.region_attribute,
            self.model.consent.do_not_contact,
            self.model.policy_set.timezone.attribute,
        ):
            if extra is not None:
                attributes.add(extra)
        attributes &= set(profile)
        fields = {r.split(".", 2)[1] for r in refs if r.startswith("context.")}
        if "context" in refs:
            fields |= set(context)
        if self.model.policy_set.timezone.context is not None:
            fields.add(self.model.policy_set.timezone.context)
        fields &= set(context)
        purposes = {p for a in actions.values() for p in a.channel.purposes}
        cap_keys = {b.key for a in actions.values() for b in a.caps}
        parts: set[SnapshotPart] = set()
        if attributes:
            parts.add("profile")
        if purposes:
            parts.add("consent")
        if "events" in refs:
            parts.add("events")
        if "segments" in refs:
            parts.add("segments")
        if journeys or "journeys" in refs:
            parts.add("journeys")
        if cap_keys:
            parts.add("caps")
        return SnapshotNeeds(
            parts=frozenset(parts),
            profile_attributes=frozenset(attributes),
            context_fields=frozenset(fields),
            event_types=None
            if event_types is None
            else frozenset(event_types)
            if "events" in refs
            else frozenset(),
            consent_purposes=frozenset(purposes),
            cap_keys=frozenset(cap_keys),
        )


def _bindings(
    prefix: str, fields: Mapping[str, CompiledField], names: frozenset[str]
) -> tuple[_Binding, ...]:
    return tuple(
        (
            name,
            f"{prefix}.{name}",
            None if fields[name].convert is _identity else fields[name].convert,
            fields[name].has_default,
            fields[name].default,
        )
        for name in sorted(names)
    )


def _fmt_ms(ms: int) -> str:
    for unit, size in (
        ("w", 604_800_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ):
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _cap_keys(cap: CompiledCap, a: Action) -> list[str]:
    if cap.channels and a.channel not in cap.channels:
        return []
    if cap.scope == "global":
        return [cap.id]
    values: Iterable[str]
    if cap.scope == "channel":
        values = (a.channel,)
    elif cap.scope == "journey":
        values = (a.journey,) if a.journey else ()
    elif cap.scope == "action":
        values = (a.id,)
    else:
        values = sorted(set(a.tags))
    if cap.per_target:
        return [f"{cap.id}/{v}" for v in values]
    return [cap.id] if any(v in cap.targets for v in values) else []


_StageDrafts = dict[str, tuple[tuple[CompiledTransition, ...], tuple["_ActionDraft", ...]]]


class _ActionDraft:
    """An action between validation and assembly (cap bindings are added later)."""

    def __init__(
        self,
        *,
        action: Action,
        index: int,
        channel: CompiledChannel,
        eligibility: Expression | None,
        value: float,
        value_expr: Expression | None,
        inline: list[CompiledCap],
        suppressions: tuple[CompiledSuppression, ...],
        valid_from: int | None,
        valid_until: int | None,
    ) -> None:
        self.action = action
        self.index = index
        self.channel = channel
        self.eligibility = eligibility
        self.value = value
        self.value_expr = value_expr
        self.inline = inline
        self.suppressions = suppressions
        self.valid_from = valid_from
        self.valid_until = valid_until
        self.bindings: tuple[CapBinding, ...] = ()

    def build(self, order: int, location: Location) -> CompiledAction:
        a = self.action
        payload = dict(a.payload)
        variants = tuple(
            CompiledVariant(id=v.id, weight=v.weight, payload=_freeze({**payload, **v.payload}))
            for v in a.variants
        )
        return CompiledAction(
            id=a.id,
            order=order,
            journey=a.journey,
            stages=frozenset(a.stages),
            always_on=a.always_on,
            channel=self.channel,
            transactional=self.channel.transactional,
            placements=frozenset(a.placements),
            eligibility=self.eligibility,
            priority=a.priority,
            value=self.value,
            value_expr=self.value_expr,
            caps=self.bindings,
            suppressions=self.suppressions,
            variants=variants,
            total_weight=sum(v.weight for v in variants),
            payload=_freeze(payload),
            valid_from_ms=self.valid_from,
            valid_until_ms=self.valid_until,
            tags=frozenset(a.tags),
            fallback=a.fallback,
            location=location,
        )


# =========================================================================== entry points


def check_policy(loaded: LoadedPolicySet) -> tuple[CompiledPolicy | None, tuple[Diagnostic, ...]]:
    """Compile a loaded set; returns the policy (``None`` on any error) and every diagnostic, sorted."""
    if loaded.model is None:
        return None, loaded.diagnostics
    compiler = _Compiler(loaded, loaded.model)
    policy = compiler.run()
    diagnostics = tuple(sorted([*loaded.diagnostics, *compiler.diags]))
    if any(d.severity == "error" for d in diagnostics):
        return None, diagnostics
    return policy, diagnostics


def compile_policy(loaded: LoadedPolicySet) -> CompiledPolicy:
    """Compile a loaded set or raise :class:`~policies.loader.PolicyError` listing every error."""
    policy, diagnostics = check_policy(loaded)
    if policy is None:
        raise PolicyError(diagnostics)
    return policy


def load_policy(root: str | os.PathLike[str]) -> CompiledPolicy:
    """Read, load and compile a policy directory (raises ``PolicyError`` / ``OSError``)."""
    return compile_policy(load_directory(root))
