"""Tests of CEL timestamps and durations (policies/cel/timefns.py).

Expected values come from the CEL language definition (google/cel-spec
doc/langdef.md), the public conformance suite
(tests/simple/testdata/timestamps.textproto — section/name noted on each
case) and cel-cpp (the ``cel-expr-python`` dev dependency), which this module
was checked against on random timestamps, zones and durations.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from arbiter.policies.cel import timefns as tf
from arbiter.policies.cel.env import FunctionDecl, Overload
from arbiter.policies.cel.errors import EvalError
from arbiter.policies.cel.types import DURATION, INT, STRING, TIMESTAMP, Type
from arbiter.policies.cel.values import INT64_MAX, INT64_MIN, Duration, Timestamp

NS = 1_000_000_000
MIN_TS = "0001-01-01T00:00:00Z"
MAX_TS = "9999-12-31T23:59:59.999999999Z"


def ts(text: str) -> Timestamp:
    return tf.parse_timestamp(text)


def dur(text: str) -> Duration:
    return tf.parse_duration(text)


# --------------------------------------------------------------- timestamp parsing


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("1970-01-01T00:00:00Z", 0),
        ("2009-02-13T23:31:30Z", 1_234_567_890 * NS),
        ("2009-02-13T23:31:30.123456789Z", 1_234_567_890 * NS + 123_456_789),
        ("2009-02-13T23:31:30.1Z", 1_234_567_890 * NS + 100_000_000),
        ("2009-02-13T23:31:30.000000001Z", 1_234_567_890 * NS + 1),
        ("1969-12-31T23:59:59.999999999Z", -1),
        ("2004-09-16T23:59:59Z", 1_095_379_199 * NS),  # conversions/int/timestamp
        ("1972-01-01T10:00:20.021-05:00", 63_126_020 * NS + 21_000_000),  # langdef example
        ("2009-02-14T01:01:30+01:30", 1_234_567_890 * NS),
        ("2009-02-13T23:31:30+00:00", 1_234_567_890 * NS),
        ("2009-02-13T23:31:30-00:00", 1_234_567_890 * NS),
        ("2009-02-13t23:31:30z", 1_234_567_890 * NS),  # RFC 3339 5.6: any case
        ("2000-02-29T00:00:00Z", 951_782_400 * NS),
        (MIN_TS, tf.MIN_TIMESTAMP_NANOS),
        (MAX_TS, tf.MAX_TIMESTAMP_NANOS),
        # Local year 0, but the instant is the first valid one.
        ("0000-12-31T23:00:00-01:00", tf.MIN_TIMESTAMP_NANOS),
    ],
)
def test_parse_timestamp(text: str, nanos: int) -> None:
    assert ts(text) == Timestamp(nanos)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "2009-02-13",
        "2009-02-13T23:31:30",  # no zone
        "2009-02-13 23:31:30Z",  # space separator
        "2009-02-13T23:31Z",
        "2009-2-13T23:31:30Z",
        "2009-02-13T23:31:30.Z",
        "2009-02-13T23:31:30.1234567891Z",  # more than 9 fractional digits
        "2009-02-13T23:31:30+0100",  # offset without colon
        "2009-02-13T23:31:30+01",
        "2009-02-13T23:31:30+24:00",
        "2009-02-13T23:31:30+01:60",
        "2009-02-13T24:00:00Z",
        "2009-02-13T23:60:00Z",
        "2009-02-13T23:31:60Z",  # leap seconds are not representable
        "2009-00-13T23:31:30Z",
        "2009-13-13T23:31:30Z",
        "2009-02-00T23:31:30Z",
        "2009-02-29T23:31:30Z",  # not a leap year
        "1900-02-29T00:00:00Z",  # not a leap year either
        "2009-04-31T00:00:00Z",
        " 2009-02-13T23:31:30Z",
        "2009-02-13T23:31:30Z ",
        "２００９-02-13T23:31:30Z",  # non-ASCII digits
        "02009-02-13T23:31:30Z",
    ],
)
def test_parse_timestamp_rejects(text: str) -> None:
    with pytest.raises(EvalError, match="invalid timestamp"):
        ts(text)


@pytest.mark.parametrize(
    "text",
    [
        "0000-01-01T00:00:00Z",  # timestamp_range/from_string_under
        "10000-01-01T00:00:00Z",  # timestamp_range/from_string_over
        "0000-12-31T23:59:59.999999999Z",
        "0001-01-01T00:00:00+00:01",
        "9999-12-31T23:59:59.999999999-00:01",
        "9999-12-31T23:59:59-23:59",
        "99999-01-01T00:00:00Z",
    ],
)
def test_parse_timestamp_out_of_range(text: str) -> None:
    with pytest.raises(EvalError, match="range"):
        ts(text)


# ------------------------------------------------------------ timestamp formatting


@pytest.mark.parametrize(
    ("text", "formatted"),
    [
        ("2009-02-13T23:31:30Z", "2009-02-13T23:31:30Z"),  # toString_timestamp
        (MAX_TS, MAX_TS),  # toString_timestamp_nanos
        (MIN_TS, MIN_TS),
        ("1970-01-01T00:00:00.123Z", "1970-01-01T00:00:00.123Z"),
        ("1970-01-01T00:00:00.1Z", "1970-01-01T00:00:00.100Z"),
        ("1970-01-01T00:00:00.1234Z", "1970-01-01T00:00:00.123400Z"),
        ("1970-01-01T00:00:00.000001Z", "1970-01-01T00:00:00.000001Z"),
        ("1970-01-01T00:00:00.0000001Z", "1970-01-01T00:00:00.000000100Z"),
        ("1970-01-01T00:00:00.000000000Z", "1970-01-01T00:00:00Z"),
        ("1969-12-31T23:59:59.5Z", "1969-12-31T23:59:59.500Z"),
        ("1972-01-01T10:00:20.021-05:00", "1972-01-01T15:00:20.021Z"),
        ("2000-02-29T12:00:00+14:00", "2000-02-28T22:00:00Z"),
        ("0099-03-01T00:00:00Z", "0099-03-01T00:00:00Z"),
    ],
)
def test_format_timestamp(text: str, formatted: str) -> None:
    assert tf.format_timestamp(ts(text)) == formatted


def test_timestamp_round_trip_random_nanos() -> None:
    rng = random.Random(20240310)
    for _ in range(2000):
        nanos = rng.randint(tf.MIN_TIMESTAMP_NANOS, tf.MAX_TIMESTAMP_NANOS)
        nanos -= nanos % rng.choice([1, 1_000, 1_000_000, NS])
        value = Timestamp(max(nanos, tf.MIN_TIMESTAMP_NANOS))
        text = tf.format_timestamp(value)
        assert tf.parse_timestamp(text) == value, text


def test_format_timestamp_agrees_with_datetime() -> None:
    rng = random.Random(7)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for _ in range(500):
        seconds = rng.randint(-62_135_596_800, 253_402_300_799)
        d = epoch + timedelta(seconds=seconds)
        expected = (
            f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}Z"
        )
        assert tf.format_timestamp(Timestamp(seconds * NS)) == expected


# --------------------------------------------------------- timestamp conversions


def test_int_of_timestamp_is_unix_seconds_rounded_down() -> None:
    assert tf.timestamp_to_unix_seconds(ts("2009-02-13T23:31:30Z")) == 1_234_567_890
    assert tf.timestamp_to_unix_seconds(ts("2004-09-16T23:59:59Z")) == 1_095_379_199
    assert tf.timestamp_to_unix_seconds(ts("2009-02-13T23:31:30.999Z")) == 1_234_567_890
    assert tf.timestamp_to_unix_seconds(ts("1969-12-31T23:59:59.5Z")) == -1
    assert tf.timestamp_to_unix_seconds(ts(MIN_TS)) == -62_135_596_800


def test_timestamp_from_unix_seconds() -> None:
    assert tf.timestamp_from_unix_seconds(0) == Timestamp(0)  # comparisons: timestamp(0)
    assert tf.format_timestamp(tf.timestamp_from_unix_seconds(1_234_567_890)) == (
        "2009-02-13T23:31:30Z"
    )
    assert tf.timestamp_from_unix_seconds(-62_135_596_800) == ts(MIN_TS)
    assert tf.timestamp_from_unix_seconds(253_402_300_799) == ts("9999-12-31T23:59:59Z")
    for bad in (-62_135_596_801, 253_402_300_800, INT64_MAX, INT64_MIN):
        with pytest.raises(EvalError, match="range"):
            tf.timestamp_from_unix_seconds(bad)


# --------------------------------------------------------------- duration parsing


@pytest.mark.parametrize(
    ("text", "nanos"),
    [
        ("0", 0),
        ("-0", 0),
        ("+0", 0),
        ("0s", 0),  # comparisons: duration('0s')
        ("1000000s", 1_000_000 * NS),
        ("1h30m", 5400 * NS),
        ("-1.5s", -1_500_000_000),
        ("-1.5h", -5400 * NS),  # langdef: minus 90 minutes
        ("1h34us", 3600 * NS + 34_000),  # langdef: compound
        ("-23.4s", -23_400_000_000),
        ("1m1ms", 60_001_000_000),
        ("1ns", 1),
        ("1us", 1_000),
        ("1µs", 1_000),  # U+00B5 micro sign
        ("1μs", 1_000),  # U+03BC greek mu
        ("1ms", 1_000_000),
        ("1m", 60 * NS),
        ("1h", 3600 * NS),
        ("+5s", 5 * NS),
        (".5s", 500_000_000),
        ("1.s", NS),
        ("1.0s", NS),
        ("1h1h", 7200 * NS),  # repeated units add up (Go)
        ("1s1m", 61 * NS),  # any order (Go)
        ("0.5ns0.5ns", 1),  # fractions sum exactly
        ("1.9999999999ns", 1),  # truncated below the nanosecond
        ("-1.9999999999ns", -1),  # ... toward zero
        ("0.000000001s", 1),
        ("0.1234567891s", 123_456_789),
        ("2.5h", 9000 * NS),
        ("9223372036854775807ns", INT64_MAX),
        ("-9223372036854775808ns", INT64_MIN),
        ("2562047h47m16.854775807s", INT64_MAX),
        ("-2562047h47m16.854775808s", INT64_MIN),
        ("999999999ns", 999_999_999),  # timestamp_arithmetic cases
        ("-999999999ns", -999_999_999),
    ],
)
def test_parse_duration(text: str, nanos: int) -> None:
    assert dur(text) == Duration(nanos)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "-",
        "+",
        "1",  # only "0" may omit the unit
        "00",
        "-1",
        "s",
        ".s",
        "..5s",
        "1..5s",
        "1.5.s",
        "1d",  # days are not supported
        "1w",
        "1S",
        "1H",
        "1 s",
        " 1s",
        "1s ",
        "1e3s",
        "1_000s",
        "--1s",
        "+-1s",
        "1h-30m",
        "1mss",
        "1sec",
        "١s",  # Arabic-Indic digit one
        "0x10s",
        "inf",
        "nan",
    ],
)
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(EvalError, match="invalid duration"):
        dur(text)


@pytest.mark.parametrize(
    "text",
    [
        "320000000000s",  # duration_range/from_string_over
        "-320000000000s",  # duration_range/from_string_under
        "200000000000s",  # operand of duration_range/add_over: > int64 nanoseconds
        "-200000000000s",
        "9223372036854775808ns",
        "-9223372036854775809ns",
        "2562048h",
        "2562047h47m16.854775808s",
        "99999999999999999999999999999h",
        "1" + "0" * 5000 + "s",  # longer than int() accepts
    ],
)
def test_parse_duration_out_of_range(text: str) -> None:
    with pytest.raises(EvalError, match="range"):
        dur(text)


# ------------------------------------------------------------ duration formatting


@pytest.mark.parametrize(
    ("nanos", "formatted"),
    [
        (0, "0s"),
        (1_000_000 * NS, "1000000s"),  # duration_conversions/toString_duration
        (60_001_000_000, "60.001s"),  # langdef: string(duration('1m1ms'))
        (1_500_000_000, "1.500s"),
        (-1_500_000_000, "-1.500s"),
        (-5400 * NS, "-5400s"),
        (1, "0.000000001s"),
        (-1, "-0.000000001s"),
        (1_000, "0.000001s"),
        (1_100, "0.000001100s"),
        (123_456_789, "0.123456789s"),
        (INT64_MAX, "9223372036.854775807s"),
        (INT64_MIN, "-9223372036.854775808s"),
    ],
)
def test_format_duration(nanos: int, formatted: str) -> None:
    assert tf.format_duration(Duration(nanos)) == formatted
    assert dur(formatted) == Duration(nanos)


def test_duration_round_trip_random() -> None:
    rng = random.Random(11)
    for _ in range(2000):
        nanos = rng.choice(
            [
                rng.randint(INT64_MIN, INT64_MAX),
                rng.randint(-(10**12), 10**12),
                rng.randint(-NS, NS),
            ]
        )
        value = Duration(nanos)
        assert dur(tf.format_duration(value)) == value


# -------------------------------------------------------------------- arithmetic


@pytest.mark.parametrize(
    ("op", "left", "right", "expected"),
    [
        # timestamps.textproto, section timestamp_arithmetic
        (
            tf.add_timestamp_duration,
            ts("2009-02-13T23:00:00Z"),
            dur("240s"),
            ts("2009-02-13T23:04:00Z"),
        ),
        (
            tf.add_duration_timestamp,
            dur("120s"),
            ts("2009-02-13T23:01:00Z"),
            ts("2009-02-13T23:03:00Z"),
        ),
        (tf.add_duration_duration, dur("600s"), dur("50s"), dur("650s")),
        (
            tf.add_timestamp_duration,
            ts("0001-01-01T00:00:01.000000001Z"),
            dur("-999999999ns"),
            ts("0001-01-01T00:00:00.000000002Z"),
        ),
        (
            tf.add_timestamp_duration,
            ts("0001-01-01T00:00:01.999999999Z"),
            dur("999999999ns"),
            ts("0001-01-01T00:00:02.999999998Z"),
        ),
        (
            tf.subtract_timestamp_duration,
            ts("2009-02-13T23:10:00Z"),
            dur("600s"),
            ts("2009-02-13T23:00:00Z"),
        ),
        (
            tf.subtract_timestamp_timestamp,
            ts("2009-02-13T23:31:00Z"),
            ts("2009-02-13T23:29:00Z"),
            dur("120s"),
        ),
        (tf.subtract_duration_duration, dur("900s"), dur("42s"), dur("858s")),
        # langdef examples
        (tf.add_duration_duration, dur("1m"), dur("1s"), dur("1m1s")),
        (
            tf.add_timestamp_duration,
            ts("2023-01-01T00:00:00Z"),
            dur("24h"),
            ts("2023-01-02T00:00:00Z"),
        ),
        (tf.subtract_duration_duration, dur("1m"), dur("1s"), dur("59s")),
        (
            tf.subtract_timestamp_timestamp,
            ts("2023-01-10T12:00:00Z"),
            ts("2023-01-10T00:00:00Z"),
            dur("12h"),
        ),
        # edges
        (tf.add_timestamp_duration, ts("9999-12-31T23:59:59Z"), dur("999999999ns"), ts(MAX_TS)),
        (
            tf.subtract_timestamp_duration,
            ts(MIN_TS),
            dur("-1ns"),
            ts("0001-01-01T00:00:00.000000001Z"),
        ),
        (tf.subtract_timestamp_timestamp, ts(MIN_TS), ts(MIN_TS), dur("0")),
        (
            tf.add_duration_duration,
            dur("-9223372036854775808ns"),
            dur("9223372036854775807ns"),
            dur("-1ns"),
        ),
    ],
)
def test_arithmetic(
    op: Callable[..., object], left: object, right: object, expected: object
) -> None:
    assert op(left, right) == expected


@pytest.mark.parametrize(
    ("op", "left", "right"),
    [
        # timestamps.textproto, section timestamp_range
        (tf.add_timestamp_duration, ts(MIN_TS), dur("-1s")),
        (tf.add_timestamp_duration, ts("9999-12-31T23:59:59Z"), dur("1s")),
        (tf.add_timestamp_duration, ts(MAX_TS), dur("1ns")),
        (tf.add_timestamp_duration, ts(MIN_TS), dur("-1ns")),
        (tf.subtract_timestamp_timestamp, ts("9999-12-31T23:59:59Z"), ts(MIN_TS)),
        (tf.subtract_timestamp_timestamp, ts(MIN_TS), ts("9999-12-31T23:59:59Z")),
        # section duration_range, scaled to CEL's int64 range (its operands,
        # 200000000000s, are out of range already: see test_parse_duration_out_of_range)
        (tf.add_duration_duration, dur("-5000000000s"), dur("-5000000000s")),
        (tf.add_duration_duration, dur("5000000000s"), dur("5000000000s")),
        (tf.subtract_duration_duration, dur("-5000000000s"), dur("5000000000s")),
        (tf.subtract_duration_duration, dur("5000000000s"), dur("-5000000000s")),
        # more edges
        (tf.add_duration_timestamp, dur("1ns"), ts(MAX_TS)),
        (tf.subtract_timestamp_duration, ts(MIN_TS), dur("1ns")),
        (tf.subtract_timestamp_duration, ts(MAX_TS), dur("-1ns")),
        (tf.add_duration_duration, dur("9223372036854775807ns"), dur("1ns")),
        (tf.subtract_duration_duration, dur("-9223372036854775808ns"), dur("1ns")),
        (
            tf.subtract_timestamp_timestamp,
            ts("2262-04-11T23:47:16.854775808Z"),
            ts("1970-01-01T00:00:00Z"),
        ),
    ],
)
def test_arithmetic_out_of_range(op: Callable[..., object], left: object, right: object) -> None:
    with pytest.raises(EvalError, match="out of range"):
        op(left, right)


def test_largest_representable_difference() -> None:
    later = ts("2262-04-11T23:47:16.854775807Z")
    assert tf.subtract_timestamp_timestamp(later, Timestamp(0)) == Duration(INT64_MAX)


def test_negate_duration() -> None:
    assert tf.negate_duration(dur("1.5s")) == dur("-1.5s")
    assert tf.negate_duration(Duration(INT64_MAX)) == Duration(-INT64_MAX)
    with pytest.raises(EvalError, match="range"):
        tf.negate_duration(Duration(INT64_MIN))


def test_make_checks_ranges() -> None:
    assert tf.make_timestamp(tf.MAX_TIMESTAMP_NANOS) == ts(MAX_TS)
    assert tf.make_duration(INT64_MIN) == Duration(INT64_MIN)
    with pytest.raises(EvalError, match="range"):
        tf.make_timestamp(tf.MIN_TIMESTAMP_NANOS - 1)
    with pytest.raises(EvalError, match="range"):
        tf.make_duration(INT64_MAX + 1)


# ---------------------------------------------------------- timestamp accessors

ACCESSORS: dict[str, Callable[..., int]] = {
    "getFullYear": tf.timestamp_get_full_year,
    "getMonth": tf.timestamp_get_month,
    "getDayOfYear": tf.timestamp_get_day_of_year,
    "getDayOfMonth": tf.timestamp_get_day_of_month,
    "getDate": tf.timestamp_get_date,
    "getDayOfWeek": tf.timestamp_get_day_of_week,
    "getHours": tf.timestamp_get_hours,
    "getMinutes": tf.timestamp_get_minutes,
    "getSeconds": tf.timestamp_get_seconds,
    "getMilliseconds": tf.timestamp_get_milliseconds,
}


@pytest.mark.parametrize(
    ("text", "name", "expected"),
    [
        # timestamps.textproto, section timestamp_selectors (Fri 2009-02-13 23:31:30 UTC)
        ("2009-02-13T23:31:30Z", "getDate", 13),
        ("2009-02-13T23:31:30Z", "getDayOfMonth", 12),
        ("2009-02-13T23:31:30Z", "getDayOfWeek", 5),
        ("2009-02-13T23:31:30Z", "getDayOfYear", 43),
        ("2009-02-13T23:31:30Z", "getFullYear", 2009),
        ("2009-02-13T23:31:30Z", "getHours", 23),
        ("2009-02-13T23:31:20.123456789Z", "getMilliseconds", 123),
        ("2009-02-13T23:31:30Z", "getMinutes", 31),
        ("2009-02-13T23:31:30Z", "getMonth", 1),
        ("2009-02-13T23:31:30Z", "getSeconds", 30),
        # langdef examples
        ("2023-12-25T00:00:00Z", "getDate", 25),
        ("2023-12-25T00:00:00Z", "getDayOfMonth", 24),
        ("2023-12-25T12:00:00Z", "getDayOfWeek", 1),
        ("2023-12-25T12:00:00Z", "getDayOfYear", 358),
        ("2023-12-25T12:00:00Z", "getFullYear", 2023),
        ("2023-12-25T12:00:00.500Z", "getMilliseconds", 500),
        ("2023-12-25T12:30:00Z", "getMinutes", 30),
        ("2023-12-25T12:00:00Z", "getMonth", 11),
        ("2023-12-25T12:30:30Z", "getSeconds", 30),
        # before the epoch: fields count forward within the second
        ("1969-12-31T23:59:59.5Z", "getFullYear", 1969),
        ("1969-12-31T23:59:59.5Z", "getDayOfYear", 364),
        ("1969-12-31T23:59:59.5Z", "getDayOfWeek", 3),
        ("1969-12-31T23:59:59.5Z", "getHours", 23),
        ("1969-12-31T23:59:59.5Z", "getSeconds", 59),
        ("1969-12-31T23:59:59.5Z", "getMilliseconds", 500),
        # leap years and the ends of the range
        ("2024-12-31T00:00:00Z", "getDayOfYear", 365),
        ("2023-12-31T00:00:00Z", "getDayOfYear", 364),
        ("2024-03-01T00:00:00Z", "getDayOfYear", 60),
        ("2024-02-29T00:00:00Z", "getDayOfMonth", 28),
        ("2000-12-31T00:00:00Z", "getDayOfYear", 365),
        (MIN_TS, "getFullYear", 1),
        (MIN_TS, "getDayOfWeek", 1),  # 0001-01-01 was a Monday (proleptic)
        (MAX_TS, "getFullYear", 9999),
        (MAX_TS, "getMonth", 11),
        (MAX_TS, "getDate", 31),
        (MAX_TS, "getDayOfYear", 364),
        (MAX_TS, "getDayOfWeek", 5),
        (MAX_TS, "getHours", 23),
        (MAX_TS, "getMinutes", 59),
        (MAX_TS, "getSeconds", 59),
        (MAX_TS, "getMilliseconds", 999),
    ],
)
def test_accessors_utc(text: str, name: str, expected: int) -> None:
    accessor = ACCESSORS[name]
    assert accessor(ts(text)) == expected
    assert accessor(ts(text), "UTC") == expected
    assert accessor(ts(text), "+00:00") == expected
    assert accessor(ts(text), "Etc/UTC") == expected


@pytest.mark.parametrize(
    ("text", "name", "tz", "expected"),
    [
        # timestamps.textproto, section timestamp_selectors_tz
        ("2009-02-13T23:31:30Z", "getDate", "Australia/Sydney", 14),
        ("2009-02-13T23:31:30Z", "getDayOfMonth", "US/Central", 12),
        ("2009-02-13T23:31:30Z", "getDayOfMonth", "+11:00", 13),
        ("2009-02-13T02:00:00Z", "getDayOfMonth", "-02:30", 11),
        ("2009-02-13T02:00:00Z", "getDayOfMonth", "-2:30", 11),  # older suite spelling
        ("2009-02-13T02:00:00Z", "getDayOfMonth", "America/St_Johns", 11),
        ("2009-02-13T23:31:30Z", "getDayOfWeek", "UTC", 5),
        ("2009-02-13T23:31:30Z", "getDayOfYear", "US/Central", 43),
        ("2009-02-13T23:31:30Z", "getFullYear", "-09:30", 2009),
        ("2009-02-13T23:31:30Z", "getHours", "02:00", 1),
        ("2009-02-13T23:31:30Z", "getMinutes", "Asia/Kathmandu", 16),
        ("2009-02-13T23:31:30Z", "getMonth", "UTC", 1),
        ("2009-02-13T23:31:30Z", "getSeconds", "-00:00", 30),
        # langdef examples
        ("2023-12-25T00:00:00Z", "getDate", "America/Los_Angeles", 24),
        ("2023-12-25T00:00:00Z", "getDayOfMonth", "America/Los_Angeles", 23),
        # fixed offsets
        ("2009-02-13T23:31:30Z", "getHours", "+05:30", 5),
        ("2009-02-13T23:31:30Z", "getMinutes", "+05:30", 1),
        ("2009-02-13T23:31:30Z", "getDayOfWeek", "+05:30", 6),
        ("2009-02-13T23:31:30Z", "getDayOfYear", "+05:30", 44),
        ("2009-02-13T23:31:30Z", "getHours", "-08:00", 15),
        ("2009-02-13T23:31:30Z", "getHours", "-00:30", 23),
        ("2009-02-13T23:31:30Z", "getMinutes", "-00:30", 1),
        ("2009-12-31T23:31:30Z", "getFullYear", "+01:00", 2010),
        ("2009-12-31T23:31:30Z", "getMonth", "+01:00", 0),
        ("2010-01-01T00:31:30Z", "getFullYear", "-01:00", 2009),
        ("2010-01-01T00:31:30Z", "getDayOfYear", "-01:00", 364),
        ("2009-02-13T23:31:30.987Z", "getMilliseconds", "+05:45", 987),
        ("2009-02-13T23:31:30.987Z", "getMilliseconds", "Asia/Kathmandu", 987),
        ("2009-02-13T23:31:30Z", "getHours", "+23:59", 23),
        ("2009-02-13T23:31:30Z", "getHours", "-23:59", 23),
        # local times beyond the ends of the range (cel-cpp agrees)
        (MIN_TS, "getFullYear", "-05:00", 0),
        (MIN_TS, "getMonth", "-05:00", 11),
        (MIN_TS, "getDate", "-05:00", 31),
        (MIN_TS, "getDayOfYear", "-05:00", 365),  # year 0 is a leap year
        (MIN_TS, "getHours", "-05:00", 19),
        (MIN_TS, "getFullYear", "America/New_York", 0),
        (MIN_TS, "getHours", "America/New_York", 19),  # LMT -04:56:02
        (MIN_TS, "getMinutes", "America/New_York", 3),
        (MIN_TS, "getSeconds", "America/New_York", 58),
        ("9999-12-31T23:00:00Z", "getFullYear", "+05:00", 10000),
        ("9999-12-31T23:00:00Z", "getDayOfYear", "+05:00", 0),
        (MAX_TS, "getFullYear", "Asia/Tokyo", 10000),
        (MAX_TS, "getHours", "Asia/Tokyo", 8),
    ],
)
def test_accessors_with_time_zone(text: str, name: str, tz: str, expected: int) -> None:
    assert ACCESSORS[name](ts(text), tz) == expected


# America/Los_Angeles: DST starts 2024-03-10 02:00 PST (10:00Z) -> 03:00 PDT,
# ends 2024-11-03 02:00 PDT (09:00Z) -> 01:00 PST.
# Australia/Sydney: DST ends 2024-04-07 03:00 AEDT (16:00Z on the 6th) -> 02:00 AEST.
# Europe/Berlin: DST starts 2024-03-31 02:00 CET (01:00Z) -> 03:00 CEST.
@pytest.mark.parametrize(
    ("text", "tz", "fields"),
    [
        ("2024-03-10T09:59:59Z", "America/Los_Angeles", (2024, 2, 9, 10, 0, 1, 59, 59)),
        ("2024-03-10T10:00:00Z", "America/Los_Angeles", (2024, 2, 9, 10, 0, 3, 0, 0)),
        ("2024-11-03T08:30:00Z", "America/Los_Angeles", (2024, 10, 2, 3, 0, 1, 30, 0)),
        ("2024-11-03T09:30:00Z", "America/Los_Angeles", (2024, 10, 2, 3, 0, 1, 30, 0)),
        ("2024-11-03T07:59:59Z", "America/Los_Angeles", (2024, 10, 2, 3, 0, 0, 59, 59)),
        ("2024-01-01T07:59:59Z", "America/Los_Angeles", (2023, 11, 30, 31, 0, 23, 59, 59)),
        ("2024-04-06T15:59:59Z", "Australia/Sydney", (2024, 3, 6, 7, 0, 2, 59, 59)),
        ("2024-04-06T16:00:00Z", "Australia/Sydney", (2024, 3, 6, 7, 0, 2, 0, 0)),
        ("2024-04-06T12:59:59Z", "Australia/Sydney", (2024, 3, 5, 6, 6, 23, 59, 59)),
        ("2024-03-31T00:59:59Z", "Europe/Berlin", (2024, 2, 30, 31, 0, 1, 59, 59)),
        ("2024-03-31T01:00:00Z", "Europe/Berlin", (2024, 2, 30, 31, 0, 3, 0, 0)),
    ],
)
def test_accessors_across_dst(text: str, tz: str, fields: tuple[int, ...]) -> None:
    value = ts(text)
    got = (
        tf.timestamp_get_full_year(value, tz),
        tf.timestamp_get_month(value, tz),
        tf.timestamp_get_day_of_month(value, tz),
        tf.timestamp_get_date(value, tz),
        tf.timestamp_get_day_of_week(value, tz),
        tf.timestamp_get_hours(value, tz),
        tf.timestamp_get_minutes(value, tz),
        tf.timestamp_get_seconds(value, tz),
    )
    assert got == fields


ZONES = [
    "America/Los_Angeles",
    "America/St_Johns",
    "Europe/Paris",
    "Europe/London",
    "Australia/Sydney",
    "Australia/Lord_Howe",  # 30-minute DST shift
    "Pacific/Chatham",  # +12:45 / +13:45
    "Asia/Kathmandu",
    "Africa/Casablanca",
    "America/Sao_Paulo",
]


def test_accessors_agree_with_zoneinfo() -> None:
    rng = random.Random(99)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    for _ in range(600):
        seconds = rng.choice(
            [rng.randint(-2_208_988_800, 4_102_444_800), rng.randint(1_600_000_000, 1_800_000_000)]
        )
        nanos = rng.randint(0, NS - 1)
        value = Timestamp(seconds * NS + nanos)
        tz = rng.choice(ZONES)
        local = (epoch + timedelta(seconds=seconds)).astimezone(ZoneInfo(tz))
        expected = (
            local.year,
            local.month - 1,
            local.timetuple().tm_yday - 1,
            local.day - 1,
            local.day,
            local.isoweekday() % 7,
            local.hour,
            local.minute,
            local.second,
            nanos // 1_000_000,
        )
        got = tuple(accessor(value, tz) for accessor in ACCESSORS.values())
        assert got == expected, (tf.format_timestamp(value), tz)


@pytest.mark.parametrize(
    "tz",
    [
        "",
        "utc",  # names are case-sensitive
        "Z",
        "Nope/Zone",
        "America",  # a directory
        "America/",
        "/America/New_York",
        "/etc/localtime",
        "../etc/passwd",
        "America/../UTC",
        "America/./New_York",
        "..",
        "zone.tab",
        "tzdata.zi",
        "America/New_York\x00",
        "Europe/Paris ",
        "America\\New_York",
        "A" * 200,
        "+05",
        "0530",
        "+5:3",
        "+05:60",
        "+24:00",
        "-24:00",
        "+005:00",
        "++05:00",
        "05:00:00",
    ],
)
def test_invalid_time_zones(tz: str) -> None:
    value = ts("2009-02-13T23:31:30Z")
    for accessor in ACCESSORS.values():
        with pytest.raises(EvalError, match="time zone"):
            accessor(value, tz)
    with pytest.raises(EvalError, match="time zone"):
        tf.local_hour(value, tz)


def test_zone_cache_is_bounded() -> None:
    info = tf._resolve_zone.cache_info()
    assert info.maxsize is not None
    assert info.maxsize <= 4096


def test_utc_offset_seconds() -> None:
    assert tf.utc_offset_seconds(ts("2024-07-01T00:00:00Z"), "America/Los_Angeles") == -7 * 3600
    assert tf.utc_offset_seconds(ts("2024-01-01T00:00:00Z"), "America/Los_Angeles") == -8 * 3600
    assert tf.utc_offset_seconds(ts("2024-01-01T00:00:00Z"), "Asia/Kathmandu") == 5 * 3600 + 45 * 60
    assert tf.utc_offset_seconds(ts("2024-01-01T00:00:00Z"), "-02:30") == -9000
    assert tf.utc_offset_seconds(ts("2024-01-01T00:00:00Z"), "UTC") == 0
    assert tf.utc_offset_seconds(ts(MIN_TS), "America/New_York") == -(4 * 3600 + 56 * 60 + 2)


# ------------------------------------------------------- policy-engine helpers


def test_local_hour_and_weekday() -> None:
    value = ts("2024-03-10T10:00:00Z")  # Sunday
    assert tf.local_hour(value, "UTC") == 10
    assert tf.local_weekday(value, "UTC") == 0
    assert tf.local_hour(value, "America/Los_Angeles") == 3
    assert tf.local_weekday(value, "America/Los_Angeles") == 0
    assert tf.local_hour(value, "Asia/Tokyo") == 19
    assert tf.local_hour(value, "Pacific/Kiritimati") == 0  # UTC+14: Monday already
    assert tf.local_weekday(value, "Pacific/Kiritimati") == 1
    assert tf.local_weekday(value, "-11:00") == 6
    for tz in ZONES:
        assert tf.local_hour(value, tz) == tf.timestamp_get_hours(value, tz)
        assert tf.local_weekday(value, tz) == tf.timestamp_get_day_of_week(value, tz)


# ----------------------------------------------------------- duration accessors


@pytest.mark.parametrize(
    ("text", "hours", "minutes", "seconds", "millis"),
    [
        ("10000s", 2, 166, 10000, 0),  # duration_converters/get_hours
        ("3730s", 1, 62, 3730, 0),  # get_minutes, get_seconds
        ("123.321456789s", 0, 2, 123, 321),  # get_milliseconds (component, not total)
        ("3h", 3, 180, 10800, 0),  # langdef
        ("1h30m", 1, 90, 5400, 0),
        ("1m30s", 0, 1, 90, 0),
        ("1.234s", 0, 0, 1, 234),
        ("0", 0, 0, 0, 0),
        ("999999999ns", 0, 0, 0, 999),
        ("-90m", -1, -90, -5400, 0),  # truncated toward zero
        ("-1.5s", 0, 0, -1, -500),  # millis keep the sign
        ("-0.0015s", 0, 0, 0, -1),
        ("9223372036854775807ns", 2562047, 153722867, 9223372036, 854),
        ("-9223372036854775808ns", -2562047, -153722867, -9223372036, -854),
    ],
)
def test_duration_accessors(text: str, hours: int, minutes: int, seconds: int, millis: int) -> None:
    value = dur(text)
    assert tf.duration_get_hours(value) == hours
    assert tf.duration_get_minutes(value) == minutes
    assert tf.duration_get_seconds(value) == seconds
    assert tf.duration_get_milliseconds(value) == millis


# ------------------------------------------------------------- declarations

SAMPLES: dict[Type, object] = {
    TIMESTAMP: Timestamp(1_234_567_890 * NS + 123_456_789),
    DURATION: Duration(5_400_500_000_000),
    STRING: "UTC",
    INT: 1_234_567_890,
}


def _decls() -> dict[str, FunctionDecl]:
    decls = {decl.name: decl for decl in tf.TIME_FUNCTIONS}
    assert len(decls) == len(tf.TIME_FUNCTIONS), "one declaration per function name"
    return decls


def _overloads() -> list[Overload]:
    return [overload for decl in tf.TIME_FUNCTIONS for overload in decl.overloads]


def test_declared_overload_ids() -> None:
    ids = [overload.id for overload in _overloads()]
    assert len(ids) == len(set(ids))
    assert set(ids) == {
        "add_timestamp_duration",
        "add_duration_timestamp",
        "add_duration_duration",
        "subtract_timestamp_timestamp",
        "subtract_timestamp_duration",
        "subtract_duration_duration",
        "timestamp_to_timestamp",
        "string_to_timestamp",
        "int64_to_timestamp",
        "duration_to_duration",
        "string_to_duration",
        "timestamp_to_int64",
        "timestamp_to_string",
        "duration_to_string",
        "timestamp_to_year",
        "timestamp_to_year_with_tz",
        "timestamp_to_month",
        "timestamp_to_month_with_tz",
        "timestamp_to_day_of_year",
        "timestamp_to_day_of_year_with_tz",
        "timestamp_to_day_of_month",
        "timestamp_to_day_of_month_with_tz",
        "timestamp_to_day_of_month_1_based",
        "timestamp_to_day_of_month_1_based_with_tz",
        "timestamp_to_day_of_week",
        "timestamp_to_day_of_week_with_tz",
        "timestamp_to_hours",
        "timestamp_to_hours_with_tz",
        "timestamp_to_minutes",
        "timestamp_to_minutes_with_tz",
        "timestamp_to_seconds",
        "timestamp_to_seconds_tz",
        "timestamp_to_milliseconds",
        "timestamp_to_milliseconds_with_tz",
        "duration_to_hours",
        "duration_to_minutes",
        "duration_to_seconds",
        "duration_to_milliseconds",
    }


def test_declared_functions_and_call_styles() -> None:
    decls = _decls()
    assert set(decls) == {
        "_+_",
        "_-_",
        "timestamp",
        "duration",
        "int",
        "string",
        *ACCESSORS,
    }
    for name in ("_+_", "_-_", "timestamp", "duration", "int", "string"):
        assert not any(o.receiver for o in decls[name].overloads), name
    for name in ACCESSORS:
        overloads = decls[name].overloads
        assert all(o.receiver for o in overloads), name
        assert {o.params for o in overloads} >= {(TIMESTAMP,), (TIMESTAMP, STRING)}
        assert all(o.result == INT for o in overloads)
    for name in ("getHours", "getMinutes", "getSeconds", "getMilliseconds"):
        assert (DURATION,) in {o.params for o in decls[name].overloads}
    assert (DURATION,) not in {o.params for o in decls["getFullYear"].overloads}


def test_every_overload_implementation_runs_and_returns_its_result_type() -> None:
    result_types: dict[Type, type] = {
        TIMESTAMP: Timestamp,
        DURATION: Duration,
        INT: int,
        STRING: str,
    }
    for overload in _overloads():
        assert overload.impl is not None, overload.id
        args = [SAMPLES[param] for param in overload.params]
        if overload.id == "string_to_timestamp":
            args = ["2009-02-13T23:31:30Z"]
        elif overload.id == "string_to_duration":
            args = ["1h30m"]
        result = overload.impl(*args)
        assert type(result) is result_types[overload.result], overload.id


def test_declared_implementations_match_conformance_examples() -> None:
    by_id = {overload.id: overload for overload in _overloads()}

    def call(overload_id: str, *args: object) -> object:
        impl = by_id[overload_id].impl
        assert impl is not None
        return impl(*args)

    value = call("string_to_timestamp", "2009-02-13T23:31:30Z")
    assert call("timestamp_to_int64", value) == 1_234_567_890
    assert call("timestamp_to_string", value) == "2009-02-13T23:31:30Z"
    assert call("timestamp_to_timestamp", value) == value
    assert call("int64_to_timestamp", 1_234_567_890) == value
    assert call("timestamp_to_day_of_month_1_based_with_tz", value, "Australia/Sydney") == 14
    assert call("timestamp_to_hours_with_tz", value, "02:00") == 1
    assert call("timestamp_to_seconds_tz", value, "-00:00") == 30
    assert call("duration_to_string", call("string_to_duration", "1000000s")) == "1000000s"
    assert call("duration_to_hours", call("string_to_duration", "10000s")) == 2
    assert call("duration_to_duration", Duration(7)) == Duration(7)
    with pytest.raises(EvalError, match="range"):
        call("string_to_timestamp", "10000-01-01T00:00:00Z")
    with pytest.raises(EvalError, match="range"):
        call("string_to_duration", "320000000000s")
