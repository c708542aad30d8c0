"""Evaluation cost of typical eligibility predicates: Arbiter's CEL compiler vs cel-expr-python.

Run from the repository root::

    .venv/bin/python -m benchmarks.cel_bench [--runs 7] [--number 20000] [--json]

What is measured, for each predicate and engine: one call that evaluates the
already-compiled expression on an already-built activation, i.e.
``program.evaluate(activation_dict)`` for Arbiter and
``expression.eval(activation)`` for cel-expr-python (its ``Activation`` is
built once, so converting Python data to CEL values is *not* timed; its
result stays a ``cel.Value``, whose conversion back to Python is not timed
either). Compilation is not timed. Each run times ``--number`` calls; the
reported figure is the median over ``--runs`` runs, in ns per evaluation,
including the Python call itself (the same for both engines).

Before timing, both engines' results are compared (as CEL values, with the
type); a mismatch is printed loudly and makes the exit status 1.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import sys
import timeit
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path
from types import ModuleType
from typing import Any

from arbiter.policies import cel
from arbiter.policies.cel.values import Timestamp

_ORACLE_PATH = Path(__file__).resolve().parents[1] / "tests" / "differential" / "oracle.py"

# Declared variables, the same for both engines. Profiles, carts and requests
# are loosely typed records (map(string, dyn)), as the decision service sees
# them; timestamps live in a typed map because cel-expr-python cannot bind a
# timestamp under dyn.
VARIABLES: dict[str, cel.Type] = {
    "profile": cel.MapType(cel.STRING, cel.DYN),
    "cart": cel.MapType(cel.STRING, cel.DYN),
    "request": cel.MapType(cel.STRING, cel.DYN),
    "events": cel.MapType(cel.STRING, cel.TIMESTAMP),
    "now": cel.TIMESTAMP,
}

_NOW = 1_700_000_000 * 10**9  # 2023-11-14T22:13:20Z; the clock is an argument

# The same data declared the way Arbiter's policy compiler declares a policy
# set's contracts: each profile attribute and request field is its own typed
# (dotted) variable, e.g. ``profile.age: int``. Both engines get the same
# declarations and the same values.
CONTRACT_VARIABLES: dict[str, cel.Type] = {
    "profile.age": cel.INT,
    "profile.country": cel.STRING,
    "profile.opted_out": cel.BOOL,
    "profile.tier": cel.STRING,
    "profile.ltv": cel.DOUBLE,
    "profile.segments": cel.ListType(cel.STRING),
    "profile.vip": cel.BOOL,
    "profile.orders": cel.INT,
    "profile.email": cel.STRING,
    "cart.items": cel.ListType(cel.MapType(cel.STRING, cel.DYN)),
    "request.channel": cel.STRING,
    "request.path": cel.STRING,
    "request.locale": cel.STRING,
    "events.last_purchase": cel.TIMESTAMP,
    "now": cel.TIMESTAMP,
}

ACTIVATION: dict[str, object] = {
    "profile": {
        "age": 34,
        "country": "DE",
        "opted_out": False,
        "tier": "gold",
        "ltv": 250.5,
        "segments": ["newsletter", "vip", "mobile"],
        "vip": False,
        "orders": 7,
        "email": "anna@example.com",
    },
    "cart": {
        "items": [
            {"sku": "A-1", "price": 19.99, "qty": 1},
            {"sku": "B-7", "price": 35.0, "qty": 2},
            {"sku": "C-3", "price": 79.5, "qty": 1},
        ],
    },
    "request": {"channel": "push", "path": "/checkout/payment", "locale": "de-DE"},
    "events": {"last_purchase": Timestamp(_NOW - 10 * 86_400 * 10**9)},
    "now": Timestamp(_NOW),
}


def _flatten(activation: dict[str, object]) -> dict[str, object]:
    flat: dict[str, object] = {"now": activation["now"]}
    for record in ("profile", "cart", "request", "events"):
        values = activation[record]
        assert isinstance(values, dict)
        for name, value in values.items():
            flat[f"{record}.{name}"] = value
    return flat


CONTRACT_ACTIVATION = _flatten(ACTIVATION)

# name -> (declarations, activation, what it models)
VARIANTS: dict[str, tuple[dict[str, cel.Type], dict[str, object], str]] = {
    "contract-typed": (
        CONTRACT_VARIABLES,
        CONTRACT_ACTIVATION,
        "typed attributes, as Arbiter compiles a policy set's contracts",
    ),
    "dyn-records": (
        VARIABLES,
        ACTIVATION,
        "records declared map(string, dyn): type checks deferred to run time",
    ),
}

PREDICATES: tuple[tuple[str, str], ...] = (
    ("simple", "profile.age >= 18"),
    ("adult_de", 'profile.age >= 18 && profile.country == "DE" && !profile.opted_out'),
    ("tier_ltv", 'profile.tier in ["gold", "platinum"] && profile.ltv > 100.0'),
    ("vip_segment", 'size(profile.segments) > 0 && "vip" in profile.segments'),
    ("cart_exists", "cart.items.exists(i, i.price > 50.0)"),
    ("channel", 'request.channel == "push" && profile.age > 21 || profile.vip'),
    ("path_prefix", 'request.path.startsWith("/checkout")'),
    ("recency", 'now - events.last_purchase > duration("168h")'),
    ("arithmetic", "profile.orders * 2 + 1 > 10"),
)


@dataclass(frozen=True)
class Row:
    name: str
    expr: str
    arbiter_ns: float
    oracle_ns: float
    ratio: float  # oracle / arbiter: > 1 means Arbiter is faster
    results_match: bool
    arbiter_result: str
    oracle_result: str


def _load_oracle() -> ModuleType:
    """The test oracle wrapper (tests/differential/oracle.py), loaded by path."""
    spec = importlib.util.spec_from_file_location("arbiter_cel_oracle", _ORACLE_PATH)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {_ORACLE_PATH}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses etc. look the module up
    spec.loader.exec_module(module)
    return module


def _time_direct(fn: Callable[[Any], object], arg: object, runs: int, number: int) -> float:
    """Median ns per ``fn(arg)``, timed without a wrapping lambda."""
    timer = timeit.Timer("fn(arg)", globals={"fn": fn, "arg": arg})
    timer.timeit(number=max(1, number // 10))
    samples = timer.repeat(repeat=runs, number=number)
    return statistics.median(samples) / number * 1e9


def measure(runs: int, number: int, variant: str) -> list[Row]:
    oracle = _load_oracle()
    variables, activation, _ = VARIANTS[variant]
    arbiter_env = cel.Env(variables=variables)
    oracle_env = oracle.OracleEnv(variables)
    oracle_activation = oracle_env.activation(activation)  # built once, not timed
    rows = []
    for name, expr in PREDICATES:
        program = cel.compile(expr, arbiter_env)
        oracle_program = oracle_env.compile(expr)
        ours = program.evaluate(activation)
        theirs = oracle_program.evaluate(oracle_activation)
        arbiter_ns = _time_direct(program.evaluate, activation, runs, number)
        oracle_ns = _time_direct(oracle_program.evaluate_raw, oracle_activation, runs, number)
        rows.append(
            Row(
                name=name,
                expr=expr,
                arbiter_ns=arbiter_ns,
                oracle_ns=oracle_ns,
                ratio=oracle_ns / arbiter_ns,
                results_match=oracle.cel_equal(ours, theirs),
                arbiter_result=oracle.describe(ours),
                oracle_result=oracle.describe(theirs),
            )
        )
    return rows


def _print_table(rows: list[Row], runs: int, number: int, variant: str) -> None:
    print(
        f"== {variant}: {VARIANTS[variant][2]}\n"
        "Evaluation of a compiled predicate on a prebuilt activation "
        f"(median of {runs} runs x {number} calls; compile and the oracle's "
        "activation/result conversion excluded)\n"
    )
    width = max(len(r.name) for r in rows)
    print(f"{'predicate':<{width}}  {'arbiter ns':>11}  {'cel-expr ns':>11}  {'ratio':>6}  result")
    for r in rows:
        flag = "" if r.results_match else "   <-- MISMATCH"
        print(
            f"{r.name:<{width}}  {r.arbiter_ns:11.0f}  {r.oracle_ns:11.0f}  "
            f"{r.ratio:6.2f}  {r.arbiter_result}{flag}"
        )
    print()
    for r in rows:
        print(f"  {r.name:<{width}}  {r.expr}")
    simple = rows[0]
    print(
        f"\nmedian ratio (cel-expr-python / arbiter): "
        f"{statistics.median(r.ratio for r in rows):.2f}x; "
        f"simple predicate ({simple.expr}): arbiter {simple.arbiter_ns:.0f} ns, "
        f"cel-expr-python {simple.oracle_ns:.0f} ns"
    )


def _report_mismatches(rows: list[Row]) -> None:
    for r in rows:
        if not r.results_match:
            print(
                f"!!! MISMATCH in {r.name}: arbiter {r.arbiter_result} "
                f"vs cel-expr-python {r.oracle_result}",
                file=sys.stderr,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="timing runs per measurement")
    parser.add_argument("--number", type=int, default=20_000, help="evaluations per run")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument(
        "--variant",
        choices=[*VARIANTS, "all"],
        default="all",
        help="how the variables are declared (default: every variant)",
    )
    args = parser.parse_args(argv)
    if importlib.util.find_spec("cel_expr_python") is None:
        parser.error("cel-expr-python is not installed (pip install -e '.[dev]')")

    variants = list(VARIANTS) if args.variant == "all" else [args.variant]
    results = {variant: measure(args.runs, args.number, variant) for variant in variants}
    if args.json:
        report = {
            "measured": (
                "ns per evaluation of a compiled expression on a prebuilt activation; "
                "median over runs; compile, activation building and result conversion "
                "of cel-expr-python excluded"
            ),
            "runs": args.runs,
            "number": args.number,
            "python": platform.python_version(),
            "cel_expr_python": metadata.version("cel-expr-python"),
            "variants": {
                variant: {
                    "median_ratio": statistics.median(r.ratio for r in rows),
                    "predicates": [asdict(r) for r in rows],
                }
                for variant, rows in results.items()
            },
        }
        print(json.dumps(report, indent=2))
    else:
        for variant, rows in results.items():
            _print_table(rows, args.runs, args.number, variant)
            print()
    all_rows = [r for rows in results.values() for r in rows]
    _report_mismatches(all_rows)
    return 0 if all(r.results_match for r in all_rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
