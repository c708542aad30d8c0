"""`arbiter policy test` on the example set, one pytest item per scenario, and the scenario runner itself."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import pytest

from arbiter.policies import CompiledPolicy, load_policy
from arbiter.policies.decision import Request
from arbiter.policies.scenarios import Scenario, find_scenario_files, load_scenario_file
from arbiter.server.cli.bench import bench as run_bench
from arbiter.server.cli.explain import explain
from arbiter.server.cli.scenarios import run_tests
from arbiter.server.cli.synthetic import synthetic_policy, synthetic_snapshots
from arbiter.server.scenarios import run_scenario

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "policies"


@pytest.fixture(scope="module")
def example() -> CompiledPolicy:
    return load_policy(EXAMPLES)


def _example_scenarios() -> list[Any]:
    """One pytest parameter per scenario, named ``<file>::<scenario name>``.

    A scenario with problems (shape, or names the policy does not know) is a
    failing parameter carrying its diagnostics; an unreadable file is one
    failing parameter naming the file.
    """
    policy = load_policy(EXAMPLES)
    params: list[Any] = []
    for path in find_scenario_files(EXAMPLES):
        rel = path.relative_to(EXAMPLES).as_posix()
        try:
            source = load_scenario_file(path, policy, name=rel)
        except OSError as exc:
            params.append(pytest.param(rel, None, str(exc), id=f"{rel}::(unreadable)"))
            continue
        if source.diagnostics:
            problems = "\n".join(str(d) for d in source.diagnostics)
            params.append(pytest.param(rel, None, problems, id=f"{rel}::(unreadable)"))
        for located in source.scenarios:
            problems = "\n".join(str(d) for d in located.diagnostics)
            params.append(
                pytest.param(rel, located.scenario, problems, id=f"{rel}::{located.name}")
            )
    return params


EXAMPLE_SCENARIOS = _example_scenarios()


@pytest.mark.parametrize(("file", "scenario", "error"), EXAMPLE_SCENARIOS)
def test_example_scenario(
    example: CompiledPolicy, file: str, scenario: Scenario | None, error: str
) -> None:
    assert scenario is not None and not error, f"{file}: {error}"
    result = run_scenario(example, scenario, file)
    assert result.failures == (), "\n".join(result.failures)


def test_every_example_scenario_file_is_collected() -> None:
    files = {p.relative_to(EXAMPLES).as_posix() for p in find_scenario_files(EXAMPLES)}
    collected = {param.values[0] for param in EXAMPLE_SCENARIOS}
    assert files and collected == files
    assert len(EXAMPLE_SCENARIOS) >= 40


def test_cli_prints_the_summary_line() -> None:
    out = io.StringIO()
    assert run_tests(str(EXAMPLES), out=out) == 0
    last = out.getvalue().strip().splitlines()[-1]
    passed, failed = last.split(", ")
    assert passed.endswith(" passed") and int(passed.split()[0]) >= 40
    assert failed == "0 failed"


def test_scenario_files_are_exactly_what_the_loader_skips() -> None:
    files = [p.relative_to(EXAMPLES).as_posix() for p in find_scenario_files(EXAMPLES)]
    assert files and all(f.startswith("tests/") for f in files)


def test_a_wrong_expectation_fails_with_an_explanation(tmp_path: Path) -> None:
    root = tmp_path / "policies"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("tests"))
    (root / "tests").mkdir()
    (root / "tests" / "wrong.yaml").write_text(
        """
scenarios:
  - name: expects the email where consent denies it
    given:
      now: 2025-06-02T15:00:00Z
      profile: {region: EU, email_verified: true}
      events:
        - {type: cart_updated, at: -2h, properties: {cart_id: k1, item_count: 2, cart_value: 40.0}}
    steps:
      - decide: {channels: [email]}
        expect: {actions: [cart_reminder_email]}
"""
    )
    (root / "tests" / "typo.yaml").write_text(
        """
scenarios:
  - name: a typo in an expectation is an error, not a pass
    given: {now: 2025-06-02T15:00:00Z}
    steps:
      - decide: {}
        expect: {acions: []}
"""
    )
    out = io.StringIO()
    assert run_tests(str(root), out=out) == 1
    text = out.getvalue()
    assert "CONSENT_UNKNOWN" in text  # the trace of the expected action explains the failure
    assert "unknown field `acions`" in text
    assert text.strip().endswith("0 passed, 2 failed")


def test_explain_prints_decision_and_trace(tmp_path: Path) -> None:
    (tmp_path / "req.json").write_text(
        '{"customer_id": "alice", "channels": ["push"], "request_id": "r1"}'
    )
    (tmp_path / "snap.yaml").write_text(
        """
customer_id: alice
profile:
  region: {value: US}
  app_installed: {value: true}
journeys:
  cart_abandonment: {status: active, stage: reminder, entered_ms: 1748869200000, stage_entered_ms: 1748872800000}
"""
    )
    out = io.StringIO()
    code = explain(
        str(EXAMPLES),
        str(tmp_path / "req.json"),
        str(tmp_path / "snap.yaml"),
        now="2025-06-02T15:00:00Z",
        out=out,
    )
    assert code == 0
    text = out.getvalue()
    assert "cart_reminder_push" in text and "SELECTED" in text and "commit:" in text


def test_bench_runs_on_a_small_synthetic_set() -> None:
    policy = synthetic_policy(20, 3)
    assert len(policy.actions) >= 20 and len(policy.journeys) == 3
    snapshots = synthetic_snapshots(policy, 20)
    (result,) = run_bench(policy, snapshots, [("all", Request(customer_id="x", limit=3))], rounds=1)
    assert result.decisions == 20 and result.off_median_us > 0 and result.on_median_us > 0
