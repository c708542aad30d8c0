"""Impact simulation: recorded decisions re-decided under a changed policy, the report, and the CI gate."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from arbiter.policies import (
    CompiledPolicy,
    CustomerSnapshot,
    ProfileValue,
    Request,
    StoreReport,
    compile_policy,
    decide,
    decision_log,
    impact,
    settle,
)
from arbiter.policies.effects import CommitResult
from arbiter.policies.loader import load_sources

DATA = Path(__file__).parent / "data"
BASE = (DATA / "engine_base.yaml").read_text()
NOW = 1_748_876_400_000
ACTIONS = """
actions:
  - id: big_cart
    always_on: true
    channel: email
    eligibility: context.cart > 100.0
    priority: 2
  - id: receipt
    always_on: true
    channel: receipts
    priority: 1
"""


def _policy(actions: str = ACTIONS) -> CompiledPolicy:
    return compile_policy(load_sources({"base.yaml": BASE, "extra.yaml": actions}))


def _records(policy: CompiledPolicy, carts: list[float]) -> list[decision_log.DecisionRecord]:
    out = []
    for i, cart in enumerate(carts):
        snapshot = CustomerSnapshot(
            customer_id=f"c-{i}", profile={"region": ProfileValue(value="US")}
        )
        request = Request(
            customer_id=f"c-{i}", request_id=f"r-{i}", context={"cart": cart}, limit=2
        )
        report = StoreReport(committed=CommitResult())
        decision, commit = decide(
            policy, msgspec.structs.replace(request, explain=True), snapshot, NOW
        )
        out.append(
            decision_log.build_record(
                policy,
                settle(decision, report, commit),
                request=request,
                state=snapshot,
                now_ms=NOW,
                logged_ms=NOW,
                store=report,
            )
        )
    return out


def test_an_unchanged_policy_changes_nothing() -> None:
    policy = _policy()
    report = impact.simulate(_records(policy, [10.0, 200.0]), policy)
    assert (report.decisions, report.changed) == (2, 0)
    assert report.grants_before == report.grants_after
    assert impact.gate(report, max_change=0.0) == []


def test_a_broadened_eligibility_rule_reports_the_grant_increase() -> None:
    before = _policy()
    records = _records(before, [10.0, 20.0, 30.0, 200.0])
    after = _policy(ACTIONS.replace("context.cart > 100.0", "context.cart > 15.0"))
    report = impact.simulate(records, after)
    assert (report.decisions, report.changed) == (4, 2)
    assert (report.grants_before["big_cart"], report.grants_after["big_cart"]) == (1, 3)
    assert (report.channel_before["email"], report.channel_after["email"]) == (1, 3)
    assert report.consent_gated_new == {"big_cart": 2}  # email needs p_email
    assert report.lifted_suppressions == {"INELIGIBLE": 2}
    failures = impact.gate(report, max_change=0.05)
    assert failures == ["--max-change 5%: 2 of 4 decisions changed (50.00 %)"]
    # Both versions re-evaluated (--from DIR) give the same report here.
    again = impact.simulate(records, after, before)
    assert (again.changed, again.grants_after) == (report.changed, report.grants_after)


def test_a_narrowed_rule_reports_new_suppressions() -> None:
    before = _policy()
    after = _policy(ACTIONS.replace("context.cart > 100.0", "context.cart > 500.0"))
    report = impact.simulate(_records(before, [200.0, 300.0]), after)
    assert report.new_suppressions == {"INELIGIBLE": 2}
    assert impact.gate(report, fail_on=[impact.parse_fail_on("new-suppressions>1")]) == [
        "new-suppressions>1: 2"
    ]
    assert impact.gate(report, fail_on=[impact.parse_fail_on("new-suppressions>2")]) == []


@pytest.mark.parametrize(
    ("rule", "fails"),
    [
        ("grant-increase", True),
        ("grant-increase>300%", False),
        ("grant-increase:receipt", False),
        ("grant-increase:big_cart>100%", True),
        ("channel-increase:email>199%", True),
        ("channel-increase:receipts", False),
        ("consent-gated-grants", True),
        ("consent-gated-grants>2", False),
    ],
)
def test_fail_on_rules(rule: str, fails: bool) -> None:
    before = _policy()
    after = _policy(ACTIONS.replace("context.cart > 100.0", "context.cart > 15.0"))
    report = impact.simulate(_records(before, [10.0, 20.0, 30.0, 200.0]), after)
    assert bool(impact.gate(report, fail_on=[impact.parse_fail_on(rule)])) is fails


def test_a_bad_fail_on_rule_names_the_kinds() -> None:
    with pytest.raises(ValueError, match="KIND one of grant-increase"):
        impact.parse_fail_on("grants-up")


def test_records_naming_a_removed_channel_are_skipped_and_counted() -> None:
    policy = _policy()
    record = _records(policy, [10.0])[0]
    assert record.request is not None
    odd = msgspec.structs.replace(
        record, request=msgspec.structs.replace(record.request, channels=("pager",))
    )
    report = impact.simulate([odd], policy)
    assert report.decisions == 0
    assert list(report.skipped) == [f"channel `pager` not in policy {policy.policy_version}"]
