"""``arbiter policy test``: run the scenario tests of a policy directory and print failures and a summary."""

from __future__ import annotations

import sys
from typing import TextIO

from arbiter.policies import PolicyError, Report, ScenarioResult, load_policy, run_directory

__all__ = ["run_tests"]


def run_tests(directory: str, *, verbose: bool = False, out: TextIO | None = None) -> int:
    """Run the scenarios of ``directory``; print failures and the summary line."""
    out = out or sys.stdout
    try:
        policy = load_policy(directory)
    except PolicyError as exc:
        out.write(f"{exc}\n")
        return 2
    except OSError as exc:
        out.write(f"arbiter policy test: cannot read {directory}: {exc}\n")
        return 2

    def show(result: ScenarioResult) -> None:
        if result.passed:
            if verbose:
                out.write(f"PASS {result.file}: {result.name}\n")
            return
        out.write(f"FAIL {result.file}: {result.name}\n")
        for failure in result.failures:
            out.write(f"    {failure}\n")

    report: Report = run_directory(directory, policy=policy, on_result=show)
    for error in report.errors:
        out.write(f"ERROR {error}\n")
    if not report.results and not report.errors:
        out.write(f"no scenarios found in {directory} (tests/*.yaml, *_test.yaml)\n")
    out.write(report.summary() + "\n")
    return 0 if report.ok else 1
