"""Scenario expectations checked against what a step returned and what the store holds: one failure line per mismatch, explaining itself."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from arbiter.policies import CustomerSnapshot, Decision, EventEffects, JourneyChange, scenarios
from arbiter.server.errors import Status
from arbiter.server.scenarios.trace import instant

__all__ = ["Checks", "Outcome"]

_JOURNEY_FIELDS = ("status", "stage", "entries", "exit_reason")


@dataclass(frozen=True)
class Outcome:
    """What one step's call returned (the fields its kind fills)."""

    track: tuple[str, str, str, str] | None = None  # event id, status, field, detail
    effects: EventEffects | None = None
    applied: dict[str, bool] = field(default_factory=dict)
    decision: Decision | None = None
    check: Decision | None = None
    replayed: bool = False
    recorded: bool = False
    changes: tuple[JourneyChange, ...] = ()


@dataclass
class Checks:
    """Collects the failures of one scenario."""

    failures: list[str] = field(default_factory=list)

    def fail(self, where: str, message: str) -> None:
        self.failures.append(f"{where}: {message}")

    # -- the call ---------------------------------------------------------------------------------
    def call_status(
        self,
        where: str,
        status: Status | None,
        expected: scenarios.StatusCode | scenarios.ErrorExpect | None,
    ) -> bool:
        """Whether the call failed (or not) as expected; a mismatch is a failure."""
        if expected is None:
            if status is not None:
                self.fail(where, f"the call failed: {status.code.name}: {status.message}")
                return False
            return True
        want = expected if isinstance(expected, scenarios.ErrorExpect) else None
        code = want.code if want is not None else expected
        if status is None:
            self.fail(where, f"expected the call to fail with {code}, it succeeded")
            return False
        if status.code.name != code or (want is not None and want.message not in status.message):
            what = code if want is None else f"{code} with {want.message!r}"
            self.fail(where, f"expected {what}, got {status.code.name}: {status.message}")
            return False
        return True

    def outcome(self, where: str, o: Outcome, e: scenarios.Expect, origin_ms: int) -> None:
        """The expectations on what the step's call returned."""
        if o.decision is not None:
            self.decision(where, o.decision, e, origin_ms)
            if e.replayed is not None and o.replayed != e.replayed:
                self.fail(where, f"replayed: expected {e.replayed}, got {o.replayed}")
            self.changes(where, o.changes, e.changes)
        if o.check is not None:
            self.check(where, o.check, o.recorded, e)
            self.not_before(where, o.check, e, origin_ms)
        if o.track is not None:
            self.track(where, o.track, o.effects, e)
        for name, want in e.applied.items():
            if o.applied.get(name) != want:
                self.fail(where, f"`{name}` applied: expected {want}, got {o.applied.get(name)}")

    # -- decide -----------------------------------------------------------------------------------
    def decision(self, where: str, d: Decision, e: scenarios.Expect, origin_ms: int) -> None:
        got = [a.action for a in d.actions]
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
        self.not_before(where, d, e, origin_ms)
        if e.held_out is not None:
            held = tuple(a.action for a in d.held_out)
            if held != e.held_out:
                self.fail(where, f"held_out: expected {list(e.held_out)}, got {list(held)}")
        if e.control_group is not None and d.control_group != e.control_group:
            self.fail(where, f"control_group: expected {e.control_group}, got {d.control_group}")
        self.chosen(where, d, e)
        if e.degraded is not None and d.degraded != e.degraded:
            details = [x.detail for x in d.degradations]
            self.fail(where, f"degraded: expected {e.degraded}, got {d.degraded} {details}")
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

    def chosen(self, where: str, d: Decision, e: scenarios.Expect) -> None:
        chosen = {a.action: a for a in (*d.actions, *d.held_out)}
        for action, variant in e.variants.items():
            found = chosen[action].variant if action in chosen else None
            if found != variant:
                self.fail(where, f"`{action}` variant: expected {variant!r}, got {found!r}")
        for action, subset in e.payload.items():
            payload = chosen[action].payload if action in chosen else None
            if payload is None or any(payload.get(k) != v for k, v in subset.items()):
                self.fail(where, f"`{action}` payload: expected {subset}, got {payload}")

    def not_before(self, where: str, d: Decision, e: scenarios.Expect, origin_ms: int) -> None:
        """action -> when its trace says it may go (``None``: not deferred)."""
        for action, at in e.not_before.items():
            entry = d.candidate(action)
            due = None if at is None else scenarios.parse_scenario_time(at, origin_ms)
            deferred = entry.not_before_ms if entry is not None else None
            if deferred != due:
                self.fail(
                    where,
                    f"`{action}` not_before: expected {instant(due)}, got {instant(deferred)}",
                )

    # -- check ------------------------------------------------------------------------------------
    def check(self, where: str, answer: Decision, recorded: bool, e: scenarios.Expect) -> None:
        allowed = bool(answer.actions)
        trace = answer.candidates[0] if answer.candidates else None
        reason = "ELIGIBLE" if allowed else (trace.reason.value if trace else "")
        detail = "" if allowed or trace is None else trace.detail
        if e.allowed is not None and allowed != e.allowed:
            why = f" ({reason}: {detail})" if detail else f" ({reason})"
            self.fail(where, f"allowed: expected {e.allowed}, got {allowed}{why}")
        if e.reason is not None and reason != e.reason:
            self.fail(where, f"reason: expected {e.reason}, got {reason} ({detail})")
        if e.detail is not None and e.detail not in detail:
            self.fail(where, f"detail: expected a part {e.detail!r}, got {detail!r}")
        if e.recorded is not None and recorded != e.recorded:
            self.fail(where, f"recorded: expected {e.recorded}, got {recorded}")

    # -- track ------------------------------------------------------------------------------------
    def track(
        self,
        where: str,
        result: tuple[str, str, str, str],
        effects: EventEffects | None,
        e: scenarios.Expect,
    ) -> None:
        _, status, field_name, detail = result
        if e.status is not None and status != e.status:
            why = f" ({field_name}: {detail})" if detail else ""
            self.fail(where, f"status: expected {e.status}, got {status}{why}")
        elif e.status is None and status == "rejected":
            self.fail(where, f"Track rejected the event: {field_name}: {detail}")
        self.changes(where, effects.journeys if effects else (), e.changes)
        if e.feedback is not None:
            n = len(effects.feedback) if effects else 0
            if n != e.feedback:
                self.fail(where, f"feedback records: expected {e.feedback}, got {n}")

    def changes(
        self,
        where: str,
        changes: Iterable[JourneyChange],
        expected: tuple[str | scenarios.ChangeExpect, ...] | None,
    ) -> None:
        if expected is None:
            return
        got = [(f"{c.kind}:{c.journey}", c.cause_event_id) for c in changes]
        want = [(x, None) if isinstance(x, str) else (x.change, x.cause) for x in expected]
        matches = len(got) == len(want) and all(
            g[0] == w[0] and (w[1] is None or _cause_matches(g[1], w[1]))
            for g, w in zip(got, want, strict=True)
        )
        if not matches:
            shown = [f"{kind} (cause {cause})" for kind, cause in got]
            expected_text = [w[0] if w[1] is None else f"{w[0]} (cause {w[1]})" for w in want]
            self.fail(where, f"changes: expected {expected_text}, got {shown}")

    # -- state ------------------------------------------------------------------------------------
    def state(self, where: str, snap: CustomerSnapshot, e: scenarios.Expect) -> None:
        """The expectations on the stored state after the step."""
        for jid, expected in e.journeys.items():
            state = snap.journeys.get(jid)
            if expected is None:
                if state is not None:
                    self.fail(where, f"journey `{jid}`: expected no state, got {state.status}")
                continue
            if state is None:
                self.fail(where, f"journey `{jid}`: expected {_fields(expected)}, got no state")
                continue
            for name in _JOURNEY_FIELDS:
                want = getattr(expected, name)
                if want is not None and getattr(state, name) != want:
                    got = getattr(state, name)
                    self.fail(where, f"journey `{jid}` {name}: expected {want!r}, got {got!r}")
            for name, actual in (
                ("last_event", state.last_event_id),
                ("entry_event", state.entry_event_id),
            ):
                want = getattr(expected, name)
                if want is not None and not _cause_matches(actual, want):
                    self.fail(where, f"journey `{jid}` {name}: expected {want!r}, got {actual!r}")
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


def _cause_matches(actual: str, expected: str) -> bool:
    """A cause as written: the event id, or a timer cause without its ``@<due ms>`` suffix."""
    return actual == expected or actual.startswith(expected + "@")


def _fields(j: scenarios.JourneyExpect) -> dict[str, Any]:
    return {
        k: v
        for k, v in (
            ("status", j.status),
            ("stage", j.stage),
            ("entries", j.entries),
            ("exit_reason", j.exit_reason),
        )
        if v is not None
    }


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
