"""Scenario tests for policy sets: given customer state and time, run Track / UpdateProfile / Decide steps, check expectations.

Policy authors keep scenario files next to their policies -- any YAML file
under a ``tests/`` directory of the set, or named ``*_test.yaml`` /
``*.test.yaml`` (the policy loader skips exactly those). A file holds a
list of scenarios::

    scenarios:
      - name: cart reminder goes out by push an hour after the cart
        given:
          now: 2025-06-02T15:00:00Z       # the scenario clock starts here
          customer_id: c-1                # default "alice"
          profile: {region: US, app_installed: true}
          consent: {push_marketing: granted}      # or {state, at, source, expires}
          segments: [vip]
          events:                         # history, applied with apply_event
            - {type: cart_updated, at: -2h, properties: {cart_id: k1, item_count: 2, cart_value: 40.0}}
          journeys:                       # or state set directly
            winback: {stage: offer, entered: -10d}
          caps: {outbound_daily: [-1h, -2h]}      # grant instants per cap key
          unavailable: [consent]          # parts the store "could not read" (after the history)
          paused: [upsell]                # operator kill switch (after the history)
        steps:
          - decide: {channels: [push, email]}
            expect:
              actions: [cart_reminder_push]
              reasons: {cart_reminder_email: INELIGIBLE}
          - at: +30m                      # move the clock (relative to `given.now`)
            track: {type: order_placed, properties: {order_id: o1, total: 42.0}}
            expect:
              journeys: {cart_abandonment: {status: exited}}

Times are RFC 3339 (``2025-06-02T15:00:00Z``), epoch milliseconds, or
offsets from ``given.now`` (``-2h``, ``+30m``, ``+1d2h``; the policy
duration syntax with a sign). ``advance: 2h`` moves the clock relative to
the current step instead.

Steps run against an in-memory snapshot updated with exactly the store
semantics of :mod:`policies.effects` (``apply_effects``, ``apply_commit``,
``apply_profile_update``): a ``decide`` commits its grants and journey
timers (unless ``dry_run: true``), a repeated ``track`` event id is a
duplicate. Every decide runs twice, with the explain trace on and off, and
the runner fails the step if the chosen actions differ -- the trace must
never change the answer.

Expectations (all optional; on a step they are checked after it runs):

- decide: ``actions`` (exact list, in order), ``includes``, ``excludes``,
  ``reasons`` (action -> reason code), ``details`` (action -> substring of
  the trace detail), ``held_out``, ``control_group``, ``variants`` (action ->
  variant id), ``payload`` (action -> expected subset), ``degraded``,
  ``consent`` (purpose -> reason of the consent summary), ``fallback``.
- track: ``status`` (``applied`` / ``duplicate``), ``changes``
  (``<kind>:<journey>`` in order, e.g. ``enter:cart_abandonment``),
  ``feedback`` (number of records).
- update_profile: ``applied`` (field -> bool).
- state, any step: ``journeys`` (journey -> ``{status, stage, entries}``
  subset, or ``null`` for "no state"), ``caps`` (cap key -> grant instants
  stored, i.e. within the cap's window at the last commit), ``counters`` (event type
  -> total), ``profile`` (attribute -> value), ``consent_state`` (purpose ->
  ``granted`` / ``denied`` / ``unset``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Final

import msgspec
import yaml

from .cel import timefns
from .cel.errors import CelError
from .compiler import load_policy
from .decision import Decision, Request
from .effects import (
    ConsentUpdate,
    EventEffects,
    FeedbackKind,
    ProfileUpdate,
    apply_commit,
    apply_effects,
    apply_profile_update,
)
from .engine import Event, StoreReport, apply_event, decide, settle
from .loader import YamlLoader
from .plan import CompiledPolicy
from .snapshot import (
    ConsentRecord,
    CustomerSnapshot,
    JourneyState,
    ProfileValue,
    SnapshotPart,
)
from .times import parse_duration_ms

__all__ = [
    "Report",
    "Scenario",
    "ScenarioFile",
    "ScenarioResult",
    "find_scenario_files",
    "load_scenario_file",
    "run_directory",
    "run_scenario",
]

_NS_PER_MS: Final = 1_000_000
TimeText = str | int


class _Spec(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base: unknown fields are errors, so a typo in an expectation cannot pass silently."""


