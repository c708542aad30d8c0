"""CEL timestamps and durations: parsing, formatting, arithmetic, accessors.

Semantics follow the CEL language definition (google/cel-spec ``doc/langdef.md``,
"Overflow", "Timezones" and the date/time functions of the standard
environment) and its conformance suite (``tests/simple/testdata/timestamps.textproto``):

- A timestamp is :class:`~policies.cel.values.Timestamp` (nanoseconds since the
  Unix epoch, UTC), valid from ``0001-01-01T00:00:00Z`` to
  ``9999-12-31T23:59:59.999999999Z``.
- A duration is :class:`~policies.cel.values.Duration` (nanoseconds). The spec
  limits it to a single int64 of nanoseconds (about ±292 years): this is why
  ``timestamp('9999-12-31T23:59:59Z') - timestamp('0001-01-01T00:00:00Z')`` is
  a range error although it fits ``google.protobuf.Duration``'s ±10,000 years.
- Every operation leaving either range raises :class:`EvalError` whose message
  contains ``"out of range"``.

All arithmetic is on Python ints: nanosecond precision is never lost and
nothing goes through ``float``. Calendar fields come from integer civil-date
arithmetic (proleptic Gregorian, like Go and Abseil), so local times that fall
in year 0 or 10000 after a zone offset (``timestamp('0001-01-01T00:00:00Z')
.getFullYear('-05:00')`` is ``0``) are handled without ``datetime`` overflow.

Time zones (accessor argument): ``"UTC"``, an IANA name (``"Europe/Paris"``,
``"US/Central"``) or a fixed offset ``[+-]hh:mm`` (sign optional, as the
conformance suite uses ``'02:00'``). Anything else is an ``EvalError``.
Resolved zones are kept in a bounded cache; IANA names are validated before
they reach :mod:`zoneinfo` (no absolute paths, no ``..``, no file names).

:data:`TIME_FUNCTIONS` declares every standard overload, with cel-go's
overload ids, for registration in an :class:`~policies.cel.env.Env`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final, TypeAlias
from zoneinfo import ZoneInfo

from .env import FunctionDecl, Overload
from .errors import EvalError
from .types import DURATION, INT, STRING, TIMESTAMP
from .values import INT64_MAX, INT64_MIN, Duration, Timestamp

__all__ = [
    "MAX_DURATION_NANOS",
    "MAX_TIMESTAMP_NANOS",
    "MIN_DURATION_NANOS",
    "MIN_TIMESTAMP_NANOS",
    "TIME_FUNCTIONS",
    "add_duration_duration",
    "add_duration_timestamp",
    "add_timestamp_duration",
    "duration_get_hours",
    "duration_get_milliseconds",
    "duration_get_minutes",
    "duration_get_seconds",
    "format_duration",
    "format_timestamp",
    "local_hour",
    "local_weekday",
    "make_duration",
    "make_timestamp",
    "negate_duration",
    "parse_duration",
    "parse_timestamp",
    "subtract_duration_duration",
    "subtract_timestamp_duration",
    "subtract_timestamp_timestamp",
    "timestamp_from_unix_seconds",
    "timestamp_get_date",
    "timestamp_get_day_of_month",
    "timestamp_get_day_of_week",
    "timestamp_get_day_of_year",
    "timestamp_get_full_year",
    "timestamp_get_hours",
    "timestamp_get_milliseconds",
    "timestamp_get_minutes",
    "timestamp_get_month",
    "timestamp_get_seconds",
    "timestamp_to_unix_seconds",
    "utc_offset_seconds",
]

# --------------------------------------------------------------------------- ranges

_NS: Final = 1_000_000_000
_SECONDS_PER_DAY: Final = 86_400

_MIN_TIMESTAMP_SECONDS: Final = -62_135_596_800  # 0001-01-01T00:00:00Z
_MAX_TIMESTAMP_SECONDS: Final = 253_402_300_799  # 9999-12-31T23:59:59Z
MIN_TIMESTAMP_NANOS: Final = _MIN_TIMESTAMP_SECONDS * _NS
MAX_TIMESTAMP_NANOS: Final = _MAX_TIMESTAMP_SECONDS * _NS + (_NS - 1)

# cel-spec "Overflow": "Duration values are limited to a single int64 value".
MIN_DURATION_NANOS: Final = INT64_MIN
MAX_DURATION_NANOS: Final = INT64_MAX

_TIMESTAMP_RANGE_ERROR: Final = "timestamp out of range"
_DURATION_RANGE_ERROR: Final = "duration out of range"


def make_timestamp(nanos: int) -> Timestamp:
    """A :class:`Timestamp` of ``nanos`` since the epoch; ``EvalError`` outside
    the valid range."""
    if nanos < MIN_TIMESTAMP_NANOS or nanos > MAX_TIMESTAMP_NANOS:
        raise EvalError(_TIMESTAMP_RANGE_ERROR)
    return Timestamp(nanos)


def make_duration(nanos: int) -> Duration:
    """A :class:`Duration` of ``nanos``; ``EvalError`` outside the int64 range."""
    if nanos < MIN_DURATION_NANOS or nanos > MAX_DURATION_NANOS:
        raise EvalError(_DURATION_RANGE_ERROR)
    return Duration(nanos)


# --------------------------------------------------------------- civil calendar
# Howard Hinnant's days_from_civil / civil_from_days: exact integer arithmetic
# on the proleptic Gregorian calendar, valid for any year (including 0 and
# 10000, which local times near the ends of the range can reach).


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


_DAYS_IN_MONTH: Final = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of the given proleptic Gregorian date."""
    y = year - 1 if month <= 2 else year
    era = y // 400
    yoe = y - era * 400
    mp = (month + 9) % 12  # March = 0
    doy = (153 * mp + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146_097 + doe - 719_468


@functools.lru_cache(maxsize=4096)  # hot paths ask about the same few days
def _civil_from_days(days: int) -> tuple[int, int, int, int]:
    """(year, month 1-12, day 1-31, day of year 0-365) of ``days`` since 1970-01-01."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)  # from March 1st
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    if mp < 10:
        month = mp + 3
        year = yoe + era * 400
        yday = doy + 59 + _is_leap(year)
    else:
        month = mp - 9
        year = yoe + era * 400 + 1
        yday = doy - 306
    return year, month, day, yday


# ------------------------------------------------------------------- timestamps

_TIMESTAMP_RE: Final = re.compile(
    r"(?P<year>\d{4,})-(?P<month>\d{2})-(?P<day>\d{2})"
    r"[Tt](?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2})"
    r"(?:\.(?P<frac>\d+))?"
    r"(?:[Zz]|(?P<sign>[+-])(?P<off_h>\d{2}):(?P<off_m>\d{2}))",
    re.ASCII,
)


def parse_timestamp(text: str) -> Timestamp:
    """Parse an RFC 3339 timestamp (``timestamp(string)``).

    Accepted: ``YYYY-MM-DDThh:mm:ss[.f{1,9}](Z|±hh:mm)`` (``T``/``Z`` in either
    case, as RFC 3339 allows). Calendar fields are validated (no February 30th,
    no leap second 60). The instant must lie in the timestamp range.
    """
    m = _TIMESTAMP_RE.fullmatch(text)
    if m is None:
        raise EvalError(f"invalid timestamp {text!r}: expected RFC 3339")
    year = int(m["year"])
    if len(m["year"]) > 4:
        if year > 9999:
            raise EvalError(f"{_TIMESTAMP_RANGE_ERROR}: {text!r}")
        raise EvalError(f"invalid timestamp {text!r}: expected a four-digit year")
    month, day = int(m["month"]), int(m["day"])
    hour, minute, second = int(m["hour"]), int(m["minute"]), int(m["second"])
    if not 1 <= month <= 12:
        raise EvalError(f"invalid timestamp {text!r}: month out of range")
    last_day = 29 if month == 2 and _is_leap(year) else _DAYS_IN_MONTH[month]
    if not 1 <= day <= last_day:
        raise EvalError(f"invalid timestamp {text!r}: day out of range")
    if hour > 23 or minute > 59 or second > 59:
        raise EvalError(f"invalid timestamp {text!r}: time of day out of range")
    frac = m["frac"]
    if frac is None:
        nanos = 0
    elif len(frac) > 9:
        raise EvalError(f"invalid timestamp {text!r}: more than 9 fractional digits")
    else:
        nanos = int(frac.ljust(9, "0"))
    offset = 0
    if m["sign"] is not None:
        off_h, off_m = int(m["off_h"]), int(m["off_m"])
        if off_h > 23 or off_m > 59:
            raise EvalError(f"invalid timestamp {text!r}: offset out of range")
        offset = off_h * 3600 + off_m * 60
        if m["sign"] == "-":
            offset = -offset
    seconds = (
        _days_from_civil(year, month, day) * _SECONDS_PER_DAY
        + hour * 3600
        + minute * 60
        + second
        - offset
    )
    total = seconds * _NS + nanos
    if total < MIN_TIMESTAMP_NANOS or total > MAX_TIMESTAMP_NANOS:
        raise EvalError(f"{_TIMESTAMP_RANGE_ERROR}: {text!r}")
    return Timestamp(total)


def _fraction(nanos: int) -> str:
    """Fractional seconds as protobuf's JSON mapping writes them: nothing, or
    3, 6 or 9 digits, whichever is the shortest exact form."""
    if nanos == 0:
        return ""
    if nanos % 1_000_000 == 0:
        return f".{nanos // 1_000_000:03d}"
    if nanos % 1_000 == 0:
        return f".{nanos // 1_000:06d}"
    return f".{nanos:09d}"


def format_timestamp(ts: Timestamp) -> str:
    """``string(timestamp)``: RFC 3339 in UTC with ``Z``, fractional seconds
    only when non-zero, as 3/6/9 digits (protobuf JSON, cel-cpp):
    ``2009-02-13T23:31:30Z``, ``1970-01-01T00:00:00.100Z``."""
    seconds, nanos = divmod(ts.nanos, _NS)
    days, rem = divmod(seconds, _SECONDS_PER_DAY)
    year, month, day, _ = _civil_from_days(days)
    hour, rem = divmod(rem, 3600)
    minute, second = divmod(rem, 60)
    return (
        f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{_fraction(nanos)}Z"
    )


def timestamp_from_unix_seconds(seconds: int) -> Timestamp:
    """``timestamp(int)``: seconds since the epoch; range-checked."""
    if seconds < _MIN_TIMESTAMP_SECONDS or seconds > _MAX_TIMESTAMP_SECONDS:
        raise EvalError(_TIMESTAMP_RANGE_ERROR)
    return Timestamp(seconds * _NS)


def timestamp_to_unix_seconds(ts: Timestamp) -> int:
    """``int(timestamp)``: whole seconds since the epoch, rounded toward the
    past like Go's ``Time.Unix`` (``1969-12-31T23:59:59.5Z`` -> ``-1``)."""
    return ts.nanos // _NS


# -------------------------------------------------------------------- durations

_DURATION_UNITS: Final[dict[str, int]] = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 MICRO SIGN
    "μs": 1_000,  # U+03BC GREEK SMALL LETTER MU
    "ms": 1_000_000,
    "s": _NS,
    "m": 60 * _NS,
    "h": 3600 * _NS,
}
# One component: digits with an optional fraction (at least one digit on one
# side of the point), then a unit. Longer units come first in the alternation.
_DURATION_COMPONENT: Final = r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)"
_DURATION_RE: Final = re.compile(rf"[+-]?(?:{_DURATION_COMPONENT})+", re.ASCII)
_DURATION_COMPONENT_RE: Final = re.compile(_DURATION_COMPONENT, re.ASCII)


