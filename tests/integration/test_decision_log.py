"""The decision log on a real server: one record per committed decision, sampled dry runs and Checks, ExplainDecision on both ports, replay of 1,000 recorded decisions, impact of a broadened rule, PII canaries."""

from __future__ import annotations

import io
import json
import logging
import random
import shutil
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from arbiter.policies import decision_log
from arbiter.server.cli import main
from arbiter.server.logs import JsonFormatter
from arbiter.v1 import admin_pb2, admin_pb2_grpc, decision_pb2, decision_pb2_grpc, value_pb2

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from conftest import EXAMPLES, ServerHandle  # noqa: E402
from traffic import SURFACES, decide_request, seed  # noqa: E402


def _records(path: Path) -> list[decision_log.DecisionRecord]:
    if not path.exists():
        return []
    return [decision_log.decode_record(line) for line in path.read_bytes().splitlines() if line]


def _flush(handle: ServerHandle) -> None:
    assert handle.server.decisions is not None
    handle.call(handle.server.decisions.flush())


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[tuple[ServerHandle, Path, Any]]:
    path = tmp_path / "decisions.jsonl"
    handle = ServerHandle(
        decision_log=str(path), decision_log_sample=1.0, http_listen="127.0.0.1:0"
    )
    channel = grpc.insecure_channel(handle.address)
    try:
        yield handle, path, decision_pb2_grpc.DecisionServiceStub(channel)
    finally:
        channel.close()
        handle.close()


def test_every_committed_decision_is_one_record_and_replays_are_not(
    logged: tuple[ServerHandle, Path, Any],
) -> None:
    handle, path, stub = logged
    rng = random.Random(7)
    answered = []
    for i in range(60):
        customer = f"c-{i % 12}"
        if i < 12:
            seed(stub, rng, customer)
        request = decide_request(rng, customer)
        reply = stub.Decide(request, timeout=5)
        answered.append(reply.decision_id)
        again = stub.Decide(request, timeout=5)  # an idempotent retry: replayed, not logged
        assert again.replayed
    _flush(handle)
    records = _records(path)
    assert [r.decision_id for r in records] == answered
    assert all(r.committed and r.kind == "decide" and not r.dry_run for r in records)
    assert handle.server.decisions is not None and handle.server.decisions.dropped == 0


def test_dry_runs_and_checks_follow_the_sample_rate(tmp_path: Path) -> None:
    for rate, expected in ((0.0, 0), (1.0, 2)):
        path = tmp_path / f"d-{rate}.jsonl"
        handle = ServerHandle(decision_log=str(path), decision_log_sample=rate)
        try:
            with grpc.insecure_channel(handle.address) as channel:
                stub = decision_pb2_grpc.DecisionServiceStub(channel)
                stub.Decide(decide_request(random.Random(1), "c-dry", dry_run=True), timeout=5)
                stub.Check(
                    decision_pb2.CheckRequest(
                        request_id=uuid.uuid4().hex,
                        customer_id="c-dry",
                        action_id="default_home_banner",
                        channel="in_app",
                    ),
                    timeout=5,
                )
            _flush(handle)
            records = _records(path)
            assert len(records) == expected
            if expected:
                assert {(r.kind, r.dry_run, r.committed) for r in records} == {
                    ("decide", True, False),
                    ("check", False, False),
                }
        finally:
            handle.close()


