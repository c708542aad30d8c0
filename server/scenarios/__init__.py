"""``arbiter policy test``: run the scenario files of a policy set through the service core (see :mod:`.runner`).

Files are read and checked against the policy first
(:mod:`arbiter.policies.scenarios`): a scenario with a problem is reported
at ``file:line:col`` and not run, the others of its file run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

import msgspec

from arbiter.policies import CompiledPolicy, load_policy, scenarios

from .runner import ScenarioRun

__all__ = ["Report", "ScenarioResult", "run_directory", "run_scenario"]


class ScenarioResult(msgspec.Struct, frozen=True, kw_only=True):
    """One scenario: its failures (empty: passed) and, for ``-v``, what each step did."""

    file: str
    name: str
    failures: tuple[str, ...] = ()
    log: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return not self.failures


class Report(msgspec.Struct, frozen=True, kw_only=True):
    results: tuple[ScenarioResult, ...] = ()
    errors: tuple[str, ...] = ()  # file-level problems (unreadable file, no `scenarios` list)

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.passed)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.results if not r.passed) + len(self.errors)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and bool(self.results)

    def summary(self) -> str:
        return f"{self.passed} passed, {self.failed} failed"


def run_scenario(
    policy: CompiledPolicy, scenario: scenarios.Scenario, file: str = ""
) -> ScenarioResult:
    """Run one (already checked) scenario against a compiled policy."""
    run = ScenarioRun(policy, scenario)
    asyncio.run(run.run())
    return ScenarioResult(
        file=file, name=scenario.name, failures=tuple(run.failures), log=tuple(run.log)
    )


def run_source(policy: CompiledPolicy, source: scenarios.ScenarioSource) -> list[ScenarioResult]:
    """The results of one read file: a scenario with diagnostics fails with them, unrun."""
    results = []
    for located in source.scenarios:
        if located.diagnostics or located.scenario is None:
            failures = tuple(str(d) for d in located.diagnostics)
            results.append(ScenarioResult(file=source.file, name=located.name, failures=failures))
        else:
            results.append(run_scenario(policy, located.scenario, source.file))
    return results


def run_directory(
    root: str | os.PathLike[str],
    *,
    policy: CompiledPolicy | None = None,
    on_result: Callable[[ScenarioResult], None] | None = None,
) -> Report:
    """Compile the policy directory (unless given) and run every scenario file in it.

    Raises :class:`~arbiter.policies.PolicyError` when the set does not compile.
    """
    compiled = policy if policy is not None else load_policy(root)
    results: list[ScenarioResult] = []
    errors: list[str] = []
    base = Path(root)
    for path in scenarios.find_scenario_files(base):
        rel = path.relative_to(base).as_posix()
        try:
            source = scenarios.load_scenario_file(path, compiled, name=rel)
        except (OSError, UnicodeDecodeError) as exc:
            errors.append(f"{rel}: {exc}")
            continue
        errors += [str(d) for d in source.diagnostics]
        for result in run_source(compiled, source):
            results.append(result)
            if on_result is not None:
                on_result(result)
    return Report(results=tuple(results), errors=tuple(errors))