def parse_duration(text: str) -> Duration:
    """Parse a duration string the way Go's ``time.ParseDuration`` does
    (``duration(string)``): an optional sign, then one or more decimal numbers
    with optional fraction, each followed by a unit among ``h``, ``m``, ``s``,
    ``ms``, ``us`` (``µs``), ``ns``; ``"0"`` needs no unit. Examples:
    ``"1h30m"``, ``"-1.5s"``, ``"1h34us"``, ``".5s"``. The sum is exact and
    truncated toward zero at the nanosecond (as cel-cpp); it must fit an int64
    of nanoseconds.
    """
    if _DURATION_RE.fullmatch(text) is None:
        if text in ("0", "+0", "-0"):
            return Duration(0)
        raise EvalError(f"invalid duration {text!r}")
    negative = text[0] == "-"
    # Sum exactly: whole nanoseconds, plus sub-nanosecond remainders kept as a
    # fraction over a common power of ten, so that "0.5ns0.5ns" is 1ns.
    total = 0
    remainder = 0  # numerator over 10**digits nanoseconds
    digits = 0
    try:
        for m in _DURATION_COMPONENT_RE.finditer(text):
            number, unit = m.group(1), m.group(2)
            scale = _DURATION_UNITS[unit]
            whole, _, frac = number.partition(".")
            total += int(whole or "0") * scale
            if frac:
                if len(frac) > digits:
                    remainder *= 10 ** (len(frac) - digits)
                    digits = len(frac)
                remainder += int(frac) * scale * 10 ** (digits - len(frac))
            if total > MAX_DURATION_NANOS + 1:  # stop early on absurd inputs
                raise EvalError(f"{_DURATION_RANGE_ERROR}: {text!r}")
    except ValueError:  # digit string longer than int() accepts
        raise EvalError(f"{_DURATION_RANGE_ERROR}: {text!r}") from None
    total += remainder // 10**digits  # truncated toward zero (the sum is >= 0)
    if negative:
        total = -total
    if total < MIN_DURATION_NANOS or total > MAX_DURATION_NANOS:
        raise EvalError(f"{_DURATION_RANGE_ERROR}: {text!r}")
    return Duration(total)


