"""What a compiled set reads from a customer snapshot, so a store reads nothing more."""

from __future__ import annotations

from collections.abc import Mapping

from arbiter.policies.plan import CompiledAction, CompiledField, CompiledJourney, Expression
from arbiter.policies.snapshot import SnapshotNeeds, SnapshotPart

from .session import EVENTS_CALL, Session

__all__ = ["snapshot_needs"]


def snapshot_needs(
    s: Session,
    profile: Mapping[str, CompiledField],
    context: Mapping[str, CompiledField],
    actions: Mapping[str, CompiledAction],
    journeys: Mapping[str, CompiledJourney],
) -> SnapshotNeeds:
    """The parts, attributes, context fields, event types, purposes and cap keys the set reads."""
    refs: set[str] = set()
    for e in s.programs:
        refs |= e.program.references
    model = s.model
    attributes = {r.split(".", 2)[1] for r in refs if r.startswith("profile.")}
    if "profile" in refs:
        attributes |= set(profile)
    for extra in (
        model.consent.region_attribute,
        model.consent.do_not_contact,
        model.policy_set.timezone.attribute,
    ):
        if extra is not None:
            attributes.add(extra)
    attributes &= set(profile)
    fields = {r.split(".", 2)[1] for r in refs if r.startswith("context.")}
    if "context" in refs:
        fields |= set(context)
    if model.policy_set.timezone.context is not None:
        fields.add(model.policy_set.timezone.context)
    fields &= set(context)
    purposes = {p for a in actions.values() for p in a.channel.purposes}
    cap_keys = {b.key for a in actions.values() for b in a.caps}
    parts: set[SnapshotPart] = set()
    if attributes:
        parts.add("profile")
    if purposes:
        parts.add("consent")
    if "events" in refs:
        parts.add("events")
    if "segments" in refs:
        parts.add("segments")
    if journeys or "journeys" in refs:
        parts.add("journeys")
    if cap_keys:
        parts.add("caps")
    return SnapshotNeeds(
        parts=frozenset(parts),
        profile_attributes=frozenset(attributes),
        context_fields=frozenset(fields),
        event_types=_event_types(s.programs) if "events" in refs else frozenset(),
        consent_purposes=frozenset(purposes),
        cap_keys=frozenset(cap_keys),
    )


def _event_types(programs: list[Expression]) -> frozenset[str] | None:
    """The event types expressions name; ``None`` (read every counter) when one is not a literal."""
    names: set[str] = set()
    for e in programs:
        if "events" not in e.program.references:
            continue
        if not EVENTS_CALL.search(e.text):
            return None
        for match in EVENTS_CALL.finditer(e.text):
            name = match.group(1) if match.group(1) is not None else match.group(2)
            if name is None:
                return None
            names.add(name)
    return frozenset(names)
