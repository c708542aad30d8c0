"""``arbiter policy test``: run the scenario tests of a policy directory and print failures and a summary."""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from arbiter.policies import PolicyError, load_policy
from arbiter.server.scenarios import Report, ScenarioResult, run_directory

__all__ = ["run_tests"]


def run_tests(directory: str, *, verbose: bool = False, out: TextIO | None = None) -> int:
    """Run the scenarios of ``directory``; print failures and the summary line. With
    ``verbose``, every scenario with what each step did (trace, scores, consent record)."""
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
        if result.passed and not verbose:
            return
        out.write(f"{'PASS' if result.passed else 'FAIL'} {result.file}: {result.name}\n")
        if verbose:
            for line in result.log:
                out.write(f"    | {line}\n")
        for failure in result.failures:
            out.write(f"    {failure}\n")

    # The service core logs refused calls and unreadable state as a server would; a scenario
    # reports them itself.
    server_log = logging.getLogger("arbiter.server")
    level = server_log.level
    server_log.setLevel(logging.CRITICAL)
    try:
        report: Report = run_directory(directory, policy=policy, on_result=show)
    finally:
        server_log.setLevel(level)
    for error in report.errors:
        out.write(f"ERROR {error}\n")
    if not report.results and not report.errors:
        out.write(f"no scenarios found in {directory} (tests/*.yaml, *_test.yaml)\n")
    out.write(report.summary() + "\n")
    return 0 if report.ok else 1