def format_duration(d: Duration) -> str:
    """``string(duration)``: seconds with an ``s`` suffix, fractional seconds
    only when non-zero, as 3/6/9 digits (protobuf JSON, cel-cpp):
    ``"3600s"``, ``"1.500s"``, ``"60.001s"``, ``"-0.000000001s"``."""
    sign = "-" if d.nanos < 0 else ""
    seconds, nanos = divmod(abs(d.nanos), _NS)
    return f"{sign}{seconds}{_fraction(nanos)}s"


def _trunc_div(a: int, b: int) -> int:
    """Integer division rounding toward zero (Go / C semantics), ``b > 0``."""
    q = abs(a) // b
    return -q if a < 0 else q


def duration_get_hours(d: Duration) -> int:
    """``duration.getHours()``: whole hours, truncated toward zero."""
    return _trunc_div(d.nanos, 3600 * _NS)


def duration_get_minutes(d: Duration) -> int:
    """``duration.getMinutes()``: whole minutes, truncated toward zero."""
    return _trunc_div(d.nanos, 60 * _NS)


def duration_get_seconds(d: Duration) -> int:
    """``duration.getSeconds()``: whole seconds, truncated toward zero."""
    return _trunc_div(d.nanos, _NS)


def duration_get_milliseconds(d: Duration) -> int:
    """``duration.getMilliseconds()``: the milliseconds *component* (not the
    total): ``duration('123.321456789s')`` -> ``321``; it carries the sign of
    the duration (``duration('-1.5s')`` -> ``-500``), as in cel-cpp and the
    conformance suite."""
    nanos_part = d.nanos - _trunc_div(d.nanos, _NS) * _NS
    return _trunc_div(nanos_part, 1_000_000)


