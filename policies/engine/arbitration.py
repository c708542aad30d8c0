"""Scoring and arbitration: score each passing candidate, rank, and choose under the constraints.

Scoring uses the policy's formula (the default formula is computed without
the CEL call, with identical arithmetic); a candidate whose value or score
fails (or reads unavailable state) is not sent. Ranking: score desc,
journey priority desc (across journeys: the higher-priority journey's action
wins a tie), priority desc, action id asc. Constraints in rank order: at most
``max_per_journey`` per journey, ``max_per_channel``, caps counting grants
chosen earlier in the same decision, ``limit``. Nothing chosen: the best
fallback that passed the filters.
"""

from __future__ import annotations

from collections.abc import Mapping
from math import isnan

from arbiter.policies.cel.errors import EvalError
from arbiter.policies.decision import CandidateTrace, ReasonCode
from arbiter.policies.plan import CompiledAction

from .candidates import Passing
from .facts import Facts, names
from .filters import filtered_trace

__all__ = ["Notes", "rank", "score_candidates", "select"]

_R = ReasonCode
# Why each candidate that passed the filters was not chosen (explain only).
Notes = dict[str, tuple[ReasonCode, str]]


def score_candidates(
    facts: Facts,
    passing: list[Passing],
    propensities: Mapping[str, float],
    trace: dict[str, CandidateTrace] | None,
) -> list[Passing]:
    """The candidates with their score; unscorable ones are dropped, degraded and traced ``ERROR``."""
    arbitration = facts.policy.arbitration
    default = arbitration.default_propensity
    default_score = arbitration.default_score
    formula = arbitration.score.program
    formula_parts = arbitration.score.parts & facts.unavailable
    variables = arbitration.score_vars
    activation = facts.activation
    scored = []
    for c in passing:
        action = c.action
        propensity = propensities.get(action.id, default) if propensities else default
        try:
            value = action.value if action.value_expr is None else _value(facts, action)
            if default_score:
                score = float(action.priority) * 1000.0 + value * float(propensity)
            elif formula_parts:
                raise EvalError(f"score reads {names(formula_parts)}, unavailable")
            else:
                for name in variables:  # bind only what the formula reads
                    if name == "priority":
                        activation[name] = action.priority
                    elif name == "journey_priority":
                        activation[name] = action.journey_priority
                    elif name == "value":
                        activation[name] = value
                    elif name == "propensity":
                        activation[name] = float(propensity)
                    elif name == "action":
                        activation[name] = None
                    elif name == "action.id":
                        activation[name] = action.id
                    elif name == "action.channel":
                        activation[name] = action.channel_id
                    elif name == "action.journey":
                        activation[name] = action.journey
                    else:
                        activation[name] = list(action.tags)
                score = float(formula.evaluate(activation))  # type: ignore[arg-type]
            if isnan(score):
                raise EvalError("score is NaN")
        except Exception as exc:  # fail safe: an unscorable action is not sent
            why = f"value or score failed: {exc}"
            facts.degrade(_R.ERROR, f"action `{action.id}`: {why}")
            if trace is not None:
                trace[action.id] = filtered_trace(action, c.stage, _R.ERROR, why)
            continue
        c.score = score
        scored.append(c)
    return scored


def _value(facts: Facts, action: CompiledAction) -> float:
    """The action's value expression (not evaluated when it reads unavailable state)."""
    expression = action.value_expr
    assert expression is not None
    missing = expression.parts & facts.unavailable
    if missing:
        raise EvalError(f"value reads {names(missing)}, unavailable")
    return float(expression.program.evaluate(facts.activation))  # type: ignore[arg-type]


def rank(passing: list[Passing]) -> None:
    """Sort best first: score desc, journey priority desc, priority desc, action id asc."""
    passing.sort(key=_rank_key)


def _rank_key(c: Passing) -> tuple[float, int, int, str]:
    action = c.action
    return (-c.score, -action.journey_priority, -action.priority, action.id)


class _Selector:
    """Constraint bookkeeping of one arbitration pass (journey, channel, in-decision caps)."""

    __slots__ = (
        "chosen",
        "facts",
        "max_channel",
        "max_journey",
        "pending",
        "per_channel",
        "per_journey",
    )

    def __init__(self, facts: Facts) -> None:
        arbitration = facts.policy.arbitration
        self.facts = facts
        self.max_journey = arbitration.max_per_journey
        self.max_channel = arbitration.max_per_channel
        self.chosen: list[Passing] = []
        self.per_journey: dict[str, int] = {}
        self.per_channel: dict[str, int] = {}
        self.pending: dict[str, int] = {}

    def blocked(self, c: Passing) -> tuple[ReasonCode, str] | None:
        """Why ``c`` cannot join the actions chosen so far, or ``None``."""
        action = c.action
        jid = action.journey
        if jid and self.per_journey.get(jid, 0) >= self.max_journey:
            return (
                _R.JOURNEY_CONSTRAINT,
                f"journey `{jid}` already has {self.max_journey} action(s)",
            )
        channel = action.channel_id
        channel_limit = self.max_channel.get(channel)
        if channel_limit is not None and self.per_channel.get(channel, 0) >= channel_limit:
            return _R.CHANNEL_LIMIT, f"channel `{channel}` limit {channel_limit} reached"
        if self.pending:
            for b in action.caps:
                extra = self.pending.get(b.key, 0)
                if extra and self.facts.used(b.key, b.window_ms) + extra >= b.limit:
                    return (
                        _R.CAPPED,
                        f"cap `{b.cap_id}` ({b.key}) reached by actions chosen in this decision",
                    )
        return None

    def take(self, c: Passing) -> None:
        action = c.action
        self.chosen.append(c)
        if action.journey:
            self.per_journey[action.journey] = self.per_journey.get(action.journey, 0) + 1
        self.per_channel[action.channel_id] = self.per_channel.get(action.channel_id, 0) + 1
        for b in action.caps:
            self.pending[b.key] = self.pending.get(b.key, 0) + 1


def select(
    facts: Facts,
    ranked: list[Passing],
    limit: int,
    *,
    full_reason: ReasonCode,
    notes: Notes | None,
) -> list[Passing]:
    """Apply the constraints in rank order; regular actions first, else the best fallback.

    ``notes`` (explain only) receives the reason of every candidate not chosen.
    """
    selector = _Selector(facts)
    chosen = selector.chosen
    fallbacks: list[Passing] = []
    for c in ranked:
        if c.action.fallback:
            fallbacks.append(c)
            continue
        if len(chosen) >= limit:
            if notes is None:
                break
            notes[c.action.id] = (full_reason, f"limit {limit} filled by higher-ranked actions")
            continue
        why = selector.blocked(c)
        if why is None:
            selector.take(c)
        elif notes is not None:
            notes[c.action.id] = why
    if chosen:
        if notes is not None:
            for c in fallbacks:
                notes[c.action.id] = (_R.LOST_ARBITRATION, "fallback not needed")
        return chosen
    for c in fallbacks:
        if chosen:
            if notes is not None:
                notes[c.action.id] = (_R.LOST_ARBITRATION, "a better fallback was chosen")
            continue
        why = selector.blocked(c)
        if why is None:
            selector.take(c)
        elif notes is not None:
            notes[c.action.id] = why
    return chosen
