"""Metrics scraped from a real server: every call counted on both ports with its final status (refused ones too), latency from 0.1 ms, grants, rejections, degradations, journeys, store calls, circuit, policy version, decision log."""

from __future__ import annotations

import json
import random
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from arbiter.server.security.credentials import AuthSettings, hash_api_key
from arbiter.v1 import decision_pb2, decision_pb2_grpc

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from conftest import ServerHandle  # noqa: E402
from traffic import SURFACES, decide_request, events, seed  # noqa: E402

KEY = "arb_" + uuid.uuid4().hex
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    directory = tmp_path_factory.mktemp("metrics")
    keys = directory / "keys.yaml"
    keys.write_text(
        f"keys:\n  - id: ops\n    sha256: {hash_api_key(KEY)}\n"
        "    roles: [decide, ingest, metrics]\n"
    )
    handle = ServerHandle(
        auth=AuthSettings(api_keys=str(keys)),
        metrics_listen="127.0.0.1:0",
        http_listen="127.0.0.1:0",
        decision_log=str(directory / "decisions.jsonl"),
    )
    try:
        yield handle
    finally:
        handle.close()


def _scrape(handle: ServerHandle) -> Samples:
    metrics = handle.server._metrics_server
    assert metrics is not None
    request = urllib.request.Request(
        f"http://127.0.0.1:{metrics.port}/metrics", headers={"authorization": f"Bearer {KEY}"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        text = answer.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return _value(after, name, **labels) - _value(before, name, **labels)


def _stub(handle: ServerHandle, key: str | None = KEY) -> tuple[Any, grpc.Channel]:
    channel = grpc.insecure_channel(handle.address)
    stub = decision_pb2_grpc.DecisionServiceStub(channel)
    if key is None:
        return stub, channel

    class Keyed:
        def __getattr__(self, name: str) -> Any:
            call = getattr(stub, name)
            return lambda request, **kw: call(
                request, metadata=(("authorization", f"Bearer {key}"),), **kw
            )

    return Keyed(), channel


def _http(handle: ServerHandle, method: str, body: bytes, key: str | None = KEY) -> int:
    assert handle.server.http is not None
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        f"{handle.server.http.url}/arbiter.v1.DecisionService/{method}", data=body, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_calls_are_counted_on_both_ports_with_their_final_status(server: ServerHandle) -> None:
    before = _scrape(server)
    stub, channel = _stub(server)
    anonymous, bare = _stub(server, key=None)
    with channel, bare:
        stub.Decide(decide_request(random.Random(1), "m-1", surface=SURFACES[0]), timeout=5)
        with pytest.raises(grpc.RpcError):
            anonymous.Decide(decide_request(random.Random(1), "m-1"), timeout=5)
        with pytest.raises(grpc.RpcError):
            stub.Decide(decision_pb2.DecideRequest(customer_id="m-1"), timeout=5)  # no request_id
    ok = json.dumps({"requestId": uuid.uuid4().hex, "customerId": "m-1"}).encode()
    assert _http(server, "Decide", ok) == 200
    assert _http(server, "Decide", ok, key=None) == 401
    assert _http(server, "Decide", b"{not json") == 400  # refused by connectrpc, no handler
    after = _scrape(server)
    for transport, code, n in (
        ("grpc", "OK", 1),
        ("grpc", "UNAUTHENTICATED", 1),
        ("grpc", "INVALID_ARGUMENT", 1),
        ("connect", "OK", 1),
        ("connect", "UNAUTHENTICATED", 1),
        ("connect", "INVALID_ARGUMENT", 1),
    ):
        labels = {"method": "Decide", "code": code, "transport": transport}
        assert _delta(before, after, "arbiter_requests_total", **labels) == n, labels
    grpc_calls = _delta(
        before, after, "arbiter_request_seconds_count", method="Decide", transport="grpc"
    )
    assert grpc_calls == 3
    assert (
        "arbiter_request_seconds_bucket",
        frozenset({"method": "Decide", "transport": "grpc", "le": "0.0001"}.items()),
    ) in after


def test_decision_outcomes_store_calls_and_the_decision_log_are_counted(
    server: ServerHandle,
) -> None:
    stub, channel = _stub(server)
    rng = random.Random(4)
    assert server.server.decisions is not None
    server.call(server.server.decisions.flush())  # the records of earlier tests
    before = _scrape(server)
    with channel:
        stub.Decide(decide_request(rng, "m-new", surface=SURFACES[0]), timeout=5)  # no consent
        seed(stub, rng, "m-2")
        for _ in range(5):
            stub.Decide(decide_request(rng, "m-2"), timeout=5)
        signed_up = events(rng, "m-3")
        signed_up.events[0].type = "signed_up"  # enters onboarding
        signed_up.events[0].ClearField("properties")
        stub.Track(signed_up, timeout=5)
        server.store.latency_s = 0.3  # type: ignore[attr-defined]
        try:
            stub.Decide(decide_request(rng, "m-2", surface=SURFACES[0]), timeout=0.2)
        finally:
            server.store.latency_s = 0.0  # type: ignore[attr-defined]
    server.call(server.server.decisions.flush())
    after = _scrape(server)
    assert (
        _delta(
            before, after, "arbiter_grants_total", action="default_home_banner", channel="in_app"
        )
        >= 1
    )
    assert (
        _delta(before, after, "arbiter_rejections_total", method="Decide", reason="CONSENT_UNKNOWN")
        >= 1
    )
    assert (
        _delta(
            before,
            after,
            "arbiter_degraded_responses_total",
            method="Decide",
            cause="STATE_UNAVAILABLE",
        )
        == 1
    )
    assert _delta(before, after, "arbiter_store_seconds_count", operation="load") >= 7
    assert _delta(before, after, "arbiter_store_seconds_count", operation="commit_decision") >= 6
    entered = sum(
        v - before.get(k, 0.0)
        for k, v in after.items()
        if k[0] == "arbiter_journey_transitions_total" and ("kind", "enter") in k[1]
    )
    assert entered >= 1
    assert _delta(before, after, "arbiter_decision_log_records_total", sink="file") == 7
    assert _value(after, "arbiter_decision_log_queue_depth") == 0
    policy = server.policy
    assert (
        _value(
            after,
            "arbiter_policy_info",
            policy_id=policy.id,
            version=policy.version,
            digest=policy.digest,
        )
        == 1
    )
    assert _value(after, "arbiter_store_circuit_state") == 0
