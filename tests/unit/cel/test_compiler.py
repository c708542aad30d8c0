"""Unit tests of the compile pipeline: checking, both generated bodies, references."""

from __future__ import annotations

from typing import ClassVar

import pytest

from arbiter.policies import cel
from arbiter.policies.cel import DYN, INT, STRING, ListType, MapType

PROFILE = MapType(STRING, DYN)


def run(expr: str, env: cel.Env | None = None, **activation: object) -> object:
    return cel.compile(expr, env).evaluate(activation)


def test_simple_predicate_over_a_declared_map() -> None:
    env = cel.Env(variables={"profile": PROFILE})
    program = cel.compile('profile.country == "DE" && profile.age >= 18', env)
    assert program.evaluate({"profile": {"country": "DE", "age": 30}}) is True
    assert program.evaluate({"profile": {"country": "US", "age": 30}}) is False


def test_references_name_the_attributes_read() -> None:
    env = cel.Env(variables={"profile": PROFILE, "request": PROFILE})
    program = cel.compile('profile.age > 1 && request.channel == "push"', env)
    assert program.references == {"profile", "profile.age", "request", "request.channel"}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("false && m.missing", False),
        ("m.missing && false", False),
        ("true || m.missing", True),
        ("m.missing || true", True),
        ("[1, 2].all(x, m.missing) || true", True),
        ("[0, 1].exists(x, 1 / x > 0)", True),
        ("[0, 1].all(x, 1 / x > 5)", False),
    ],
)
def test_errors_are_absorbed_the_way_the_spec_says(expr: str, expected: bool) -> None:
    env = cel.Env(variables={"m": PROFILE})
    assert run(expr, env, m={}) is expected


@pytest.mark.parametrize(
    "expr",
    [
        "m.missing && true",
        "true && m.missing",
        "9223372036854775807 + 1",
        "-9223372036854775808 - 1",
        "1 / 0",
        "1 % 0",
        "[1, 2][2]",
        "[1, 2][-1]",
        "{'a': 1}['b']",
        "[0, 1].exists_one(x, 1 / x > 0)",
    ],
)
def test_errors_surface_as_eval_errors(expr: str) -> None:
    env = cel.Env(variables={"m": PROFILE})
    with pytest.raises(cel.EvalError):
        run(expr, env, m={})


def test_integer_division_truncates_toward_zero() -> None:
    assert run("-7 / 2") == -3
    assert run("-7 % 2") == -1


def test_unknown_attribute_is_a_compile_error_with_position() -> None:
    env = cel.Env(variables={"age": INT})
    with pytest.raises(cel.CompileError) as info:
        cel.compile("age > 1 &&\n  agee < 3", env)
    (issue,) = info.value.issues
    assert (issue.line, issue.column) == (2, 3)
    assert "agee" in issue.message


def test_ill_typed_comparison_is_a_compile_error() -> None:
    env = cel.Env(variables={"age": INT})
    with pytest.raises(cel.CompileError, match="no matching overload"):
        cel.compile('age > "18"', env)


LISTS = cel.Env(
    variables={
        "li": ListType(INT),
        "ls": ListType(STRING),
        "ld": ListType(DYN),
        "mi": MapType(STRING, INT),
        "ms": MapType(STRING, STRING),
    }
)


@pytest.mark.parametrize(
    "expr",
    ["li == ls", "li != ls", "true ? li : ls", "li + ls", "mi == ms", "[li][0] == ls"],
)
def test_aggregates_of_different_element_types_do_not_unify(expr: str) -> None:
    """As the reference checker: `li == ls` is always false, so it is a mistake."""
    with pytest.raises(cel.CompileError, match="no matching overload"):
        cel.compile(expr, LISTS)


@pytest.mark.parametrize(
    ("expr", "result_type"),
    [
        ("li == ld", "bool"),
        ("li == []", "bool"),
        ("true ? li : []", "list(int)"),
        ("true ? li : ld", "list(dyn)"),
        ("li == [1, 'a']", "bool"),
        ("mi == {}", "bool"),
    ],
)
def test_aggregates_unify_through_dyn(expr: str, result_type: str) -> None:
    assert str(cel.compile(expr, LISTS).result_type) == result_type


def test_every_issue_is_reported_sorted() -> None:
    with pytest.raises(cel.CompileError) as info:
        cel.compile("a + b")
    assert [i.column for i in info.value.issues] == [1, 5]


def test_comprehension_variables_shadow_and_never_leak() -> None:
    env = cel.Env(variables={"x": INT, "xs": ListType(INT)})
    assert run("xs.map(x, x * 2) == [2, 4] && x == 7", env, x=7, xs=[1, 2]) is True


