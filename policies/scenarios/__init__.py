"""Scenario tests of a policy set, the pure half: the file format, reading it with positions, and checking it against the policy.

Running scenarios needs a store and the service core, so the runner lives
in :mod:`arbiter.server.scenarios` (``arbiter policy test``); what a
scenario file *is*, and whether it makes sense for a policy set, is decided
here without I/O beyond reading the file.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from arbiter.policies.plan import CompiledPolicy

from .model import (
    ChangeExpect,
    CheckSpec,
    ConsentGiven,
    DecideSpec,
    ErrorExpect,
    EventSpec,
    Expect,
    Given,
    JourneyExpect,
    JourneyGiven,
    ProfileSpec,
    Scenario,
    ScenarioFile,
    StatusCode,
    Step,
    TimeText,
    json_schema,
)
from .source import LocatedScenario, ScenarioSource, find_scenario_files, read_scenarios
from .times import parse_scenario_time, time_problem
from .validate import check_scenario

__all__ = [
    "ChangeExpect",
    "CheckSpec",
    "ConsentGiven",
    "DecideSpec",
    "ErrorExpect",
    "EventSpec",
    "Expect",
    "Given",
    "JourneyExpect",
    "JourneyGiven",
    "LocatedScenario",
    "ProfileSpec",
    "Scenario",
    "ScenarioFile",
    "ScenarioSource",
    "StatusCode",
    "Step",
    "TimeText",
    "check_scenario",
    "find_scenario_files",
    "json_schema",
    "load_scenario_file",
    "parse_scenario_time",
    "read_scenarios",
    "time_problem",
]


def load_scenario_file(
    path: str | os.PathLike[str], policy: CompiledPolicy, *, name: str | None = None
) -> ScenarioSource:
    """Read a scenario file and check every scenario in it against ``policy``: a scenario
    with any problem keeps its diagnostics (and is not run); the others are runnable.
    ``name`` is how diagnostics name the file (default: ``path``). Raises ``OSError``."""
    file = name if name is not None else os.fspath(path)
    source = read_scenarios(file, Path(path).read_text(encoding="utf-8"))
    checked = []
    for read in source.scenarios:
        located = read
        if read.scenario is not None:
            problems = check_scenario(
                policy, read.scenario, ("scenarios", read.index), file, source.locator
            )
            if problems:
                located = dataclasses.replace(
                    read, diagnostics=tuple(sorted((*read.diagnostics, *problems)))
                )
        checked.append(located)
    return dataclasses.replace(source, scenarios=tuple(checked))
