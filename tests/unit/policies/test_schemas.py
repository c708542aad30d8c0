"""The published JSON Schemas (schemas/): generated from the msgspec models and never stale, referenced by every example file, and every example validates against them (with the maintained `jsonschema` validator)."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from arbiter.policies import YamlLoader
from arbiter.policies.scenarios import find_scenario_files
from arbiter.server.cli.policy import SCHEMA_FILES, schema_text

ROOT = Path(__file__).resolve().parents[3]
SCHEMAS = ROOT / "schemas"
EXAMPLES = ROOT / "examples" / "policies"
HEADER = "# yaml-language-server: $schema="


@functools.cache
def _schema(name: str) -> Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def _data(path: Path) -> Any:
    return yaml.load(path.read_text(), Loader=YamlLoader)


def _examples() -> list[tuple[Path, str]]:
    scenario_files = set(find_scenario_files(EXAMPLES))
    return [
        (p, "scenario-file.schema.json" if p in scenario_files else "policy-file.schema.json")
        for p in sorted(EXAMPLES.rglob("*.yaml"))
    ]


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_the_published_schema_is_what_the_models_generate(name: str) -> None:
    committed = (SCHEMAS / name).read_text()
    assert committed == schema_text(name), f"schemas/{name} is stale: run `make schemas`"


@pytest.mark.parametrize(("path", "schema"), _examples(), ids=str)
def test_every_example_references_and_validates_against_its_schema(path: Path, schema: str) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith(HEADER), f"{path}: the first line names no schema"
    referenced = (path.parent / first.removeprefix(HEADER)).resolve()
    assert referenced == SCHEMAS / schema, os.path.relpath(referenced, ROOT)
    errors = [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in _schema(schema).iter_errors(_data(path))
    ]
    assert errors == []


def test_the_schemas_refuse_what_the_loader_refuses() -> None:
    policy = _schema("policy-file.schema.json")
    assert list(policy.iter_errors({"channels": [{"id": "email", "purpses": []}]}))
    assert list(policy.iter_errors({"journeys": [{"id": "j", "owner": "o", "stages": []}]}))
    scenario = _schema("scenario-file.schema.json")
    bad = {
        "scenarios": [
            {"name": "x", "given": {"now": "+0s"}, "steps": [{"decide": {"limit": "many"}}]}
        ]
    }
    assert list(scenario.iter_errors(bad))
    good = {"scenarios": [{"name": "x", "given": {"now": "2025-06-02T15:00:00Z"}, "steps": []}]}
    assert list(scenario.iter_errors(good)) == []
