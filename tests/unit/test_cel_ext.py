"""The CEL extension libraries inside the compiler: checking, both bodies, cost.

Function-by-function semantics are in tests/conformance/ext; here: how the
extensions behave with declared and ``dyn`` variables (the fast body calls an
implementation directly, so every implementation checks its argument types),
what the checker rejects, and what the cost budget charges.
"""

from __future__ import annotations

import pytest

from arbiter.policies import cel


def _run(expr: str, **activation: object) -> object:
    env = cel.Env(
        variables={
            "s": cel.STRING,
            "n": cel.INT,
            "d": cel.DOUBLE,
            "u": cel.UINT,
            "x": cel.DYN,
            "names": cel.ListType(cel.STRING),
            "nums": cel.ListType(cel.INT),
        }
    )
    return cel.compile(expr, env).evaluate(activation)


def test_string_functions_on_declared_variables() -> None:
    assert _run("s.substring(1, 3).upperAscii()", s="abcd") == "BC"
    assert _run("names.join('-').split('-', n)", names=["a", "b", "c"], n=2) == ["a", "b-c"]
    assert _run("'%s=%d'.format([s, n])", s="k", n=4) == "k=4"


def test_dyn_receiver_of_another_type_is_no_such_overload_not_a_python_result() -> None:
    # bytes has .lower() and [::-1] in Python: the implementation must refuse it.
    for expr in ("x.lowerAscii()", "x.reverse()", "x.trim()", "x.split(',')"):
        with pytest.raises(cel.EvalError, match="no such overload"):
            _run(expr, x=b"A,B")


def test_dyn_arguments_of_math_functions_are_checked_at_run_time() -> None:
    assert _run("math.greatest(x, 2)", x=3.5) == 3.5
    with pytest.raises(cel.EvalError, match="no such overload"):
        _run("math.greatest(x, 2)", x="3")
    with pytest.raises(cel.EvalError, match="no such overload"):
        _run("math.abs(x)", x=True)
    with pytest.raises(cel.EvalError, match="no such overload"):
        _run("math.bitAnd(x, 1)", x=1.0)


def test_declared_variable_bound_to_another_type_takes_the_strict_body() -> None:
    with pytest.raises(cel.EvalError, match="no such overload"):
        _run("math.ceil(d)", d=1)  # an int where a double is declared
    assert _run("math.ceil(d)", d=1.5) == 2.0


def test_variadic_greatest_and_least_in_a_comprehension() -> None:
    assert _run("nums.map(i, math.greatest(i, 2, 3u))", nums=[1, 5]) == [3, 5]
    assert _run("math.least(nums)", nums=[4, -2, 9]) == -2


@pytest.mark.parametrize(
    "expr",
    [
        "'abc'.charAt('1')",
        "math.ceil(1)",
        "math.greatest('a', 'b')",
        "math.bitAnd(1, 2u)",
        "[1, 2].join()",
        "'x'.format('y')",
        "strings.quote(1)",
    ],
)
def test_checker_rejects_ill_typed_extension_calls(expr: str) -> None:
    with pytest.raises(cel.CompileError, match="no matching overload"):
        cel.compile(expr)


def test_replace_is_charged_before_it_builds_the_result() -> None:
    big = "a" * 20_000
    # 20,000 * 20,001 characters would be built; the estimate refuses first.
    with pytest.raises(cel.CostLimitError):
        _run("s.replace('', s)", s=big)
    assert _run("s.replace('', '-')", s="ab") == "-a-b-"


def test_format_and_join_of_built_values_are_charged() -> None:
    with pytest.raises(cel.CostLimitError):
        _run("'%s'.format([names.map(a, names.join(a))])", names=["x" * 400] * 400)


def test_string_functions_on_built_values_are_charged() -> None:
    env = cel.Env(variables={"s": cel.STRING}, limits=cel.Limits(max_cost=50))
    program = cel.compile("(s + s).indexOf('z') + (s + s).lastIndexOf('z')", env)
    with pytest.raises(cel.CostLimitError):
        program.evaluate({"s": "a" * 5_000})