# ------------------------------------------------------------------- arithmetic


def add_timestamp_duration(ts: Timestamp, d: Duration) -> Timestamp:
    return make_timestamp(ts.nanos + d.nanos)


def add_duration_timestamp(d: Duration, ts: Timestamp) -> Timestamp:
    return make_timestamp(ts.nanos + d.nanos)


def add_duration_duration(a: Duration, b: Duration) -> Duration:
    return make_duration(a.nanos + b.nanos)


def subtract_timestamp_timestamp(a: Timestamp, b: Timestamp) -> Duration:
    return make_duration(a.nanos - b.nanos)


def subtract_timestamp_duration(ts: Timestamp, d: Duration) -> Timestamp:
    return make_timestamp(ts.nanos - d.nanos)


def subtract_duration_duration(a: Duration, b: Duration) -> Duration:
    return make_duration(a.nanos - b.nanos)


def negate_duration(d: Duration) -> Duration:
    """``-d`` with a range check (the int64 minimum has no negation). Not a
    standard CEL overload; provided for host code."""
    return make_duration(-d.nanos)


# ------------------------------------------------------------------- time zones

_MAX_ZONE_NAME_LENGTH: Final = 64
# IANA names: components of letters, digits, '_', '-', '+' ("Etc/GMT+5",
# "America/Port-au-Prince"). No dots at all: rules out "..", "zone.tab", ...
_IANA_NAME_RE: Final = re.compile(r"[A-Za-z0-9_+\-]+(?:/[A-Za-z0-9_+\-]+)*", re.ASCII)
_FIXED_OFFSET_RE: Final = re.compile(r"([+-]?)(\d{1,2}):(\d{2})", re.ASCII)

