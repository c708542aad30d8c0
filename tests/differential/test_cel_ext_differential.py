"""The CEL extension libraries against Google's runtime (cel-expr-python with its extensions).

The reference ships the strings, math and optional extensions
(``cel_expr_python.ext``); it has no lists or sets extension, so those are
covered only by Arbiter's own conformance cases (``tests/conformance/ext``).

Two sources of expressions:

- every case of ``tests/conformance/ext/{strings,math,optional}.json``, except the
  documented differences below, must agree with the reference (same value
  and type, or both an error);
- random math expressions over random int/uint/double operands
  (``ARBITER_CEL_EXT_EXAMPLES``, default 600).
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import pytest
from oracle import OracleEnv, OracleError, cel_equal, describe

from arbiter.policies import cel

EXT_DIR: Final = Path(__file__).resolve().parents[1] / "conformance" / "ext"

# Where the reference (cel-cpp) and cel-go disagree, Arbiter follows cel-go's
# documented behaviour; these cases are not compared.
DIFFERENCES: Final[Mapping[str, str]] = {
    "ext/strings/format/decimal_double": (
        "cel-cpp formats a double under %d as %f; cel-go accepts only integers"
    ),
}


def _cases(name: str) -> list[Mapping[str, object]]:
    return json.loads((EXT_DIR / f"{name}.json").read_text(encoding="utf-8"))["tests"]  # type: ignore[no-any-return]


CASES: Final = [c for lib in ("strings", "math", "optional") for c in _cases(lib)]
ORACLE: Final = OracleEnv(extensions=True)


def _ours(expr: str) -> tuple[str, object]:
    try:
        return "value", cel.compile(expr).evaluate({})
    except cel.CompileError as exc:
        return "compile", str(exc)
    except cel.EvalError as exc:
        return "eval", str(exc)


def _reference(expr: str) -> tuple[str, object]:
    try:
        return "value", ORACLE.compile(expr).evaluate({})
    except OracleError as exc:
        return exc.phase, exc.message


def _agree(expr: str) -> None:
    ours, theirs = _ours(expr), _reference(expr)
    if ours[0] == "value" or theirs[0] == "value":
        assert ours[0] == theirs[0] == "value" and cel_equal(ours[1], theirs[1]), (
            f"{expr}: arbiter {ours[0]} {describe(ours[1])}, reference {theirs[0]} "
            f"{describe(theirs[1])}"
        )
    else:  # both errors; the phase may differ (the reference checks some literals in macros)
        assert ours[0] in ("compile", "eval") and theirs[0] in ("compile", "eval")


def _case_id(case: Mapping[str, object]) -> str:
    return f"{case['file']}/{case['section']}/{case['name']}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_conformance_case_agrees_with_reference(case: Mapping[str, object]) -> None:
    if _case_id(case) in DIFFERENCES:
        pytest.skip(DIFFERENCES[_case_id(case)])
    _agree(str(case["expr"]))


def _number(rng: random.Random) -> str:
    kind = rng.randrange(3)
    if kind == 0:
        value = rng.choice([0, 1, -1, 2**63 - 1, -(2**63) + 1, rng.randrange(-(2**40), 2**40)])
        return str(value) if value >= 0 else f"({value})"
    if kind == 1:
        return f"{rng.choice([0, 1, 2**64 - 1, rng.randrange(2**40)])}u"
    value = rng.choice([0.0, -0.0, 0.5, -2.5, 1e300, -1e-300, rng.uniform(-1e6, 1e6)])
    return repr(value) if value >= 0 and str(value)[0] != "-" else f"({value!r})"


def _double(rng: random.Random) -> str:
    return rng.choice(
        [
            "0.5",
            "-2.5",
            "1.5",
            "(-0.0)",
            "1e300",
            "double('NaN')",
            "double('-Infinity')",
            repr(round(rng.uniform(-1e6, 1e6), rng.randrange(4))),
        ]
    ).replace("'", '"')


def _int(rng: random.Random) -> str:
    value = rng.choice([0, 1, -1, 63, 64, 2**63 - 1, -(2**63) + 1, rng.randrange(-(2**20), 2**20)])
    return str(value) if value >= 0 else f"({value})"


def _uint(rng: random.Random) -> str:
    return f"{rng.choice([0, 1, 5, 2**64 - 1, rng.randrange(2**40)])}u"


def _math_expression(rng: random.Random) -> str:
    shape = rng.randrange(6)
    if shape == 0:
        fn = rng.choice(["greatest", "least"])
        args = ", ".join(_number(rng) for _ in range(rng.randrange(1, 5)))
        return f"math.{fn}({args})" if rng.random() < 0.7 else f"math.{fn}([{args}])"
    if shape == 1:
        fn = rng.choice(["ceil", "floor", "round", "trunc", "isNaN", "isInf", "isFinite"])
        return f"math.{fn}({_double(rng)})"
    if shape == 2:
        fn = rng.choice(["abs", "sign"])
        return f"math.{fn}({rng.choice([_int, _uint, _double])(rng)})"
    if shape == 3:
        fn = rng.choice(["bitAnd", "bitOr", "bitXor"])
        gen = rng.choice([_int, _uint])
        return f"math.{fn}({gen(rng)}, {gen(rng)})"
    if shape == 4:
        fn = rng.choice(["bitShiftLeft", "bitShiftRight"])
        return f"math.{fn}({rng.choice([_int, _uint])(rng)}, {_int(rng)})"
    return f"math.bitNot({rng.choice([_int, _uint])(rng)})"


EXAMPLES: Final = int(os.environ.get("ARBITER_CEL_EXT_EXAMPLES", "600"))


def test_random_math_expressions_agree_with_reference() -> None:
    rng = random.Random(20261204)
    mismatches = []
    for _ in range(EXAMPLES):
        expr = _math_expression(rng)
        try:
            _agree(expr)
        except AssertionError as exc:
            mismatches.append(str(exc))
    assert not mismatches, f"{len(mismatches)}/{EXAMPLES} mismatches:\n" + "\n".join(
        mismatches[:20]
    )
