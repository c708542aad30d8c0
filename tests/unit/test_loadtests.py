"""loadtests/: the launcher offers exactly the locustfile's scenarios, each a mix of known calls."""

from __future__ import annotations

import ast
from pathlib import Path

LOADTESTS = Path(__file__).resolve().parents[2] / "loadtests"


def _constant(path: Path, name: str) -> object:
    # Parsed, not imported: importing the locustfile patches the process for gevent.
    for node in ast.walk(ast.parse(path.read_text())):
        target = getattr(node, "target", None) or next(iter(getattr(node, "targets", [])), None)
        if isinstance(node, ast.Assign | ast.AnnAssign) and getattr(target, "id", "") == name:
            assert node.value is not None
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not found in {path}")


def _scenarios() -> dict[str, dict[str, int]]:
    value = _constant(LOADTESTS / "locustfile.py", "SCENARIOS")
    assert isinstance(value, dict)
    return value


def test_the_launcher_offers_the_locustfile_scenarios() -> None:
    names = _constant(LOADTESTS / "run.py", "SCENARIO_NAMES")
    assert isinstance(names, tuple)
    assert set(names) == set(_scenarios())


def test_every_scenario_mixes_known_calls_and_leans_the_way_its_name_says() -> None:
    scenarios = _scenarios()
    for mix in scenarios.values():
        assert set(mix) <= {"decide", "check", "track", "update_profile"}
        assert all(weight > 0 for weight in mix.values())
    assert (
        max(scenarios["product_surfaces"], key=scenarios["product_surfaces"].__getitem__)
        == "decide"
    )
    assert (
        max(scenarios["journey_ingestion"], key=scenarios["journey_ingestion"].__getitem__)
        == "track"
    )