_Zone: TypeAlias = int | ZoneInfo  # a fixed offset in seconds east of UTC, or an IANA zone


@functools.lru_cache(maxsize=512)
def _resolve_zone(name: str) -> _Zone | None:
    """The zone a CEL time-zone string denotes, or ``None`` when invalid.

    Bounded and thread-safe (``lru_cache``); invalid names are cached too, so a
    bad policy does not hit the file system on every evaluation.
    """
    if name == "UTC":
        return 0
    fixed = _FIXED_OFFSET_RE.fullmatch(name)
    if fixed is not None:
        hours, minutes = int(fixed.group(2)), int(fixed.group(3))
        if hours > 23 or minutes > 59:
            return None
        offset = hours * 3600 + minutes * 60
        return -offset if fixed.group(1) == "-" else offset
    if _IANA_NAME_RE.fullmatch(name) is None:
        return None
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError, OSError):  # ZoneInfoNotFoundError is a KeyError
        return None


def _zone(tz: str) -> _Zone:
    zone = _resolve_zone(tz) if len(tz) <= _MAX_ZONE_NAME_LENGTH else None
    if zone is None:
        raise EvalError(f"invalid time zone {tz[:_MAX_ZONE_NAME_LENGTH]!r}")
    return zone


def _timedelta_seconds(td: timedelta | None) -> int:
    if td is None:  # pragma: no cover - ZoneInfo always returns an offset
        return 0
    return td.days * _SECONDS_PER_DAY + td.seconds


# Local times within a day of the ends of the timestamp range may fall outside
# datetime's years 1-9999; the offset there is read two days further inside.
_ZONEINFO_MIN_SECONDS: Final = _MIN_TIMESTAMP_SECONDS + 2 * _SECONDS_PER_DAY
_ZONEINFO_MAX_SECONDS: Final = _MAX_TIMESTAMP_SECONDS - 2 * _SECONDS_PER_DAY


def _zoneinfo_offset_at(zone: ZoneInfo, seconds: int) -> int:
    if seconds < _ZONEINFO_MIN_SECONDS:
        seconds = _ZONEINFO_MIN_SECONDS
    elif seconds > _ZONEINFO_MAX_SECONDS:
        seconds = _ZONEINFO_MAX_SECONDS
    return _timedelta_seconds(datetime.fromtimestamp(seconds, zone).utcoffset())


@functools.lru_cache(maxsize=4096)
def _zoneinfo_minute_offset(zone: ZoneInfo, minute: int) -> int | None:
    """The zone's offset throughout UTC minute ``minute``, or ``None`` when it
    changes inside that minute (only historical LMT offsets do). Two
    transitions within one minute do not occur, so equal offsets at both ends
    mean a constant offset. Cached: hot paths ask about "now" in few zones."""
    first = _zoneinfo_offset_at(zone, minute * 60)
    if first != _zoneinfo_offset_at(zone, minute * 60 + 59):
        return None
    return first


