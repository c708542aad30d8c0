"""Volume guards in the policy language: what each counts, its errors at their YAML position,
and actions a tripped guard paused are filtered (``PAUSED``) so the next candidate wins."""

from __future__ import annotations

from pathlib import Path

import msgspec

from arbiter.policies import (
    CustomerSnapshot,
    Outcome,
    ProfileValue,
    ReasonCode,
    Request,
    check_policy,
    compile_policy,
    decide,
    decision_log,
)
from arbiter.policies.loader import load_sources

BASE = (Path(__file__).parent / "data" / "engine_base.yaml").read_text()
NOW = 1_748_876_400_000
ACTIONS = """
journeys:
  - {id: j1, owner: t, status: active, triggers: [{event: ping}], stages: [{id: s1}]}
actions:
  - {id: loud, always_on: true, channel: receipts, priority: 9}
  - {id: quiet, always_on: true, channel: receipts, priority: 1}
  - {id: step, journey: j1, channel: email, priority: 5}
"""


def _compile(guards: str) -> tuple[object, list[str]]:
    policy, diags = check_policy(
        load_sources({"base.yaml": BASE, "a.yaml": ACTIONS, "g.yaml": guards})
    )
    return policy, [f"{d.location.line}:{d.location.column} {d.message}" for d in diags]


def test_guards_resolve_the_actions_they_count() -> None:
    policy, diags = _compile(
        """
volume_guards:
  - {id: g_action, action: loud, max_grants: 10, window: 1m, on_trip: pause}
  - {id: g_journey, journey: j1, max_grants: 5, window: 1h}
  - {id: g_channel, channel: receipts, max_grants: 100, window: 30s}
"""
    )
    assert diags == []
    guards = {g.id: g for g in policy.volume_guards}  # type: ignore[attr-defined]
    assert guards["g_action"].actions == {"loud"} and guards["g_action"].on_trip == "pause"
    assert guards["g_journey"].actions == {"step"} and guards["g_journey"].window_ms == 3_600_000
    assert guards["g_channel"].actions == {"loud", "quiet"}
    assert guards["g_channel"].on_trip == "alert"  # the default


def test_guard_errors_are_located_and_name_the_problem() -> None:
    policy, diags = _compile(
        """
volume_guards:
  - {id: two, action: loud, channel: receipts, max_grants: 1, window: 1m}
  - {id: typo, action: lowd, max_grants: 1, window: 1m}
  - {id: short, action: loud, max_grants: 1, window: 500ms}
  - {id: zero, action: loud, max_grants: 0, window: 1m}
"""
    )
    assert policy is None
    text = "\n".join(diags)
    assert "must name exactly one of `action`, `journey`, `channel` (it names 2)" in text
    assert "unknown action `lowd`; did you mean `loud`?" in text
    assert "a volume guard window must be at least 1s" in text
    assert any(d.startswith("5:") for d in diags)  # zero: the schema refuses max_grants 0


def _snapshot() -> CustomerSnapshot:
    return CustomerSnapshot(
        customer_id="c-1", profile={"region": ProfileValue(value="US", updated_ms=1)}
    )


def test_a_paused_action_is_filtered_and_the_next_candidate_wins() -> None:
    policy = compile_policy(load_sources({"base.yaml": BASE, "a.yaml": ACTIONS}))
    request = Request(customer_id="c-1", request_id="r-1", limit=1, explain=True)
    free, _ = decide(policy, request, _snapshot(), NOW)
    assert [a.action for a in free.actions] == ["loud"]
    paused, commit = decide(policy, request, _snapshot(), NOW, paused_actions=frozenset({"loud"}))
    assert [a.action for a in paused.actions] == ["quiet"]
    trace = paused.candidate("loud")
    assert trace is not None and trace.outcome is Outcome.FILTERED
    assert trace.reason is ReasonCode.PAUSED and "volume guard" in trace.detail
    assert [g.action for g in commit.grants] == ["quiet"]


def test_a_record_made_under_a_pause_replays_to_the_same_bytes() -> None:
    policy = compile_policy(load_sources({"base.yaml": BASE, "a.yaml": ACTIONS}))
    request = Request(customer_id="c-1", request_id="r-1", limit=1, explain=True)
    pause = frozenset({"loud"})
    decision, _ = decide(policy, request, _snapshot(), NOW, paused_actions=pause)
    record = decision_log.build_record(
        policy,
        decision,
        request=request,
        state=_snapshot(),
        now_ms=NOW,
        logged_ms=NOW,
        paused=decision_log.Paused(actions=("loud",)),
    )
    again = decision_log.decode_record(decision_log.encode_record(record))
    assert decision_log.outcome_diff(record.decision, decision_log.replay(again, policy)) == []
    assert b'"actions":["loud"]}' in decision_log.encode_record(record)
    unpaused = decision_log.replay(
        msgspec.structs.replace(again, paused=decision_log.Paused()), policy
    )
    assert [a.action for a in unpaused.actions] == ["loud"]  # the pause is what changed it
