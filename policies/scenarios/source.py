"""Scenario files found and read: every problem located at ``file:line:col``, one bad scenario never drops the others.

Scenario files live next to the policies -- any ``*.yaml`` / ``*.yml`` under a
``tests/`` directory of the set, or named ``*_test.yaml`` / ``*.test.yaml``:
exactly the files the policy loader skips. They follow the policy files'
YAML rules (YAML 1.2 scalars, duplicate keys refused, unknown fields refused
with "did you mean"), through the same loader functions.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arbiter.policies.diagnostics import Diagnostic
from arbiter.policies.loader import Locator, convert_located, read_yaml

from .model import Scenario, ScenarioFile

__all__ = ["LocatedScenario", "ScenarioSource", "find_scenario_files", "read_scenarios"]


@dataclass(frozen=True, slots=True)
class LocatedScenario:
    """One scenario of a file: ``scenario`` is ``None`` when its shape is wrong (see ``diagnostics``)."""

    index: int
    name: str
    scenario: Scenario | None
    diagnostics: tuple[Diagnostic, ...] = ()


@dataclass(frozen=True, slots=True)
class ScenarioSource:
    """A read scenario file: its scenarios, file-level problems, and the locator of its nodes."""

    file: str
    scenarios: tuple[LocatedScenario, ...]
    diagnostics: tuple[Diagnostic, ...]
    locator: Locator


def _is_scenario_file(rel: Path) -> bool:
    if any(part.startswith(".") for part in rel.parts):
        return False
    if not rel.name.endswith((".yaml", ".yml")):
        return False
    stem = rel.name.rsplit(".", 1)[0]
    return "tests" in rel.parts[:-1] or stem.endswith(("_test", ".test"))


def find_scenario_files(root: str | os.PathLike[str]) -> list[Path]:
    """Scenario files of a policy directory, sorted (the complement of the loader's policy files)."""
    base = Path(root)
    return sorted(
        p for p in base.rglob("*") if p.is_file() and _is_scenario_file(p.relative_to(base))
    )


def read_scenarios(file: str, text: str) -> ScenarioSource:
    """Parse one scenario file's text (``file`` names it in diagnostics)."""
    data, locator, syntax = read_yaml(file, text)
    if syntax:
        return ScenarioSource(file, (), syntax, locator)
    top: list[Diagnostic] = []
    items: list[Any] = []
    if not isinstance(data, dict):
        _, top_diags = convert_located(data, ScenarioFile, (), file, locator)
        return ScenarioSource(file, (), top_diags, locator)
    for key in data:
        if key != "scenarios":
            close = difflib.get_close_matches(str(key), ["scenarios"], n=1)
            hint = "; did you mean `scenarios`?" if close else "; a scenario file has `scenarios`"
            top.append(
                Diagnostic(
                    locator.locate_in_file(file, (key,), key=True),
                    "error",
                    f"unknown field `{key}`{hint}",
                )
            )
    raw = data.get("scenarios")
    if not isinstance(raw, list):
        where = ("scenarios",) if "scenarios" in data else ()
        message = (
            "`scenarios` must be a list"
            if "scenarios" in data
            else "missing required field `scenarios`"
        )
        top.append(Diagnostic(locator.locate_in_file(file, where), "error", message))
    else:
        items = raw
    located = []
    for index, item in enumerate(items):
        scenario, diags = convert_located(item, Scenario, ("scenarios", index), file, locator)
        name = item.get("name") if isinstance(item, dict) else None
        located.append(
            LocatedScenario(
                index=index,
                name=name if isinstance(name, str) and name else f"scenario {index + 1}",
                scenario=scenario,
                diagnostics=tuple(sorted(diags)),
            )
        )
    return ScenarioSource(file, tuple(located), tuple(sorted(top)), locator)
