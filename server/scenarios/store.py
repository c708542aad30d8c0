"""The scenario runner's store: the embedded ``MemoryStore`` itself, plus the scenario's fault injection and a view of what the service handed it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from arbiter.policies import CustomerSnapshot, DecisionCommit, EventEffects, SnapshotNeeds
from arbiter.state import CommitOutcome, EventOutcome, Loaded, MemoryStore

__all__ = ["ScenarioStore"]


class ScenarioStore(MemoryStore):
    """A :class:`MemoryStore` -- every write with its semantics, unchanged -- that also

    - marks ``unavailable_parts`` unreadable in every snapshot it loads (the
      scenario's ``given.unavailable``: what a store returns when a part of a
      customer's state cannot be read), and
    - remembers what the service core last loaded, committed and applied, so
      expectations can look at the journey changes of a step.
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        super().__init__(clock=clock)
        self.unavailable_parts: frozenset[str] = frozenset()
        self.last_loaded: CustomerSnapshot | None = None
        self.last_commit: DecisionCommit | None = None
        self.last_effects: EventEffects | None = None

    async def load(
        self,
        customer_id: str,
        needs: SnapshotNeeds,
        now_ms: int,
        *,
        request_id: str | None = None,
        timeout_s: float | None = None,
    ) -> Loaded:
        loaded = await super().load(
            customer_id, needs, now_ms, request_id=request_id, timeout_s=timeout_s
        )
        if self.unavailable_parts:
            snapshot = msgspec.structs.replace(
                loaded.snapshot,
                unavailable=loaded.snapshot.unavailable | self.unavailable_parts,
            )
            loaded = msgspec.structs.replace(loaded, snapshot=snapshot)
        self.last_loaded = loaded.snapshot
        return loaded

    async def commit_decision(
        self, commit: DecisionCommit, record: bytes, **options: Any
    ) -> CommitOutcome:
        outcome = await super().commit_decision(commit, record, **options)
        self.last_commit = commit
        return outcome

    async def apply_event(self, effects: EventEffects, **options: Any) -> EventOutcome:
        outcome = await super().apply_event(effects, **options)
        self.last_effects = effects if outcome == "applied" else None
        return outcome
