"""docs/observability.md lists every metric the server registers (and no metric it does not),
every field a JSON log line can carry, and every field of a decision log record."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

import msgspec
from prometheus_client import REGISTRY

import arbiter.server.metrics
import arbiter.server.outbound.metrics  # noqa: F401  (and arbiter worker's)
from arbiter.policies import decision_log
from arbiter.server.logs import CALL, CallContext, JsonFormatter

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "observability.md").read_text()


def _section(title: str) -> str:
    start = DOC.index(f"\n{title}\n")
    end = DOC.find("\n## ", start + 1)
    return DOC[start : end if end >= 0 else len(DOC)]


def _first_column(section: str) -> set[str]:
    return set(re.findall(r"^\| `([a-z_]+)` \|", section, re.M))


def test_every_registered_metric_is_listed_and_every_listed_one_exists() -> None:
    registered = set()
    for metric in REGISTRY.collect():
        if metric.name.startswith("arbiter_"):
            registered.add(metric.name + "_total" if metric.type == "counter" else metric.name)
    listed = {m for m in _first_column(_section("## Metrics")) if m.startswith("arbiter_")}
    assert registered - listed == set(), "registered but not in docs/observability.md"
    assert listed - registered == set(), "in docs/observability.md but not registered"


def test_every_field_of_a_json_log_line_is_listed() -> None:
    listed = _first_column(_section("## Logs"))
    formatter = JsonFormatter()
    call = CallContext("Decide", "grpc", "r-1")
    call.decision_id = "d-1"
    token = CALL.set(call)
    try:
        record = logging.LogRecord("arbiter.access", logging.WARNING, "", 0, "m", None, None)
        record.__dict__.update({"status": "UNAVAILABLE", "duration_ms": 1.0, "repeated": 3})
        audit = logging.LogRecord("arbiter.audit", logging.INFO, "", 0, "a", None, None)
        audit.__dict__["audit"] = {"rpc": "Decide"}
        try:
            raise ValueError("boom")
        except ValueError:
            failed = logging.LogRecord(
                "arbiter.server", logging.ERROR, "", 0, "x", None, sys.exc_info()
            )
        fields: set[str] = set()
        for r in (record, audit, failed):
            fields |= set(json.loads(formatter.format(r)))
    finally:
        CALL.reset(token)
    assert fields - listed == set()
    # Every ``extra`` key the server passes is listed too.
    extras = set()
    for path in (ROOT / "server").rglob("*.py"):
        for line in path.read_text().splitlines():
            if re.search(r"\bextra(: dict\[str, Any\])? ?= ?\{|\bextra\[|extra=\{", line):
                extras |= set(re.findall(r'"(\w+)"(?=\]|:)', line))
    assert extras and extras - listed == set()


def test_every_field_of_a_decision_record_is_listed() -> None:
    listed = _first_column(_section("### Record fields"))
    fields = {f.encode_name for f in msgspec.structs.fields(decision_log.DecisionRecord)}
    assert fields - listed == set()
    paused = {f.encode_name for f in msgspec.structs.fields(decision_log.Paused)}
    row = next(line for line in DOC.splitlines() if line.startswith("| `paused` |"))
    assert all(f in row for f in paused)
