"""Decision log records: personal data masked, inputs that replay to the same outcome byte for byte, and the exact diff when they do not."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from arbiter.policies import (
    CheckQuery,
    CompiledPolicy,
    CustomerSnapshot,
    ProfileValue,
    Request,
    StoreReport,
    check,
    compile_policy,
    decide,
    decision_log,
    precheck,
    settle,
)
from arbiter.policies.effects import CommitResult, GrantRejection
from arbiter.policies.loader import load_sources

DATA = Path(__file__).parent / "data"
BASE = (DATA / "engine_base.yaml").read_text()
NOW = 1_748_876_400_000
EXTRA = """
contracts:
  profile:
    email: {type: string, pii: true}
    nickname: {type: string, pii: true}
  context:
    coupon: {type: string, pii: true}
actions:
  - id: a_email
    always_on: true
    channel: email
    eligibility: profile.nickname != "blocked"
    priority: 3
  - id: a_receipt
    always_on: true
    channel: receipts
    priority: 1
    caps: [{limit: 1, window: 1h, include_transactional: true}]
"""


def _policy(extra: str = EXTRA) -> CompiledPolicy:
    return compile_policy(load_sources({"base.yaml": BASE, "extra.yaml": extra}))


def _snapshot() -> CustomerSnapshot:
    return CustomerSnapshot(
        customer_id="c-1",
        profile={
            "region": ProfileValue(value="US", updated_ms=1, source="crm"),
            "email": ProfileValue(value="canary-7f3a@example.com", updated_ms=1),
            "nickname": ProfileValue(value="canary-nick", updated_ms=1),
        },
    )


def _request(**overrides: object) -> Request:
    fields: dict[str, object] = {
        "customer_id": "c-1",
        "request_id": "r-1",
        "context": {"cart": 12.5, "coupon": "CANARY-COUPON"},
        "limit": 2,
    }
    fields.update(overrides)
    return Request(**fields)  # type: ignore[arg-type]


def _record(
    policy: CompiledPolicy,
    *,
    store: StoreReport | None = None,
    key: bytes | None = None,
    request: Request | None = None,
) -> decision_log.DecisionRecord:
    """A record as the server builds one: the traced, settled decision and its inputs."""
    request = request or _request()
    snapshot = _snapshot()
    report = store or StoreReport(committed=CommitResult())
    traced = msgspec.structs.replace(request, explain=True)
    decision, commit = decide(policy, traced, snapshot, NOW)
    final = settle(decision, report, commit)
    return decision_log.build_record(
        policy,
        final,
        request=request,
        state=snapshot,
        now_ms=NOW,
        logged_ms=NOW + 5,
        store=report,
        caller=decision_log.Caller(principal="key:checkout", auth="api_key"),
        pii_key=key,
    )


def test_personal_fields_are_masked_and_listed() -> None:
    record = _record(_policy())
    text = decision_log.encode_record(record)
    assert b"canary" not in text.lower()
    assert set(record.masked) == {
        "context.coupon",
        "state.profile.email",
        "state.profile.nickname",
    }
    assert record.request is not None and record.request.context["coupon"] == decision_log.MASK
    assert record.request.context["cart"] == 12.5  # not personal: kept for replay
    assert record.state is not None and record.state.profile["region"].value == "US"


def test_a_key_turns_personal_values_into_stable_pseudonyms() -> None:
    policy = _policy()
    one = _record(policy, key=b"secret")
    two = _record(policy, key=b"secret")
    other = _record(policy, key=b"another")
    assert one.request is not None and two.request is not None and other.request is not None
    pseudonym = one.request.context["coupon"]
    assert pseudonym.startswith("hmac-sha256:") and "CANARY" not in pseudonym
    assert two.request.context["coupon"] == pseudonym
    assert other.request.context["coupon"] != pseudonym


def test_undeclared_context_keys_are_masked() -> None:
    policy = _policy(EXTRA.replace("contracts:\n", "contracts:\n  context_open: true\n", 1))
    record = _record(policy, request=_request(context={"cart": 1.0, "free_text": "canary"}))
    assert record.request is not None and record.request.context["free_text"] == decision_log.MASK
    assert "context.free_text" in record.masked


def test_the_record_carries_every_candidate_and_the_consent_proof() -> None:
    record = _record(_policy())
    assert {c.action for c in record.decision.candidates} == {"a_email", "a_receipt"}
    assert record.decision.consent  # what consent allowed, per purpose
    assert record.caller == decision_log.Caller(principal="key:checkout", auth="api_key")
    assert record.committed and record.kind == "decide" and record.time.endswith("Z")


def test_a_record_round_trips_and_replays_byte_for_byte() -> None:
    policy = _policy()
    record = decision_log.decode_record(decision_log.encode_record(_record(policy)))
    replayed = decision_log.replay(record, policy)
    assert decision_log.outcome_bytes(replayed) == decision_log.outcome_bytes(record.decision)
    assert decision_log.outcome_diff(record.decision, replayed) == []


def test_the_store_outcome_is_replayed_too() -> None:
    """A grant the store refused (cap reached concurrently) is CAPPED on replay as it was."""
    policy = _policy()
    decision, _ = decide(policy, _request(explain=True), _snapshot(), NOW)
    receipt = next(a for a in decision.actions if a.action == "a_receipt")
    refused = CommitResult(
        rejected=(
            GrantRejection(
                tracking_id=receipt.tracking_id, action="a_receipt", cap_id="x", key="k"
            ),
        )
    )
    record = _record(policy, store=StoreReport(committed=refused))
    assert "a_receipt" not in {a.action for a in record.decision.actions}
    replayed = decision_log.replay(
        decision_log.decode_record(decision_log.encode_record(record)), policy
    )
    assert decision_log.outcome_diff(record.decision, replayed) == []


def test_a_swapped_policy_version_shows_the_exact_difference() -> None:
    record = _record(_policy())
    swapped = _policy(EXTRA.replace('profile.nickname != "blocked"', '"false"'))
    diff = decision_log.outcome_diff(record.decision, decision_log.replay(record, swapped))
    assert diff[:2] == ["--- recorded", "+++ replayed"]
    assert any(line.startswith('-   "action": "a_email"') for line in diff)
    assert any('"reason": "INELIGIBLE"' in line for line in diff if line.startswith("+"))


def test_masked_reads_name_the_masked_fields_a_policy_reads() -> None:
    policy = _policy()
    record = _record(policy)
    assert decision_log.masked_reads(record, policy) == ["state.profile.nickname"]


def test_check_records_replay_with_and_without_state() -> None:
    policy = _policy()
    query = CheckQuery(customer_id="c-1", action="a_email", channel="email", request_id="q-1")
    answer, commit = check(policy, query, _snapshot(), NOW)
    record = decision_log.build_record(
        policy,
        settle(answer, StoreReport(), commit),
        query=query,
        state=_snapshot(),
        now_ms=NOW,
        logged_ms=NOW,
    )
    assert decision_log.outcome_diff(record.decision, decision_log.replay(record, policy)) == []
    wrong = CheckQuery(customer_id="c-1", action="a_email", channel="push", request_id="q-2")
    refused = precheck(policy, wrong, NOW)
    assert refused is not None
    record = decision_log.build_record(
        policy, refused, query=wrong, state=None, now_ms=NOW, logged_ms=NOW
    )
    assert record.kind == "check" and record.state is None
    assert decision_log.outcome_diff(record.decision, decision_log.replay(record, policy)) == []


def test_a_decide_record_without_state_is_refused() -> None:
    record = _record(_policy())
    broken = msgspec.structs.replace(record, state=None)
    with pytest.raises(ValueError, match="needs its state"):
        decision_log.replay(broken, _policy())
