"""What ``arbiter policy test -v`` prints under a step: the decision's trace, scores and consent record, a Check's verdict, a Track's journey changes."""

from __future__ import annotations

from datetime import UTC, datetime

from arbiter.policies import Decision, EventEffects

__all__ = ["describe_check", "describe_decision", "describe_track", "instant"]


def instant(ms: int | None) -> str:
    """Epoch ms as RFC 3339 UTC (``none`` for ``None``)."""
    if ms is None:
        return "none"
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def _score(score: float | None) -> str:
    return "" if score is None else f" score={score:g}"


def describe_decision(d: Decision, *, replayed: bool = False) -> list[str]:
    """The chosen actions, every candidate with outcome, reason, score and detail, the consent
    record and the degradations of one decision."""
    head = f"decide {d.decision_id}{' (replayed)' if replayed else ''}: "
    chosen = ", ".join(f"{a.action}{_score(a.score)}" for a in d.actions) or "nothing"
    later = f" (not before {instant(d.not_before_ms)})" if d.not_before_ms is not None else ""
    lines = [head + chosen + later]
    for c in d.candidates:
        variant = f" variant={c.variant}" if c.variant else ""
        later = f" not_before={instant(c.not_before_ms)}" if c.not_before_ms is not None else ""
        detail = f": {c.detail}" if c.detail else ""
        lines.append(
            f"  {c.action} [{c.channel}] {c.outcome.value} {c.reason.value}"
            f"{_score(c.score)}{variant}{later}{detail}"
        )
    for a in d.held_out:
        lines.append(f"  held out: {a.action}{_score(a.score)}")
    for p in d.consent:
        state = p.state or "unset"
        allowed = "allowed" if p.allowed else "denied"
        source = f" by {p.source}" if p.source else ""
        lines.append(f"  consent {p.purpose}: {state}{source}, {allowed} ({p.reason.value})")
    for x in d.degradations:
        lines.append(f"  degraded: {x.reason.value}: {x.detail}")
    return lines


def describe_check(answer: Decision, *, recorded: bool) -> list[str]:
    """A Check's verdict: allowed, or the reason and detail of its one trace entry."""
    if answer.actions:
        return [f"check {answer.actions[0].action}: allowed{' (recorded)' if recorded else ''}"]
    trace = answer.candidates[0] if answer.candidates else None
    if trace is None:
        return ["check: not allowed"]
    deferred = trace.not_before_ms
    later = f" not_before={instant(deferred)}" if deferred is not None else ""
    return [f"check {trace.action}: not allowed {trace.reason.value}{later}: {trace.detail}"]


def describe_track(result: tuple[str, str, str, str], effects: EventEffects | None) -> list[str]:
    """A tracked event's status and the journey changes it caused (with their causes)."""
    event_id, status, field, detail = result
    lines = [f"track {event_id}: {status}" + (f" ({field}: {detail})" if detail else "")]
    for c in effects.journeys if effects else ():
        stages = f" {c.from_stage}->{c.to_stage}" if c.from_stage or c.to_stage else ""
        lines.append(f"  {c.kind}:{c.journey}{stages} (cause {c.cause_event_id})")
    return lines
