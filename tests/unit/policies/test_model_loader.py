"""The policy-set loader: YAML with positions -> typed model, every error located."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from arbiter.policies.loader import (
    Diagnostic,
    digest_sources,
    load_directory,
    load_sources,
    read_directory,
)
from arbiter.policies.model import Action, Cap, Journey, PolicyFile, PolicySet, json_schema

HEADER = 'policy_set: {id: test, version: "1"}\n'


def errors(diags: tuple[Diagnostic, ...]) -> list[str]:
    return [str(d) for d in diags if d.severity == "error"]


def test_minimal_set_loads_with_safe_defaults() -> None:
    loaded = load_sources({"policy.yaml": HEADER})
    assert loaded.ok
    model = loaded.model
    assert isinstance(model, PolicySet)
    assert model.policy_set.version == "1"
    assert model.consent.unset == "deny"  # unknown consent denies
    assert model.caps == ()  # no caps unless declared
    assert model.holdouts.global_ is None
    assert model.arbitration.constraints.max_per_journey == 1


def test_sections_merge_across_files_in_path_order() -> None:
    loaded = load_sources(
        {
            "b/actions.yaml": "actions:\n  - {id: b1, channel: email, always_on: true}\n",
            "a.yaml": HEADER + "actions:\n  - {id: a1, channel: email, always_on: true}\n",
            "contracts.yaml": "contracts:\n  profile:\n    age: int\n",
            "more_contracts.yaml": "contracts:\n  profile:\n    country: {type: string, pii: false}\n",
        }
    )
    assert loaded.ok, loaded.diagnostics
    assert loaded.model is not None
    assert [a.id for a in loaded.model.actions] == ["a1", "b1"]
    assert set(loaded.model.contracts.profile) == {"age", "country"}
    assert loaded.locator.locate(("actions", 1, "channel")).file == "b/actions.yaml"
    loc = loaded.locator.locate(("actions", 1, "channel"))
    assert (loc.line, loc.column) == (2, 23)


def test_every_shape_error_is_reported_with_its_position() -> None:
    text = HEADER + (
        "channels:\n"  # 2
        "  - id: email\n"  # 3
        "    transactional: maybe\n"  # 4
        "  - id: 9bad\n"  # 5
        "    caps: [{limit: -1, window: 1d}]\n"  # 6
        "actions:\n"  # 7
        "  - id: a1\n"  # 8
        "    chanel: email\n"  # 9
        "    priority: high\n"  # 10
        "  - id: a2\n"  # 11
        "    channel: email\n"  # 12
        "    valid_from: 2024-01-01\n"  # 13
    )
    loaded = load_sources({"p.yaml": text})
    found = errors(loaded.diagnostics)
    expected = [
        ("p.yaml:4:20:", "`transactional`: expected `bool`, got `str`"),
        ("p.yaml:5:9:", "invalid id"),
        ("p.yaml:6:20:", "expected `int` >= 0"),
        ("p.yaml:8:5:", "missing required field `channel`"),
        ("p.yaml:9:5:", "unknown field `chanel`; did you mean `channel`?"),
        ("p.yaml:10:15:", "`priority`: expected `int`, got `str`"),
        ("p.yaml:13:17:", "invalid timestamp"),
    ]
    assert len(found) == len(expected), found
    for (prefix, fragment), line in zip(expected, found, strict=True):
        assert line.startswith(prefix), (prefix, line)
        assert fragment in line, (fragment, line)
    # Valid items survive next to invalid ones.
    assert loaded.model is not None
    assert [c.id for c in loaded.model.channels] == []
    assert [a.id for a in loaded.model.actions] == []


def test_duplicate_keys_are_errors() -> None:
    loaded = load_sources({"p.yaml": HEADER + "channels:\n  - id: email\n    id: push\n"})
    assert errors(loaded.diagnostics) == ["p.yaml:4:5: error: duplicate key `id` (first at line 3)"]


def test_yaml_12_scalars_no_norway_problem() -> None:
    text = HEADER + (
        "consent:\n"
        "  defaults:\n"
        "    - {regions: [NO, yes, on], unset: allow}\n"
        "journeys:\n"
        "  - id: j\n"
        "    owner: me\n"
        "    status: active\n"
        "    priority: 010\n"
        "    stages:\n"
        "      - id: s\n"
        "        transitions:\n"
        "          - {on: purchase, to: s}\n"
    )
    loaded = load_sources({"p.yaml": text})
    assert loaded.ok, loaded.diagnostics
    assert loaded.model is not None
    assert loaded.model.consent.defaults[0].regions == ("NO", "yes", "on")
    journey = loaded.model.journeys[0]
    assert journey.priority == 10
    assert journey.stages[0].transitions[0].on == "purchase"


def test_yaml_syntax_error_is_located() -> None:
    loaded = load_sources({"p.yaml": HEADER + "channels: [\n  - id: x\n"})
    (diag,) = loaded.diagnostics
    assert diag.location.file == "p.yaml"
    assert diag.location.line >= 2
    assert diag.message.startswith("YAML:")


def test_unknown_section_singletons_and_missing_policy_set() -> None:
    loaded = load_sources(
        {
            "a.yaml": HEADER + "consent: {unset: allow}\nchanel: []\n",
            "b.yaml": "consent: {unset: deny}\n",
        }
    )
    found = errors(loaded.diagnostics)
    assert found == [
        "a.yaml:3:1: error: unknown section `chanel`; did you mean `channels`?",
        "b.yaml:1:1: error: section `consent` is already defined in a.yaml",
    ]
    missing = load_sources({"a.yaml": "channels: []\n"})
    assert missing.model is None
    assert "no `policy_set` section" in errors(missing.diagnostics)[0]


def test_contract_shorthand_and_duplicates_across_files() -> None:
    loaded = load_sources(
        {
            "a.yaml": HEADER + "contracts:\n  profile:\n    age: int\n",
            "b.yaml": "contracts:\n  profile:\n    age: {type: int}\n    tier: {type: 1}\n",
        }
    )
    found = errors(loaded.diagnostics)
    assert found[0].startswith("b.yaml:3:5: error: `age` is already declared")
    assert found[1].startswith("b.yaml:4:18: error: `type`: expected `str`, got `int`")


def test_reading_a_directory_skips_scenarios_and_hidden_files(tmp_path: Path) -> None:
    (tmp_path / "policy.yaml").write_text(HEADER)
    (tmp_path / "journeys").mkdir()
    (tmp_path / "journeys" / "j.yml").write_text("journeys: []\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "t.yaml").write_text("scenarios: []\n")
    (tmp_path / "cart_test.yaml").write_text("scenarios: []\n")
    (tmp_path / ".hidden.yaml").write_text("nope: 1\n")
    (tmp_path / "README.md").write_text("#\n")
    assert list(read_directory(tmp_path)) == ["journeys/j.yml", "policy.yaml"]
    assert load_directory(tmp_path).ok


def test_digest_is_content_addressed_and_line_ending_neutral() -> None:
    a = digest_sources({"x.yaml": "a: 1\n", "y.yaml": "b: 2\n"})
    assert a == digest_sources({"y.yaml": "b: 2\n", "x.yaml": "a: 1\n"})
    assert a == digest_sources({"x.yaml": "a: 1\r\n", "y.yaml": "b: 2\n"})
    assert a != digest_sources({"x.yaml": "a: 2\n", "y.yaml": "b: 2\n"})
    assert a != digest_sources({"z.yaml": "a: 1\n", "y.yaml": "b: 2\n"})
    assert a.startswith("sha256:")


def test_models_are_frozen_and_round_trip() -> None:
    action = msgspec.convert({"id": "x", "channel": "email", "value": "1.0 + 2.0"}, Action)
    with pytest.raises(AttributeError):
        action.id = "y"  # type: ignore[misc]
    assert action.value == "1.0 + 2.0"
    assert msgspec.convert(msgspec.to_builtins(action), Action) == action
    cap = msgspec.convert({"id": "c", "scope": "tag", "limit": 1, "window": "7d"}, Cap)
    assert cap.targets == ()
    assert cap.include_transactional is False
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"id": "j", "owner": "o", "stages": [{"id": "s"}]}, Journey)  # status


def test_json_schema_for_editors() -> None:
    schema = json_schema()
    assert schema["$ref"] == "#/$defs/PolicyFile"
    assert "Action" in schema["$defs"]
    assert schema["$defs"]["Holdouts"]["properties"].keys() == {"global"}
    assert set(schema["$defs"]["PolicyFile"]["properties"]) == {
        f.encode_name for f in msgspec.structs.fields(PolicyFile)
    }
