"""Compile consent and channels: purposes, regional defaults, do-not-contact, quiet hours, placements, payload contracts."""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from types import MappingProxyType
from typing import Final

from arbiter.policies import cel
from arbiter.policies.loader import ModelPath
from arbiter.policies.model import Channel
from arbiter.policies.plan import CompiledChannel, CompiledConsent, CompiledField, QuietWindow

from .contracts import compile_fields
from .session import Session

__all__ = ["check_channel_consent", "compile_channels", "compile_consent"]

_HHMM: Final = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")
_WEEKDAYS: Final = {"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

_Default = tuple[frozenset[str] | None, frozenset[str] | None, bool]


def compile_consent(
    s: Session, profile: Mapping[str, CompiledField], purposes: set[str]
) -> CompiledConsent:
    """The consent rules; the region and do-not-contact attributes must be declared, typed right."""
    c = s.model.consent
    for name, wanted, path in (
        (c.region_attribute, cel.STRING, ("consent", "region_attribute")),
        (c.do_not_contact, cel.BOOL, ("consent", "do_not_contact")),
    ):
        if name is None or not s.expect_known(name, profile, "profile attribute", path):
            continue
        if profile[name].type not in (wanted, cel.DYN):
            s.report(path, f"`{name}` must be declared {wanted} for this use")
    defaults = [_regional_default(s, i, frozenset(purposes)) for i in range(len(c.defaults))]
    return CompiledConsent(
        purposes=frozenset(purposes),
        region_attribute=c.region_attribute,
        defaults=tuple(defaults),
        unset_allows=c.unset == "allow",
        do_not_contact=c.do_not_contact,
    )


def _regional_default(s: Session, i: int, purposes: frozenset[str]) -> _Default:
    c = s.model.consent
    rule = c.defaults[i]
    path: ModelPath = ("consent", "defaults", i)
    for j, purpose in enumerate(rule.purposes):
        s.expect_known(purpose, purposes, "consent purpose", (*path, "purposes", j))
    if not rule.regions:
        s.report((*path, "regions"), 'a regional default needs regions (or "*")')
    if c.region_attribute is None and any(r != "*" for r in rule.regions):
        s.report((*path, "regions"), "regional defaults need `consent.region_attribute`")
    regions = None if "*" in rule.regions else frozenset(rule.regions)
    return (regions, frozenset(rule.purposes) or None, rule.unset == "allow")


def compile_channels(s: Session, purposes: set[str]) -> dict[str, CompiledChannel]:
    """Every channel (the first of a repeated id wins; the repeat is reported)."""
    s.check_unique([c.id for c in s.model.channels], ("channels",), "channel")
    result: dict[str, CompiledChannel] = {}
    for i, ch in enumerate(s.model.channels):
        path: ModelPath = ("channels", i)
        for j, purpose in enumerate(ch.purposes):
            s.expect_known(purpose, frozenset(purposes), "consent purpose", (*path, "purposes", j))
        windows = _quiet_windows(s, ch, path)
        if len(set(ch.placements)) != len(ch.placements):
            s.report((*path, "placements"), "duplicate placement")
        payload = None
        if ch.payload is not None:
            payload = MappingProxyType(compile_fields(s, ch.payload, (*path, "payload")))
        if ch.id not in result:
            result[ch.id] = CompiledChannel(
                id=ch.id,
                purposes=tuple(ch.purposes),
                transactional=ch.transactional,
                quiet_hours=windows,
                placements=frozenset(ch.placements),
                payload=payload,
            )
    return result


def _quiet_windows(s: Session, ch: Channel, path: ModelPath) -> tuple[QuietWindow, ...]:
    windows = []
    for j, q in enumerate(ch.quiet_hours):
        start = _hhmm(s, q.start, (*path, "quiet_hours", j, "start"))
        end = _hhmm(s, q.end, (*path, "quiet_hours", j, "end"))
        if start is None or end is None:
            continue
        if start == end and not q.days:
            # start == end is a whole day; on every day, the channel is never usable.
            s.report(
                (*path, "quiet_hours", j),
                "quiet hours start and end at the same time on every day: "
                "the channel is always quiet",
                "warning",
            )
        days = frozenset(_WEEKDAYS[d] for d in q.days)
        windows.append(QuietWindow(start_minute=start, end_minute=end, days=days))
    return tuple(windows)


def _hhmm(s: Session, text: str, path: ModelPath) -> int | None:
    match = _HHMM.match(text)
    if match is None:
        s.report(path, f"invalid time `{text}`: use HH:MM (00:00-23:59)")
        return None
    return int(match.group(1)) * 60 + int(match.group(2))


def check_channel_consent(s: Session, used: Collection[str]) -> None:
    """A non-transactional channel some action uses must require a consent purpose
    (an error), unless it opts out explicitly with ``purposes: []`` (a warning)."""
    for i, ch in enumerate(s.model.channels):
        if ch.transactional or ch.purposes or ch.id not in used:
            continue
        if s.locator.written(("channels", i, "purposes")):
            s.report(
                ("channels", i, "purposes"),
                f"channel `{ch.id}` is not transactional and requires no consent purpose "
                "(explicit `purposes: []`)",
                "warning",
            )
        else:
            s.report(
                ("channels", i, "id"),
                f"channel `{ch.id}` is not transactional and requires no consent purpose: "
                "add `purposes` (or `purposes: []` to opt out explicitly, or `transactional: true`)",
            )