def test_missing_variable_is_an_eval_error() -> None:
    env = cel.Env(variables={"x": INT})
    with pytest.raises(cel.EvalError, match="not bound"):
        run("x > 1", env)


def test_iteration_budget_stops_nested_comprehensions() -> None:
    env = cel.Env(variables={"xs": ListType(INT)}, limits=cel.Limits(max_cost=1_000))
    program = cel.compile("xs.all(a, xs.all(b, a + b >= 0))", env)
    with pytest.raises(cel.CostLimitError):
        program.evaluate({"xs": list(range(100))})


def test_domain_functions_use_the_extension_mechanism() -> None:
    segments = cel.OpaqueType("test.Segments")

    def contains(value: object, name: object) -> bool:
        assert isinstance(value, frozenset)
        return name in value

    decl = cel.FunctionDecl(
        "has_segment",
        (cel.Overload("segments_has", (segments, STRING), cel.BOOL, contains, receiver=True),),
    )
    env = cel.Env(variables={"segments": segments}).with_functions(decl)
    program = cel.compile('segments.has_segment("vip")', env)
    assert program.evaluate({"segments": frozenset({"vip"})}) is True
    with pytest.raises(cel.CompileError, match="field selection"):
        cel.compile("segments.vip", env)


def test_generated_code_never_contains_expression_identifiers() -> None:
    env = cel.Env(variables={"profile": PROFILE})
    program = cel.compile("profile.__class__ == 1 && [1].all(os, os > 0)", env)
    source = program.python_source
    assert "__class__" not in source.replace("'__class__'", "")
    assert " os " not in source
    assert program.evaluate({"profile": {"__class__": 1}}) is True


def test_unchecked_mode_dispatches_dynamically() -> None:
    env = cel.Env(variables={"x": DYN}, disable_check=True)
    assert run("x + 1", env, x=2) == 3
    assert run("x + 'b'", env, x="a") == "ab"
    with pytest.raises(cel.EvalError):
        run("x + 1", env, x="a")


@pytest.mark.parametrize(
    "expr",
    [
        "[dyn(1) > 0].all(x, x)",
        "[1].all(x, [dyn(x) > 0].all(z, z))",
        "[[dyn(2) > 1]].all(y, y.all(z, z))",
    ],
)
def test_guarded_dyn_comparisons_inside_comprehension_ranges(expr: str) -> None:
    # Python forbids `:=` in a comprehension's iterable; the generator must not emit it there.
    assert run(expr) is True


@pytest.mark.parametrize(
    ("value", "expected"),
    [(30, True), (17.5, False), (2**60, True)],
)
def test_guarded_dyn_comparison_matches_cel(value: object, expected: bool) -> None:
    env = cel.Env(variables={"m": PROFILE})
    assert run("m.x >= 18", env, m={"x": value}) is expected


def test_guarded_dyn_comparison_rejects_bools_like_cel() -> None:
    env = cel.Env(variables={"m": PROFILE})
    with pytest.raises(cel.EvalError, match="no such overload"):
        run("m.x >= 18", env, m={"x": True})
    assert run("m.x == 1", env, m={"x": True}) is False


def test_constant_calls_are_folded_and_errors_stay_at_run_time() -> None:
    program = cel.compile('duration("168h") > duration("1h")')
    assert "duration" not in program.python_source.split("def _evaluate")[1]
    assert program.evaluate({}) is True
    with pytest.raises(cel.EvalError):
        cel.compile('duration("bogus") > duration("1h")').evaluate({})


TYPED_NUMBERS = cel.Env(variables={"i": INT, "u": cel.UINT, "d": cel.DOUBLE})


