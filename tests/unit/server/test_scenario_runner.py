"""The scenario runner matches production (issue 10, items 7-11): it drives the service core on a MemoryStore, so replays, clamping and failed calls behave as on a server; scenario inputs are checked against the policy with file:line:col."""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import pytest

from arbiter.server.cli.scenarios import run_tests

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "policies"

# Tuesday 2025-06-03 15:00 UTC = 11:00 in New York: no quiet hours anywhere.
DAY = "2025-06-03T15:00:00Z"
CART = "{type: cart_updated, at: -2h, properties: {cart_id: k1, item_count: 2, cart_value: 40.0}}"


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    root = tmp_path / "policies"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("tests"))
    (root / "tests").mkdir()
    return root


def run(root: Path, text: str, *, verbose: bool = False) -> tuple[int, str]:
    (root / "tests" / "case.yaml").write_text(text)
    out = io.StringIO()
    code = run_tests(str(root), verbose=verbose, out=out)
    return code, out.getvalue()


# --------------------------------------------------------------------------- 7. replay


def test_a_repeated_request_id_replays_and_counts_nothing_twice(policy_dir: Path) -> None:
    code, out = run(
        policy_dir,
        f"""
scenarios:
  - name: the same request id twice is one decision
    given:
      now: {DAY}
      profile: {{region: US, app_installed: true}}
      events:
        - {CART}
    steps:
      - decide: {{channels: [push], request_id: r-1}}
        expect: {{actions: [cart_reminder_push], caps: {{outbound_daily: 1, push_daily: 1}}}}
      - advance: 1m
        decide: {{channels: [push], request_id: r-1}}
        expect: {{actions: [cart_reminder_push], caps: {{outbound_daily: 1, push_daily: 1}}}}
""",
    )
    assert code == 0, out


def test_a_replay_is_reported_as_one(policy_dir: Path) -> None:
    code, out = run(
        policy_dir,
        f"""
scenarios:
  - name: replayed
    given: {{now: {DAY}, profile: {{region: US, app_installed: true}}, events: [{CART}]}}
    steps:
      - decide: {{channels: [push], request_id: r-1}}
        expect: {{replayed: false}}
      - decide: {{channels: [push], request_id: r-1}}
        expect: {{replayed: true, actions: [cart_reminder_push]}}
""",
    )
    assert code == 0, out


# --------------------------------------------------------------------------- 8. clamping


def test_an_event_stamped_in_the_future_is_clamped_to_the_clock(policy_dir: Path) -> None:
    # Entered at the clock (not 30 minutes later): the 1h timer is due at +1h.
    code, out = run(
        policy_dir,
        f"""
scenarios:
  - name: a producer's clock skew does not schedule the future
    given: {{now: {DAY}, profile: {{region: US, app_installed: true}}}}
    steps:
      - track: {{type: cart_updated, at: +30m, properties: {{cart_id: k1, item_count: 2, cart_value: 40.0}}}}
        expect: {{changes: [enter:cart_abandonment]}}
      - at: +1h
        decide: {{channels: [push]}}
        expect:
          actions: [cart_reminder_push]
          journeys: {{cart_abandonment: {{stage: reminder}}}}
""",
    )
    assert code == 0, out


def test_an_event_more_than_an_hour_ahead_is_refused_as_production_does(policy_dir: Path) -> None:
    code, out = run(
        policy_dir,
        f"""
scenarios:
  - name: far future
    given: {{now: {DAY}}}
    steps:
      - track: {{type: app_opened, at: +2h, properties: {{platform: ios}}}}
        expect: {{error: {{code: INVALID_ARGUMENT, message: "in the future"}}}}
""",
    )
    assert code == 0, out


# --------------------------------------------------------------------------- 9. failed calls


UNAVAILABLE_JOURNEYS = f"""
scenarios:
  - name: tracking without journey state
    given: {{now: {DAY}, unavailable: [journeys]}}
    steps:
      - track: {{type: app_opened, properties: {{platform: ios}}}}
  - name: the next scenario still runs
    given: {{now: {DAY}}}
    steps:
      - track: {{type: app_opened, properties: {{platform: ios}}}}
        expect: {{counters: {{app_opened: 1}}}}
"""


def test_tracking_while_journey_state_is_unavailable_fails_that_step_only(
    policy_dir: Path,
) -> None:
    code, out = run(policy_dir, UNAVAILABLE_JOURNEYS)
    assert code == 1
    assert "FAIL tests/case.yaml: tracking without journey state" in out
    assert "step 1: the call failed: UNAVAILABLE" in out
    assert out.strip().endswith("1 passed, 1 failed")