class ConsentGiven(_Spec, frozen=True, kw_only=True):
    state: str
    at: TimeText | None = None
    source: str = "scenario"
    expires: TimeText | None = None


class EventSpec(_Spec, frozen=True, kw_only=True):
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
    stage: str
    status: str = "active"
    entered: TimeText | None = None
    stage_entered: TimeText | None = None
    entries: int = 1
    entry_event_id: str = "given"


class Given(_Spec, frozen=True, kw_only=True):
    now: TimeText
    customer_id: str = "alice"
    profile: dict[str, Any] = {}
    consent: dict[str, str | ConsentGiven] = {}
    segments: tuple[str, ...] = ()
    events: tuple[EventSpec, ...] = ()
    journeys: dict[str, JourneyGiven] = {}
    caps: dict[str, list[TimeText]] = {}
    unavailable: tuple[SnapshotPart, ...] = ()
    paused: tuple[str, ...] = ()


class DecideSpec(_Spec, frozen=True, kw_only=True):
    placement: str = ""
    channels: tuple[str, ...] = ()
    context: dict[str, Any] = {}
    limit: int = 1
    propensities: dict[str, float] = {}
    request_id: str | None = None
    dry_run: bool = False


class ProfileSpec(_Spec, frozen=True, kw_only=True):
    traits: dict[str, Any] = {}
    consent: dict[str, str | ConsentGiven] = {}
    do_not_contact: bool | None = None
    segments: tuple[str, ...] | None = None  # the complete membership, as a CDP sync sends it
    source: str = "scenario"
    at: TimeText | None = None  # the source timestamp; default: the clock


class JourneyExpect(_Spec, frozen=True, kw_only=True):
    status: str | None = None
    stage: str | None = None
    entries: int | None = None
    exit_reason: str | None = None


class Expect(_Spec, frozen=True, kw_only=True):
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
    # track
    status: str | None = None
    changes: tuple[str, ...] | None = None
    feedback: int | None = None
    # update_profile
    applied: dict[str, bool] = {}
    # state
    journeys: dict[str, JourneyExpect | None] = {}
    caps: dict[str, int] = {}
    counters: dict[str, int] = {}
    profile: dict[str, Any] = {}
    consent_state: dict[str, str] = {}


class Step(_Spec, frozen=True, kw_only=True):
    at: TimeText | None = None
    advance: str | None = None
    track: EventSpec | None = None
    update_profile: ProfileSpec | None = None
    decide: DecideSpec | None = None
    expect: Expect | None = None
    description: str = ""


class Scenario(_Spec, frozen=True, kw_only=True):
    name: str
    description: str = ""
    tags: tuple[str, ...] = ()
    given: Given
    steps: tuple[Step, ...] = ()


class ScenarioFile(_Spec, frozen=True, kw_only=True):
    scenarios: tuple[Scenario, ...]


class ScenarioResult(msgspec.Struct, frozen=True, kw_only=True):
    file: str
    name: str
    failures: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures


class Report(msgspec.Struct, frozen=True, kw_only=True):
    results: tuple[ScenarioResult, ...] = ()
    errors: tuple[str, ...] = ()  # files that could not be read or parsed

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.passed)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if not r.passed) + len(self.errors)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and bool(self.results)

    def summary(self) -> str:
        return f"{self.passed} passed, {self.failed} failed"


# =========================================================================== files


def _is_scenario_file(rel: Path) -> bool:
    if any(part.startswith(".") for part in rel.parts):
        return False
    if not rel.name.endswith((".yaml", ".yml")):
        return False
    stem = rel.name.rsplit(".", 1)[0]
    return "tests" in rel.parts[:-1] or stem.endswith(("_test", ".test"))


