"""Scenario inputs checked against the compiled policy: every name and value a scenario uses, located, with "did you mean".

A scenario that names an unknown event type, channel, placement, journey,
stage, cap key, action, variant, purpose, reason code, profile attribute,
context field or event property -- or gives a value of the wrong type --
would pass or fail for the wrong reason; here it is an error at
``file:line:col`` before anything runs, in the policy compiler's words.
Expectations that do not apply to the step they follow (``actions`` after a
``track``) are errors too.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Final

from arbiter.policies import cel
from arbiter.policies.decision import ReasonCode
from arbiter.policies.diagnostics import Diagnostic
from arbiter.policies.loader import Locator
from arbiter.policies.plan import CompiledField, CompiledPolicy
from arbiter.policies.times import parse_duration_ms

from .model import (
    ChangeExpect,
    CheckSpec,
    DecideSpec,
    EventSpec,
    Expect,
    Given,
    ProfileSpec,
    Scenario,
    Step,
    TimeText,
)
from .times import time_problem

__all__ = ["check_scenario"]

Path = tuple[str | int, ...]

_REASONS: Final = frozenset(r.value for r in ReasonCode)
# Customer, request, event and decision ids, as the service accepts them.
_ID: Final = re.compile(r"[A-Za-z0-9._:@+\-]{1,128}")
_CHANGE_KINDS: Final = ("enter", "reenter", "transition", "complete", "exit", "timeout")
# Expectation keys by the call they are checked after (``None``: any step).
_AFTER: Final[dict[str, str]] = {
    **dict.fromkeys(
        (
            "actions",
            "includes",
            "excludes",
            "reasons",
            "details",
            "held_out",
            "control_group",
            "variants",
            "payload",
            "degraded",
            "consent",
            "fallback",
            "replayed",
        ),
        "decide",
    ),
    **dict.fromkeys(("allowed", "reason", "detail", "recorded"), "check"),
    **dict.fromkeys(("status", "feedback"), "track"),
    "applied": "update_profile",
}
_CALLS: Final = ("track", "update_profile", "decide", "check")
_NOTHING: Final = Expect()


def check_scenario(
    policy: CompiledPolicy, scenario: Scenario, path: Path, file: str, locator: Locator
) -> list[Diagnostic]:
    """Every problem of ``scenario`` (found at ``path`` of ``file``) against ``policy``."""
    checker = _Checker(policy, file, locator)
    checker.scenario(scenario, path)
    return checker.diagnostics


class _Checker:
    def __init__(self, policy: CompiledPolicy, file: str, locator: Locator) -> None:
        self.policy = policy
        self.file = file
        self.locator = locator
        self.diagnostics: list[Diagnostic] = []
        self.placements = sorted(
            {p for channel in policy.channels.values() for p in channel.placements}
        )
        self.cap_keys = sorted({inc.key for a in policy.actions.values() for inc in a.caps})
        self.decided = False  # an earlier step decided (for on_action / on_last_decision)

    # -- reporting ------------------------------------------------------------------------------
    def error(self, path: Path, message: str, *, key: bool = False) -> None:
        location = self.locator.locate_in_file(self.file, path, key=key)
        self.diagnostics.append(Diagnostic(location, "error", message))

    def known(
        self, value: str, known: Collection[str], what: str, path: Path, *, key: bool = False
    ) -> bool:
        if value in known:
            return True
        close = difflib.get_close_matches(value, list(known), n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        self.error(path, f"unknown {what} `{value}`{hint}", key=key)
        return False

    def keys(
        self, mapping: Mapping[str, Any], known: Collection[str], what: str, path: Path
    ) -> None:
        for name in mapping:
            self.known(name, known, what, (*path, name), key=True)

    def each(self, values: Iterable[str], known: Collection[str], what: str, path: Path) -> None:
        for index, value in enumerate(values):
            self.known(value, known, what, (*path, index))

    def ident(self, value: str | None, what: str, path: Path) -> None:
        if value is not None and value != "" and _ID.fullmatch(value) is None:
            self.error(path, f"invalid {what} `{value}`: 1-128 characters of [A-Za-z0-9._:@+-]")

    def time(self, value: TimeText | None, path: Path, *, relative: bool = True) -> None:
        if value is not None and (problem := time_problem(value, relative=relative)):
            self.error(path, problem)

    def duration(self, text: str | None, path: Path) -> None:
        if text is None:
            return
        try:
            parse_duration_ms(text)
        except ValueError as exc:
            self.error(path, str(exc))

    def fields(
        self,
        values: Mapping[str, Any],
        specs: Mapping[str, CompiledField],
        what: str,
        path: Path,
        *,
        open_keys: bool = False,
        allow_null: bool = False,
    ) -> None:
        """Names declared (unless ``open_keys``) and values of the declared type."""
        for name, value in values.items():
            spec = specs.get(name)
            if spec is None:
                if not open_keys:
                    self.known(name, specs, what, (*path, name), key=True)
                continue
            if value is None and allow_null:
                continue
            problem = _misfit(value, spec.type)
            if problem:
                self.error((*path, name), f"`{name}` ({spec.type_text}): {problem}")
            elif spec.values and _hashable(value) and value not in spec.values:
                allowed = ", ".join(sorted(str(v) for v in spec.values))
                self.error((*path, name), f"`{name}`: `{value}` is not one of: {allowed}")

    # -- the scenario ---------------------------------------------------------------------------
    def scenario(self, scenario: Scenario, path: Path) -> None:
        self.given(scenario.given, (*path, "given"))
        for index, step in enumerate(scenario.steps):
            self.step(step, (*path, "steps", index))

    def given(self, given: Given, path: Path) -> None:
        policy = self.policy
        self.time(given.now, (*path, "now"), relative=False)
        self.ident(given.customer_id, "customer id", (*path, "customer_id"))
        self.fields(given.profile, policy.profile, "profile attribute", (*path, "profile"))
        self.consents(given.consent, (*path, "consent"))
        for index, event in enumerate(given.events):
            self.event(event, (*path, "events", index), rejected_ok=False)
        for jid, state in given.journeys.items():
            where = (*path, "journeys", jid)
            if self.known(jid, policy.journeys, "journey", where, key=True):
                stages = policy.journeys[jid].stages
                self.known(state.stage, stages, f"stage of `{jid}`", (*where, "stage"))
            self.time(state.entered, (*where, "entered"))
            self.time(state.stage_entered, (*where, "stage_entered"))
        for key, times in given.caps.items():
            self.known(key, self.cap_keys, "cap key", (*path, "caps", key), key=True)
            for index, at in enumerate(times):
                self.time(at, (*path, "caps", key, index))
        self.each(given.paused, policy.journeys, "journey", (*path, "paused"))

    def consents(self, consents: Mapping[str, Any], path: Path) -> None:
        self.keys(consents, self.policy.consent.purposes, "consent purpose", path)
        for purpose, spec in consents.items():
            if not isinstance(spec, str):
                self.time(spec.at, (*path, purpose, "at"))
                self.time(spec.expires, (*path, purpose, "expires"))

    def event(self, event: EventSpec, path: Path, *, rejected_ok: bool) -> None:
        """An event; contract breaches (which ``Track`` rejects) are errors unless expected."""
        self.time(event.at, (*path, "at"))
        self.ident(event.id, "event id", (*path, "id"))
        self.ident(event.decision_id, "decision id", (*path, "decision_id"))
        if event.on_action is not None:
            self.known(event.on_action, self.policy.actions, "action", (*path, "on_action"))
            if not self.decided:
                self.error((*path, "on_action"), "`on_action` needs an earlier decide step")
        if rejected_ok:
            return
        contract = self.policy.events.get(event.type)
        if contract is None:
            self.known(event.type, self.policy.events, "event type", (*path, "type"))
            return
        self.fields(
            event.properties,
            contract.properties,
            f"property of `{event.type}`",
            (*path, "properties"),
        )
        for name, spec in contract.properties.items():
            if spec.required and event.properties.get(name) is None:
                self.error(
                    (*path, "properties"),
                    f"`{event.type}` requires property `{name}` (Track would reject the event; "
                    "expect `status: rejected` to test that)",
                )
        if event.version and event.version != contract.version:
            self.error(
                (*path, "version"),
                f"`{event.type}` is at version {contract.version}, not {event.version}",
            )

    def step(self, step: Step, path: Path) -> None:
        calls = [name for name in _CALLS if getattr(step, name) is not None]
        if len(calls) > 1:
            self.error(
                path,
                f"a step has at most one of track, update_profile, decide, check (got {', '.join(calls)})",
            )
        if step.at is not None and step.advance is not None:
            self.error((*path, "advance"), "a step has at most one of `at`, `advance`")
        self.time(step.at, (*path, "at"))
        self.duration(step.advance, (*path, "advance"))
        expect = step.expect or Expect()
        call = calls[0] if len(calls) == 1 else None
        if step.track is not None:
            self.event(step.track, (*path, "track"), rejected_ok=expect.status == "rejected")
        elif step.update_profile is not None:
            self.profile_update(step.update_profile, (*path, "update_profile"))
        elif step.decide is not None:
            self.decide(step.decide, (*path, "decide"))
        elif step.check is not None:
            self.check(step.check, (*path, "check"))
        self.expect(expect, call, (*path, "expect"))
        if step.decide is not None:
            self.decided = True

    def profile_update(self, spec: ProfileSpec, path: Path) -> None:
        policy = self.policy
        self.fields(
            spec.traits, policy.profile, "profile attribute", (*path, "traits"), allow_null=True
        )
        self.consents(spec.consent, (*path, "consent"))
        if spec.do_not_contact is not None and policy.consent.do_not_contact is None:
            self.error((*path, "do_not_contact"), "the policy set declares no do-not-contact")
        self.time(spec.at, (*path, "at"))
        self.ident(spec.source, "source", (*path, "source"))

    def context(self, context: Mapping[str, Any], path: Path) -> None:
        policy = self.policy
        self.fields(
            context,
            policy.context,
            "context field",
            path,
            open_keys=policy.context_open,
        )

    def decide(self, spec: DecideSpec, path: Path) -> None:
        policy = self.policy
        if spec.placement:
            self.known(spec.placement, self.placements, "placement", (*path, "placement"))
        self.each(spec.channels, policy.channels, "channel", (*path, "channels"))
        self.context(spec.context, (*path, "context"))
        self.keys(spec.propensities, policy.actions, "action", (*path, "propensities"))
        self.ident(spec.request_id, "request id", (*path, "request_id"))
        if spec.limit < 0:
            self.error((*path, "limit"), "`limit` must be >= 0 (0 means 1)")

    def check(self, spec: CheckSpec, path: Path) -> None:
        policy = self.policy
        self.known(spec.action, policy.actions, "action", (*path, "action"))
        if spec.channel is not None:
            self.known(spec.channel, policy.channels, "channel", (*path, "channel"))
        self.context(spec.context, (*path, "context"))
        self.ident(spec.request_id, "request id", (*path, "request_id"))
        self.ident(spec.decision_id, "decision id", (*path, "decision_id"))
        if spec.on_last_decision and not self.decided:
            self.error(
                (*path, "on_last_decision"), "`on_last_decision` needs an earlier decide step"
            )

    # -- expectations ---------------------------------------------------------------------------
    def expect(self, e: Expect, call: str | None, path: Path) -> None:
        policy = self.policy
        actions = policy.actions
        given = {name for name in _AFTER if getattr(e, name) != getattr(_NOTHING, name)}
        for name in sorted(given):
            if _AFTER[name] != call:
                self.error(
                    (*path, name), f"`{name}` is checked after a `{_AFTER[name]}` step", key=True
                )
        if e.not_before and call not in ("decide", "check"):
            self.error(
                (*path, "not_before"),
                "`not_before` is checked after a `decide` or `check` step",
                key=True,
            )
        if e.changes is not None and call not in ("track", "decide"):
            self.error(
                (*path, "changes"),
                "`changes` is checked after a `track` or `decide` step",
                key=True,
            )
        for name in ("actions", "includes", "excludes", "held_out"):
            self.each(getattr(e, name) or (), actions, "action", (*path, name))
        for name in ("details", "payload", "not_before"):
            self.keys(getattr(e, name), actions, "action", (*path, name))
        for action, reason in e.reasons.items():
            if self.known(action, actions, "action", (*path, "reasons", action), key=True):
                self.known(reason, _REASONS, "reason code", (*path, "reasons", action))
        for action, variant in e.variants.items():
            where = (*path, "variants", action)
            if self.known(action, actions, "action", where, key=True):
                ids = [v.id for v in actions[action].variants]
                self.known(variant, ids, f"variant of `{action}`", where)
        for action, at in e.not_before.items():
            self.time(at, (*path, "not_before", action))
        for purpose, reason in e.consent.items():
            where = (*path, "consent", purpose)
            if self.known(purpose, policy.consent.purposes, "consent purpose", where, key=True):
                self.known(reason, _REASONS, "reason code", where)
        if e.reason is not None:
            self.known(e.reason, _REASONS, "reason code", (*path, "reason"))
        for index, change in enumerate(e.changes or ()):
            self.change(change, (*path, "changes", index))
        self.state(e, path)

    def change(self, change: str | ChangeExpect, path: Path) -> None:
        text = change if isinstance(change, str) else change.change
        where = path if isinstance(change, str) else (*path, "change")
        kind, sep, journey = text.partition(":")
        if not sep:
            self.error(
                where,
                f"`{text}`: write `<kind>:<journey>`, e.g. `enter:{next(iter(self.policy.journeys), 'journey')}`",
            )
            return
        self.known(kind, _CHANGE_KINDS, "journey change", where)
        self.known(journey, self.policy.journeys, "journey", where)

    def state(self, e: Expect, path: Path) -> None:
        policy = self.policy
        for jid, state in e.journeys.items():
            where = (*path, "journeys", jid)
            known = self.known(jid, policy.journeys, "journey", where, key=True)
            if known and state is not None and state.stage is not None:
                stages = policy.journeys[jid].stages
                self.known(state.stage, stages, f"stage of `{jid}`", (*where, "stage"))
        self.keys(e.caps, self.cap_keys, "cap key", (*path, "caps"))
        self.keys(e.counters, policy.events, "event type", (*path, "counters"))
        self.keys(e.profile, policy.profile, "profile attribute", (*path, "profile"))
        self.keys(
            e.consent_state, policy.consent.purposes, "consent purpose", (*path, "consent_state")
        )


def _hashable(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _misfit(value: Any, t: cel.Type) -> str:
    """Why ``value`` (as written in a scenario) does not fit the declared type (``""``: it does)."""
    if value is None:
        return "null is not a value of the type (leave the field out)"
    if t == cel.DYN:
        return ""
    got = type(value).__name__
    if t == cel.STRING:
        return "" if isinstance(value, str) else f"expected a string, got {got}"
    if t == cel.BOOL:
        return "" if isinstance(value, bool) else f"expected true or false, got {got}"
    if t in (cel.INT, cel.UINT):
        if isinstance(value, bool) or not isinstance(value, int):
            return f"expected an integer, got {got}"
        return "expected a non-negative integer" if t == cel.UINT and value < 0 else ""
    if t == cel.DOUBLE:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return "" if ok else f"expected a number, got {got}"
    if t == cel.BYTES:
        return "" if isinstance(value, str) else f"expected a string (UTF-8 bytes), got {got}"
    if t == cel.TIMESTAMP:
        return time_problem(value)
    if t == cel.DURATION:
        if not isinstance(value, str):
            return f"expected a duration such as `2h`, got {got}"
        try:
            parse_duration_ms(value)
        except ValueError as exc:
            return str(exc)
        return ""
    if isinstance(t, cel.ListType):
        if not isinstance(value, list):
            return f"expected a list, got {got}"
        for index, member in enumerate(value):
            problem = _misfit(member, t.elem)
            if problem:
                return f"[{index}]: {problem}"
        return ""
    if isinstance(t, cel.MapType):
        if not isinstance(value, dict):
            return f"expected a mapping, got {got}"
        for key, member in value.items():
            problem = _misfit(member, t.value)
            if problem:
                return f".{key}: {problem}"
        return ""
    return ""
