"""Assemble the plan: final actions and journeys, and everything the engine reads precomputed (indexes, bindings)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from arbiter.policies.converters import identity
from arbiter.policies.plan import (
    CandidateIndex,
    CompiledAction,
    CompiledArbitration,
    CompiledCap,
    CompiledChannel,
    CompiledConsent,
    CompiledField,
    CompiledHoldout,
    CompiledJourney,
    CompiledPolicy,
    CompiledStage,
    CompiledVariant,
    CompiledVolumeGuard,
    channel_purposes,
)

from .actions import ActionDraft, Suppressions
from .contracts import Contracts
from .journeys import JourneyDraft
from .needs import snapshot_needs
from .session import Session

__all__ = ["COMPILER_VERSION", "Sections", "assemble"]

# Stamped on every plan; bump when the plan's shape or meaning changes.
COMPILER_VERSION: Final = "2"

_freeze = MappingProxyType


@dataclass(frozen=True, slots=True, kw_only=True)
class Sections:
    """The compiled sections of a set, handed from the section compilers to :func:`assemble`."""

    contracts: Contracts
    channels: dict[str, CompiledChannel]
    consent: CompiledConsent
    caps: dict[str, CompiledCap]
    suppressions: Suppressions
    journeys: dict[str, JourneyDraft]
    drafts: list[ActionDraft]
    holdout: CompiledHoldout | None
    arbitration: CompiledArbitration
    volume_guards: tuple[CompiledVolumeGuard, ...] = ()


def assemble(s: Session, sections: Sections) -> CompiledPolicy:
    """The immutable plan of a set that compiled without errors."""
    model = s.model
    actions = _actions(s, sections.drafts)
    journeys = _journeys(sections.journeys, actions)
    contracts = sections.contracts
    needs = snapshot_needs(s, contracts.profile, contracts.context, actions, journeys)
    tz = model.policy_set.timezone
    return CompiledPolicy(
        id=model.policy_set.id,
        version=model.policy_set.version,
        digest=s.loaded.digest,
        compiler_version=COMPILER_VERSION,
        policy_version=f"{model.policy_set.version}+{s.loaded.digest}",
        files=tuple(f.path for f in s.loaded.files),
        profile=_freeze(contracts.profile),
        context=_freeze(contracts.context),
        context_open=model.contracts.context_open,
        events=_freeze(contracts.events),
        timezone_context=tz.context,
        timezone_attribute=tz.attribute,
        default_timezone=tz.default,
        channels=_freeze(sections.channels),
        channel_ids=tuple(sections.channels),
        consent=sections.consent,
        caps=_freeze(sections.caps),
        suppressions=tuple(rule for rule, _ in sections.suppressions),
        journeys=_freeze(journeys),
        actions=_freeze(actions),
        holdout=sections.holdout,
        arbitration=sections.arbitration,
        volume_guards=sections.volume_guards,
        candidates=_freeze(_candidate_indexes(actions, journeys, sections.channels)),
        inactive_journeys=_freeze(
            {
                j.id: f"journey `{j.id}` is {j.status}"
                for j in journeys.values()
                if j.status != "active"
            }
        ),
        journey_holdouts=_freeze(
            {
                j.id: (j.holdout_salt, j.holdout_buckets)
                for j in journeys.values()
                if j.holdout_buckets
            }
        ),
        has_timers=any(
            j.max_duration_ms is not None
            or any(st.first_timer_ms is not None for st in j.stages.values())
            for j in journeys.values()
        ),
        triggers_by_event=_by_event((t.event, t) for j in journeys.values() for t in j.triggers),
        transitions_by_event=_by_event(
            (tr.on, tr)
            for j in journeys.values()
            for st in j.stages.values()
            for tr in st.transitions
            if tr.on is not None
        ),
        exits_by_event=_by_event((ex.on, ex) for j in journeys.values() for ex in j.exits),
        profile_bindings=_bindings("profile", contracts.profile, needs.profile_attributes),
        context_bindings=_bindings("context", contracts.context, needs.context_fields),
        needs=needs,
        warnings=tuple(sorted(d for d in s.diags if d.severity == "warning")),
    )


def _actions(s: Session, drafts: list[ActionDraft]) -> dict[str, CompiledAction]:
    journey_priority = {j.id: j.priority for j in s.model.journeys}
    return {
        d.action.id: _action(d, order, s, journey_priority.get(d.action.journey or "", 0))
        for order, d in enumerate(drafts)
    }


def _action(d: ActionDraft, order: int, s: Session, journey_priority: int) -> CompiledAction:
    a = d.action
    payload = _thaw(a.payload)
    variants = tuple(
        CompiledVariant(id=v.id, weight=v.weight, payload={**payload, **_thaw(v.payload)})
        for v in a.variants
    )
    return CompiledAction(
        id=a.id,
        order=order,
        journey=a.journey or "",
        stages=frozenset(a.stages),
        always_on=a.always_on,
        channel=d.channel,
        channel_id=d.channel.id,
        transactional=d.channel.transactional,
        placements=frozenset(a.placements),
        eligibility=d.eligibility,
        priority=a.priority,
        journey_priority=journey_priority,
        value=d.value,
        value_expr=d.value_expr,
        caps=d.bindings,
        suppressions=d.suppressions,
        suppression_key="\x00".join(rule.id for rule in d.suppressions),
        variants=variants,
        variant_weights=tuple(v.weight for v in variants),
        payload=payload,
        valid_from_ms=d.valid_from,
        valid_until_ms=d.valid_until,
        tags=tuple(sorted(set(a.tags))),
        fallback=a.fallback,
        location=s.locator.locate(("actions", d.index)),
    )


def _thaw(value: Any) -> Any:
    """A private deep copy as plain dicts and lists (what a decision returns)."""
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_thaw(v) for v in value]
    return value


def _journeys(
    drafts: dict[str, JourneyDraft], actions: Mapping[str, CompiledAction]
) -> dict[str, CompiledJourney]:
    result: dict[str, CompiledJourney] = {}
    for jid, draft in drafts.items():
        stages = {}
        for sid, (transitions, stage_drafts) in draft.stages.items():
            afters = [t.after_ms for t in transitions if t.after_ms is not None]
            stages[sid] = CompiledStage(
                id=sid,
                transitions=transitions,
                actions=tuple(actions[d.action.id] for d in stage_drafts),
                first_timer_ms=min(afters) if afters else None,
            )
        journey = draft.journey
        result[jid] = CompiledJourney(
            id=journey.id,
            name=journey.name,
            owner=journey.owner,
            status=journey.status,
            priority=journey.priority,
            triggers=journey.triggers,
            reentry=journey.reentry,
            entry_stage=journey.entry_stage,
            stages=_freeze(stages),
            exits=journey.exits,
            max_duration_ms=journey.max_duration_ms,
            holdout_buckets=journey.holdout_buckets,
            holdout_salt=journey.holdout_salt,
            tags=journey.tags,
        )
    return result


def _candidate_indexes(
    actions: Mapping[str, CompiledAction],
    journeys: Mapping[str, CompiledJourney],
    channels: Mapping[str, CompiledChannel],
) -> dict[str, CandidateIndex]:
    """Per placement ("" = none, and every placement an action lists) its candidates on every channel."""
    purposes = channel_purposes(channels.values())
    placements = {""} | {pl for a in actions.values() for pl in a.placements}
    return {
        placement: candidate_index(actions.values(), journeys, placement, purposes)
        for placement in sorted(placements)
    }


def candidate_index(
    actions: Iterable[CompiledAction],
    journeys: Mapping[str, CompiledJourney],
    placement: str,
    purposes: tuple[tuple[str, ...], frozenset[str]],
) -> CandidateIndex:
    """The candidates among ``actions`` for ``placement`` (see :class:`CandidateIndex`)."""
    matching = [
        a for a in actions if (placement in a.placements if placement else not a.placements)
    ]
    always = tuple(a for a in matching if a.always_on or not a.journey)
    by_journey: list[tuple[str, Mapping[str, tuple[CompiledAction, ...]]]] = []
    for jid, journey in journeys.items():
        by_stage: dict[str, tuple[CompiledAction, ...]] = {}
        for stage in journey.stages:
            acts = tuple(
                a
                for a in matching
                if a.journey == jid and not a.always_on and (not a.stages or stage in a.stages)
            )
            if acts:
                by_stage[stage] = acts
        if by_stage:
            by_journey.append((jid, _freeze(by_stage)))
    return CandidateIndex(
        always=always,
        journeys=tuple(by_journey),
        purposes=purposes[0],
        transactional_purposes=purposes[1],
    )


def _by_event(pairs: Iterable[tuple[str, Any]]) -> Mapping[str, tuple[Any, ...]]:
    grouped: dict[str, list[Any]] = defaultdict(list)
    for event, item in pairs:
        grouped[event].append(item)
    return _freeze({k: tuple(v) for k, v in grouped.items()})


def _bindings(
    prefix: str, fields: Mapping[str, CompiledField], names: frozenset[str]
) -> tuple[tuple[str, str, Any, bool, Any], ...]:
    return tuple(
        (
            name,
            f"{prefix}.{name}",
            None if fields[name].convert is identity else fields[name].convert,
            fields[name].has_default,
            fields[name].default,
        )
        for name in sorted(names)
    )
