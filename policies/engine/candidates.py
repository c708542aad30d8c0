"""Candidates: the always-on actions and the actions of the customer's active journey stages, for the request's placement and channels."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from arbiter.policies.decision import ReasonCode
from arbiter.policies.plan import (
    CandidateIndex,
    CompiledAction,
    CompiledPolicy,
    channel_purposes,
)
from arbiter.policies.snapshot import JourneyState

__all__ = ["Passing", "candidate_index", "gather"]

# Channel lists come from callers: the memo of derived indexes is bounded.
_MAX_VIEWS: Final = 4096
_NO_CANDIDATES: Final = CandidateIndex(always=(), journeys=(), purposes=())


class Passing:
    """A candidate that passed the filters (``held``: only the holdout stopped it)."""

    __slots__ = ("action", "held", "score", "stage")

    def __init__(self, action: CompiledAction, stage: str) -> None:
        self.action = action
        self.stage = stage
        self.score = 0.0
        self.held: ReasonCode | None = None


def candidate_index(
    policy: CompiledPolicy, placement: str, channels: tuple[str, ...]
) -> CandidateIndex:
    """The candidates of a request shape: precomputed per placement, restricted to the
    request's channels when it names any (derived once per shape, then memoised)."""
    if not channels:
        found = policy.candidates.get(placement)
        if found is not None:
            return found
    key = (placement, channels)
    found = policy.channel_views.get(key)
    if found is None:
        found = _restrict(policy, policy.candidates.get(placement, _NO_CANDIDATES), channels)
        if len(policy.channel_views) < _MAX_VIEWS:
            policy.channel_views[key] = found
    return found


def _restrict(
    policy: CompiledPolicy, index: CandidateIndex, channels: tuple[str, ...]
) -> CandidateIndex:
    allowed = set(channels) if channels else set(policy.channel_ids)
    journeys = []
    for jid, by_stage in index.journeys:
        kept = {
            stage: acts
            for stage, acts in (
                (stage, tuple(a for a in actions if a.channel_id in allowed))
                for stage, actions in by_stage.items()
            )
            if acts
        }
        if kept:
            journeys.append((jid, kept))
    purposes, transactional = channel_purposes(
        policy.channels[c] for c in allowed if c in policy.channels
    )
    return CandidateIndex(
        always=tuple(a for a in index.always if a.channel_id in allowed),
        journeys=tuple(journeys),
        purposes=purposes,
        transactional_purposes=transactional,
    )


def gather(
    index: CandidateIndex, states: Mapping[str, JourneyState], *, ordered: bool
) -> list[tuple[CompiledAction, str]]:
    """(action, stage) of every candidate; in declaration order when ``ordered`` (the trace's order)."""
    found: list[tuple[CompiledAction, str]] = []
    for action in index.always:
        stage = ""
        if action.journey:
            state = states.get(action.journey)
            if state is not None and state.status == "active":
                stage = state.stage
        found.append((action, stage))
    for jid, by_stage in index.journeys:
        state = states.get(jid)
        if state is not None and state.status == "active":
            acts = by_stage.get(state.stage)
            if acts:
                found.extend((action, state.stage) for action in acts)
    if ordered:
        found.sort(key=_order)
    return found


def _order(entry: tuple[CompiledAction, str]) -> int:
    return entry[0].order
