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

import msgspec

from arbiter.policies import CompiledPolicy, SnapshotNeeds, load_policy

__all__ = ["Active", "PolicyNotLoaded", "PolicyRegistry"]

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
class Active:
    """One consistent view of the active policy set."""

    policy: CompiledPolicy
    version: str
    source: str
    loaded_at: float
    paused_journeys: frozenset[str] = frozenset()
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
        if previous is not None and previous.paused_journeys:
            active = replace(active, paused_journeys=previous.paused_journeys)
        self._active = active
        _log.info("policy set %s active (from %s)", active.version, source or "memory")
        return active

    def load(self, directory: str | os.PathLike[str]) -> Active:
        """Compile ``directory`` and activate it. On any error raise; the last good set stays."""
        policy = load_policy(directory)
        return self.activate(policy, os.fspath(directory))

    def set_paused(self, journeys: frozenset[str]) -> None:
        """Replace the operators' kill-switch set (AdminService); atomic with the policy."""
        active = self.require()
        self._active = replace(active, paused_journeys=frozenset(journeys))
