"""Compile frequency caps and bind them to actions: the counters each grant counts against, and caps that can never bind."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping

from arbiter.policies.effects import CapIncrement
from arbiter.policies.loader import ModelPath
from arbiter.policies.model import Action
from arbiter.policies.plan import CompiledCap, CompiledChannel
from arbiter.policies.times import format_duration_ms

from .actions import ActionDraft, inline_cap
from .session import Session

__all__ = ["compile_caps", "warn_unreachable_caps"]


def compile_caps(
    s: Session,
    channels: Mapping[str, CompiledChannel],
    journeys: set[str],
    drafts: list[ActionDraft],
) -> dict[str, CompiledCap]:
    """Every cap (channel inline, declared, action inline), and each draft's ``bindings``."""
    result: dict[str, CompiledCap] = {}

    def add(cap: CompiledCap, path: ModelPath) -> None:
        if cap.id in result:
            first = result[cap.id].location
            s.report(path, f"duplicate cap id `{cap.id}` (first defined at {first})")
        else:
            result[cap.id] = cap

    for i, ch in enumerate(s.model.channels):
        for j, c in enumerate(ch.caps):
            path: ModelPath = ("channels", i, "caps", j)
            cap = inline_cap(
                s, c, default_id=f"channel:{ch.id}#{j}", scope="channel", target=ch.id, path=path
            )
            if cap is not None:
                add(cap, path)
    action_ids = {d.action.id for d in drafts} | {a.id for a in s.model.actions}
    for i in range(len(s.model.caps)):
        cap = _declared_cap(s, i, channels, journeys, action_ids)
        if cap is not None:
            add(cap, ("caps", i, "id"))
    for d in drafts:
        for cap in d.inline:
            add(cap, ("actions", d.index, "caps"))
    for d in drafts:
        d.bindings = tuple(
            CapIncrement(cap_id=cap.id, key=key, window_ms=cap.window_ms, limit=cap.limit)
            for cap in result.values()
            if not (d.channel.transactional and not cap.include_transactional)
            for key in _cap_keys(cap, d.action)
        )
    for cap in result.values():
        if not any(b.cap_id == cap.id for d in drafts for b in d.bindings):
            s.at(cap.location, f"cap `{cap.id}` applies to no action", "warning")
    return result


def _declared_cap(
    s: Session,
    i: int,
    channels: Mapping[str, CompiledChannel],
    journeys: set[str],
    action_ids: set[str],
) -> CompiledCap | None:
    spec = s.model.caps[i]
    path: ModelPath = ("caps", i)
    window = s.duration(spec.window, (*path, "window"))
    if window is None:
        return None
    if window == 0:
        s.report((*path, "window"), "a cap window must be longer than 0")
        return None
    if spec.limit == 0:
        s.report((*path, "limit"), "cap limit 0: it never grants anything", "warning")
    if spec.scope == "global" and spec.targets:
        s.report((*path, "targets"), "a global cap has no targets")
        return None
    tags = {t for a in s.model.actions for t in a.tags}
    known: Collection[str] = {
        "channel": channels,
        "journey": frozenset(journeys),
        "action": frozenset(action_ids),
        "tag": frozenset(tags),
        "global": frozenset(),
    }[spec.scope]
    for j, ch_id in enumerate(spec.channels):
        s.expect_known(ch_id, channels, "channel", (*path, "channels", j))
    for j, t in enumerate(spec.targets):
        if spec.scope != "tag":
            s.expect_known(t, known, spec.scope, (*path, "targets", j))
        elif t not in tags:
            s.report((*path, "targets", j), f"no action has tag `{t}`", "warning")
    return CompiledCap(
        id=spec.id,
        scope=spec.scope,
        targets=frozenset(spec.targets),
        per_target=spec.scope != "global" and not spec.targets,
        channels=frozenset(spec.channels),
        limit=spec.limit,
        window_ms=window,
        include_transactional=spec.include_transactional,
        location=s.locator.locate(path),
    )


def _cap_keys(cap: CompiledCap, a: Action) -> list[str]:
    """The counters of ``cap`` a grant of ``a`` counts against (none when it does not apply)."""
    if cap.channels and a.channel not in cap.channels:
        return []
    if cap.scope == "global":
        return [cap.id]
    values: Iterable[str]
    if cap.scope == "channel":
        values = (a.channel,)
    elif cap.scope == "journey":
        values = (a.journey,) if a.journey else ()
    elif cap.scope == "action":
        values = (a.id,)
    else:
        values = sorted(set(a.tags))
    if cap.per_target:
        return [f"{cap.id}/{v}" for v in values]
    return [cap.id] if any(v in cap.targets for v in values) else []


def warn_unreachable_caps(
    s: Session, caps: Mapping[str, CompiledCap], drafts: list[ActionDraft]
) -> None:
    """Warn about caps none of whose counters can ever be the one that stops a grant:
    another counter with a lower limit over at least as long a window covers
    every action the counter covers."""
    members: dict[str, set[str]] = defaultdict(set)
    info: dict[str, CapIncrement] = {}
    for d in drafts:
        for b in d.bindings:
            members[b.key].add(d.action.id)
            info[b.key] = b
    by_cap: dict[str, list[str]] = defaultdict(list)
    for key, binding in info.items():
        by_cap[binding.cap_id].append(key)

    def dominator(key: str) -> CapIncrement | None:
        mine = info[key]
        for other_key, other_acts in members.items():
            other = info[other_key]
            if other.cap_id == mine.cap_id or not members[key] <= other_acts:
                continue
            if other.window_ms < mine.window_ms:
                continue
            if other.limit < mine.limit or (
                other.limit == mine.limit and other.window_ms > mine.window_ms
            ):
                return other
        return None

    for cap_id, keys in by_cap.items():
        if info[keys[0]].limit == 0:
            continue
        found = [dominator(k) for k in sorted(keys)]
        if not all(found):
            continue
        other = found[0]
        assert other is not None
        mine = info[sorted(keys)[0]]
        scope = "" if len(keys) == 1 else f" (none of its {len(keys)} counters)"
        s.at(
            caps[cap_id].location,
            f"cap `{cap_id}` ({mine.limit} per {format_duration_ms(mine.window_ms)}) can never "
            f"be reached{scope}: cap `{other.cap_id}` ({other.limit} per "
            f"{format_duration_ms(other.window_ms)}) covers all its actions",
            "warning",
        )
