"""Differential tests: Arbiter's CEL compiler against Google's CEL runtime (cel-expr-python).

Both engines get the same expression, the same declared variables and the
same activation. They *agree* when

- both produce a value and the values are equal including their CEL type
  (``1``, ``1u`` and ``1.0`` differ; NaN equals NaN; map order is ignored),
  see :func:`oracle.cel_equal`; or
- both fail. Where the failure happens does not matter: a compile-time type
  error in Arbiter against a runtime error in the oracle (or the other way
  round) is agreement-in-error, because the expression has no value either
  way and a decision service prefers the rejection at load time.

Everything else is a disagreement and fails the test, unless an entry of
:data:`KNOWN_DIFFERENCES` explicitly matches it: a deliberate spec choice of
Arbiter's, or a place where cel-cpp departs from the CEL specification (the
conformance case decides), each with its reason. Every excused disagreement is counted and listed in
the pytest terminal summary; each entry carries an example that must still
show the difference, so the list cannot go stale silently.

Sources of expressions:

- the CEL conformance cases in ``../shared/conformance/cel`` that need no
  protobuf messages, enums or containers and whose values the oracle's
  Python binding can express;
- hypothesis-generated, well-typed expressions (:mod:`celgen`), derandomized
  and database-free so every run checks the same 3,000 examples.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pytest

pytest.importorskip("cel_expr_python")

import celgen
import oracle
from hypothesis import HealthCheck, given, settings

from arbiter.policies import cel
from arbiter.server.cli_cel import load_harness

_harness = load_harness()
SuiteUnsupported = _harness.Unsupported
UnsupportedFeature = _harness.UnsupportedFeature
case_id = _harness.case_id
decode_value = _harness.decode_value
parse_decl = _harness.parse_decl

CONFORMANCE_DIR = Path(__file__).resolve().parents[2].parent / "shared/conformance/cel"


# ---------------------------------------------------------------------------
# Outcomes


@dataclass(frozen=True)
class Outcome:
    """What one engine made of an expression."""

    kind: Literal["value", "error"]
    value: object = None
    phase: str = ""  # "compile" or "eval" for errors
    message: str = ""

    def __str__(self) -> str:
        if self.kind == "value":
            return f"value {oracle.describe(self.value)}"
        first_line = self.message.strip().splitlines()[0] if self.message.strip() else ""
        return f"{self.phase} error: {first_line}"


def run_arbiter(expr: str, env: cel.Env, activation: Mapping[str, object]) -> Outcome:
    """Compile and evaluate with Arbiter. Any exception other than a
    :class:`cel.CelError` is an Arbiter bug and propagates (with the expression)."""
    try:
        try:
            program = cel.compile(expr, env)
        except cel.CompileError as exc:
            return Outcome("error", phase="compile", message=str(exc))
        try:
            return Outcome("value", program.evaluate(activation))
        except cel.EvalError as exc:
            return Outcome("error", phase="eval", message=str(exc))
    except Exception as exc:
        exc.add_note(f"Arbiter crashed on {expr!r}")
        raise


def run_oracle(
    expr: str,
    env: oracle.OracleEnv,
    activation: Mapping[str, object],
    *,
    disable_check: bool = False,
) -> Outcome:
    """Compile and evaluate with cel-expr-python; :class:`oracle.Unsupported` propagates."""
    try:
        value = env.compile(expr, disable_check=disable_check).evaluate(activation)
    except oracle.OracleError as exc:
        return Outcome("error", phase=exc.phase, message=exc.message)
    return Outcome("value", value)


def agree(ours: Outcome, theirs: Outcome) -> bool:
    if ours.kind == "error" or theirs.kind == "error":
        return ours.kind == theirs.kind
    return oracle.cel_equal(ours.value, theirs.value)


# ---------------------------------------------------------------------------
# Documented, deliberate differences


@dataclass(frozen=True)
class Example:
    """An input that shows a known difference today."""

    expr: str
    variables: Mapping[str, cel.Type] = field(default_factory=dict)
    activation: Mapping[str, object] = field(default_factory=dict)
    disable_check: bool = False


@dataclass(frozen=True)
class KnownDifference:
    """A systematic disagreement that is not an Arbiter bug.

    ``side`` says whose behaviour departs: ``"arbiter"`` for a deliberate
    choice of ours, ``"oracle"`` where cel-cpp departs from the CEL
    specification (the conformance case named in the reason decides).
    ``applies(expr, ours, theirs)`` must single out exactly this cause.
    """

    name: str
    side: Literal["arbiter", "oracle"]
    reason: str
    applies: Callable[[str, Outcome, Outcome], bool]
    example: Example


def _ours_failed_with(pattern: str) -> Callable[[str, Outcome, Outcome], bool]:
    regex = re.compile(pattern)

    def applies(expr: str, ours: Outcome, theirs: Outcome) -> bool:
        return ours.kind == "error" and regex.search(ours.message) is not None

    return applies


def _oracle_misses_qualified_binding(expr: str, ours: Outcome, theirs: Outcome) -> bool:
    return (
        ours.kind == "value"
        and theirs.kind == "error"
        and re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+", expr) is not None
        and "No value with name" in theirs.message
    )


def _oracle_misses_heterogeneous_repeated_key(expr: str, ours: Outcome, theirs: Outcome) -> bool:
    return ours.kind == "error" and "repeated key" in ours.message and theirs.kind == "value"


def _normalise_nonfinite_text(value: object) -> object:
    """Spell ±infinity and NaN inside strings one way (both sides alike)."""
    if isinstance(value, str):
        for spelling, canonical in (("+Inf", "inf"), ("-Inf", "-inf"), ("-nan", "nan")):
            value = value.replace(spelling, canonical)
        return value.replace("NaN", "nan")
    if isinstance(value, list | tuple):
        return [_normalise_nonfinite_text(v) for v in value]
    if isinstance(value, dict):
        return {
            _normalise_nonfinite_text(k): _normalise_nonfinite_text(v) for k, v in value.items()
        }
    return value


def _same_but_nonfinite_spelling(expr: str, ours: Outcome, theirs: Outcome) -> bool:
    return (
        ours.kind == theirs.kind == "value"
        and "string(" in expr
        and oracle.cel_equal(
            _normalise_nonfinite_text(ours.value), _normalise_nonfinite_text(theirs.value)
        )
    )


KNOWN_DIFFERENCES: tuple[KnownDifference, ...] = (
    KnownDifference(
        name="numeric-text-whitespace",
        side="arbiter",
        reason=(
            "int()/uint()/double() of a string: cel-cpp (absl::SimpleAtoi/SimpleAtod) "
            "skips surrounding whitespace; Arbiter follows cel-go (strconv.Parse*), "
            "which rejects it"
        ),
        applies=_ours_failed_with(
            r"cannot convert string '(\s[^']*|[^']*\s)' to (int|uint|double)"
        ),
        example=Example('int(" 1")'),
    ),
    KnownDifference(
        name="uint-text-plus-sign",
        side="arbiter",
        reason=(
            'uint("+5"): cel-cpp accepts a leading "+"; Arbiter follows cel-go '
            "(strconv.ParseUint), which rejects any sign"
        ),
        applies=_ours_failed_with(r"cannot convert string '\+[^']*' to uint"),
        example=Example('uint("+5")'),
    ),
    KnownDifference(
        name="double-text-hex",
        side="arbiter",
        reason=(
            'double("0x10"): cel-cpp (absl::SimpleAtod) reads hexadecimal; Arbiter, like '
            "cel-go, accepts decimal text only"
        ),
        applies=_ours_failed_with(r"cannot convert string '[+-]?0[xX][^']*' to double"),
        example=Example('double("0x10")'),
    ),
    KnownDifference(
        name="string-of-nonfinite-double",
        side="arbiter",
        reason=(
            'string(double) spells infinities and NaN as cel-go does ("+Inf", "-Inf", '
            '"NaN"); cel-cpp writes C\'s "inf", "-inf", "nan"/"-nan". Finite values are '
            "formatted identically (checked by the generated tests)"
        ),
        applies=_same_but_nonfinite_spelling,
        example=Example("string(1.0/0.0)"),
    ),
    KnownDifference(
        name="duration-int64-range",
        side="arbiter",
        reason=(
            "durations are one int64 of nanoseconds (about ±292 years), per cel-spec "
            '"Overflow" and as in cel-go (policies/cel/timefns.py); cel-cpp allows '
            "google.protobuf.Duration's ±10,000 years, so a duration (or a timestamp "
            "difference) beyond ±292 years is a value there and a range error here"
        ),
        applies=_ours_failed_with(r"duration out of range"),
        example=Example('duration("315576000000s")'),
    ),
    KnownDifference(
        name="oracle-unchecked-qualified-identifier",
        side="oracle",
        reason=(
            "without the type checker cel-expr-python does not resolve a dotted "
            "variable name such as `a.b.c` against the activation (looks up `a`); "
            "the spec resolves it "
            "(fields/qualified_identifier_resolution/qualified_identifier_resolution_unchecked)"
        ),
        applies=_oracle_misses_qualified_binding,
        example=Example("a.b.c", {"a.b.c": cel.STRING}, {"a.b.c": "yeah"}, disable_check=True),
    ),
    KnownDifference(
        name="oracle-heterogeneous-repeated-key",
        side="oracle",
        reason=(
            "a map literal with keys equal across numeric types ({0: 1, 0u: 2}) must fail "
            "(fields/qualified_identifier_resolution/map_value_repeat_key_heterogeneous); "
            "cel-cpp only detects repeated keys of the same type"
        ),
        applies=_oracle_misses_heterogeneous_repeated_key,
        example=Example("{0: 1, 0u: 2}[0]"),
    ),
)

KNOWN_DIFFERENCE_HITS: Counter[str] = Counter()


def _mentioned(expr: str, activation: Mapping[str, object]) -> dict[str, object]:
    return {k: v for k, v in activation.items() if re.search(rf"\b{re.escape(k)}\b", expr)}


def check(expr: str, ours: Outcome, theirs: Outcome, activation: Mapping[str, object]) -> None:
    """Fail unless the engines agree or a known difference explains it."""
    if agree(ours, theirs):
        return
    for known in KNOWN_DIFFERENCES:
        if known.applies(expr, ours, theirs):
            KNOWN_DIFFERENCE_HITS[known.name] += 1
            return
    bindings = ", ".join(
        f"{k}={oracle.describe(v)}" for k, v in _mentioned(expr, activation).items()
    )
    raise AssertionError(
        f"engines disagree on {expr!r}\n"
        f"  bindings: {bindings or '(none)'}\n"
        f"  arbiter:  {ours}\n"
        f"  oracle:   {theirs}"
    )


@pytest.mark.parametrize("known", KNOWN_DIFFERENCES, ids=lambda k: k.name)
def test_known_difference_still_exists(known: KnownDifference) -> None:
    """Each documented difference must still show; remove the entry when it does not."""
    assert known.reason
    ex = known.example
    env = cel.Env(variables=dict(ex.variables), disable_check=ex.disable_check)
    ours = run_arbiter(ex.expr, env, ex.activation)
    theirs = run_oracle(
        ex.expr, oracle.OracleEnv(ex.variables), ex.activation, disable_check=ex.disable_check
    )
    assert not agree(ours, theirs), f"{known.name}: engines now agree; remove the entry"
    assert known.applies(ex.expr, ours, theirs), (str(ours), str(theirs))


# ---------------------------------------------------------------------------
# Conformance cases


def _load_conformance() -> list[dict[str, Any]]:
    if not CONFORMANCE_DIR.is_dir():
        return []
    cases: list[dict[str, Any]] = []
    for path in sorted(CONFORMANCE_DIR.glob("*.json")):
        cases.extend(json.loads(path.read_text(encoding="utf-8"))["tests"])
    return cases


_CONFORMANCE = _load_conformance()


def _contains_suite_unsupported(value: object) -> bool:
    if isinstance(value, SuiteUnsupported):
        return True
    if isinstance(value, list | tuple):
        return any(map(_contains_suite_unsupported, value))
    if isinstance(value, dict):
        return any(map(_contains_suite_unsupported, [*value.keys(), *value.values()]))
    return False


@pytest.mark.skipif(not _CONFORMANCE, reason=f"conformance data not found in {CONFORMANCE_DIR}")
@pytest.mark.parametrize("case", _CONFORMANCE, ids=case_id)
def test_conformance_case_agrees(case: dict[str, Any]) -> None:
    if case.get("requires"):
        pytest.skip(f"requires {', '.join(case['requires'])}")
    if case.get("container"):
        pytest.skip("needs a container")
    if case.get("check_only") or case.get("disable_macros"):
        pytest.skip("compile-only or macro-less case")
    variables: dict[str, cel.Type] = {}
    for entry in case.get("type_env") or []:
        try:
            name, declared = parse_decl(entry.get("decl", entry))
        except UnsupportedFeature as exc:
            pytest.skip(f"declaration needs {exc}")
        if not isinstance(declared, cel.Type):
            pytest.skip("declares a function")
        variables[name] = declared
    activation = {name: decode_value(v) for name, v in (case.get("bindings") or {}).items()}
    if _contains_suite_unsupported(activation):
        pytest.skip("binding needs a protobuf value")
    disable_check = bool(case.get("disable_check"))
    if disable_check:
        for name in activation:
            variables.setdefault(name, cel.DYN)
    expr = case["expr"]
    try:
        oracle_env = oracle.OracleEnv(variables)
        theirs = run_oracle(expr, oracle_env, activation, disable_check=disable_check)
    except oracle.Unsupported as exc:
        pytest.skip(f"not expressible to the oracle: {exc}")
    ours = run_arbiter(expr, cel.Env(variables=variables, disable_check=disable_check), activation)
    check(expr, ours, theirs, activation)


# ---------------------------------------------------------------------------
# Generated expressions

_ARBITER_ENV = cel.Env(variables=celgen.VARIABLES)
_ORACLE_ENV = oracle.OracleEnv(celgen.VARIABLES)


def _generated(examples: int) -> Callable[[Callable[..., None]], Callable[..., None]]:
    return settings(
        max_examples=examples,
        derandomize=True,  # same examples on every run and machine
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _differential(case: celgen.Case, *, oracle_unchecked: bool = False) -> None:
    theirs = run_oracle(case.expr, _ORACLE_ENV, case.activation, disable_check=oracle_unchecked)
    # celgen only produces well-typed expressions: a check failure in the
    # oracle means the generator (not Arbiter) is wrong.
    assert theirs.phase != "compile", f"generator bug: {case.expr!r}: {theirs.message}"
    ours = run_arbiter(case.expr, _ARBITER_ENV, case.activation)
    check(case.expr, ours, theirs, case.activation)


@_generated(800)
@given(celgen.cases((celgen.INT, celgen.UINT, celgen.DOUBLE)))
def test_generated_numeric(case: celgen.Case) -> None:
    _differential(case)


@_generated(700)
@given(celgen.cases((celgen.BOOL,)))
def test_generated_bool(case: celgen.Case) -> None:
    _differential(case)


@_generated(400)
@given(celgen.cases((celgen.STRING,)))
def test_generated_strings(case: celgen.Case) -> None:
    _differential(case)


@_generated(500)
@given(celgen.cases((celgen.LIST_INT, celgen.LIST_STRING, celgen.MAP_STRING_INT)))
def test_generated_collections(case: celgen.Case) -> None:
    _differential(case)


# Typed mixed-numeric comparisons (int/uint against double, int against uint,
# no dyn()): Arbiter compiles them checked, to Python operators, whose exact
# int/float comparison differs from CEL's. cel-cpp's checker declares no
# cross-type ordering overloads (cel-spec and cel-go do), so the oracle runs
# them unchecked: the same runtime semantics. `make fuzz-cel` runs 6,000.
@_generated(int(os.environ.get("ARBITER_CEL_MIXED_EXAMPLES", "1000")))
@given(celgen.cases((celgen.MIXED_BOOL,)))
def test_generated_typed_mixed_numeric(case: celgen.Case) -> None:
    _differential(case, oracle_unchecked=True)


@_generated(600)
@given(
    celgen.cases(
        (
            celgen.TIMESTAMP,
            celgen.DURATION,
            celgen.TIME_INT,
            celgen.TIME_BOOL,
            celgen.TIME_STRING,
        )
    )
)
def test_generated_time(case: celgen.Case) -> None:
    _differential(case)
