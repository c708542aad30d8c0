"""deploy/: the Prometheus alert rules load and fire as their unit tests say (promtool), and every
query of the rules and of the Grafana dashboard parses and names only metrics the server has."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client import REGISTRY

import arbiter.server.metrics  # noqa: F401  (registers the server's metrics)

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "arbiter-dashboard.json"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool not installed (Debian package `prometheus`; .ci/run installs it)",
)
_METRIC = re.compile(r"\barbiter_[a-z_]+")
_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def _registered() -> set[str]:
    names = set()
    for metric in REGISTRY.collect():
        names.add(metric.name)
        for sample in metric.samples:
            names.add(sample.name)
    return names


def _dashboard_queries() -> list[tuple[str, str]]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [
        (panel["title"], target["expr"])
        for panel in dashboard["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def _alert_queries() -> list[tuple[str, str]]:
    doc = yaml.safe_load(RULES.read_text())
    return [(r["alert"], r["expr"]) for g in doc["groups"] for r in g["rules"]]


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_query_names_metrics_the_server_registers(source: str) -> None:
    queries = _dashboard_queries() if source == "dashboard" else _alert_queries()
    assert queries
    registered = _registered()
    unknown = {
        (name, metric)
        for name, expr in queries
        for metric in _METRIC.findall(expr)
        if metric not in registered and metric.removesuffix(_suffix(metric)) not in registered
    }
    assert not unknown


def _suffix(metric: str) -> str:
    return next((s for s in _SUFFIXES if metric.endswith(s)), "")


def test_the_dashboard_covers_every_area_of_the_issue() -> None:
    text = DASHBOARD.read_text()
    for metric in (
        "arbiter_requests_total",
        "arbiter_request_seconds_bucket",
        "arbiter_grants_total",
        "arbiter_rejections_total",
        "arbiter_journey_transitions_total",
        "arbiter_store_seconds_bucket",
        "arbiter_store_errors_total",
        "arbiter_store_circuit_state",
        "arbiter_policy_info",
        "arbiter_degraded_responses_total",
        "arbiter_decision_log_lag_seconds",
        "arbiter_decision_log_dropped_total",
        "arbiter_volume_guard_grants",
        "arbiter_shed_total",
    ):
        assert metric in text, metric


@needs_promtool
def test_the_alert_rules_load_and_pass_their_unit_tests() -> None:
    for args in (["check", "rules", str(RULES)], ["test", "rules", str(RULE_TESTS)]):
        done = subprocess.run(
            [str(PROMTOOL), *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_every_dashboard_query_parses(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule's expression (the dashboard's
    ``$__rate_interval`` stands for a duration)."""
    rules = [
        {"record": f"arbiter:dashboard:q{i}", "expr": expr.replace("$__rate_interval", "1m")}
        for i, (_, expr) in enumerate(_dashboard_queries())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