def test_calls_on_literals_are_folded_at_compile_time() -> None:
    program = cel.compile("'a,b'.split(',').join('+') + strings.quote('q')")
    assert program.evaluate({}) == 'a+b"q"'
    assert "'\"q\"'" in program.python_source  # strings.quote('q') is a constant


def test_lists_and_sets_on_declared_variables() -> None:
    assert _run("nums.sort().slice(0, 2)", nums=[5, 3, 9]) == [3, 5]
    assert _run("sets.contains(nums, [n])", nums=[1, 2], n=2) is True
    assert _run("names.distinct().reverse()", names=["a", "b", "a"]) == ["b", "a"]
    with pytest.raises(cel.EvalError, match="no such overload"):
        _run("x.sort()", x="cba")  # a string is not a list, whatever Python thinks


def test_lists_range_is_charged_before_it_allocates() -> None:
    with pytest.raises(cel.CostLimitError):
        _run("size(lists.range(n)) > 0", n=10**9)
    assert _run("size(lists.range(n))", n=1_000) == 1_000


def test_distinct_and_sets_of_scalars_are_linear_of_containers_quadratic() -> None:
    scalars = list(range(2_000))
    assert _run("size(nums.distinct())", nums=scalars) == 2_000
    assert _run("sets.equivalent(nums, nums)", nums=scalars) is True
    nested = cel.Env(variables={"l": cel.ListType(cel.ListType(cel.INT))})
    program = cel.compile("size(l.distinct())", nested)
    with pytest.raises(cel.CostLimitError):
        program.evaluate({"l": [[i] for i in range(200)]})


def test_flatten_of_a_built_list_is_charged() -> None:
    with pytest.raises(cel.CostLimitError):
        _run("size(nums.map(i, nums).flatten()) > 0", nums=list(range(1_000)))


def _profile_env() -> cel.Env:
    return cel.Env(
        variables={
            "profile": cel.MapType(cel.STRING, cel.DYN),
            "tiers": cel.MapType(cel.STRING, cel.INT),
            "x": cel.DYN,
        }
    )


def test_optional_select_on_declared_and_dyn_maps() -> None:
    env = _profile_env()
    program = cel.compile('profile.?address.city.orValue("unknown")', env)
    assert (
        program.evaluate({"profile": {"address": {"city": "Bonn"}}, "tiers": {}, "x": 0}) == "Bonn"
    )
    assert program.evaluate({"profile": {}, "tiers": {}, "x": 0}) == "unknown"
    assert program.evaluate({"profile": {"address": {}}, "tiers": {}, "x": 0}) == "unknown"
    typed = cel.compile('tiers[?"gold"].orValue(0) + 1', env)
    assert typed.result_type == cel.INT
    assert typed.evaluate({"profile": {}, "tiers": {"gold": 3}, "x": 0}) == 4


def test_optional_functions_refuse_non_optional_dyn_values() -> None:
    env = _profile_env()
    for expr in ("x.hasValue()", "x.value()", "x.orValue(1)", "x.or(optional.none())"):
        with pytest.raises(cel.EvalError, match="no such overload"):
            cel.compile(expr, env).evaluate({"profile": {}, "tiers": {}, "x": [1]})
    with pytest.raises(cel.EvalError, match="does not support field selection"):
        cel.compile("x.?a", env).evaluate({"profile": {}, "tiers": {}, "x": "a"})


def test_optional_literal_entries_are_type_checked() -> None:
    with pytest.raises(cel.CompileError, match="optional_type"):
        cel.compile("[?1, 2]")
    with pytest.raises(cel.CompileError, match="optional_type"):
        cel.compile('{?"a": "b"}')
    program = cel.compile('[?tiers[?"a"], ?tiers[?"b"]]', _profile_env())
    assert program.result_type == cel.ListType(cel.INT)
    assert program.evaluate({"profile": {}, "tiers": {"b": 2}, "x": 0}) == [2]


def test_optional_syntax_errors_are_located() -> None:
    with pytest.raises(cel.CompileError, match="1:4"):
        cel.compile("a.?(b)")
