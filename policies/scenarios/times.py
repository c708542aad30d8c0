"""Times in scenario files: RFC 3339 instants and signed offsets from ``given.now`` (``-2h``, ``+30m``)."""

from __future__ import annotations

from arbiter.policies.times import parse_duration_ms, parse_instant_ms

from .model import TimeText

__all__ = ["parse_scenario_time", "time_problem"]


def time_problem(value: TimeText, *, relative: bool = True) -> str:
    """Why ``value`` is not a scenario time (``""`` when it is one), with a suggestion."""
    if isinstance(value, bool) or not isinstance(value, str):
        return (
            f"`{value}` is a number, not a time: write an offset from `given.now` "
            "(`+0s` is the scenario start, `-2h` two hours before) or an RFC 3339 instant "
            "(`2025-06-02T15:00:00Z`)"
        )
    text = value.strip()
    if text[:1] in "+-":
        if not relative:
            return f"`{value}`: `given.now` is an RFC 3339 instant (`2025-06-02T15:00:00Z`)"
        try:
            parse_duration_ms(text[1:])
        except ValueError as exc:
            return str(exc)
        return ""
    try:
        parse_duration_ms(text)
    except ValueError:
        pass
    else:
        return f"`{value}` is a duration, not a time; did you mean `+{text}`?"
    if text.lstrip("-").isdigit():
        return time_problem(int(text), relative=relative)
    try:
        parse_instant_ms(text)
    except ValueError:
        return (
            f"invalid time `{value}`: use RFC 3339 with a zone (`2025-06-02T15:00:00Z`) "
            "or an offset from `given.now` (`-2h`, `+30m`)"
        )
    return ""


def parse_scenario_time(value: TimeText, origin_ms: int) -> int:
    """Epoch ms of a scenario time; offsets count from ``origin_ms``. ``ValueError`` if invalid."""
    problem = time_problem(value)
    if problem:
        raise ValueError(problem)
    assert isinstance(value, str)
    text = value.strip()
    if text[:1] in "+-":
        sign = -1 if text[0] == "-" else 1
        return origin_ms + sign * parse_duration_ms(text[1:])
    return parse_instant_ms(text)
