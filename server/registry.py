"""The active policy set: one immutable reference, swapped atomically; a request reads it once.

:class:`Active` bundles everything a request needs from "the current
policy" -- the compiled set, its version string, the operators' paused
journeys and the snapshot needs of Track -- so that one attribute read
(``registry.current``) gives a consistent view even while an activation or
a kill switch swaps the reference concurrently (``docs/architecture.md``,
"Compile once, evaluate many"; Cerbos keeps the last valid rule table the
same way).

A failed load raises and keeps the last good set serving.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from typing import Final

import msgspec

from arbiter.policies import CompiledPolicy, SnapshotNeeds, load_policy

__all__ = ["NO_PAUSES", "Active", "Pauses", "PolicyNotLoaded", "PolicyRegistry"]

_log = logging.getLogger("arbiter.registry")


class PolicyNotLoaded(Exception):
    """No policy set has been compiled yet: the server cannot decide."""

    def __init__(self) -> None:
        super().__init__("no policy set is loaded")


def _track_needs(needs: SnapshotNeeds) -> SnapshotNeeds:
    """What applying an event reads: journeys and counters (and what expressions read), never caps or consent."""
    parts = (needs.parts | {"journeys", "events"}) - {"caps", "consent"}
    return msgspec.structs.replace(
        needs, parts=parts, cap_keys=frozenset(), consent_purposes=frozenset()
    )


@dataclass(frozen=True, slots=True)
class Pauses:
    """The operators' kill switches in force: journeys, actions and channels by id."""

    journeys: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()


NO_PAUSES: Final = Pauses()


def _with_pauses(active: Active, pauses: Pauses) -> Active:
    """``active`` under ``pauses``: a paused channel pauses every action sent on it."""
    actions = set(pauses.actions)
    if pauses.channels:
        actions.update(
            a.id for a in active.policy.actions.values() if a.channel_id in pauses.channels
        )
    return replace(
        active,
        paused_journeys=pauses.journeys,
        paused_actions=frozenset(actions),
        pauses=pauses,
    )


@dataclass(frozen=True, slots=True)
class Active:
    """One consistent view of the active policy set."""

    policy: CompiledPolicy
    version: str
    source: str
    loaded_at: float
    paused_journeys: frozenset[str] = frozenset()
    # Actions an operator paused, directly or through their channel (kill switches).
    paused_actions: frozenset[str] = frozenset()
    pauses: Pauses = field(default_factory=lambda: NO_PAUSES)
    track_needs: SnapshotNeeds = field(default_factory=lambda: SnapshotNeeds(parts=frozenset()))

    @classmethod
    def of(cls, policy: CompiledPolicy, source: str = "") -> Active:
        return cls(
            policy=policy,
            version=policy.policy_version,
            source=source,
            loaded_at=time.time(),
            track_needs=_track_needs(policy.needs),
        )


class PolicyRegistry:
    """Holds the active :class:`Active`; ``current`` is ``None`` until a set is loaded."""

    def __init__(self, active: Active | None = None) -> None:
        self._active = active

    @property
    def current(self) -> Active | None:
        return self._active

    def require(self) -> Active:
        """The active view, or raise :class:`PolicyNotLoaded`."""
        active = self._active
        if active is None:
            raise PolicyNotLoaded()
        return active

    def activate(self, policy: CompiledPolicy, source: str = "") -> Active:
        """Publish ``policy`` (keeping the operators' paused journeys); returns the new view."""
        previous = self._active
        active = Active.of(policy, source)
        if previous is not None and previous.pauses != NO_PAUSES:
            active = _with_pauses(active, previous.pauses)
        self._active = active
        _log.info("policy set %s active (from %s)", active.version, source or "memory")
        return active

    def load(self, directory: str | os.PathLike[str]) -> Active:
        """Compile ``directory`` and activate it. On any error raise; the last good set stays."""
        policy = load_policy(directory)
        return self.activate(policy, os.fspath(directory))

    def set_paused(self, journeys: frozenset[str]) -> None:
        """Replace the operators' paused journeys, keeping paused actions and channels."""
        pauses = self.require().pauses
        self.set_pauses(replace(pauses, journeys=frozenset(journeys)))

    def set_pauses(self, pauses: Pauses) -> None:
        """Replace the operators' kill switches (:mod:`arbiter.server.governance`); one swap
        of the reference, so a request sees the policy and the pauses of one instant."""
        active = self.require()
        if active.pauses != pauses:
            self._active = _with_pauses(active, pauses)
