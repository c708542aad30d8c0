"""Python value <-> arbiter.v1.Value conversion (arbiter_client._values)."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from arbiter.v1 import decision_pb2, value_pb2
from arbiter_client import (
    ValueConversionError,
    fill_value_map,
    from_value,
    from_value_map,
    to_value,
    to_value_map,
)

ROUND_TRIPS = [
    None,
    True,
    False,
    0,
    -1,
    2**63 - 1,
    -(2**63),
    0.0,
    -2.5,
    1e308,
    "",
    "héllo ✓",
    b"\x00\xff",
    datetime(2024, 11, 1, 12, 30, 15, 123456, tzinfo=UTC),
    datetime(1, 1, 1, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC),
    timedelta(0),
    timedelta(days=3, seconds=7, microseconds=9),
    timedelta(microseconds=-1),
    timedelta(days=-2, seconds=5),
    [],
    [1, "a", None, [2.5, {"x": False}]],
    {},
    {"nested": {"list": [1, 2, 3], "when": datetime(2020, 2, 29, tzinfo=UTC)}},
]


@pytest.mark.parametrize("value", ROUND_TRIPS, ids=repr)
def test_round_trip(value: object) -> None:
    message = to_value(value)
    # Through the wire, too.
    parsed = value_pb2.Value.FromString(message.SerializeToString())
    assert from_value(parsed) == value
    assert type(from_value(parsed)) is type(value)


def test_bool_stays_bool_and_int_stays_int() -> None:
    assert to_value(True).WhichOneof("kind") == "bool_value"
    assert to_value(1).WhichOneof("kind") == "int_value"
    assert to_value(1.0).WhichOneof("kind") == "double_value"
    # Struct would have made this a double and lost precision.
    big = 2**53 + 1
    assert from_value(to_value(big)) == big


def test_empty_list_and_map_keep_their_kind() -> None:
    assert to_value([]).WhichOneof("kind") == "list_value"
    assert to_value({}).WhichOneof("kind") == "map_value"
    assert to_value(()).WhichOneof("kind") == "list_value"


def test_tuple_and_bytearray_read_back_as_list_and_bytes() -> None:
    assert from_value(to_value((1, 2))) == [1, 2]
    assert from_value(to_value(bytearray(b"ab"))) == b"ab"


def test_aware_datetime_in_other_zone_reads_back_in_utc() -> None:
    moment = datetime(2024, 6, 1, 9, 0, tzinfo=timezone(timedelta(hours=2)))
    back = from_value(to_value(moment))
    assert back == moment
    assert isinstance(back, datetime)
    assert back.utcoffset() == timedelta(0)
    stamp = to_value(moment).timestamp_value
    assert (stamp.seconds, stamp.nanos) == (1717225200, 0)


def test_negative_timestamp_encoding_has_positive_nanos() -> None:
    stamp = to_value(datetime(1969, 12, 31, 23, 59, 59, 500000, tzinfo=UTC)).timestamp_value
    assert (stamp.seconds, stamp.nanos) == (-1, 500_000_000)


def test_duration_signs_agree() -> None:
    span = to_value(timedelta(seconds=-1.5)).duration_value
    assert (span.seconds, span.nanos) == (-1, -500_000_000)


def test_nanoseconds_are_truncated_toward_zero() -> None:
    message = value_pb2.Value()
    message.timestamp_value.seconds = 10
    message.timestamp_value.nanos = 1_999
    assert from_value(message) == datetime(1970, 1, 1, 0, 0, 10, 1, tzinfo=UTC)
    message = value_pb2.Value()
    message.duration_value.seconds = -1
    message.duration_value.nanos = -1_999
    assert from_value(message) == -timedelta(seconds=1, microseconds=1)


def test_non_finite_floats_convert_faithfully() -> None:
    result = from_value(to_value(math.nan))
    assert isinstance(result, float)
    assert math.isnan(result)
    assert from_value(to_value(math.inf)) == math.inf


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2**63, "int64"),
        (-(2**63) - 1, "int64"),
        (datetime(2024, 1, 1), "naive"),
        (date(2024, 1, 1), "date is not supported"),
        ({1: "a"}, "keys must be str"),
        ({"a"}, "unsupported type set"),
        (object(), "unsupported type object"),
        (timedelta(days=999_999_999), "Duration range"),
    ],
    ids=repr,
)
def test_rejects(value: object, message: str) -> None:
    with pytest.raises(ValueConversionError, match=message):
        to_value(value)


def test_error_names_the_path() -> None:
    with pytest.raises(ValueConversionError) as caught:
        to_value_map({"cart": {"items": [1, object()]}}, path="context")
    assert caught.value.path == "context.cart.items[1]"
    assert str(caught.value).startswith("context.cart.items[1]: ")
    assert isinstance(caught.value, ValueError)


def test_depth_limit_and_cycles() -> None:
    nested: list[object] = []
    node = nested
    for _ in range(40):
        child: list[object] = []
        node.append(child)
        node = child
    with pytest.raises(ValueConversionError, match="nested too deeply"):
        to_value(nested)
    assert to_value(nested, max_depth=64).WhichOneof("kind") == "list_value"
    cycle: dict[str, object] = {}
    cycle["self"] = cycle
    with pytest.raises(ValueConversionError, match="nested too deeply"):
        to_value(cycle)


def test_value_without_kind_is_an_error() -> None:
    with pytest.raises(ValueConversionError, match="no kind"):
        from_value(value_pb2.Value())
    wrapped = value_pb2.Value()
    wrapped.list_value.values.add()
    with pytest.raises(ValueConversionError) as caught:
        from_value(wrapped, path="payload.x")
    assert caught.value.path == "payload.x[0]"


def test_fill_value_map_writes_into_a_request_map_field() -> None:
    request = decision_pb2.DecideRequest()
    fill_value_map(request.context, {"tier": "gold", "visits": 3}, path="context")
    assert request.context["tier"].string_value == "gold"
    assert request.context["visits"].int_value == 3
    assert from_value_map(request.context) == {"tier": "gold", "visits": 3}
    fill_value_map(request.context, None)
    assert len(request.context) == 2


def test_to_value_map_and_empty_inputs() -> None:
    assert to_value_map(None) == {}
    converted = to_value_map({"a": 1.5})
    assert converted["a"].double_value == 1.5
