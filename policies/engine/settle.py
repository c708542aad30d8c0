"""Settle a decision: given what the store could read and what the commit accepted, the final answer.

The engine decides on whatever snapshot the store returned; the store then
commits atomically, re-checking every cap. What happened around the decision
-- reported in a :class:`StoreReport` -- can only ever take actions *away*
(errors fall toward not sending), and always says so:

- **the state could not be read** (``read_failure``): the engine already
  decided on a snapshot with every part unavailable, so nothing
  consent-gated or capped was granted; the decision carries a
  ``STATE_UNAVAILABLE`` degradation saying why, and nothing is committed.
- **the commit's outcome is unknown** (``commit_failure``: timeout,
  connection lost): every grant that counts against a cap is withheld
  (``STATE_UNAVAILABLE`` in the trace); with none to withhold, a
  degradation says the decision was not stored.
- **the store refused grants** (``committed.rejected``: a cap was reached
  concurrently): they become ``CAPPED`` in the trace. The store re-checks
  caps atomically, so this is the only way a stale snapshot can show -- as
  fewer actions, never as an overshoot.

A replayed request settles the stored record with the stored commit result,
so the first answer and every replay are the same, byte for byte. The
record is the decision as :func:`decide` returned it (:func:`encode_decision`):
the store keeps it in the same atomic step that decides the rejections.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import msgspec

from arbiter.policies.decision import Decision, Degradation, Outcome, ReasonCode
from arbiter.policies.effects import CommitResult, DecisionCommit

__all__ = ["StoreReport", "decode_decision", "encode_decision", "settle"]

_R = ReasonCode
_ENCODE: Final = msgspec.json.Encoder().encode
_DECODE: Final = msgspec.json.Decoder(Decision).decode


class StoreReport(msgspec.Struct, frozen=True, kw_only=True):
    """What the store did around one decision (see the module docstring)."""

    read_failure: str = ""  # why customer state could not be read; "" = it was read
    committed: CommitResult | None = None  # the commit's result; None = nothing committed
    commit_failure: str = ""  # why the commit's outcome is unknown; "" = it is known


def encode_decision(decision: Decision) -> bytes:
    """The idempotency record of a decision (what the store keeps for replays)."""
    return _ENCODE(decision)


def decode_decision(record: bytes) -> Decision:
    """A stored idempotency record back as the decision it encodes."""
    return _DECODE(record)


def settle(
    decision: Decision, report: StoreReport, commit: DecisionCommit | None = None
) -> Decision:
    """The final answer (see the module docstring); ``commit`` is the one handed to the store."""
    if report.read_failure:
        degradation = Degradation(
            reason=_R.STATE_UNAVAILABLE,
            detail=f"{report.read_failure}: nothing consent-gated or capped was granted",
        )
        decision = msgspec.structs.replace(
            decision, degradations=(degradation, *decision.degradations)
        )
    if report.commit_failure:
        counted = [g.action for g in commit.grants if g.caps] if commit is not None else []
        if counted:
            decision = _remove(
                decision,
                counted,
                _R.STATE_UNAVAILABLE,
                "the grant could not be recorded against its caps",
                degrade=True,
            )
        else:
            degradation = Degradation(
                reason=_R.STATE_UNAVAILABLE, detail="the decision could not be stored"
            )
            decision = msgspec.structs.replace(
                decision, degradations=(*decision.degradations, degradation)
            )
    if report.committed is not None and report.committed.rejected:
        refused = [r.action for r in report.committed.rejected]
        why = "cap reached concurrently (store re-check)"
        decision = _remove(decision, refused, _R.CAPPED, why, degrade=False)
    return decision


def _remove(
    decision: Decision, actions: Iterable[str], reason: ReasonCode, detail: str, *, degrade: bool
) -> Decision:
    """``decision`` without ``actions``: filtered with ``reason`` in the trace (and a degradation)."""
    gone = set(actions)
    candidates = tuple(
        msgspec.structs.replace(c, outcome=Outcome.FILTERED, reason=reason, detail=detail)
        if c.action in gone
        else c
        for c in decision.candidates
    )
    degradations = decision.degradations
    if degrade:
        degradations = (*degradations, Degradation(reason=reason, detail=detail))
    return msgspec.structs.replace(
        decision,
        actions=tuple(a for a in decision.actions if a.action not in gone),
        candidates=candidates,
        degradations=degradations,
    )
