"""Compile journeys: triggers, re-entry, stages and their transitions (with reachability), exits, holdouts."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from arbiter.policies import cel
from arbiter.policies.bucketing import percent_to_buckets
from arbiter.policies.loader import ModelPath
from arbiter.policies.model import Journey
from arbiter.policies.plan import (
    EXIT,
    CompiledExit,
    CompiledJourney,
    CompiledTransition,
    CompiledTrigger,
    Reentry,
)

from .actions import ActionDraft
from .contracts import Environments
from .session import Session

__all__ = ["JourneyDraft", "compile_journeys"]


@dataclass(slots=True)
class JourneyDraft:
    """A journey whose stages are not built yet: per stage its transitions and action drafts."""

    journey: CompiledJourney  # ``stages`` empty until assembly
    stages: dict[str, tuple[tuple[CompiledTransition, ...], tuple[ActionDraft, ...]]]


def compile_journeys(
    s: Session, envs: Environments, drafts: list[ActionDraft]
) -> dict[str, JourneyDraft]:
    """Every valid journey (the first of a repeated id wins)."""
    result: dict[str, JourneyDraft] = {}
    for i, j in enumerate(s.model.journeys):
        compiled = _journey(s, i, j, envs, drafts)
        if compiled is not None and j.id not in result:
            result[j.id] = compiled
    return result


def _event_env(s: Session, event: str, envs: Environments, path: ModelPath) -> cel.Env | None:
    if event in envs.events:
        return envs.events[event]
    s.expect_known(event, envs.events, "event type", path)
    return None


def _journey(
    s: Session, i: int, j: Journey, envs: Environments, drafts: list[ActionDraft]
) -> JourneyDraft | None:
    path: ModelPath = ("journeys", i)
    stage_ids = frozenset(s.check_unique([st.id for st in j.stages], (*path, "stages"), "stage"))
    if not j.stages:
        s.report((*path, "stages"), "a journey needs at least one stage")
        return None
    ok = True
    if EXIT in stage_ids:
        s.report((*path, "stages"), f"`{EXIT}` is reserved (`to: exit` leaves the journey)")
        ok = False
    entry = j.entry_stage or j.stages[0].id
    if j.entry_stage is not None and not s.expect_known(
        j.entry_stage, stage_ids, "stage", (*path, "entry_stage")
    ):
        ok = False
    triggers, triggers_ok = _triggers(s, j, envs, path)
    transitions, transitions_ok = _transitions(
        s, j, stage_ids=stage_ids, entry=entry, envs=envs, path=path
    )
    exits, exits_ok = _exits(s, j, envs, path)
    reentry = _reentry(s, j.reentry, (*path, "reentry"))
    max_duration = s.duration(j.max_duration, (*path, "max_duration"))
    mine = [d for d in drafts if d.action.journey == j.id]
    if j.status == "active" and not mine:
        s.report((*path, "id"), f"journey `{j.id}` has no actions", "warning")
    if not (ok and triggers_ok and transitions_ok and exits_ok) or reentry is None:
        return None
    stages = {
        st.id: (
            tuple(transitions.get(st.id, ())),
            tuple(d for d in mine if not d.action.stages or st.id in d.action.stages),
        )
        for st in j.stages
    }
    holdout_buckets = 0
    if j.holdout is not None:
        try:
            holdout_buckets = percent_to_buckets(j.holdout.percent)
        except ValueError as exc:
            s.report((*path, "holdout", "percent"), str(exc))
    journey = CompiledJourney(
        id=j.id,
        name=j.name or j.id,
        owner=j.owner,
        status=j.status,
        priority=j.priority,
        triggers=triggers,
        reentry=reentry,
        entry_stage=entry,
        stages=MappingProxyType({}),  # built at assembly
        exits=exits,
        max_duration_ms=max_duration,
        holdout_buckets=holdout_buckets,
        holdout_salt=(j.holdout.salt if j.holdout is not None else None) or j.id,
        tags=frozenset(j.tags),
    )
    return JourneyDraft(journey=journey, stages=stages)


def _triggers(
    s: Session, j: Journey, envs: Environments, path: ModelPath
) -> tuple[tuple[CompiledTrigger, ...], bool]:
    ok = True
    triggers = []
    for k, t in enumerate(j.triggers):
        tpath = (*path, "triggers", k)
        env = _event_env(s, t.event, envs, (*tpath, "event"))
        if env is None:
            ok = False
            continue
        when = s.expr(t.when, (*tpath, "when"), env, (cel.BOOL,), "a trigger condition")
        key = window = None
        if t.dedup is not None:
            key = s.expr(
                t.dedup.key,
                (*tpath, "dedup", "key"),
                env,
                (cel.STRING, cel.INT, cel.UINT),
                "a dedup key",
            )
            window = s.duration(t.dedup.window, (*tpath, "dedup", "window"))
        triggers.append(
            CompiledTrigger(
                journey=j.id, event=t.event, when=when, dedup_key=key, dedup_window_ms=window
            )
        )
    if not j.triggers and j.status == "active":
        s.report(
            (*path, "id"), f"journey `{j.id}` has no triggers: no customer can enter it", "warning"
        )
    return tuple(triggers), ok


def _transitions(
    s: Session,
    j: Journey,
    *,
    stage_ids: frozenset[str],
    entry: str,
    envs: Environments,
    path: ModelPath,
) -> tuple[dict[str, list[CompiledTransition]], bool]:
    """Per stage its transitions; stages unreachable from the entry stage are warned about."""
    ok = True
    by_stage: dict[str, list[CompiledTransition]] = defaultdict(list)
    graph: dict[str, set[str]] = defaultdict(set)
    for s_index, stage in enumerate(j.stages):
        for k, tr in enumerate(stage.transitions):
            tpath = (*path, "stages", s_index, "transitions", k)
            if (tr.on is None) == (tr.after is None):
                s.report(
                    tpath,
                    "a transition needs exactly one of `on` (an event) or `after` (a duration)",
                )
                ok = False
                continue
            if tr.to != EXIT and not s.expect_known(tr.to, stage_ids, "stage", (*tpath, "to")):
                ok = False
            env = envs.base if tr.on is None else _event_env(s, tr.on, envs, (*tpath, "on"))
            if env is None:
                ok = False
                continue
            after = s.duration(tr.after, (*tpath, "after"))
            when = s.expr(tr.when, (*tpath, "when"), env, (cel.BOOL,), "a transition condition")
            graph[stage.id].add(tr.to)
            by_stage[stage.id].append(
                CompiledTransition(
                    journey=j.id, stage=stage.id, to=tr.to, on=tr.on, after_ms=after, when=when
                )
            )
    _warn_unreachable(s, j, entry, graph, path)
    return by_stage, ok


def _warn_unreachable(
    s: Session, j: Journey, entry: str, graph: Mapping[str, set[str]], path: ModelPath
) -> None:
    reached = {entry}
    queue = deque([entry])
    while queue:
        for nxt in graph.get(queue.popleft(), ()):
            if nxt not in reached:
                reached.add(nxt)
                queue.append(nxt)
    for s_index, stage in enumerate(j.stages):
        if stage.id not in reached:
            s.report(
                (*path, "stages", s_index, "id"),
                f"stage `{stage.id}` is unreachable from the entry stage `{entry}`",
                "warning",
            )


def _exits(
    s: Session, j: Journey, envs: Environments, path: ModelPath
) -> tuple[tuple[CompiledExit, ...], bool]:
    ok = True
    exits = []
    for k, ex in enumerate(j.exits):
        epath = (*path, "exits", k)
        env = _event_env(s, ex.on, envs, (*epath, "on"))
        if env is None:
            ok = False
            continue
        when = s.expr(ex.when, (*epath, "when"), env, (cel.BOOL,), "an exit condition")
        reason = ex.reason or f"exit:{ex.on}"
        exits.append(CompiledExit(journey=j.id, on=ex.on, when=when, reason=reason))
    return tuple(exits), ok


def _reentry(s: Session, text: str, path: ModelPath) -> Reentry | None:
    stripped = text.strip()
    if stripped in ("never", "always"):
        return Reentry(kind="never" if stripped == "never" else "always")
    if stripped.startswith("after "):
        ms = s.duration(stripped[len("after ") :].strip(), path)
        return None if ms is None else Reentry(kind="after", after_ms=ms)
    s.report(
        path, f"invalid reentry `{text}`: use never, always or `after <duration>` (e.g. after 30d)"
    )
    return None
