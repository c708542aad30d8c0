"""Deferral (issue 10, item 17): a candidate refused only by quiet hours or a full cap says when it may go (``not_before``), in the trace and the answer."""

from __future__ import annotations

from pathlib import Path

from arbiter.policies import CompiledPolicy, compile_policy
from arbiter.policies.decision import CheckQuery, ReasonCode, Request
from arbiter.policies.engine import check, decide
from arbiter.policies.loader import load_sources
from arbiter.policies.snapshot import CustomerSnapshot, ProfileValue
from arbiter.policies.times import parse_instant_ms

BASE = (Path(__file__).parent / "data" / "engine_base.yaml").read_text()
HOUR = 3_600_000
R = ReasonCode


def policy(extra: str, base: str = BASE) -> CompiledPolicy:
    return compile_policy(load_sources({"base.yaml": base, "extra.yaml": extra}))


def at(text: str) -> int:
    return parse_instant_ms(text)


def decide_at(p: CompiledPolicy, now: int, **snapshot: object):  # type: ignore[no-untyped-def]
    s = CustomerSnapshot(
        customer_id="c-1",
        profile={"region": ProfileValue(value="US")},
        **snapshot,  # type: ignore[arg-type]
    )
    request = Request(customer_id="c-1", request_id="r", explain=True, limit=3)
    decision, _ = decide(p, request, s, now)
    quiet, _ = decide(p, Request(customer_id="c-1", request_id="r", limit=3), s, now)
    assert quiet.not_before_ms == decision.not_before_ms  # the answer does not need the trace
    return decision


PUSH = """
actions:
  - {id: push_it, channel: push, always_on: true}
"""


def test_quiet_hours_defer_to_the_end_of_the_quiet_period() -> None:
    # The base's push channel is quiet 22:00-07:00 in UTC (the default zone).
    d = decide_at(policy(PUSH), at("2025-06-02T23:30:00Z"))
    entry = d.candidate("push_it")
    assert entry is not None and entry.reason is R.QUIET_HOURS
    assert entry.not_before_ms == at("2025-06-03T07:00:00Z")
    assert d.not_before_ms == at("2025-06-03T07:00:00Z")
    # Before midnight the same window ends the next morning; mid-minute rounds to the minute.
    d = decide_at(policy(PUSH), at("2025-06-02T22:00:30Z"))
    assert d.not_before_ms == at("2025-06-03T07:00:00Z")


def test_a_full_cap_defers_to_when_its_window_frees_a_slot() -> None:
    p = policy(
        """
caps:
  - {id: two_a_day, scope: global, limit: 2, window: 24h}
actions:
  - {id: mail, channel: email, always_on: true}
"""
    )
    now = at("2025-06-02T15:00:00Z")
    grants = {"two_a_day": [now - 20 * HOUR, now - 5 * HOUR, now - 2 * HOUR]}
    d = decide_at(p, now, caps=grants)
    entry = d.candidate("mail")
    assert entry is not None and entry.reason is R.CAPPED
    # Three grants in the window, limit 2: the two oldest must leave; the second leaves at -5h+24h.
    assert entry.not_before_ms == now - 5 * HOUR + 24 * HOUR
    assert d.actions == ()


def test_quiet_hours_and_caps_combine() -> None:
    p = policy(
        """
caps:
  - {id: one_a_day, scope: global, limit: 1, window: 24h}
actions:
  - {id: push_it, channel: push, always_on: true}
"""
    )
    now = at("2025-06-02T23:00:00Z")
    # The cap frees at 03:00, inside the quiet period: 07:00.
    early = decide_at(p, now, caps={"one_a_day": [at("2025-06-02T03:00:00Z")]})
    assert early.not_before_ms == at("2025-06-03T07:00:00Z")
    # The cap frees at 09:00, after it: 09:00.
    late = decide_at(p, now, caps={"one_a_day": [at("2025-06-02T09:00:00Z")]})
    assert late.not_before_ms == at("2025-06-03T09:00:00Z")
    # Outside quiet hours, capped: the cap decides; quiet from 22:00, a slot at 23:30 -> 07:00.
    capped = decide_at(
        p, at("2025-06-02T20:00:00Z"), caps={"one_a_day": [at("2025-06-01T23:30:00Z")]}
    )
    assert capped.candidate("push_it").reason is R.CAPPED  # type: ignore[union-attr]
    assert capped.not_before_ms == at("2025-06-03T07:00:00Z")


def test_no_deferral_when_no_time_helps() -> None:
    p = policy(
        """
channels:
  - {id: never, purposes: [p_push], quiet_hours: [{start: "00:00", end: "00:00"}]}
caps:
  - {id: none_at_all, scope: action, targets: [mail], limit: 0, window: 24h}
actions:
  - {id: silent, channel: never, always_on: true}
  - {id: mail, channel: email, always_on: true}
"""
    )
    d = decide_at(p, at("2025-06-02T15:00:00Z"))
    assert {c.action: (c.reason, c.not_before_ms) for c in d.candidates} == {
        "silent": (R.QUIET_HOURS, None),
        "mail": (R.CAPPED, None),
    }
    assert d.not_before_ms is None


def test_quiet_hours_end_in_local_time_across_a_daylight_saving_change() -> None:
    base = BASE.replace(
        'policy_set: {id: t, version: "1"}',
        'policy_set: {id: t, version: "1", timezone: {default: America/New_York}}',
    )
    p = policy(PUSH, base)
    # 2025-03-08 23:00 EST (UTC-5); the clocks go forward at 02:00; 07:00 EDT is 11:00 UTC.
    d = decide_at(p, at("2025-03-09T04:00:00Z"))
    assert d.not_before_ms == at("2025-03-09T11:00:00Z")
    # And back in November: 07:00 EST on 2025-11-02 is 12:00 UTC.
    d = decide_at(p, at("2025-11-02T03:30:00Z"))
    assert d.not_before_ms == at("2025-11-02T12:00:00Z")


def test_check_says_when_the_action_may_go() -> None:
    p = policy(PUSH)
    s = CustomerSnapshot(customer_id="c-1", profile={"region": ProfileValue(value="US")})
    query = CheckQuery(customer_id="c-1", action="push_it", channel="push", request_id="r")
    answer, _ = check(p, query, s, at("2025-06-02T23:30:00Z"))
    assert answer.actions == ()
    assert answer.not_before_ms == at("2025-06-03T07:00:00Z")
    assert answer.candidates[0].not_before_ms == at("2025-06-03T07:00:00Z")
