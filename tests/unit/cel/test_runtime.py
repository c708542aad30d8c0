"""Tests of the CEL runtime semantics (policies/cel/runtime.py) and of the
standard-library declaration table (policies/cel/stdlib.py).

Expected values come from the CEL language definition (google/cel-spec
doc/langdef.md) and its conformance suite (../shared/conformance/cel, the
``file/section/name`` of a case is noted where a row comes from there);
double formatting and conversion edges were checked against cel-go's rules
and cel-cpp (the ``cel-expr-python`` dev dependency).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from arbiter.policies.cel import conversions as conv
from arbiter.policies.cel import regex, values
from arbiter.policies.cel import runtime as rt
from arbiter.policies.cel.dispatch import make_dispatcher
from arbiter.policies.cel.env import FunctionDecl, Overload
from arbiter.policies.cel.errors import CostLimitError, EvalError
from arbiter.policies.cel.stdlib import STANDARD_DISPATCH, STANDARD_FUNCTIONS, TYPE_IDENTIFIERS
from arbiter.policies.cel.types import (
    BOOL,
    BYTES,
    DOUBLE,
    DYN,
    INT,
    NULL,
    STRING,
    TIMESTAMP,
    UINT,
    ListType,
    MapType,
    TypeParam,
    TypeType,
)
from arbiter.policies.cel.values import (
    INT64_MAX,
    INT64_MIN,
    UINT64_MAX,
    Duration,
    Timestamp,
    TypeValue,
    UInt,
)

NAN = math.nan
INF = math.inf


def u(n: int) -> UInt:
    return UInt(n)


def raises(fn: Callable[..., object], *args: object, match: str | None = None) -> EvalError:
    with pytest.raises(EvalError, match=match) as info:
        fn(*args)
    return info.value


# ------------------------------------------------------------------ int64


@pytest.mark.parametrize(
    ("fn", "a", "b", "expected"),
    [
        (rt.int_add, 40, 2, 42),
        (rt.int_add, INT64_MAX, 0, INT64_MAX),
        (rt.int_add, INT64_MIN, 0, INT64_MIN),
        (rt.int_sub, -42, -12, -30),
        (rt.int_sub, INT64_MIN + 1, 1, INT64_MIN),
        (rt.int_mul, -30, -2, 60),
        (rt.int_mul, INT64_MIN, 1, INT64_MIN),
        (rt.int_div, 42, 2, 21),
        (rt.int_div, -20, 2, -10),
        (rt.int_div, -80, -2, 40),
        (rt.int_div, 7, 2, 3),
        (rt.int_div, -7, 2, -3),  # truncates toward zero
        (rt.int_div, 7, -2, -3),
        (rt.int_div, -7, -2, 3),
        (rt.int_div, INT64_MIN, 1, INT64_MIN),
        (rt.int_div, INT64_MAX, -1, -INT64_MAX),
        (rt.int_mod, 47, 5, 2),
        (rt.int_mod, 43, -5, 3),  # sign of the dividend
        (rt.int_mod, -42, -5, -2),
        (rt.int_mod, -3, 5, -3),
        (rt.int_mod, INT64_MIN, 7, -(2**63 % 7)),
    ],
)
def test_int_arithmetic(fn: Callable[[object, object], int], a: int, b: int, expected: int) -> None:
    result = fn(a, b)
    assert result == expected
    assert type(result) is int


@pytest.mark.parametrize(
    ("fn", "a", "b"),
    [
        (rt.int_add, INT64_MAX, 1),  # integer_math/int64_math/int64_overflow_positive
        (rt.int_sub, INT64_MIN, 1),  # int64_overflow_negative
        (rt.int_add, INT64_MIN, -1),  # int64_overflow_add_negative
        (rt.int_sub, 1, -INT64_MAX),  # int64_overflow_sub_positive
        (rt.int_mul, INT64_MIN, -1),  # int64_min_negate_mul
        (rt.int_div, INT64_MIN, -1),  # int64_min_negate_div
        (rt.int_mod, INT64_MIN, -1),
        (rt.int_mul, 5_000_000_000, 5_000_000_000),  # int64_overflow_mul_positive
        (rt.int_mul, -5_000_000_000, 5_000_000_000),  # int64_overflow_mul_negative
    ],
)
def test_int_overflow(fn: Callable[[object, object], int], a: int, b: int) -> None:
    raises(fn, a, b, match="return error for overflow")


def test_int_division_and_modulus_by_zero() -> None:
    raises(rt.int_div, 15, 0, match="divide by zero")
    raises(rt.int_mod, 34, 0, match="modulus by zero")


def test_int_negation() -> None:
    assert rt.int_neg(42) == -42
    assert rt.int_neg(-42) == 42
    assert rt.int_neg(0) == 0
    assert rt.int_neg(INT64_MAX) == INT64_MIN + 1
    raises(rt.int_neg, INT64_MIN, match="overflow")  # int64_math/int64_min_negate


@given(
    st.integers(INT64_MIN, INT64_MAX),
    st.integers(INT64_MIN, INT64_MAX).filter(lambda b: b != 0),
)
def test_int_division_identity(a: int, b: int) -> None:
    if a == INT64_MIN and b == -1:
        return
    q = rt.int_div(a, b)
    r = rt.int_mod(a, b)
    assert q * b + r == a
    assert abs(r) < abs(b)
    assert r == 0 or (r < 0) == (a < 0)
    assert q == int(a / b) or abs(a) > 2**52  # truncation, where floats are exact


# ------------------------------------------------------------------ uint64


def test_uint_arithmetic() -> None:
    assert rt.uint_add(u(42), u(2)) == 44
    assert rt.uint_sub(u(42), u(12)) == 30
    assert rt.uint_mul(u(40), u(2)) == 80
    assert rt.uint_div(u(60), u(2)) == 30
    assert rt.uint_div(u(7), u(2)) == 3
    assert rt.uint_mod(u(42), u(5)) == 2
    assert rt.uint_add(u(UINT64_MAX - 1), u(1)) == UINT64_MAX
    for fn in (rt.uint_add, rt.uint_sub, rt.uint_mul, rt.uint_div, rt.uint_mod):
        assert type(fn(u(9), u(3))) is UInt


def test_uint_range_errors() -> None:
    raises(rt.uint_add, u(UINT64_MAX), u(1), match="overflow")
    raises(rt.uint_sub, u(0), u(1), match="overflow")
    raises(rt.uint_mul, u(5_000_000_000), u(5_000_000_000), match="overflow")
    raises(rt.uint_div, u(15), u(0), match="divide by zero")
    raises(rt.uint_mod, u(34), u(0), match="modulus by zero")


def test_uint_has_no_negation() -> None:
    raises(
        STANDARD_DISPATCH["-_"], u(5), match="no such overload"
    )  # uint64_math/negative_no_overload
    raises(STANDARD_DISPATCH["-_"], u(5), match="no such overload")
    raises(rt.int_neg, u(5), match="no such overload")


# ------------------------------------------------------------------ double


def test_double_arithmetic_follows_ieee() -> None:
    assert rt.double_add(0.1, 0.2) == 0.1 + 0.2
    assert rt.double_sub(1.0, 3.0) == -2.0
    assert rt.double_mul(1e308, 10.0) == INF
    assert rt.double_div(1.0, 4.0) == 0.25
    assert rt.double_div(1.0, 0.0) == INF
    assert rt.double_div(-1.0, 0.0) == -INF
    assert rt.double_div(1.0, -0.0) == -INF
    assert rt.double_div(-1.0, -0.0) == INF
    assert math.isnan(rt.double_div(0.0, 0.0))
    assert math.isnan(rt.double_div(NAN, 0.0))
    assert rt.double_div(INF, 0.0) == INF
    assert rt.double_neg(1.5) == -1.5
    assert math.copysign(1.0, rt.double_neg(0.0)) == -1.0


def test_no_mixed_numeric_arithmetic() -> None:
    add, mul, mod = (STANDARD_DISPATCH[name] for name in ("_+_", "_*_", "_%_"))
    raises(add, 1, 1.0, match=r"no such overload: _\+_\(int, double\)")
    raises(add, u(1), 1, match="no such overload")
    raises(mul, 1.0, 2, match="no such overload")
    raises(mod, 1.0, 2.0, match="no such overload")  # no double modulus


@pytest.mark.parametrize(
    ("fn", "args"),
    [
        (rt.int_add, (1.5, 1)),
        (rt.int_add, (True, 1)),
        (rt.int_add, (u(1), 1)),
        (rt.int_div, (1, "a")),
        (rt.uint_add, (1, u(1))),
        (rt.double_add, (1, 1.0)),
        (rt.string_concat, ("a", b"b")),
        (rt.list_concat, ([1], {"a": 1})),
        (rt.index_list, ([1], "0")),
        (rt.index_map, ([1], 0)),
        (rt.contains, ("a", 1)),
        (regex.matches, ("a", None)),
        (conv.uint_to_int, (1,)),
        (conv.double_to_int, (1,)),
    ],
)
def test_typed_impls_check_their_argument_types(
    fn: Callable[..., object], args: tuple[object, ...]
) -> None:
    # The code generator may call a typed impl directly with `dyn` operands.
    raises(fn, *args, match="no such overload")


# ------------------------------------------------------------------ concatenation


def test_concatenation() -> None:
    assert rt.string_concat("he", "llo") == "hello"
    assert STANDARD_DISPATCH["_+_"]("¢", "ÿ") == "¢ÿ"
    assert rt.bytes_concat(b"abc", b"def") == b"abcdef"
    assert rt.list_concat([0, 1], [2]) == [0, 1, 2]
    assert rt.list_concat((0, 1), [2]) == [0, 1, 2]
    assert STANDARD_DISPATCH["_+_"]([], []) == []
    left = [1]
    rt.list_concat(left, [2])
    assert left == [1]  # operands are never mutated


def test_concatenation_size_bound() -> None:
    assert rt.string_concat("ab", "c", max_size=3) == "abc"
    with pytest.raises(CostLimitError):
        rt.string_concat("ab", "cd", max_size=3)
    with pytest.raises(CostLimitError):
        rt.bytes_concat(b"ab", b"cd", max_size=3)
    with pytest.raises(CostLimitError):
        rt.list_concat([1, 2], [3, 4], max_size=3)
    with pytest.raises(CostLimitError):
        rt.string_concat("x" * rt.DEFAULT_MAX_SIZE, "y")


def test_dynamic_arithmetic_dispatches_time_values() -> None:
    add, sub, mul = (STANDARD_DISPATCH[name] for name in ("_+_", "_-_", "_*_"))
    assert add(Timestamp(10), Duration(5)) == Timestamp(15)
    assert add(Duration(1), Duration(2)) == Duration(3)
    assert sub(Timestamp(10), Timestamp(4)) == Duration(6)
    raises(add, Timestamp(1), Timestamp(1), match="no such overload")
    raises(mul, Duration(1), 2, match="no such overload")


# ------------------------------------------------------------------ equality

EQUAL = [
    (1, 1),
    (1, u(1)),  # comparisons/eq_literal/eq_int_uint
    (1, 1.0),  # eq_int_double
    (u(1), 1.0),  # eq_uint_double
    (-0.0, 0.0),
    ("", ""),
    ("ίσος", "ίσος"),
    (b"\xc3\xbf", "ÿ".encode()),
    (None, None),
    (True, True),
    ([], []),
    ([None], [None]),
    ([1.0, 2.0, 3], [u(1), 2, u(3)]),  # eq_list_mixed_type_numbers
    ((1, 2), [1, 2]),
    ([[]], [[]]),
    ({}, {}),
    ({"k": None}, {"k": None}),
    ({1: 1.0, u(2): u(3)}, {u(1): 1, 2: 3.0}),  # eq_map_mixed_type_numbers
    ({"k1": "v1", "k2": "v2"}, {"k2": "v2", "k1": "v1"}),  # eq_map_key_order
    ({"a": [1, {"b": 2}]}, {"a": [1.0, {"b": u(2)}]}),
    (Timestamp(5), Timestamp(5)),
    (Duration(-5), Duration(-5)),
    (TypeValue("int"), values.INT_TYPE),
    (INT64_MAX, 9223372036854775808.0),  # the int converts to the nearest double
]

UNEQUAL = [
    (-1, 1),
    (2, u(1)),
    (2, 1.0),
    (NAN, NAN),  # not_eq_double_nan
    (1, NAN),
    (u(1), NAN),
    ("a", "à"),
    ("Am\u00e9lie", "Ame\u0301lie"),  # no_string_normalization
    (b"abc", b"abcd"),
    ("abc", b"abc"),
    (False, True),
    (True, 1),  # bool is not a number
    (False, 0),
    (False, None),  # not_eq_dyn_bool_null
    (0, None),
    ("", None),
    ([], None),
    ({}, None),
    (Duration(0), None),
    (Timestamp(0), None),
    (Timestamp(0), Duration(0)),
    (["1", "2", None], ["1", "2", "3"]),
    ([1.0, 2.1], [u(1), 2]),
    ([1, 2, 3], [1, 3, 2]),
    (["one"], [2, 3]),
    ([1, "dos", 3], [1, 2, 4]),
    ([True], [1]),
    ({"k": 1, "j": 2}, {"k": 1, "j": None}),
    ({"k": "v", "k1": "v1"}, {"k": "v"}),
    ({"key": "value"}, {"Key": "value"}),
    ({"k": "v", 1: 1}, {"k": "v", 1: "v1"}),  # eq_map_value_mixed_types
    ({True: 1}, {1: 1}),
    ({0: 1}, {False: 1}),
    ([1], {0: 1}),
    (values.INT_TYPE, values.UINT_TYPE),
    (values.INT_TYPE, "int"),
]


@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_equal(a: object, b: object) -> None:
    assert rt.eq(a, b) is True
    assert rt.eq(b, a) is True
    assert rt.ne(a, b) is False


@pytest.mark.parametrize(("a", "b"), UNEQUAL)
def test_unequal(a: object, b: object) -> None:
    assert rt.eq(a, b) is False
    assert rt.eq(b, a) is False
    assert rt.ne(a, b) is True


# ------------------------------------------------------------------ ordering


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (-1, 0, True),
        (0, 0, False),
        (u(0), u(1), True),
        (1.0, 1.0000001, True),
        (-0.0, 0.0, False),
        ("a", "b", True),
        ("Abc", "aBC", True),
        ("abc", "abcd", True),
        ("a", "\u00e1", True),
        ("a", "AB", False),
        ("f", "\u1ebf", True),  # lt_literal/unicode_order_lexical
        (b"a", b"b", True),
        ("á".encode(), b"b", False),  # not_lt_bytes_width
        (False, True, True),
        (True, False, False),
        (Timestamp(1), Timestamp(2), True),
        (Duration(-1), Duration(0), True),
        # comparisons/lt_literal/*_dyn_*: mixed numeric types
        (1, u(2), True),
        (1, 2.0, True),
        (u(1), 2, True),
        (u(1), 2.0, True),
        (1.0, 2, True),
        (1.0, u(2), True),
        (1, u(1), False),
        (1, 1.0, False),
        (1, u(9223372036854775808), True),
        (-1, u(0), True),
        (INT64_MAX, 9223372036854775808.0, False),  # not_lt_dyn_int_big_lossy_double
        (INT64_MAX, 9223372036854777857.0, True),
        (INT64_MAX, -9223372036854777857.0, False),
        (INT64_MIN, -9223372036854775809.0, False),
        (u(1), INT64_MIN, False),
        (u(9223372036854775808), 1, False),
        (u(UINT64_MAX), -1.0, False),
        (u(UINT64_MAX), 18446744073709590000.0, True),
        (18446744073709553665.0, u(UINT64_MAX), False),
        (9223372036854775808.0, INT64_MAX, False),
        (-9223372036854775809.0, INT64_MIN, False),
        (NAN, 1.0, False),
        (1, NAN, False),
    ],
)
def test_less_than(a: object, b: object, expected: bool) -> None:
    assert rt.lt(a, b) is expected
    assert STANDARD_DISPATCH["_<_"](a, b) is expected
    assert rt.gt(b, a) is expected


@pytest.mark.parametrize(
    ("fn", "a", "b", "expected"),
    [
        # comparisons/gte_literal and lte_literal rows with lossy doubles
        (rt.ge, INT64_MAX, 9223372036854775808.0, True),
        (rt.ge, INT64_MAX, 9223372036854777857.0, False),
        (rt.ge, INT64_MIN, -9223372036854775809.0, True),
        (rt.le, 9223372036854775808.0, INT64_MAX, True),
        (rt.le, -9223372036854775809.0, INT64_MIN, True),
        (rt.le, INT64_MIN, -9223372036854777857.0, False),
        (rt.le, u(UINT64_MAX), 18446744073709590000.0, True),
        (rt.ge, u(UINT64_MAX), 18446744073709553665.0, False),
        (rt.ge, 18446744073709553665.0, u(UINT64_MAX), True),
        (rt.gt, 18446744073709553665.0, u(UINT64_MAX), True),
        (rt.le, "", "", True),
        (rt.le, "α", "a", False),
        (rt.ge, b" ", b"", True),
        (rt.le, False, False, True),
        (rt.ge, Duration(3), Duration(3), True),
        (rt.le, NAN, NAN, False),
        (rt.ge, NAN, NAN, False),
    ],
)
def test_ordering(
    fn: Callable[[object, object], bool], a: object, b: object, expected: bool
) -> None:
    assert fn(a, b) is expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        (None, None),  # lt_null_unsupported
        ([0], [1]),  # lt_list_unsupported
        ({0: "a"}, {1: "b"}),  # lt_map_unsupported
        ("foo", 1024),  # lt_mixed_types_error
        ("foo", 1.0),
        (True, 1),
        (b"a", "a"),
        (Timestamp(0), Duration(0)),
        (values.INT_TYPE, values.INT_TYPE),
    ],
)
def test_unordered_types(a: object, b: object) -> None:
    for fn in (rt.lt, rt.le, rt.gt, rt.ge):
        raises(fn, a, b, match="no such overload")
    raises(STANDARD_DISPATCH["_<=_"], a, b, match="no such overload")


@given(
    st.one_of(st.integers(INT64_MIN, INT64_MAX), st.floats(), st.integers(0, UINT64_MAX).map(u)),
    st.one_of(st.integers(INT64_MIN, INT64_MAX), st.floats(), st.integers(0, UINT64_MAX).map(u)),
)
def test_numeric_order_is_consistent_with_equality(a: object, b: object) -> None:
    results = (rt.lt(a, b), rt.eq(a, b), rt.gt(a, b))
    if (type(a) is float and math.isnan(a)) or (type(b) is float and math.isnan(b)):
        assert results == (False, False, False)
    else:
        assert sum(results) == 1
        assert rt.le(a, b) == (results[0] or results[1])
        assert rt.ge(a, b) == (results[1] or results[2])


# ------------------------------------------------------------------ logic


def test_logic() -> None:
    assert rt.logical_not(True) is False
    assert rt.logical_not(False) is True
    raises(rt.logical_not, 0, match="no such overload")  # logic/NOT/no_overload
    assert rt.logical_and(True, True) is True
    assert rt.logical_and(False, "x") is False
    assert rt.logical_and("x", False) is False
    raises(rt.logical_and, True, "x", match="no such overload")
    assert rt.logical_or(False, False) is False
    assert rt.logical_or("x", True) is True
    raises(rt.logical_or, "a", "b", match="no such overload")
    assert rt.conditional(True, 1, 2) == 1
    assert rt.conditional(False, "foo", "bar") == "bar"
    raises(rt.conditional, "cows", False, 17, match="no such overload")


# ------------------------------------------------------------------ membership, size


@pytest.mark.parametrize(
    ("elem", "container", "expected"),
    [
        (7, [], False),
        (u(4), [u(4)], True),
        ("alpha", ["alpha", "beta"], True),
        (3.0, [5, 4, 3], True),  # lists/in/double_in_ints
        (u(3), [5, 4, 3], True),
        (3, [5.0, 3.0], True),
        (3, (u(5), u(3)), True),
        ("elem", [1, "elem", 2], True),
        ("elem", [u(1), "str", 2, b"bytes"], False),
        (1, [True], False),
        (True, [1], False),
        (None, [None], True),
        ([1], [[1.0]], True),
        (NAN, [NAN], False),
        ("key", {"key": "1"}, True),
        ("key", {3: 3.0, "key": u(2)}, True),
        ("key", {u(1): "str", 2: b"bytes"}, False),
        (3.0, {1: 1, 2: 2, u(3): 3}, True),  # fields/in/mixed_numbers_and_keys_present
        (u(2), {u(1): 1, 2: 2}, True),
        (1, {u(1): 1, 2: 2}, True),
        (3.1, {1: 1, 2: 2, u(3): 3}, False),
        (True, {True: 1}, True),
        (1, {True: 1}, False),
        (True, {1: 1}, False),
        (0.0, {False: 1}, False),
        ([1], {"a": 1}, False),
        (b"k", {"k": 1}, False),
    ],
)
def test_in(elem: object, container: object, expected: bool) -> None:
    assert STANDARD_DISPATCH["@in"](elem, container) is expected


def test_in_requires_a_container() -> None:
    raises(STANDARD_DISPATCH["@in"], 1, "1", match="no such overload")
    raises(rt.in_list, 1, {1: 1}, match="no such overload")
    raises(rt.in_map, 1, [1], match="no such overload")


def test_size() -> None:
    assert rt.size("") == 0
    assert rt.size("ÿ") == 1
    assert rt.size("πέντε") == 5
    assert rt.size("🐱") == 1  # code points, not UTF-16 units
    assert rt.size(b"abc") == 3
    assert rt.size([1, 2, 3]) == 3
    assert rt.size((1,)) == 1
    assert rt.size({1: "one"}) == 1
    raises(rt.size, 1, match=r"no such overload: size\(int\)")
    raises(rt.size, None, match="no such overload")


# ------------------------------------------------------------------ index, select


def test_index_list() -> None:
    seq = [7, 8, 9]
    assert rt.index_list(seq, 0) == 7
    assert rt.index_list(seq, u(2)) == 9  # lists/index/zero_based_uint
    assert rt.index_list(seq, 0.0) == 7  # zero_based_double
    assert rt.index_list((7, 8), 1) == 8
    raises(rt.index_list, seq, 0.1)  # zero_based_double_error
    raises(rt.index_list, seq, INF)
    raises(rt.index_list, seq, NAN)
    raises(rt.index_list, seq, 3, match="index out of range")  # index_out_of_bounds
    raises(rt.index_list, seq, -1, match="index out of range")
    raises(rt.index_list, seq, "", match="no such overload")  # bad_index_type
    raises(rt.index_list, seq, True, match="no such overload")
    raises(rt.index_list, seq, None, match="no such overload")


def test_index_map() -> None:
    m = {1: "a", u(2): "b", "s": "c", False: "d"}
    assert rt.index_map(m, 1) == "a"
    assert rt.index_map(m, u(1)) == "a"
    assert rt.index_map(m, 1.0) == "a"
    assert rt.index_map(m, 2) == "b"
    assert rt.index_map(m, "s") == "c"
    assert rt.index_map(m, False) == "d"
    assert rt.index_map({True: "t"}, True) == "t"  # fields/map_fields/map_key_bool
    mixed = {u(1): 1.0, 2: 2.0, u(3): 3.0}
    assert rt.index_map(mixed, 3.0) == 3.0  # map_key_mixed_numbers_double_key
    assert rt.index_map(mixed, u(2)) == 2.0
    assert rt.index_map(mixed, 1) == 1.0
    raises(rt.index_map, mixed, 3.1, match="no such key")  # ..._lossy_double_key
    raises(rt.index_map, {0: 1, 2: 2, 5: 3}, 1, match="no such key: 1")
    raises(rt.index_map, {0: 1}, b"", match="no such key")  # map_bad_key_type
    raises(rt.index_map, {0: 1}, [0], match="no such key")
    raises(rt.index_map, {True: 5}, 1, match="no such key")
    raises(rt.index_map, {1: 5}, True, match="no such key: true")
    raises(rt.index_map, {"a": 1}, "b", match="no such key: 'b'")
    assert rt.index_map({True: None}, True) is None


def test_generic_index() -> None:
    assert rt.index([1, 2], u(1)) == 2
    assert rt.index({"a": 1}, "a") == 1
    assert STANDARD_DISPATCH["_[_]"]([7, 8, 9], 0.0) == 7
    raises(rt.index, "abc", 0, match="no such overload")
    raises(rt.index, None, 0, match="no such overload")
    raises(STANDARD_DISPATCH["_[_]"], [1], match=r"no such overload: _\[_\]\(list\)")
    raises(STANDARD_DISPATCH["_[_]"], [1], 0, 0, match="no such overload")


def test_select_and_has() -> None:
    x = {"name": 1024, "content-type": "json"}
    assert rt.select(x, "name") == 1024  # fields/map_fields/map_field_access
    assert rt.select(x, "content-type") == "json"
    raises(rt.select, {"holiday": "field"}, "name", match="no such key: 'name'")
    raises(rt.select, 15, "pancakes", match="does not support field selection")
    raises(rt.select, ["pancakes"], "b", match="does not support field selection")
    raises(rt.select, None, "b", match="does not support field selection")
    assert rt.has_field({"a": 1, "b": 2}, "a") is True
    assert rt.has_field({"a": 1}, "c") is False
    assert rt.has_field({}, "a") is False
    assert rt.has_field({"a": None}, "a") is True
    raises(rt.has_field, 1, "a")
    raises(rt.has_field, [1], "a")


def test_make_map() -> None:
    assert rt.make_map([]) == {}
    built = rt.make_map([("k", "v"), (2, 2), (u(3), 4), (True, 5)])
    assert built == {"k": "v", 2: 2, u(3): 4, True: 5}
    assert type(next(k for k in built if k == 1)) is bool
    raises(rt.make_map, [(True, 1), (False, 2), (True, 3)], match="Failed with repeated key")
    raises(rt.make_map, [(0, 1), (u(0), 2)], match="Failed with repeated key")
    raises(rt.make_map, [(3.3, 15.15)], match="unsupported key type")  # map_key_float
    raises(rt.make_map, [(None, False)], match="unsupported key type")  # map_key_null
    raises(rt.make_map, [(b"k", 1)], match="unsupported key type")
    raises(rt.make_map, [([1], 1)], match="unsupported key type")


def test_make_map_keeps_bool_and_int_keys_apart() -> None:
    """CEL's true and 1 are different keys (Python's True and 1 are one)."""
    for pairs in ([(True, "a"), (1, "b")], [(1, "b"), (True, "a")]):
        m = rt.make_map(pairs)
        assert len(m) == 2
        assert rt.index_map(m, True) == "a"
        assert rt.index_map(m, 1) == "b"
        assert rt.index_map(m, 1.0) == "b"
        assert rt.in_map(True, m) and rt.in_map(u(1), m)
        assert rt.eq(m, {1: "b"}) is False
        assert rt.eq(m, rt.make_map([(1, "b"), (True, "a")])) is True
    m = rt.make_map([(False, 0), (0, 1), (True, 2), (1, 3)])
    assert [rt.index_map(m, k) for k in (False, 0, True, 1)] == [0, 1, 2, 3]
    raises(rt.make_map, [(True, "a"), (1, "b"), (True, "c")], match="repeated key: true")
    raises(rt.make_map, [(True, "a"), (1, "b"), (1.0, "c")], match="unsupported key type")
    raises(rt.make_map, [(True, "a"), (1, "b"), (u(1), "c")], match="repeated key: 1u")


# ------------------------------------------------------------------ strings


def test_string_predicates() -> None:
    assert rt.contains("hello", "he") is True
    assert rt.contains("hello", "") is True
    assert rt.contains("hello", "ol") is False
    assert rt.contains("", "") is True
    assert rt.contains("Straße", "aß") is True
    assert rt.starts_with("foobar", "foo") is True
    assert rt.starts_with("", "foo") is False
    assert rt.starts_with("🐱😀😛", "🐱") is True
    assert rt.ends_with("forté", "té") is True
    assert rt.ends_with("foobar", "foo") is False
    assert rt.ends_with("", "") is True


@pytest.mark.parametrize(
    ("text", "pattern", "expected"),
    [
        ("hubba", "ubb", True),  # string/matches/basic
        ("", "foo|bar", False),
        ("cows", "", True),
        ("", "", True),
        ("abcd", "bc", True),
        ("grey", "gr(a|e)y", True),
        ("banana", "ba(na)*", True),
        ("mañana", "a+ñ+a+", True),
        ("🐱😀😀", "(a|😀){2}", True),
        ("abc", "^b", False),
        ("abc", "^abc$", True),
        ("ABC", "(?i)abc", True),
        ("a\nb", "a.b", False),
        ("a" * 64 + "b", "(a+)+$", False),  # no catastrophic backtracking in RE2
        ("a" * 64, "(a+)+$", True),
    ],
)
def test_matches(text: str, pattern: str, expected: bool) -> None:
    assert regex.matches(text, pattern) is expected
    assert STANDARD_DISPATCH["matches"](text, pattern) is expected


def test_matches_errors() -> None:
    raises(regex.matches, "abc", "(", match="invalid regular expression")
    raises(regex.matches, "abc", "(?=a)", match="invalid regular expression")  # not RE2
    raises(regex.matches, "abc", "[", match="invalid regular expression")
    with pytest.raises(CostLimitError):
        regex.matches("abc", "a" * (regex.DEFAULT_MAX_REGEX_LENGTH + 1))
    assert regex.matches("aaa", "a" * 3, max_length=3) is True
    raises(regex.matches, "\ud800", "a", match="invalid UTF-8")
    raises(regex.matches, 1, "a", match="no such overload")


def test_matches_caches_compiled_patterns() -> None:
    before = regex._compile_regex.cache_info()
    regex.matches("x", "cache-probe-[0-9]+")
    regex.matches("cache-probe-1", "cache-probe-[0-9]+")
    after = regex._compile_regex.cache_info()
    assert after.hits >= before.hits + 1
    assert after.maxsize is not None


# ------------------------------------------------------------------ conversions


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (42, 42),
        (u(42), 42),
        (u(INT64_MAX), INT64_MAX),  # conversions/int/uint_max_exact
        (-123.456, -123),  # double_round_neg
        (1.9, 1),  # double_truncate
        (-7.9, -7),
        (11.5, 11),
        (-3.5, -3),
        (float(36028797018963968), 36028797018963968),  # double_big_exact
        (float(36028797018963969), 36028797018963968),  # double_big_precision
        (-9223372036854774784.0, -9223372036854774784),
        ("987", 987),
        ("-987", -987),
        ("+5", 5),
        ("9223372036854775807", INT64_MAX),
        ("-9223372036854775808", INT64_MIN),
        ("007", 7),
    ],
)
def test_to_int(value: object, expected: int) -> None:
    result = conv.to_int(value)
    assert result == expected
    assert type(result) is int
    assert STANDARD_DISPATCH["int"](value) == expected


@pytest.mark.parametrize(
    "value",
    [
        u(UINT64_MAX),  # conversions/int/uint_range
        u(INT64_MAX + 1),
        9223372036854775807.0,  # double_int_max_range
        -9223372036854775808.0,  # double_int_min_range
        1e99,  # double_range
        INF,
        -INF,
        NAN,
        "9223372036854775808",
        "-9223372036854775809",
        "1.5",
        "0x10",
        " 5",
        "5 ",
        "1_000",
        "",
        "-",
        "٣",  # a non-ASCII digit
    ],
)
def test_to_int_errors(value: object) -> None:
    raises(conv.to_int, value)


def test_to_int_of_timestamp() -> None:
    to_int = STANDARD_DISPATCH["int"]
    assert to_int(Timestamp(1095379199 * 10**9)) == 1095379199  # conversions/int/timestamp
    raises(conv.to_int, True, match="no such overload")
    raises(conv.to_int, None, match="no such overload")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1729, 1729),
        (INT64_MAX, INT64_MAX),
        (u(7), 7),
        (3.14159265, 3),
        (1.9, 1),
        (25.5, 25),
        (-0.0, 0),
        (1e19, 10**19),
        (float(36028797018963969), 36028797018963968),
        ("300", 300),
        ("18446744073709551615", UINT64_MAX),
    ],
)
def test_to_uint(value: object, expected: int) -> None:
    result = conv.to_uint(value)
    assert result == expected
    assert type(result) is UInt


@pytest.mark.parametrize(
    "value",
    [-1, -0.5, 6.022e23, 18446744073709551616.0, NAN, INF, "-1", "+1", "18446744073709551616", "x"],
)
def test_to_uint_errors(value: object) -> None:
    raises(conv.to_uint, value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, 0.0),
        (1000000000000, 1e12),
        (INT64_MAX, 9.223372036854775807e18),
        (u(UINT64_MAX), 1.8446744073709551615e19),
        (1.5, 1.5),
        ("0", 0.0),
        ("-0.0", -0.0),
        ("123.456", 123.456),
        ("6.02214e23", 6.02214e23),
        ("-5.43e-21", -5.43e-21),
        ("1e3", 1000.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("inf", INF),
        ("-Infinity", -INF),
        ("+Inf", INF),
    ],
)
def test_to_double(value: object, expected: float) -> None:
    result = conv.to_double(value)
    assert result == expected
    assert type(result) is float
    assert math.copysign(1.0, result) == math.copysign(1.0, expected)


def test_to_double_nan_and_errors() -> None:
    assert math.isnan(conv.to_double("NaN"))
    assert math.isnan(conv.to_double("nan"))
    for bad in ("", "1_0", " 1", "1e", "0x10", "abc", "1.2.3", "e5"):
        raises(conv.to_double, bad)
    raises(conv.to_double, True, match="no such overload")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.0, "1"),
        (123.456, "123.456"),  # conversions/string/double
        (-4.5e-3, "-0.0045"),  # double_hard
        (1.5e20, "1.5e+20"),
        (1e6, "1e+06"),
        (123456.0, "123456"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (0.0, "0"),
        (-0.0, "-0"),
        (0.1, "0.1"),
        (1e100, "1e+100"),
        (123456789012345680.0, "1.2345678901234568e+17"),
        (5e-324, "5e-324"),
        (INF, "+Inf"),
        (-INF, "-Inf"),
        (NAN, "NaN"),
    ],
)
def test_string_of_double(value: float, expected: str) -> None:
    assert conv.to_string(value) == expected
    assert conv.double_to_string(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("abc", "abc"),
        (123, "123"),
        (-456, "-456"),
        (u(9876), "9876"),
        (True, "true"),
        (False, "false"),
        (b"abc", "abc"),
        (b"\xc3\xbf", "ÿ"),  # bytes_unicode
        (Timestamp(0), "1970-01-01T00:00:00Z"),
    ],
)
def test_to_string(value: object, expected: str) -> None:
    assert conv.to_string(value) == expected
    assert STANDARD_DISPATCH["string"](value) == expected


def test_to_string_errors() -> None:
    raises(conv.to_string, b"\x00\xff", match="invalid UTF-8")  # conversions/string/bytes_invalid
    raises(conv.to_string, None, match="no such overload")
    raises(conv.to_string, [1], match="no such overload")
    assert conv.to_string(Duration(-1_500_000_000)) == conv.duration_to_string(
        Duration(-1_500_000_000)
    )


def test_to_bytes() -> None:
    assert conv.to_bytes("") == b""
    assert conv.to_bytes("ÿ") == b"\xc3\xbf"  # conversions/bytes/string_unicode
    assert conv.to_bytes(b"\xff") == b"\xff"
    raises(conv.to_bytes, "\ud800", match="invalid UTF-8")
    raises(conv.to_bytes, 1, match="no such overload")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        ("true", True),
        ("TRUE", True),
        ("True", True),
        ("t", True),
        ("1", True),
        ("false", False),
        ("FALSE", False),
        ("False", False),
        ("f", False),
        ("0", False),
    ],
)
def test_to_bool(value: object, expected: bool) -> None:
    assert conv.to_bool(value) is expected


@pytest.mark.parametrize("value", ["TrUe", "fAlSe", "yes", "", " true", "2", 1, None])
def test_to_bool_errors(value: object) -> None:
    raises(conv.to_bool, value)


def test_dyn_is_identity() -> None:
    value = [1, "a"]
    assert conv.dyn(value) is value
    assert STANDARD_DISPATCH["dyn"](value) is value


@pytest.mark.parametrize(
    ("value", "name"),
    [
        (True, "bool"),
        (0, "int"),
        (u(64), "uint"),
        (3.14, "double"),
        (None, "null_type"),
        ("foo", "string"),
        (b"\xff", "bytes"),
        ([1, "one"], "list"),
        ((1,), "list"),
        ({4: 16}, "map"),
        (Timestamp(0), "google.protobuf.Timestamp"),
        (Duration(0), "google.protobuf.Duration"),
        (values.INT_TYPE, "type"),
        (TypeValue("type"), "type"),
    ],
)
def test_type_of(value: object, name: str) -> None:
    assert values.type_of(value) == TypeValue(name)
    assert values.type_of(value) == TYPE_IDENTIFIERS[name]
    assert STANDARD_DISPATCH["type"](value) == TypeValue(name)
    assert values.type_of(values.type_of(value)) == TYPE_IDENTIFIERS["type"]


def test_type_identifiers() -> None:
    assert set(TYPE_IDENTIFIERS) == {
        "int",
        "uint",
        "double",
        "bool",
        "string",
        "bytes",
        "list",
        "map",
        "null_type",
        "type",
        "google.protobuf.Timestamp",
        "google.protobuf.Duration",
    }
    for name, value in TYPE_IDENTIFIERS.items():
        assert value.name == name
    assert values.type_of(7) != values.type_of(u(7))  # conversions/type/eq_diff
    assert values.type_of([1]) == values.type_of(["one"])  # lists_monomorphic


# ------------------------------------------------------------------ dispatch


def _decl() -> FunctionDecl:
    return FunctionDecl(
        "f",
        (
            Overload("f_int", (INT,), STRING, lambda a: f"int:{a}"),
            Overload("f_uint", (UINT,), STRING, lambda a: f"uint:{a}"),
            Overload("f_list", (ListType(INT),), STRING, lambda a: "list"),
            Overload("f_map", (MapType(STRING, INT),), STRING, lambda a: "map"),
            Overload("f_ts", (TIMESTAMP,), STRING, lambda a: "ts"),
            Overload("f_type", (TypeType(DYN),), STRING, lambda a: "type"),
            Overload("f_null", (NULL,), STRING, lambda a: "null"),
            Overload("f_two", (STRING, TypeParam("A")), STRING, lambda a, b: f"two:{b}"),
            Overload("f_dyn", (DYN, DYN), STRING, lambda a, b: "dyn"),
            Overload("f_three", (BOOL, DOUBLE, BYTES), STRING, lambda a, b, c: "three"),
        ),
    )


def test_dispatcher_picks_the_first_matching_overload() -> None:
    f = make_dispatcher(_decl())
    assert f(1) == "int:1"
    assert f(u(1)) == "uint:1u"
    assert f([]) == "list"
    assert f(("a",)) == "list"  # element types are not inspected
    assert f({}) == "map"
    assert f(Timestamp(0)) == "ts"
    assert f(values.INT_TYPE) == "type"
    assert f(None) == "null"
    assert f("s", 1) == "two:1"
    assert f("s", [1]) == "two:[1]"
    assert f(1, "s") == "dyn"
    assert f(True, 1.0, b"") == "three"
    assert f(2) == "int:2"  # from the cache


def test_dispatcher_raises_no_such_overload() -> None:
    f = make_dispatcher(_decl())
    raises(f, True, match=r"no such overload: f\(bool\)")
    raises(f, 1.5, match=r"no such overload: f\(double\)")
    raises(f, True, 1, 1, match=r"no such overload: f\(bool, int, int\)")
    raises(f, match=r"no such overload: f\(\)")
    raises(f, True, match="no such overload")  # cached negative answer


def test_dispatcher_of_fixed_arity_functions() -> None:
    add = STANDARD_DISPATCH["_+_"]
    assert add(1, 2) == 3
    assert add(u(1), u(2)) == 3
    assert type(add(u(1), u(2))) is UInt
    assert add(1.5, 1.0) == 2.5
    assert add("a", "b") == "ab"
    assert add([1], (2,)) == [1, 2]
    assert add(Timestamp(1), Duration(2)) == Timestamp(3)
    raises(add, 1, 2.0, match=r"no such overload: _\+_\(int, double\)")
    raises(add, 1, match="no such overload")
    raises(add, 1, 2, 3, match="no such overload")
    raises(STANDARD_DISPATCH["size"], "a", "b", match="no such overload")
    raises(STANDARD_DISPATCH["int"], match="no such overload")


def test_dispatcher_skips_overloads_without_impl() -> None:
    decl = FunctionDecl(
        "g", (Overload("g_decl_only", (INT,), INT), Overload("g_dyn", (DYN,), INT, len))
    )
    assert make_dispatcher(decl)("abc") == 3
    assert make_dispatcher(decl)([1]) == 1


# ------------------------------------------------------------------ stdlib table

OPERATORS = [
    "_+_",
    "_-_",
    "_*_",
    "_/_",
    "_%_",
    "-_",
    "!_",
    "_==_",
    "_!=_",
    "_<_",
    "_<=_",
    "_>_",
    "_>=_",
    "_&&_",
    "_||_",
    "_?_:_",
    "_[_]",
    "@in",
]
FUNCTIONS = [
    "size",
    "int",
    "uint",
    "double",
    "string",
    "bytes",
    "bool",
    "dyn",
    "type",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "timestamp",
    "duration",
    "getFullYear",
    "getHours",
]


def test_standard_functions_are_declared() -> None:
    for name in OPERATORS + FUNCTIONS:
        assert name in STANDARD_FUNCTIONS, name
        assert STANDARD_FUNCTIONS[name].name == name
        assert name in STANDARD_DISPATCH, name
    assert set(STANDARD_DISPATCH) == set(STANDARD_FUNCTIONS)


def test_overloads_are_unique_and_implemented() -> None:
    ids: set[str] = set()
    for decl in STANDARD_FUNCTIONS.values():
        signatures = set()
        for overload in decl.overloads:
            assert overload.id not in ids, overload.id
            ids.add(overload.id)
            assert overload.impl is not None, overload.id
            signature = (overload.params, overload.receiver)
            assert signature not in signatures, overload.id
            signatures.add(signature)


def test_standard_overload_ids() -> None:
    ids = {o.id for d in STANDARD_FUNCTIONS.values() for o in d.overloads}
    expected = {
        "add_int64",
        "add_uint64",
        "add_double",
        "add_string",
        "add_bytes",
        "add_list",
        "add_timestamp_duration",
        "subtract_timestamp_timestamp",
        "equals",
        "not_equals",
        "logical_and",
        "logical_or",
        "logical_not",
        "conditional",
        "index_list",
        "index_map",
        "in_list",
        "in_map",
        "size_string",
        "string_size",
        "size_map",
        "list_size",
        "contains_string",
        "starts_with_string",
        "ends_with_string",
        "matches",
        "matches_string",
        "int64_to_uint64",
        "uint64_to_int64",
        "double_to_int64",
        "string_to_double",
        "bytes_to_string",
        "timestamp_to_string",
        "duration_to_string",
        "timestamp_to_int64",
        "to_dyn",
        "type",
        "negate_int64",
        "negate_double",
        "modulo_uint64",
    }
    assert expected <= ids
    for prefix in ("less", "less_equals", "greater", "greater_equals"):
        for suffix in (
            "bool",
            "int64",
            "uint64",
            "double",
            "string",
            "bytes",
            "timestamp",
            "duration",
            "int64_uint64",
            "int64_double",
            "uint64_int64",
            "uint64_double",
            "double_int64",
            "double_uint64",
        ):
            assert f"{prefix}_{suffix}" in ids


def test_generic_signatures() -> None:
    a = TypeParam("A")
    (eq,) = STANDARD_FUNCTIONS["_==_"].overloads
    assert eq.params == (a, a)
    assert eq.result == BOOL
    index = {o.id: o for o in STANDARD_FUNCTIONS["_[_]"].overloads}
    assert index["index_list"].params == (ListType(a), INT)
    assert index["index_list"].result == a
    assert isinstance(index["index_map"].params[0], MapType)
    (cond,) = STANDARD_FUNCTIONS["_?_:_"].overloads
    assert cond.params == (BOOL, a, a)
    (type_fn,) = STANDARD_FUNCTIONS["type"].overloads
    assert type_fn.result == TypeType(a)
    (dyn,) = STANDARD_FUNCTIONS["dyn"].overloads
    assert dyn.result == DYN
    less = {o.id: o for o in STANDARD_FUNCTIONS["_<_"].overloads}
    assert less["less_int64_double"].params == (INT, DOUBLE)
    receivers = {o.id for o in STANDARD_FUNCTIONS["matches"].overloads if o.receiver}
    assert receivers == {"matches_string"}
    assert all(o.receiver for o in STANDARD_FUNCTIONS["contains"].overloads)


_PERMISSIVE = {"equals", "not_equals", "to_dyn", "type"}


@pytest.mark.parametrize(
    "overload",
    [
        o
        for d in STANDARD_FUNCTIONS.values()
        for o in d.overloads
        if getattr(o.impl, "__module__", "") == rt.__name__ and o.id not in _PERMISSIVE
    ],
    ids=lambda o: o.id,
)
def test_runtime_impls_raise_eval_errors_on_foreign_values(overload: Overload) -> None:
    assert overload.impl is not None
    with pytest.raises(EvalError):
        overload.impl(*([object()] * len(overload.params)))


def test_dispatch_of_comparisons_and_conversions() -> None:
    assert STANDARD_DISPATCH["_==_"](1, 1.0) is True
    assert STANDARD_DISPATCH["_!=_"]("a", 1) is True
    assert STANDARD_DISPATCH["_>=_"](Timestamp(2), Timestamp(1)) is True
    assert STANDARD_DISPATCH["uint"](1.5) == 1
    assert STANDARD_DISPATCH["double"]("1e3") == 1000.0
    assert STANDARD_DISPATCH["bool"]("f") is False
    assert STANDARD_DISPATCH["bytes"]("a") == b"a"
    assert STANDARD_DISPATCH["size"]({"a": 1}) == 1
    assert STANDARD_DISPATCH["contains"]("abc", "b") is True
    assert STANDARD_DISPATCH["!_"](False) is True
    assert STANDARD_DISPATCH["_?_:_"](True, 1, "x") == 1
    assert STANDARD_DISPATCH["_%_"](-7, 2) == -1
    assert STANDARD_DISPATCH["_/_"](1.0, 0.0) == INF
    raises(STANDARD_DISPATCH["_/_"], 1, 0, match="divide by zero")
    raises(STANDARD_DISPATCH["string"], None, match=r"no such overload: string\(null_type\)")
    assert STANDARD_DISPATCH["getFullYear"](Timestamp(0)) == 1970