def test_an_expected_error_passes(policy_dir: Path) -> None:
    text = UNAVAILABLE_JOURNEYS.replace(
        "      - track: {type: app_opened, properties: {platform: ios}}\n  - name: the next",
        "      - track: {type: app_opened, properties: {platform: ios}}\n"
        "        expect: {error: UNAVAILABLE}\n  - name: the next",
    )
    code, out = run(policy_dir, text)
    assert code == 0, out


# --------------------------------------------------------------------------- 10. validation


def test_an_unknown_channel_fails_validation_with_its_position(policy_dir: Path) -> None:
    code, out = run(
        policy_dir,
        f"""
scenarios:
  - name: passes for the wrong reason
    given: {{now: {DAY}}}
    steps:
      - decide: {{channels: [emial]}}
        expect: {{actions: []}}
""",
    )
    assert code == 1
    assert "tests/case.yaml:6:29: error: unknown channel `emial`; did you mean `email`?" in out


@pytest.mark.parametrize(
    ("snippet", "message"),
    [
        (
            "given: {now: NOW, events: [{type: cart_updatd}]}",
            "unknown event type `cart_updatd`; did you mean `cart_updated`?",
        ),
        (
            "given: {now: NOW, journeys: {cart_abandonmnt: {stage: waiting}}}",
            "unknown journey `cart_abandonmnt`; did you mean `cart_abandonment`?",
        ),
        (
            "given: {now: NOW, journeys: {cart_abandonment: {stage: reminderr}}}",
            "unknown stage of `cart_abandonment` `reminderr`; did you mean `reminder`?",
        ),
        (
            "given: {now: NOW, caps: {outbound_dayly: [-1h]}}",
            "unknown cap key `outbound_dayly`; did you mean `outbound_daily`?",
        ),
        (
            "given: {now: NOW, profile: {regoin: US}}",
            "unknown profile attribute `regoin`; did you mean `region`?",
        ),
        (
            "given: {now: NOW, profile: {app_installed: 'yes'}}",
            "`app_installed` (bool): expected true or false, got str",
        ),
        ("given: {now: NOW, profile: {region: Mars}}", "`region`: `Mars` is not one of"),
        (
            "given: {now: NOW, consent: {emial_marketing: granted}}",
            "unknown consent purpose `emial_marketing`; did you mean `email_marketing`?",
        ),
        ("given: {now: NOW, paused: [upsel]}", "unknown journey `upsel`; did you mean `upsell`?"),
        (
            "given: {now: NOW}\n    steps: [{decide: {}, expect: {actions: [cart_reminder_pus]}}]",
            "unknown action `cart_reminder_pus`; did you mean `cart_reminder_push`?",
        ),
        (
            "given: {now: NOW}\n    steps: [{decide: {}, expect: {reasons: {cart_reminder_push: QUIET}}}]",
            "unknown reason code `QUIET`; did you mean `QUIET_HOURS`?",
        ),
        (
            "given: {now: NOW}\n    steps: [{decide: {placement: home_baner}}]",
            "unknown placement `home_baner`; did you mean `home_banner`?",
        ),
        (
            "given: {now: NOW}\n    steps: [{decide: {context: {cart_valeu: 3.0}}}]",
            "unknown context field `cart_valeu`; did you mean `cart_value`?",
        ),
        (
            "given: {now: NOW}\n    steps: [{decide: {context: {cart_value: cheap}}}]",
            "`cart_value` (double): expected a number, got str",
        ),
        (
            "given: {now: NOW}\n    steps: [{track: {type: order_placed, properties: {order_id: o1, totl: 3.0}}}]",
            "unknown property of `order_placed` `totl`; did you mean `total`?",
        ),
        (
            "given: {now: NOW}\n    steps: [{track: {type: order_placed, properties: {order_id: o1}}}]",
            "`order_placed` requires property `total`",
        ),
        (
            "given: {now: NOW}\n    steps: [{track: {type: app_opened}, expect: {actions: []}}]",
            "`actions` is checked after a `decide` step",
        ),
        (
            "given: {now: NOW}\n    steps: [{at: 2h}]",
            "`2h` is a duration, not a time; did you mean `+2h`?",
        ),
        (
            "given: {now: NOW, journeys: {winback: {stage: offer, entered: 0}}}",
            "`0` is a number, not a time",
        ),
        (
            "given: {now: NOW}\n    steps: [{decide: {}, expect: {variants: {cart_reminder_email: grid}}}]",
            "unknown variant of `cart_reminder_email` `grid`",
        ),
        (
            "given: {now: NOW}\n    steps: [{track: {type: app_opened}, expect: {changes: [entr:upsell]}}]",
            "unknown journey change `entr`; did you mean `enter`?",
        ),
        (
            "given: {now: NOW}\n    steps: [{decide: {}, expect: {acions: []}}]",
            "unknown field `acions`; did you mean `actions`?",
        ),
    ],
)
def test_scenario_inputs_are_checked_against_the_policy(
    policy_dir: Path, snippet: str, message: str
) -> None:
    text = "scenarios:\n  - name: checked\n    " + snippet.replace("NOW", DAY) + "\n"
    code, out = run(policy_dir, text)
    assert code == 1, out
    assert message in out, out
    assert re.search(r"tests/case\.yaml:\d+:\d+: error: ", out), out


