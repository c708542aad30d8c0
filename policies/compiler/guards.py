"""Compile volume guards (message-storm breakers): what each counts, its limit and window.

The plan only says *what* to count; the server counts grants across the fleet
(``arbiter.server.volume_guard``) and trips. Each guard names exactly one
action, journey or channel; the actions it covers are resolved here so the
server maps a grant to its guards with one dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from arbiter.policies.loader import ModelPath
from arbiter.policies.plan import CompiledChannel, CompiledVolumeGuard

from .actions import ActionDraft
from .session import Session

__all__ = ["compile_volume_guards"]


def compile_volume_guards(
    s: Session,
    channels: Mapping[str, CompiledChannel],
    journeys: Collection[str],
    drafts: list[ActionDraft],
) -> tuple[CompiledVolumeGuard, ...]:
    """Every valid guard, in declaration order (problems reported at their YAML position)."""
    s.check_unique([g.id for g in s.model.volume_guards], ("volume_guards",), "volume guard")
    seen: set[str] = set()
    result: list[CompiledVolumeGuard] = []
    action_ids = [d.action.id for d in drafts]
    for i, spec in enumerate(s.model.volume_guards):
        path: ModelPath = ("volume_guards", i)
        named = [
            (scope, target)
            for scope, target in (
                ("action", spec.action),
                ("journey", spec.journey),
                ("channel", spec.channel),
            )
            if target is not None
        ]
        if len(named) != 1:
            s.report(
                (*path, "id"),
                f"volume guard `{spec.id}` must name exactly one of `action`, `journey`, "
                f"`channel` (it names {len(named)})",
            )
            continue
        scope, target = named[0]
        known: Collection[str] = {"action": action_ids, "journey": journeys, "channel": channels}[
            scope
        ]
        if not s.expect_known(target, known, scope, (*path, scope)):
            continue
        window = s.duration(spec.window, (*path, "window"))
        if window is None:
            continue
        if window < 1000:
            s.report((*path, "window"), "a volume guard window must be at least 1s")
            continue
        covered = frozenset(
            d.action.id
            for d in drafts
            if (scope == "action" and d.action.id == target)
            or (scope == "journey" and d.action.journey == target)
            or (scope == "channel" and d.channel.id == target)
        )
        if not covered:
            s.report((*path, scope), f"volume guard `{spec.id}` counts no action", "warning")
        if spec.id in seen:
            continue
        seen.add(spec.id)
        result.append(
            CompiledVolumeGuard(
                id=spec.id,
                scope=scope,
                target=target,
                max_grants=spec.max_grants,
                window_ms=window,
                on_trip=spec.on_trip,
                actions=covered,
                location=s.locator.locate((*path, "id")),
            )
        )
    return tuple(result)