def find_scenario_files(root: str | os.PathLike[str]) -> list[Path]:
    """Scenario files of a policy directory, sorted (the complement of the loader's policy files)."""
    base = Path(root)
    return sorted(
        p for p in base.rglob("*") if p.is_file() and _is_scenario_file(p.relative_to(base))
    )


def load_scenario_file(path: str | os.PathLike[str]) -> ScenarioFile:
    """Parse a scenario file (YAML 1.2 scalars, like policy files); raises ``ValueError``."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.load(text, Loader=YamlLoader)  # a SafeLoader subclass (YAML 1.2 scalars)
        return msgspec.convert(data, ScenarioFile)
    except (yaml.YAMLError, msgspec.ValidationError) as exc:
        raise ValueError(f"{path}: {exc}") from exc


# =========================================================================== time


def _parse_time(value: TimeText, origin_ms: int) -> int:
    if isinstance(value, int):
        return value
    text = value.strip()
    if text[:1] in "+-":
        sign = -1 if text[0] == "-" else 1
        return origin_ms + sign * parse_duration_ms(text[1:])
    try:
        return timefns.parse_timestamp(text).nanos // _NS_PER_MS
    except CelError as exc:
        raise ValueError(f"invalid time `{value}`: {exc}") from exc


# =========================================================================== running


class _Run:
    """The mutable world of one scenario: snapshot, clock, seen event ids, last decision."""

    def __init__(self, policy: CompiledPolicy, scenario: Scenario) -> None:
        self.policy = policy
        self.scenario = scenario
        given = scenario.given
        self.origin = _parse_time(given.now, 0)
        self.now = self.origin
        self.paused: frozenset[str] = frozenset()  # set after the given history
        self.seen: set[str] = set()
        self.counter = 0
        self.last: Decision | None = None
        self.effects: EventEffects | None = None
        self.failures: list[str] = []
        self.snapshot = CustomerSnapshot(customer_id=given.customer_id)

    def time(self, value: TimeText | None, default: int) -> int:
        return default if value is None else _parse_time(value, self.origin)

    def setup(self) -> None:
        given = self.scenario.given
        at0 = self.origin - 1  # given state predates the scenario's first instant
        profile = {
            name: ProfileValue(value=value, updated_ms=at0, source="given")
            for name, value in given.profile.items()
        }
        consent = {
            purpose: self.consent_record(spec, at0) for purpose, spec in given.consent.items()
        }
        journeys = {}
        for jid, j in given.journeys.items():
            entered = self.time(j.entered, self.origin)
            journeys[jid] = JourneyState(
                status=j.status,  # type: ignore[arg-type]
                stage=j.stage,
                entered_ms=entered,
                stage_entered_ms=self.time(j.stage_entered, entered),
                entry_event_id=j.entry_event_id,
                last_event_id=j.entry_event_id,
                entries=j.entries,
            )
        caps = {
            key: sorted(self.time(t, self.origin) for t in times)
            for key, times in given.caps.items()
        }
        self.snapshot = msgspec.structs.replace(
            self.snapshot,
            profile=profile,
            consent=consent,
            segments=frozenset(given.segments),
            journeys=journeys,
            caps=caps,
        )
        for i, spec in enumerate(given.events):
            at = self.time(spec.at, self.origin)
            self.track(spec, at, default_id=f"given-{i}")
        # The history happened before the store failure / the kill switch under test.
        self.snapshot = msgspec.structs.replace(
            self.snapshot, unavailable=frozenset(given.unavailable)
        )
        self.paused = frozenset(given.paused)

    def consent_record(self, spec: str | ConsentGiven, default_ms: int) -> ConsentRecord:
        if isinstance(spec, str):
            spec = ConsentGiven(state=spec)
        if spec.state not in ("granted", "denied"):
            raise ValueError(f"consent state `{spec.state}`: use granted or denied")
        return ConsentRecord(
            state=spec.state,  # type: ignore[arg-type]
            updated_ms=self.time(spec.at, default_ms),
            source=spec.source,
            expires_ms=None if spec.expires is None else self.time(spec.expires, default_ms),
        )

    # -- steps ---------------------------------------------------------------------------------
    def track(self, spec: EventSpec, at: int, *, default_id: str) -> str:
        event_id = spec.id or default_id
        if event_id in self.seen:
            self.effects = None
            return "duplicate"
        decision_id, tracking_id = spec.decision_id, spec.tracking_id
        if spec.on_action is not None:
            if self.last is None:
                raise ValueError("`on_action` needs an earlier decide step")
            decision_id = self.last.decision_id
            tracking_id = f"{decision_id}.{spec.on_action}"
        event = Event(
            event_id=event_id,
            type=spec.type,
            time_ms=at,
            properties=spec.properties,
            version=spec.version,
            decision_id=decision_id,
            tracking_id=tracking_id,
            feedback=spec.feedback,
        )
        effects = apply_event(
            self.policy, self.snapshot, event, max(at, self.now), paused_journeys=self.paused
        )
        self.snapshot = apply_effects(self.snapshot, effects)
        self.seen.add(event_id)
        self.effects = effects
        return "applied"

    def decide(self, spec: DecideSpec) -> tuple[Decision, Decision]:
        self.counter += 1
        request = Request(
            customer_id=self.snapshot.customer_id,
            placement=spec.placement,
            channels=spec.channels,
            context=spec.context,
            limit=spec.limit,
            explain=True,
            request_id=spec.request_id or f"scenario-{self.counter}",
            propensities=spec.propensities,
            dry_run=spec.dry_run,
        )
        decision, commit = decide(
            self.policy, request, self.snapshot, self.now, paused_journeys=self.paused
        )
        quiet, _ = decide(
            self.policy,
            msgspec.structs.replace(request, explain=False),
            self.snapshot,
            self.now,
            paused_journeys=self.paused,
        )
        if not spec.dry_run:
            self.snapshot, result = apply_commit(self.snapshot, commit)
            # Rejections cannot happen single-threaded; settled for parity with the server.
            report = StoreReport(committed=result)
            decision = settle(decision, report, commit)
            quiet = settle(quiet, report, commit)
        self.last = decision
        return decision, quiet

    def update_profile(self, spec: ProfileSpec) -> dict[str, bool]:
        at = self.time(spec.at, self.now)
        consents = []
        for purpose, c in spec.consent.items():
            record = self.consent_record(c, at)
            consents.append(
                ConsentUpdate(purpose=purpose, state=record.state, expires_ms=record.expires_ms)
            )
        update = ProfileUpdate(
            customer_id=self.snapshot.customer_id,
            source=spec.source,
            timestamp_ms=at,
            traits=spec.traits,
            consents=tuple(consents),
            do_not_contact=spec.do_not_contact,
            segments=spec.segments,
        )
        self.snapshot, results = apply_profile_update(
            self.snapshot, update, do_not_contact_attribute=self.policy.consent.do_not_contact
        )
        return {r.name: r.applied for r in results}

    # -- expectations --------------------------------------------------------------------------
    def fail(self, where: str, message: str) -> None:
        self.failures.append(f"{where}: {message}")

    def check_decision(self, where: str, d: Decision, quiet: Decision, e: Expect) -> None:
        got = [a.action for a in d.actions]
        if [a.action for a in quiet.actions] != [a.action for a in d.actions]:
            self.fail(where, "the explain trace changed the chosen actions")
        if e.actions is not None and tuple(got) != e.actions:
            self.fail(where, f"actions: expected {list(e.actions)}, got {got}{_why(d, e.actions)}")
        for a in e.includes:
            if a not in got:
                self.fail(where, f"expected `{a}` among the actions {got}{_why(d, (a,))}")
        for a in e.excludes:
            if a in got:
                self.fail(where, f"expected `{a}` not to be chosen")
        for action, reason in e.reasons.items():
            entry = d.candidate(action)
            found = "not a candidate" if entry is None else entry.reason.value
            if found != reason:
                detail = f" ({entry.detail})" if entry is not None and entry.detail else ""
                self.fail(where, f"`{action}`: expected {reason}, got {found}{detail}")
        for action, text in e.details.items():
            entry = d.candidate(action)
            if entry is None or text not in entry.detail:
                found = "not a candidate" if entry is None else repr(entry.detail)
                self.fail(where, f"`{action}`: expected detail containing {text!r}, got {found}")
        if e.held_out is not None:
            held = tuple(a.action for a in d.held_out)
            if held != e.held_out:
                self.fail(where, f"held_out: expected {list(e.held_out)}, got {list(held)}")
        if e.control_group is not None and d.control_group != e.control_group:
            self.fail(where, f"control_group: expected {e.control_group}, got {d.control_group}")
        chosen = {a.action: a for a in (*d.actions, *d.held_out)}
        for action, variant in e.variants.items():
            found_variant = chosen[action].variant if action in chosen else None
            if found_variant != variant:
                self.fail(where, f"`{action}` variant: expected {variant!r}, got {found_variant!r}")
        for action, subset in e.payload.items():
            payload = chosen[action].payload if action in chosen else None
            if payload is None or any(payload.get(k) != v for k, v in subset.items()):
                self.fail(where, f"`{action}` payload: expected {subset}, got {payload}")
        if e.degraded is not None and d.degraded != e.degraded:
            self.fail(
                where,
                f"degraded: expected {e.degraded}, got {d.degraded} {[x.detail for x in d.degradations]}",
            )
        summary = {c.purpose: c.reason.value for c in d.consent}
        for purpose, reason in e.consent.items():
            if summary.get(purpose) != reason:
                self.fail(
                    where, f"consent `{purpose}`: expected {reason}, got {summary.get(purpose)}"
                )
        if e.fallback is not None:
            is_fallback = bool(d.actions) and d.actions[0].fallback
            if is_fallback != e.fallback:
                self.fail(where, f"fallback: expected {e.fallback}, got {is_fallback}")

    def check_track(self, where: str, status: str, e: Expect) -> None:
        if e.status is not None and status != e.status:
            self.fail(where, f"status: expected {e.status}, got {status}")
        effects = self.effects
        if e.changes is not None:
            got = tuple(f"{c.kind}:{c.journey}" for c in effects.journeys) if effects else ()
            if got != e.changes:
                self.fail(where, f"changes: expected {list(e.changes)}, got {list(got)}")
        if e.feedback is not None:
            n = len(effects.feedback) if effects else 0
            if n != e.feedback:
                self.fail(where, f"feedback records: expected {e.feedback}, got {n}")

    def check_state(self, where: str, e: Expect) -> None:
        snap = self.snapshot
        for jid, expected in e.journeys.items():
            state = snap.journeys.get(jid)
            if expected is None:
                if state is not None:
                    self.fail(where, f"journey `{jid}`: expected no state, got {state.status}")
                continue
            if state is None:
                self.fail(where, f"journey `{jid}`: expected {_fields(expected)}, got no state")
                continue
            for name in ("status", "stage", "entries", "exit_reason"):
                want = getattr(expected, name)
                if want is not None and getattr(state, name) != want:
                    self.fail(
                        where,
                        f"journey `{jid}` {name}: expected {want!r}, got {getattr(state, name)!r}",
                    )
        for key, count in e.caps.items():
            n = len(snap.caps.get(key, []))
            if n != count:
                self.fail(where, f"cap `{key}`: expected {count} grant(s), got {n}")
        for event_type, total in e.counters.items():
            counter = snap.events.get(event_type)
            n = counter.total if counter is not None else 0
            if n != total:
                self.fail(where, f"counter `{event_type}`: expected {total}, got {n}")
        for name, value in e.profile.items():
            entry = snap.profile.get(name)
            found = entry.value if entry is not None else None
            if found != value:
                self.fail(where, f"profile `{name}`: expected {value!r}, got {found!r}")
        for purpose, state_name in e.consent_state.items():
            record = snap.consent.get(purpose)
            found_state = record.state if record is not None else "unset"
            if found_state != state_name:
                self.fail(where, f"consent `{purpose}`: expected {state_name}, got {found_state}")

    def run(self) -> None:
        try:
            self.setup()
        except (ValueError, CelError) as exc:
            self.fail("given", str(exc))
            return
        for index, step in enumerate(self.scenario.steps, 1):
            where = f"step {index}"
            try:
                self.step(where, step)
            except (ValueError, CelError) as exc:
                self.fail(where, str(exc))
                return

    def step(self, where: str, step: Step) -> None:
        actions = [s for s in (step.track, step.update_profile, step.decide) if s is not None]
        if len(actions) > 1:
            raise ValueError("a step has at most one of track, update_profile, decide")
        if step.at is not None and step.advance is not None:
            raise ValueError("a step has at most one of at, advance")
        if step.at is not None:
            self.now = self.time(step.at, self.now)
        elif step.advance is not None:
            self.now += parse_duration_ms(step.advance)
        e = step.expect or Expect()
        if step.track is not None:
            at = self.time(step.track.at, self.now)
            status = self.track(step.track, at, default_id=f"{where}-event")
            self.check_track(where, status, e)
        elif step.update_profile is not None:
            applied = self.update_profile(step.update_profile)
            for name, want in e.applied.items():
                if applied.get(name) != want:
                    self.fail(where, f"`{name}` applied: expected {want}, got {applied.get(name)}")
        elif step.decide is not None:
            decision, quiet = self.decide(step.decide)
            self.check_decision(where, decision, quiet, e)
        self.check_state(where, e)


def _fields(j: JourneyExpect) -> dict[str, Any]:
    return {k: v for k, v in msgspec.structs.asdict(j).items() if v is not None}


def _why(d: Decision, actions: Iterable[str]) -> str:
    """The trace of the expected actions, to make a failure self-explaining."""
    parts = []
    for a in actions:
        entry = d.candidate(a)
        if entry is None:
            parts.append(f"`{a}` not a candidate")
        else:
            parts.append(f"`{a}` {entry.reason.value}{': ' + entry.detail if entry.detail else ''}")
    return " [" + "; ".join(parts) + "]" if parts else ""


def run_scenario(policy: CompiledPolicy, scenario: Scenario, file: str = "") -> ScenarioResult:
    """Run one scenario against a compiled policy."""
    run = _Run(policy, scenario)
    run.run()
    return ScenarioResult(file=file, name=scenario.name, failures=tuple(run.failures))


def run_directory(
    root: str | os.PathLike[str],
    *,
    policy: CompiledPolicy | None = None,
    on_result: Callable[[ScenarioResult], None] | None = None,
) -> Report:
    """Compile the policy directory (unless given) and run every scenario file in it.

    Raises :class:`~policies.loader.PolicyError` when the set does not compile.
    """
    compiled = policy if policy is not None else load_policy(root)
    results: list[ScenarioResult] = []
    errors: list[str] = []
    base = Path(root)
    for path in find_scenario_files(base):
        rel = path.relative_to(base).as_posix()
        try:
            spec = load_scenario_file(path)
        except (OSError, ValueError) as exc:
            errors.append(f"{rel}: {exc}")
            continue
        for scenario in spec.scenarios:
            result = run_scenario(compiled, scenario, rel)
            results.append(result)
            if on_result is not None:
                on_result(result)
    return Report(results=tuple(results), errors=tuple(errors))