def test_explain_decision_serves_the_record_on_both_ports(
    logged: tuple[ServerHandle, Path, Any],
) -> None:
    handle, _path, stub = logged
    rng = random.Random(3)
    seed(stub, rng, "c-explain")
    reply = stub.Decide(decide_request(rng, "c-explain", surface=SURFACES[0]), timeout=5)
    with grpc.insecure_channel(handle.address) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        found = admin.ExplainDecision(
            admin_pb2.ExplainDecisionRequest(decision_id=reply.decision_id), timeout=5
        ).record
        with pytest.raises(grpc.RpcError) as missing:
            admin.ExplainDecision(admin_pb2.ExplainDecisionRequest(decision_id="nope"), timeout=5)
        with pytest.raises(grpc.RpcError) as bad:
            admin.ExplainDecision(admin_pb2.ExplainDecisionRequest(decision_id="a b"), timeout=5)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert found.decision_id == reply.decision_id and found.kind == "decide" and found.committed
    assert [a.action_id for a in found.actions] == [a.action_id for a in reply.actions]
    assert found.candidates  # every candidate, although the call did not ask for explain
    assert found.caller == "anonymous" and found.policy_digest.startswith("sha256:")
    record = decision_log.decode_record(found.record_json)
    assert record.decision_id == reply.decision_id and record.state is not None
    assert handle.server.http is not None
    body = json.dumps({"decisionId": reply.decision_id}).encode()
    request = urllib.request.Request(
        f"{handle.server.http.url}/arbiter.v1.AdminService/ExplainDecision",
        data=body,
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        over_http = json.loads(answer.read())
    assert over_http["record"]["decisionId"] == reply.decision_id


def test_explain_decision_of_an_unlogged_decision_is_not_found_on_both_ports(
    logged: tuple[ServerHandle, Path, Any],
) -> None:
    """A dry run sampled out (rate 0 here) is answered but never logged: NOT_FOUND, with the
    same code and message over gRPC and Connect; a malformed id is INVALID_ARGUMENT on both."""
    handle, _path, stub = logged
    assert handle.server.decisions is not None
    handle.server.decisions.sample_rate = 0.0
    rng = random.Random(5)
    seed(stub, rng, "c-unlogged")
    reply = stub.Decide(
        decide_request(rng, "c-unlogged", dry_run=True, surface=SURFACES[0]), timeout=5
    )
    _flush(handle)
    with grpc.insecure_channel(handle.address) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        with pytest.raises(grpc.RpcError) as missing:
            admin.ExplainDecision(
                admin_pb2.ExplainDecisionRequest(decision_id=reply.decision_id), timeout=5
            )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert handle.server.http is not None
    for decision_id, status, code in (
        (reply.decision_id, 404, "not_found"),
        ("a b", 400, "invalid_argument"),
    ):
        request = urllib.request.Request(
            f"{handle.server.http.url}/arbiter.v1.AdminService/ExplainDecision",
            data=json.dumps({"decisionId": decision_id}).encode(),
            headers={"content-type": "application/json"},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        body = json.loads(refused.value.read())
        assert (refused.value.code, body["code"]) == (status, code)
        if code == "not_found":
            assert body["message"] == missing.value.details()
        else:
            assert body["message"].startswith("decision_id: ")


def test_explain_decision_without_a_decision_log_is_a_failed_precondition(
    arbiter_server: ServerHandle,
) -> None:
    with grpc.insecure_channel(arbiter_server.address) as channel:
        admin = admin_pb2_grpc.AdminServiceStub(channel)
        with pytest.raises(grpc.RpcError) as off:
            admin.ExplainDecision(admin_pb2.ExplainDecisionRequest(decision_id="d-1"), timeout=5)
    assert off.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "--decision-log" in (off.value.details() or "")


def _swapped(tmp_path: Path) -> Path:
    """The example set with a deliberately broadened eligibility rule (and a new version)."""
    copy = tmp_path / "broadened"
    shutil.copytree(EXAMPLES, copy)
    policy = copy / "policy.yaml"
    policy.write_text(policy.read_text().replace('version: "2025.06.1"', 'version: "2025.06.2"'))
    actions = copy / "actions" / "always_on.yaml"
    text = actions.read_text()
    broadened = text.replace('context.has("cart_value") && context.cart_value < 35.0', '"true"')
    assert broadened != text
    actions.write_text(broadened)
    return copy


def test_replay_reproduces_1000_recorded_decisions_and_diffs_a_swapped_version(
    logged: tuple[ServerHandle, Path, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _handle, path, stub = logged
    rng = random.Random(11)
    customers = [f"r-{i}" for i in range(150)]
    for customer in customers:
        seed(stub, rng, customer)
    for _ in range(1000):
        stub.Decide(decide_request(rng, rng.choice(customers)), timeout=5)
    _flush(_handle)
    assert len(_records(path)) == 1000
    assert main(["replay", "--all", "--log", str(path), "--policies", str(EXAMPLES)]) == 0
    assert capsys.readouterr().out.strip().endswith("1000 replayed: 1000 identical, 0 differ")
    one = _records(path)[500].decision_id
    assert main(["replay", one, "--log", str(path), "--policies", str(EXAMPLES)]) == 0
    assert capsys.readouterr().out.startswith(f"{one}: identical")
    swapped = _swapped(tmp_path)
    assert main(["replay", "--all", "--log", str(path), "--policies", str(swapped)]) == 1
    out = capsys.readouterr().out
    assert "differs (recorded under 2025.06.1+sha256:" in out and "--- recorded" in out
    assert '- "policy_version": "2025.06.1+' in out and '+ "policy_version": "2025.06.2+' in out

    # Impact of the broadened rule on the same traffic: a grant increase, a failed gate.
    code = main(
        [
            "policy",
            "impact",
            "--from",
            "2025.06.1",
            "--to",
            str(swapped),
            "--decisions",
            str(path),
            "--max-change",
            "5%",
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    grants = next(line for line in captured.out.splitlines() if "web_cart_bundle" in line)
    before, after = (int(n) for n in grants.split()[1::2][:2])
    assert after > before
    assert "FAIL --max-change 5%" in captured.err
    assert (
        main(
            [
                "policy",
                "impact",
                "--from",
                str(EXAMPLES),
                "--to",
                str(EXAMPLES),
                "--decisions",
                str(path),
                "--max-change",
                "0%",
            ]
        )
        == 0
    )


def test_decisions_export_and_filters(
    logged: tuple[ServerHandle, Path, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    handle, path, stub = logged
    rng = random.Random(5)
    for customer in ("e-1", "e-2", "e-1"):
        stub.Decide(decide_request(rng, customer), timeout=5)
    _flush(handle)
    assert main(["decisions", "export", "--log", str(path), "--customer", "e-1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(json.loads(x)["customer_id"] == "e-1" for x in lines)
    assert main(["decisions", "export", "--log", str(path), "--kind", "check"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["decisions", "export", "--log", str(path), "--since", "bad"]) == 2


# --------------------------------------------------------------------------- PII canaries

_PII_POLICY = """
contracts:
  context:
    coupon: {type: string, pii: true}
actions:
  - id: named_banner
    always_on: true
    channel: in_app
    placements: [cart_drawer]
    eligibility: profile.first_name != "" && context.coupon != ""
    priority: 5
"""
CANARIES = {
    "first_name": "Canaryfirst7731",
    "email": "canary-mail-7731@example.com",
    "coupon": "CANARYCOUPON7731",
}
PUBLIC_CANARY = "Canaryland7731"  # a non-personal attribute: may be in records, never in logs


def test_customer_attribute_values_never_reach_logs_or_unmasked_records(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    shutil.copytree(EXAMPLES, policies)
    (policies / "pii.yaml").write_text(_PII_POLICY)
    path = tmp_path / "decisions.jsonl"
    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    capture.setFormatter(JsonFormatter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(capture)
    root.setLevel(logging.DEBUG)
    handle = ServerHandle(
        policies=str(policies),
        decision_log=str(path),
        decision_log_sample=1.0,
        access_log=True,
        http_listen="127.0.0.1:0",
    )
    try:
        _send_canaries(handle)
        _flush(handle)
    finally:
        handle.close()
        root.removeHandler(capture)
        root.setLevel(old_level)
    logs = stream.getvalue()
    records = path.read_text()
    assert logs.count('"logger":"arbiter.access"') >= 6  # the calls were logged
    for value in (*CANARIES.values(), PUBLIC_CANARY):
        assert value.lower() not in logs.lower(), value
    for value in CANARIES.values():
        assert value.lower() not in records.lower(), value
    assert "state.profile.first_name" in records and "context.coupon" in records  # masked


def _send_canaries(handle: ServerHandle) -> None:
    from google.protobuf import timestamp_pb2

    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    stamp.seconds -= 60
    traits = {
        "region": value_pb2.Value(string_value="US"),
        "first_name": value_pb2.Value(string_value=CANARIES["first_name"]),
        "email": value_pb2.Value(string_value=CANARIES["email"]),
        "country": value_pb2.Value(string_value=PUBLIC_CANARY),
    }
    with grpc.insecure_channel(handle.address) as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        update = decision_pb2.UpdateProfileRequest(
            request_id=uuid.uuid4().hex,
            customer_id="pii-1",
            source="crm",
            timestamp=stamp,
            traits=traits,
        )
        update.consents.add(purpose="personalization", state=decision_pb2.CONSENT_STATE_GRANTED)
        stub.UpdateProfile(update, timeout=5)
        decide = decision_pb2.DecideRequest(
            request_id=uuid.uuid4().hex,
            customer_id="pii-1",
            placement="cart_drawer",
            channels=["in_app"],
            explain=True,
        )
        decide.context["coupon"].string_value = CANARIES["coupon"]
        reply = stub.Decide(decide, timeout=5)
        assert [a.action_id for a in reply.actions] == ["named_banner"]  # the policy read them
        # Refused input carrying the canaries: the errors name fields, never values.
        bad = decision_pb2.UpdateProfileRequest()
        bad.CopyFrom(update)
        bad.request_id = uuid.uuid4().hex
        bad.traits["region"].string_value = CANARIES["email"]
        bad.traits["orders_count"].string_value = CANARIES["first_name"]
        with pytest.raises(grpc.RpcError) as refused:
            stub.UpdateProfile(bad, timeout=5)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        wrong = decision_pb2.DecideRequest()
        wrong.CopyFrom(decide)
        wrong.request_id = uuid.uuid4().hex
        wrong.context["coupon"].int_value = 7731
        wrong.context["cart_value"].string_value = CANARIES["coupon"]
        with pytest.raises(grpc.RpcError):
            stub.Decide(wrong, timeout=5)
        track = decision_pb2.TrackRequest()
        track.events.add(
            event_id=uuid.uuid4().hex,
            customer_id="pii-1",
            type="cart_updated",
            timestamp=stamp,
            properties={
                "cart_id": value_pb2.Value(string_value=CANARIES["first_name"]),
                "item_count": value_pb2.Value(string_value=CANARIES["email"]),  # wrong type
            },
        )
        stub.Track(track, timeout=5)
        # The same over Connect JSON on the HTTP port.
        assert handle.server.http is not None
        body = json.dumps(
            {
                "requestId": uuid.uuid4().hex,
                "customerId": "pii-1",
                "placement": "cart_drawer",
                "channels": ["in_app"],
                "context": {"coupon": {"stringValue": CANARIES["coupon"]}},
            }
        ).encode()
        request = urllib.request.Request(
            f"{handle.server.http.url}/arbiter.v1.DecisionService/Decide",
            data=body,
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            assert json.loads(answer.read())["actions"][0]["actionId"] == "named_banner"
        # A store outage: the warnings say what failed, not for whom or with what.
        handle.store.latency_s = 0.5  # type: ignore[attr-defined]
        try:
            stub.Decide(
                decision_pb2.DecideRequest(
                    request_id=uuid.uuid4().hex, customer_id="pii-1", placement="cart_drawer"
                ),
                timeout=0.2,
            )
        except grpc.RpcError:
            pass
        finally:
            handle.store.latency_s = 0.0  # type: ignore[attr-defined]
        time.sleep(0.05)
