"""OpenTelemetry spans of Decide: one ``arbiter.Decide`` span with validate, load, decide and
commit children, a child of the caller's ``traceparent``, attributes that never name the
customer; none of it when tracing is off."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)

from arbiter.policies import load_policy
from arbiter.server.errors import CallFailed
from arbiter.server.registry import PolicyRegistry
from arbiter.server.service import Call, DecisionCore
from arbiter.server.tracing import NO_SPANS, tracing_from_endpoint, tracing_from_exporter
from arbiter.state import MemoryStore
from arbiter.v1 import decision_pb2

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "policies"
NOW = 1_748_962_800_000
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def _core() -> DecisionCore:
    registry = PolicyRegistry()
    registry.activate(load_policy(EXAMPLES))
    return DecisionCore(registry, MemoryStore(), now_ms=lambda: NOW)


def _request(request_id: str, *, dry_run: bool = False) -> decision_pb2.DecideRequest:
    return decision_pb2.DecideRequest(
        request_id=request_id,
        customer_id="trace-customer-7731",
        placement="home_banner",
        channels=["in_app"],
        dry_run=dry_run,
    )


def test_a_decide_is_one_span_with_its_four_phases_under_the_callers_trace() -> None:
    exporter = InMemorySpanExporter()
    core = _core()
    core.spans, provider = tracing_from_exporter(exporter, batch=False)
    call = Call(metadata=(("traceparent", f"00-{TRACE_ID}-{PARENT}-01"),))
    reply = asyncio.run(core.invoke("Decide", _request("t-1"), call))
    provider.shutdown()
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"arbiter.Decide", "validate", "load", "decide", "commit"}
    root = spans["arbiter.Decide"]
    assert format(root.context.trace_id, "032x") == TRACE_ID
    assert root.parent is not None and format(root.parent.span_id, "016x") == PARENT
    for phase in ("validate", "load", "decide", "commit"):
        assert spans[phase].parent is not None
        assert spans[phase].parent.span_id == root.context.span_id
    starts = [spans[p].start_time for p in ("validate", "load", "decide", "commit")]
    assert starts == sorted(starts)
    attributes = dict(root.attributes or {})
    assert attributes["arbiter.decision_id"] == reply.decision_id
    assert attributes["arbiter.actions"] == len(reply.actions)
    assert attributes["arbiter.recorded"] is True
    assert str(attributes["arbiter.policy_version"]).startswith("2025.06.1+")
    every_value = " ".join(
        str(v) for s in spans.values() for v in dict(s.attributes or {}).values()
    )
    assert "trace-customer-7731" not in every_value  # never whom


def test_a_dry_run_has_no_commit_span_and_a_failure_marks_the_span() -> None:
    exporter = InMemorySpanExporter()
    core = _core()
    core.spans, provider = tracing_from_exporter(exporter, batch=False)
    asyncio.run(core.invoke("Decide", _request("t-2", dry_run=True), Call()))
    names = [s.name for s in exporter.get_finished_spans()]
    assert "commit" not in names and names[-1] == "arbiter.Decide"
    exporter.clear()
    bad = _request("t-3")
    bad.channels.append("no_such_channel")
    with pytest.raises(CallFailed):
        asyncio.run(core.invoke("Decide", bad, Call()))
    provider.shutdown()
    root = next(s for s in exporter.get_finished_spans() if s.name == "arbiter.Decide")
    assert not root.status.is_ok


def test_without_an_endpoint_tracing_is_off_and_imports_nothing() -> None:
    spans, provider = tracing_from_endpoint("")
    assert spans is NO_SPANS and provider is None and not spans.enabled
    core = _core()
    assert core.spans is NO_SPANS
    reply = asyncio.run(core.invoke("Decide", _request("t-4"), Call()))
    assert reply.decision_id
