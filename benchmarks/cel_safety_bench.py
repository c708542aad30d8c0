"""Wall-clock time of the CEL safety corpus (tests/safety/corpus.py) against the 10 ms budget.

Run from the repository root::

    .venv/bin/python -m benchmarks.cel_safety_bench [--runs 5] [--top 10]

The safety test caps *steps* (deterministic); this prints the time each
case takes: per case and phase (compile, evaluate) the fastest of
``--runs`` runs, with inputs built before the clock starts. It lists the
slowest cases of each phase, the number of corpus cases (escape and bomb
attempts), and how many exceed their budget (10 ms, or the case's own for
the "limits-raised" cases). Exit status 1 when one does: on a loaded
machine, re-run before believing it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from arbiter.policies import cel

BUDGET_MS = 10.0
_SAFETY = Path(__file__).resolve().parents[1] / "tests" / "safety" / "test_cel_safety.py"


def _load_safety_test() -> ModuleType:
    sys.path.insert(0, str(_SAFETY.parent))
    spec = importlib.util.spec_from_file_location("arbiter_cel_safety_test", _SAFETY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _best_ms(action: Callable[[], object], runs: int) -> float:
    best = math.inf
    for _ in range(runs):
        start = time.perf_counter()
        with contextlib.suppress(cel.CelError):
            action()
        best = min(best, (time.perf_counter() - start) * 1000)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--top", type=int, default=10)
    args = parser.parse_args(argv)
    safety = _load_safety_test()
    rows: list[tuple[str, str, float, float]] = []  # phase, id, ms, budget
    for case in safety.CASES:
        source, env, activation = case.source(), case.env(), case.make_activation()
        budget = case.budget_ms or BUDGET_MS
        rows.append(
            (
                "compile",
                case.id,
                _best_ms(functools.partial(cel.compile, source, env), args.runs),
                budget,
            )
        )
        try:
            program = cel.compile(source, env)
        except cel.CompileError:
            continue
        evaluate_ms = _best_ms(functools.partial(program.evaluate, activation), args.runs)
        rows.append(("evaluate", case.id, evaluate_ms, budget))
    print(f"corpus cases (escape and bomb attempts): {len(safety.CASES)}")
    for phase in ("compile", "evaluate"):
        timed = sorted(
            (r for r in rows if r[0] == phase and r[3] == BUDGET_MS), key=lambda r: -r[2]
        )
        print(f"\n{phase}: slowest of {len(timed)} cases (fastest of {args.runs} runs, ms)")
        for _, ident, ms, _budget in timed[: args.top]:
            print(f"  {ms:8.2f}  {ident}")
    over = [r for r in rows if r[2] > r[3]]
    print(f"\nover budget: {len(over)}")
    for phase, ident, ms, budget in over:
        print(f"  {phase} {ident}: {ms:.2f} ms > {budget:g} ms")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