def _zoneinfo_offset(zone: ZoneInfo, seconds: int) -> int:
    offset = _zoneinfo_minute_offset(zone, seconds // 60)
    if offset is None:
        return _zoneinfo_offset_at(zone, seconds)
    return offset


def _local_seconds(ts: Timestamp, tz: str | None) -> int:
    """Whole seconds since 1970-01-01T00:00:00 in local wall-clock time."""
    seconds = ts.nanos // _NS
    if tz is None or tz == "UTC":
        return seconds
    zone = _zone(tz)
    if isinstance(zone, int):
        return seconds + zone
    return seconds + _zoneinfo_offset(zone, seconds)


def utc_offset_seconds(ts: Timestamp, tz: str) -> int:
    """Offset of time zone ``tz`` from UTC at instant ``ts``, in seconds east."""
    return _local_seconds(ts, tz) - ts.nanos // _NS


# --------------------------------------------------------- timestamp accessors


def timestamp_get_full_year(ts: Timestamp, tz: str | None = None) -> int:
    """``getFullYear([tz])``: the year."""
    return _civil_from_days(_local_seconds(ts, tz) // _SECONDS_PER_DAY)[0]


def timestamp_get_month(ts: Timestamp, tz: str | None = None) -> int:
    """``getMonth([tz])``: the month, 0 = January."""
    return _civil_from_days(_local_seconds(ts, tz) // _SECONDS_PER_DAY)[1] - 1


def timestamp_get_day_of_year(ts: Timestamp, tz: str | None = None) -> int:
    """``getDayOfYear([tz])``: the day of the year, 0-based."""
    return _civil_from_days(_local_seconds(ts, tz) // _SECONDS_PER_DAY)[3]


def timestamp_get_day_of_month(ts: Timestamp, tz: str | None = None) -> int:
    """``getDayOfMonth([tz])``: the day of the month, 0-based."""
    return _civil_from_days(_local_seconds(ts, tz) // _SECONDS_PER_DAY)[2] - 1


def timestamp_get_date(ts: Timestamp, tz: str | None = None) -> int:
    """``getDate([tz])``: the day of the month, 1-based."""
    return _civil_from_days(_local_seconds(ts, tz) // _SECONDS_PER_DAY)[2]


def timestamp_get_day_of_week(ts: Timestamp, tz: str | None = None) -> int:
    """``getDayOfWeek([tz])``: 0 = Sunday ... 6 = Saturday."""
    return (_local_seconds(ts, tz) // _SECONDS_PER_DAY + 4) % 7  # 1970-01-01: Thursday


def timestamp_get_hours(ts: Timestamp, tz: str | None = None) -> int:
    """``getHours([tz])``: 0-23."""
    return _local_seconds(ts, tz) % _SECONDS_PER_DAY // 3600


def timestamp_get_minutes(ts: Timestamp, tz: str | None = None) -> int:
    """``getMinutes([tz])``: 0-59."""
    return _local_seconds(ts, tz) % 3600 // 60


def timestamp_get_seconds(ts: Timestamp, tz: str | None = None) -> int:
    """``getSeconds([tz])``: 0-59."""
    return _local_seconds(ts, tz) % 60


def timestamp_get_milliseconds(ts: Timestamp, tz: str | None = None) -> int:
    """``getMilliseconds([tz])``: 0-999. Zone offsets are whole seconds, so the
    zone only has to be valid."""
    if tz is not None and tz != "UTC":
        _zone(tz)
    return ts.nanos % _NS // 1_000_000


def local_hour(ts: Timestamp, tz: str) -> int:
    """Hour of day (0-23) of ``ts`` in time zone ``tz`` (same rules as
    ``getHours(tz)``); for the policy engine's "customer's local hour"."""
    return _local_seconds(ts, tz) % _SECONDS_PER_DAY // 3600


def local_weekday(ts: Timestamp, tz: str) -> int:
    """Day of week (0 = Sunday) of ``ts`` in time zone ``tz`` (same rules as
    ``getDayOfWeek(tz)``)."""
    return (_local_seconds(ts, tz) // _SECONDS_PER_DAY + 4) % 7


# ------------------------------------------------------------------ conversions


def _timestamp_identity(ts: Timestamp) -> Timestamp:
    return ts


def _duration_identity(d: Duration) -> Duration:
    return d


# ----------------------------------------------------------------- declarations


def _accessor(
    name: str,
    ts_id: str,
    ts_tz_id: str,
    impl: Callable[..., int],
    *,
    duration_id: str | None = None,
    duration_impl: Callable[[Duration], int] | None = None,
) -> FunctionDecl:
    overloads = [
        Overload(ts_id, (TIMESTAMP,), INT, impl, receiver=True),
        Overload(ts_tz_id, (TIMESTAMP, STRING), INT, impl, receiver=True),
    ]
    if duration_id is not None and duration_impl is not None:
        overloads.append(Overload(duration_id, (DURATION,), INT, duration_impl, receiver=True))
    return FunctionDecl(name, tuple(overloads))


TIME_FUNCTIONS: Final[tuple[FunctionDecl, ...]] = (
    FunctionDecl(
        "_+_",
        (
            Overload(
                "add_timestamp_duration", (TIMESTAMP, DURATION), TIMESTAMP, add_timestamp_duration
            ),
            Overload(
                "add_duration_timestamp", (DURATION, TIMESTAMP), TIMESTAMP, add_duration_timestamp
            ),
            Overload(
                "add_duration_duration", (DURATION, DURATION), DURATION, add_duration_duration
            ),
        ),
    ),
    FunctionDecl(
        "_-_",
        (
            Overload(
                "subtract_timestamp_timestamp",
                (TIMESTAMP, TIMESTAMP),
                DURATION,
                subtract_timestamp_timestamp,
            ),
            Overload(
                "subtract_timestamp_duration",
                (TIMESTAMP, DURATION),
                TIMESTAMP,
                subtract_timestamp_duration,
            ),
            Overload(
                "subtract_duration_duration",
                (DURATION, DURATION),
                DURATION,
                subtract_duration_duration,
            ),
        ),
    ),
    FunctionDecl(
        "timestamp",
        (
            Overload("timestamp_to_timestamp", (TIMESTAMP,), TIMESTAMP, _timestamp_identity),
            Overload("string_to_timestamp", (STRING,), TIMESTAMP, parse_timestamp),
            Overload("int64_to_timestamp", (INT,), TIMESTAMP, timestamp_from_unix_seconds),
        ),
        "Conversion to google.protobuf.Timestamp (RFC 3339 string or Unix seconds).",
    ),
    FunctionDecl(
        "duration",
        (
            Overload("duration_to_duration", (DURATION,), DURATION, _duration_identity),
            Overload("string_to_duration", (STRING,), DURATION, parse_duration),
        ),
        'Conversion to google.protobuf.Duration from a Go-style string ("1h30m", "-1.5s").',
    ),
    FunctionDecl(
        "int",
        (Overload("timestamp_to_int64", (TIMESTAMP,), INT, timestamp_to_unix_seconds),),
    ),
    FunctionDecl(
        "string",
        (
            Overload("timestamp_to_string", (TIMESTAMP,), STRING, format_timestamp),
            Overload("duration_to_string", (DURATION,), STRING, format_duration),
        ),
    ),
    _accessor(
        "getFullYear", "timestamp_to_year", "timestamp_to_year_with_tz", timestamp_get_full_year
    ),
    _accessor("getMonth", "timestamp_to_month", "timestamp_to_month_with_tz", timestamp_get_month),
    _accessor(
        "getDayOfYear",
        "timestamp_to_day_of_year",
        "timestamp_to_day_of_year_with_tz",
        timestamp_get_day_of_year,
    ),
    _accessor(
        "getDayOfMonth",
        "timestamp_to_day_of_month",
        "timestamp_to_day_of_month_with_tz",
        timestamp_get_day_of_month,
    ),
    _accessor(
        "getDate",
        "timestamp_to_day_of_month_1_based",
        "timestamp_to_day_of_month_1_based_with_tz",
        timestamp_get_date,
    ),
    _accessor(
        "getDayOfWeek",
        "timestamp_to_day_of_week",
        "timestamp_to_day_of_week_with_tz",
        timestamp_get_day_of_week,
    ),
    _accessor(
        "getHours",
        "timestamp_to_hours",
        "timestamp_to_hours_with_tz",
        timestamp_get_hours,
        duration_id="duration_to_hours",
        duration_impl=duration_get_hours,
    ),
    _accessor(
        "getMinutes",
        "timestamp_to_minutes",
        "timestamp_to_minutes_with_tz",
        timestamp_get_minutes,
        duration_id="duration_to_minutes",
        duration_impl=duration_get_minutes,
    ),
    _accessor(
        "getSeconds",
        "timestamp_to_seconds",
        "timestamp_to_seconds_tz",  # sic: cel-go's id has no "with"
        timestamp_get_seconds,
        duration_id="duration_to_seconds",
        duration_impl=duration_get_seconds,
    ),
    _accessor(
        "getMilliseconds",
        "timestamp_to_milliseconds",
        "timestamp_to_milliseconds_with_tz",
        timestamp_get_milliseconds,
        duration_id="duration_to_milliseconds",
        duration_impl=duration_get_milliseconds,
    ),
)
"""Every standard timestamp/duration overload, ids as in cel-go's
``common/overloads``. ``int`` and ``string`` only carry their timestamp and
duration overloads: ``Env.with_functions`` merges them with other overloads of
the same name. Comparisons are not declared here (the value classes order)."""
