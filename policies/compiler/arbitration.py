"""Compile the global holdout and arbitration: the score formula, its variables, the constraints."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from arbiter.policies import cel
from arbiter.policies.bucketing import percent_to_buckets
from arbiter.policies.model import DEFAULT_SCORE
from arbiter.policies.plan import CompiledArbitration, CompiledChannel, CompiledHoldout

from .session import Session

__all__ = ["SCORE_VARIABLES", "compile_arbitration", "compile_holdout"]

# The per-candidate variables of the score, in the order the engine binds them.
SCORE_VARIABLES: Final = (
    "priority",
    "journey_priority",
    "value",
    "propensity",
    "action",
    "action.id",
    "action.channel",
    "action.journey",
    "action.tags",
)


def compile_holdout(s: Session) -> CompiledHoldout | None:
    """The global control group, if the set declares one."""
    g = s.model.holdouts.global_
    if g is None:
        return None
    try:
        buckets = percent_to_buckets(g.percent)
    except ValueError as exc:
        s.report(("holdouts", "global", "percent"), str(exc))
        buckets = 0
    return CompiledHoldout(
        percent=g.percent,
        buckets=buckets,
        salt=g.salt,
        include_transactional=g.include_transactional,
    )


def compile_arbitration(
    s: Session, env: cel.Env, channels: Mapping[str, CompiledChannel]
) -> CompiledArbitration | None:
    """The score formula (``None`` when it does not compile) and the constraints."""
    arb = s.model.arbitration
    for channel in arb.constraints.max_per_channel:
        path = ("arbitration", "constraints", "max_per_channel", channel)
        s.expect_known(channel, channels, "channel", path)
    score = s.expr(
        arb.score,
        ("arbitration", "score"),
        env,
        (cel.DOUBLE, cel.INT, cel.UINT),
        "the arbitration score",
    )
    if score is None:
        return None
    refs = score.references
    return CompiledArbitration(
        score=score,
        default_score=score.text.strip() == DEFAULT_SCORE,
        score_vars=tuple(
            name
            for name in SCORE_VARIABLES
            if name in refs or (name.startswith("action.") and "action" in refs)
        ),
        default_propensity=float(arb.default_propensity),
        max_per_journey=arb.constraints.max_per_journey,
        max_per_channel=MappingProxyType(dict(arb.constraints.max_per_channel)),
        max_actions=arb.constraints.max_actions,
    )