@pytest.mark.parametrize(
    ("expr", "activation", "expected"),
    [
        # The integer converts to the nearest double before comparing, on the
        # typed fast path as on the dyn() path and in cel-go / cel-cpp.
        ("i >= d", {"i": 2**63 - 1, "d": 2.0**63}, True),
        ("i > d", {"i": 2**53 + 1, "d": 2.0**53}, False),
        ("d < i", {"i": 2**53 + 1, "d": 2.0**53}, False),
        ("d <= i", {"i": 2**63 - 1, "d": 2.0**63}, True),
        ("u > d", {"u": cel.UInt(2**53 + 1), "d": 2.0**53}, False),
        ("u >= d", {"u": cel.UInt(2**64 - 1), "d": 2.0**64}, True),
        ("i < u", {"i": 2**53 + 1, "u": cel.UInt(2**53 + 2)}, True),  # int/uint: exact
    ],
)
def test_typed_mixed_numeric_ordering_converts_the_integer(
    expr: str, activation: dict[str, object], expected: bool
) -> None:
    assert cel.compile(expr, TYPED_NUMBERS).evaluate(activation) is expected
    dyn_expr = expr.replace(expr[0], f"dyn({expr[0]})", 1)
    assert cel.compile(dyn_expr, TYPED_NUMBERS).evaluate(activation) is expected


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("{true: 'a', 1: 'b'}[true]", "a"),
        ("{true: 'a', 1: 'b'}[1]", "b"),
        ("size({true: 'a', 1: 'b', 1u: 'c'}) == 3", cel.EvalError),
        ("{true: 'a', 1: 'b'}.map(k, k)", [True, 1]),
        ("{true: 'a', 1: 'b'}.all(k, k == true || k == 1)", True),
        ("{true: 'a', 1: 'b'}.transformMap(k, v, v + v)[true]", "aa"),
        ("[true, 1].transformMapEntry(i, k, {k: i})[1]", 1),
        ("{true: 'a', 1: 'b'} == {1: 'b', true: 'a'}", True),
    ],
)
def test_true_and_one_are_different_map_keys(expr: str, expected: object) -> None:
    program = cel.compile(expr)
    if expected is cel.EvalError:
        with pytest.raises(cel.EvalError, match="repeated key"):
            program.evaluate({})
    else:
        assert program.evaluate({}) == expected


@pytest.mark.parametrize(
    ("expr", "variables", "activation"),
    [
        ("!b", {"b": cel.BOOL}, {"b": 1}),
        ("b && true", {"b": cel.BOOL}, {"b": 1}),
        ("b ? 1 : 2", {"b": cel.BOOL}, {"b": "yes"}),
        ("i + 1 == 2", {"i": INT}, {"i": True}),
        ("i > 0", {"i": INT}, {"i": True}),
        ("s + 'a' == 'ba'", {"s": STRING}, {"s": [1, 2]}),
        ("s.startsWith('a')", {"s": STRING}, {"s": b"abc"}),
        ("l[0] == 1", {"l": ListType(INT)}, {"l": {0: 1}}),
    ],
)
def test_values_not_of_their_declared_type_are_not_trusted(
    expr: str, variables: dict[str, cel.Type], activation: dict[str, object]
) -> None:
    """The fast body checks each variable's class first; a mismatch gets CEL's
    dynamic semantics from the strict body (here: no matching overload)."""
    program = cel.compile(expr, cel.Env(variables=variables))
    with pytest.raises(cel.EvalError, match="no such overload"):
        program.evaluate(activation)


def test_a_wrong_typed_value_in_an_untaken_branch_does_not_matter() -> None:
    env = cel.Env(variables={"b": cel.BOOL, "i": INT})
    assert cel.compile("b || i > 0", env).evaluate({"b": True, "i": "x"}) is True
    assert cel.compile("b || i > 0", env).evaluate({"b": True}) is True


class _Host:
    """A host object: its Python protocol must never run."""

    calls: ClassVar[list[str]] = []

    def __eq__(self, other: object) -> bool:
        self.calls.append("__eq__")
        return True

    def __hash__(self) -> int:
        return 0


@pytest.mark.parametrize(
    ("expr", "variables", "expected"),
    [
        ("h == h", {"h": cel.OpaqueType("host.Thing")}, True),
        ("h != h", {"h": cel.OpaqueType("host.Thing")}, False),
        ("h == k", {"h": cel.OpaqueType("host.Thing"), "k": cel.OpaqueType("host.Thing")}, False),
        ("h == h", {"h": DYN}, True),
        ("[h] == [k]", {"h": DYN, "k": DYN}, False),
        ("'a' in [h]", {"h": DYN}, False),
        ("h in ['a', 'b']", {"h": DYN}, False),
    ],
)
def test_host_objects_compare_by_identity(
    expr: str, variables: dict[str, cel.Type], expected: bool
) -> None:
    _Host.calls.clear()
    program = cel.compile(expr, cel.Env(variables=variables))
    assert program.evaluate({"h": _Host(), "k": _Host()}) is expected
    assert _Host.calls == []


@pytest.mark.parametrize(
    "expr",
    ["!" * 5_000 + "true", "-" * 5_000 + "1", "1" + " + 1" * 20_000, "[" * 3_000 + "]" * 3_000],
)
def test_raised_limits_never_let_recursion_escape_compile(expr: str) -> None:
    limits = cel.Limits(
        max_nesting_depth=100_000, max_ast_nodes=1_000_000, max_expression_length=10_000_000
    )
    with pytest.raises(cel.CompileError, match="nests too deeply"):
        cel.compile(expr, cel.Env(limits=limits))
