"""Policy durations (``30m``, ``1h30m``) and instants (RFC 3339 or epoch ms): the one parser every layer shares."""

from __future__ import annotations

import re
from typing import Final

from .cel import timefns
from .cel.errors import CelError

__all__ = ["format_duration_ms", "parse_duration_ms", "parse_instant_ms"]

_UNITS: Final = {
    "ms": 1,
    "s": 1_000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
}
_TERM: Final = re.compile(r"([0-9]+)(ms|s|m|h|d|w)")


def parse_duration_ms(text: str) -> int:
    """A policy duration (``30m``, ``24h``, ``7d``, ``4w``, ``1h30m``) in ms; ``ValueError`` if invalid."""
    stripped = text.strip()
    if not stripped:
        raise ValueError("empty duration")
    pos = 0
    total = 0
    while pos < len(stripped):
        match = _TERM.match(stripped, pos)
        if match is None:
            raise ValueError(
                f"invalid duration `{text}`: use an integer and a unit ms, s, m, h, d or w "
                "(e.g. 30m, 24h, 7d, 1h30m)"
            )
        total += int(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    return total


def format_duration_ms(ms: int) -> str:
    """``ms`` in the largest unit that divides it exactly (``604800000`` -> ``1w``)."""
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNITS[unit]
        if ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def parse_instant_ms(text: str) -> int:
    """An instant written as epoch milliseconds or RFC 3339 (``2025-06-02T15:00:00Z``), in
    epoch ms (sub-millisecond digits truncated); ``ValueError`` if invalid."""
    stripped = text.strip()
    if stripped.lstrip("-").isdigit():
        return int(stripped)
    try:
        return timefns.parse_timestamp(stripped).nanos // 1_000_000
    except CelError as exc:
        raise ValueError(f"invalid time `{text}`: {exc}") from exc