def test_one_bad_scenario_does_not_drop_the_file(policy_dir: Path) -> None:
    code, out = run(
        policy_dir,
        f"""
scenarios:
  - name: good
    given: {{now: {DAY}}}
  - name: bad shape
    given: {{now: {DAY}}}
    steps:
      - decide: {{limit: many}}
  - name: also good
    given: {{now: {DAY}}}
""",
    )
    assert code == 1
    assert "tests/case.yaml:8:25: error: `limit`: expected `int`, got `str`" in out, out
    assert out.strip().endswith("2 passed, 1 failed")


# --------------------------------------------------------------------------- 11. authoring


def test_verbose_shows_each_steps_trace_scores_and_consent(policy_dir: Path) -> None:
    code, out = run(
        policy_dir,
        f"""
scenarios:
  - name: traced
    given: {{now: {DAY}, profile: {{region: US, app_installed: true}}, events: [{CART}]}}
    steps:
      - decide: {{channels: [push, email]}}
""",
        verbose=True,
    )
    assert code == 0, out
    assert "PASS tests/case.yaml: traced" in out
    assert re.search(r"\| decide \S+: cart_reminder_push score=", out), out
    assert re.search(r"\|   cart_reminder_email \[email\] FILTERED INELIGIBLE", out), out
    assert "|   consent push_marketing: unset, allowed (ELIGIBLE)" in out
    assert "| track given-0: applied" in out and "enter:cart_abandonment" in out


def test_check_steps_and_journey_change_causes(policy_dir: Path) -> None:
    code, out = run(
        policy_dir,
        f"""
scenarios:
  - name: check before sending; timers and events as causes
    given: {{now: {DAY}, profile: {{region: US, app_installed: true}}}}
    steps:
      - track: {{id: cart-1, type: cart_updated, properties: {{cart_id: k1, item_count: 2, cart_value: 40.0}}}}
        expect:
          changes: [{{change: enter:cart_abandonment, cause: cart-1}}]
          journeys: {{cart_abandonment: {{entry_event: cart-1, last_event: cart-1}}}}
      - advance: 2h
        decide: {{channels: [push]}}
        expect:
          actions: [cart_reminder_push]
          changes: [{{change: transition:cart_abandonment, cause: "timer:waiting->reminder"}}]
      - check: {{action: cart_reminder_push, record: true, on_last_decision: true}}
        expect: {{allowed: true, recorded: true}}
      - check: {{action: cart_reminder_email}}
        expect: {{allowed: false, reason: INELIGIBLE}}
      - check: {{action: cart_reminder_push, channel: email}}
        expect: {{allowed: false, reason: CHANNEL_NOT_ALLOWED}}
""",
    )
    assert code == 0, out


def test_a_wrong_cause_fails(policy_dir: Path) -> None:
    code, out = run(
        policy_dir,
        f"""
scenarios:
  - name: wrong cause
    given: {{now: {DAY}}}
    steps:
      - track: {{id: cart-1, type: cart_updated, properties: {{cart_id: k1, item_count: 2, cart_value: 40.0}}}}
        expect: {{changes: [{{change: enter:cart_abandonment, cause: cart-2}}]}}
""",
    )
    assert code == 1
    assert (
        "changes: expected ['enter:cart_abandonment (cause cart-2)'], got ['enter:cart_abandonment (cause cart-1)']"
        in out
    )
