"""Compiling policy sets: cross-references, CEL against the contracts, warnings,
the plan's candidate indexes, the activation and the domain functions, and `arbiter policy validate`."""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from types import MappingProxyType

import msgspec
import pytest

from arbiter.policies import (
    CompiledPolicy,
    Diagnostic,
    PolicyError,
    cel,
    check_policy,
    compile_policy,
    load_directory,
    load_policy,
    load_sources,
    parse_duration_ms,
)
from arbiter.policies.activation import build_activation, event_activation
from arbiter.policies.engine.candidates import candidate_index
from arbiter.policies.snapshot import (
    CustomerSnapshot,
    EventCounter,
    JourneyState,
    ProfileValue,
    cap_count,
)
from arbiter.server.cli import main as cli_main
from arbiter.server.cli.policy import validate

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "policies"
NOW = 1_750_000_000_000  # 2025-06-15T15:06:40Z, a Sunday
HOUR = 3_600_000

BASE = """\
policy_set: {id: t, version: "7"}
contracts:
  profile:
    age: int
    tier: {type: string, default: basic}
    timezone: string
  events:
    purchase:
      properties:
        total: double
  context:
    page: string
consent:
  purposes: [{id: email_marketing}]
channels:
  - id: email
    purposes: [email_marketing]
"""


def check(extra: str, **files: str) -> tuple[CompiledPolicy | None, list[str]]:
    policy, diags = check_policy(load_sources({"p.yaml": BASE + extra, **files}))
    return policy, [str(d) for d in diags]


@pytest.fixture(scope="module")
def example() -> CompiledPolicy:
    return load_policy(EXAMPLES)


# ----------------------------------------------------------------- the example set


def test_example_set_compiles_without_errors_or_warnings(example: CompiledPolicy) -> None:
    assert example.id == "acme-box"
    assert example.version
    assert example.digest.startswith("sha256:")
    assert example.warnings == ()
    assert len(example.channels) >= 4
    assert {"", "home_banner", "cart_drawer"} <= set(example.candidates)
    assert {"onboarding", "cart_abandonment", "browse_abandonment", "winback", "upsell"} <= set(
        example.journeys
    )
    assert example.holdout is not None and example.holdout.buckets == 500


def test_compiled_policy_is_immutable(example: CompiledPolicy) -> None:
    with pytest.raises(AttributeError):
        example.version = "x"  # type: ignore[misc]
    assert isinstance(example.actions, MappingProxyType)
    with pytest.raises(TypeError):
        example.actions["x"] = example.actions["welcome_email"]  # type: ignore[index]
    action = example.actions["cart_reminder_email"]
    with pytest.raises(AttributeError):
        action.priority = 1  # type: ignore[misc]
    assert isinstance(example.journeys["cart_abandonment"].stages, MappingProxyType)
    # Variants carry the action's payload with theirs merged over it.
    assert action.variants[0].payload["template"] == "cart_reminder_grid_v3"
    assert action.variants[1].payload["template"] == "cart_reminder_hero_v1"
    assert action.variants[1].payload["utm_campaign"] == "cart_abandonment"


def test_candidate_indexes(example: CompiledPolicy) -> None:
    home = example.candidates["home_banner"]
    banner = {a.id for a in home.always} | {
        a.id for _, stages in home.journeys for acts in stages.values() for a in acts
    }
    assert {"default_home_banner", "activation_home_banner", "vip_referral_banner"} <= banner
    # No placement: only actions that declare none; journeys by stage, in declaration order.
    outbound = example.candidates[""]
    assert all(not a.placements and a.always_on for a in outbound.always)
    by_journey = dict(outbound.journeys)
    reminder = {a.id for a in by_journey["cart_abandonment"]["reminder"]}
    assert reminder == {"cart_reminder_push", "cart_reminder_email"}
    drawer = dict(example.candidates["cart_drawer"].journeys)["cart_abandonment"]
    assert {a.id for a in drawer["reminder"]} == {"cart_drawer_free_shipping"}
    stage = {a.id for a in example.journeys["cart_abandonment"].stages["reminder"].actions}
    assert stage == reminder | {"cart_drawer_free_shipping"}
    # An action without stages belongs to every stage of its journey.
    browsing = example.journeys["browse_abandonment"].stages["browsing"].actions
    assert "browse_web_hero" in {a.id for a in browsing}
    assert {a.id for a in example.actions.values() if a.fallback} == {"default_home_banner"}
    # A request naming channels gets the index restricted to them, and their purposes.
    email = candidate_index(example, "", ("email",))
    restricted = [a for _, stages in email.journeys for acts in stages.values() for a in acts]
    assert restricted and all(a.channel_id == "email" for a in [*email.always, *restricted])
    assert "cart_reminder_push" not in {a.id for a in restricted}
    assert email.purposes == ("email_marketing",)
    assert candidate_index(example, "", ("email",)) is email  # derived once per request shape
    assert outbound.purposes == tuple(sorted(example.consent.purposes))
    assert [t.journey for t in example.triggers_by_event["cart_updated"]] == ["cart_abandonment"]
    assert {e.reason for e in example.exits_by_event["order_placed"]} >= {"converted"}
    journey = example.journeys["cart_abandonment"]
    assert journey.entry_stage == "waiting"
    assert journey.reentry.kind == "after" and journey.reentry.after_ms == 3 * 24 * HOUR
    assert journey.holdout_buckets == 1000
    assert journey.stages["waiting"].transitions[0].after_ms == HOUR
    assert example.journeys["summer_preview"].status == "paused"


def test_caps_bound_to_actions(example: CompiledPolicy) -> None:
    keys = {b.key for b in example.actions["cart_reminder_email"].caps}
    assert keys == {
        "email_weekly",
        "outbound_daily",
        "marketing_monthly",
        "per_journey_daily/cart_abandonment",
    }
    sms = {b.key for b in example.actions["cart_last_chance_sms"].caps}
    assert {"sms_weekly", "promotions_weekly", "action:cart_last_chance_sms#0"} <= sms
    banner = {b.key for b in example.actions["vip_referral_banner"].caps}
    assert banner == {"marketing_monthly", "in_app_per_message/vip_referral_banner"}
    # Transactional: only the cap that includes transactional actions.
    receipt = example.actions["order_receipt_email"]
    assert receipt.transactional
    assert [b.key for b in receipt.caps] == ["action:order_receipt_email#0"]
    assert example.needs.cap_keys >= keys | sms | banner


def test_suppressions_and_consent(example: CompiledPolicy) -> None:
    receipt = example.actions["order_receipt_email"]
    assert [s.id for s in receipt.suppressions] == ["deceased"]
    promo = {s.id for s in example.actions["winback_offer_email"].suppressions}
    assert promo == {"service_recovery", "recent_purchase", "deceased"}
    upsell = {s.id for s in example.actions["premium_upsell_email"].suppressions}
    assert "cancelled_no_upsell" in upsell
    consent = example.consent
    assert not consent.unset_allowed("EU", "email_marketing")
    assert consent.unset_allowed("US", "email_marketing")
    assert not consent.unset_allowed("US", "sms_marketing")
    assert not consent.unset_allowed(None, "email_marketing")
    sms = example.channels["sms"]
    assert (
        sms.quiet_at(20 * 60 + 30, 3) and sms.quiet_at(8 * 60, 3) and not sms.quiet_at(12 * 60, 3)
    )
    assert sms.quiet_at(12 * 60, 0)  # Sundays


def test_needs(example: CompiledPolicy) -> None:
    needs = example.needs
    assert {"profile", "consent", "events", "segments", "journeys", "caps"} == needs.parts
    assert {"region", "do_not_contact", "timezone", "lifetime_value"} <= needs.profile_attributes
    assert "email" not in needs.profile_attributes  # pii, never read by an expression
    assert needs.event_types is not None
    assert {"order_placed", "complaint_opened", "cart_updated"} <= needs.event_types
    assert needs.consent_purposes == {
        "email_marketing",
        "push_marketing",
        "sms_marketing",
        "personalization",
    }


# ----------------------------------------------------------------- activation


def snapshot(**kw: object) -> CustomerSnapshot:
    base: dict[str, object] = {"customer_id": "c-1"}
    base.update(kw)
    return msgspec.convert(base, CustomerSnapshot, from_attributes=True)


def test_activation_and_domain_functions(example: CompiledPolicy) -> None:
    bucket = NOW // HOUR * HOUR
    snap = CustomerSnapshot(
        customer_id="c-1",
        profile={
            "lifetime_value": ProfileValue(value=250),
            "timezone": ProfileValue(value="Europe/Berlin"),
            "app_installed": ProfileValue(value=True),
        },
        events={
            "cart_updated": EventCounter(
                total=3, last_ms=NOW - HOUR, buckets={bucket: 2, bucket - 100 * HOUR: 1}
            ),
        },
        segments=frozenset({"vip"}),
        journeys={
            "winback": JourneyState(
                status="active", stage="offer", entered_ms=NOW, stage_entered_ms=NOW
            )
        },
    )
    act = build_activation(example, snap, {"cart_value": 40}, NOW, placement="cart_drawer")
    assert act["profile.lifetime_value"] == 250.0 and type(act["profile.lifetime_value"]) is float
    assert act["profile.plan"] == "none"  # declared default
    assert "profile.signup_at" not in act  # unset, no default: reading it is an error
    assert act["context.cart_value"] == 40.0

    def ev(src: str) -> object:
        env_policy = example.actions["cart_last_chance_sms"].eligibility
        assert env_policy is not None
        return cel.compile(src, _env_of(example)).evaluate(act)

    assert ev('events.count("cart_updated", duration("72h"))') == 2
    assert ev('events.count("cart_updated")') == 3
    assert ev('events.since("cart_updated")') == cel.Duration(HOUR * 1_000_000)
    assert ev('events.since("order_placed") > duration("87600h")') is True  # never seen
    assert ev('events.seen("order_placed")') is False
    assert ev('segments.contains("vip") && !segments.contains("price_sensitive")') is True
    assert ev('journeys.active("winback") && journeys.stage("winback") == "offer"') is True
    assert ev('journeys.stage("upsell")') == ""
    assert ev("customer.local_hour()") == 17  # 15:06Z in Berlin (CEST)
    assert ev("customer.local_weekday()") == 0  # Sunday
    assert ev('profile.has("timezone") && !profile.has("signup_at")') is True
    assert ev('context.has("cart_value") && !context.has("page_type")') is True
    assert ev('request.placement == "cart_drawer"') is True
    with pytest.raises(cel.EvalError):
        ev('events.last("order_placed")')
    with pytest.raises(cel.EvalError):
        ev("profile.signup_at < now")

    sms = example.actions["cart_last_chance_sms"]
    assert sms.eligibility is not None and sms.eligibility.evaluate(act) is True
    email = example.actions["cart_reminder_email"]
    assert email.value_expr is not None and email.value_expr.evaluate(act) == 5.5
    scored = {
        **act,
        "priority": email.priority,
        "journey_priority": email.journey_priority,
        "value": 5.5,
        "propensity": 0.5,
    }
    assert (email.priority, email.journey_priority) == (75, 80)
    assert example.arbitration.score.evaluate(scored) == 75 * 10.0 + 80 + 5.5 * 0.5
    event = event_activation(
        act,
        example,
        event_type="cart_updated",
        event_id="e-1",
        time_ms=NOW,
        properties={"cart_id": "k", "item_count": 2, "cart_value": 10},
    )
    (trigger,) = example.triggers_by_event["cart_updated"]
    assert trigger.when is not None and trigger.when.evaluate(event) is True
    assert trigger.dedup_key is not None and trigger.dedup_key.evaluate(event) == "k"


def _env_of(policy: CompiledPolicy) -> cel.Env:
    from arbiter.policies.contracts import DOMAIN_FUNCTIONS, base_variables

    return cel.Env(
        variables=base_variables(
            {n: f.type for n, f in policy.profile.items()},
            {n: f.type for n, f in policy.context.items()},
        )
    ).with_functions(*DOMAIN_FUNCTIONS)


def test_invalid_customer_timezone_falls_back_to_default(example: CompiledPolicy) -> None:
    snap = CustomerSnapshot(customer_id="c", profile={"timezone": ProfileValue(value="Mars/Base")})
    act = build_activation(example, snap, {}, NOW)
    view = act["customer"]
    assert view.timezone() == "America/New_York"  # type: ignore[attr-defined]
    assert view.local_hour() == 11  # type: ignore[attr-defined]


def test_cap_count_window() -> None:
    grants = [NOW - 30 * HOUR, NOW - 2 * HOUR, NOW - HOUR, NOW]
    assert cap_count(grants, NOW, 24 * HOUR) == 3
    assert cap_count(grants, NOW, 2 * HOUR) == 2  # (now - 2h, now]
    assert cap_count([], NOW, HOUR) == 0


# ----------------------------------------------------------------- cross-checks


def test_durations() -> None:
    assert parse_duration_ms("30m") == 30 * 60_000
    assert parse_duration_ms("7d") == 7 * 24 * HOUR
    assert parse_duration_ms("4w") == 28 * 24 * HOUR
    assert parse_duration_ms("1h30m") == 90 * 60_000
    for bad in ("", "7 days", "1.5h", "h", "-1h"):
        with pytest.raises(ValueError):
            parse_duration_ms(bad)


def test_cel_errors_point_into_the_yaml_file() -> None:
    extra = (
        "actions:\n"  # 18
        "  - id: a\n"  # 19
        "    always_on: true\n"  # 20
        "    channel: email\n"  # 21
        "    eligibility: profile.agee > 3\n"  # 22
        "  - id: b\n"  # 23
        "    always_on: true\n"  # 24
        "    channel: email\n"  # 25
        "    eligibility: |\n"  # 26
        "      profile.age > 3 &&\n"  # 27
        '        profile.tier + 1 == "x"\n'  # 28
        "  - id: c\n"  # 29
        "    always_on: true\n"  # 30
        "    channel: email\n"  # 31
        "    eligibility: 'has(profile.age)'\n"  # 32
        "    value: '\"high\"'\n"  # 33
    )
    policy, diags = check(extra)
    assert policy is None
    assert diags == [
        "p.yaml:22:26: error: unknown profile attribute `agee`; did you mean `age`?",
        "p.yaml:28:22: error: found no matching overload for '_+_' applied to '(string, int)'",
        'p.yaml:32:19: error: has() does not apply to profile attributes; use profile.has("name")',
        "p.yaml:33:12: error: value must be int or double or uint, but this expression is string",
    ], diags


def test_reference_errors_are_all_reported_sorted() -> None:
    extra = """\
channels:
  - id: push
    purposes: [push_marketing]
journeys:
  - id: j
    owner: o
    status: active
    triggers:
      - event: purchse
    reentry: sometimes
    stages:
      - id: s1
        transitions:
          - {on: purchase, to: s3}
          - {to: s2}
      - id: s2
    max_duration: 2 days
actions:
  - id: a
    journey: jj
    channel: mail
  - id: b
    journey: j
    stages: [s9]
    channel: email
    placements: [home]
    eligibility: 'events.count("purchse", duration("1h")) > 0'
    variants: [{id: v, weight: 0}]
  - id: a
    always_on: true
    channel: email
caps:
  - {id: c, scope: channel, targets: [sms], limit: 1, window: 1d}
suppressions:
  - {id: s, reason: X, when: "profile.age", scope: {journeys: [nope]}}
arbitration:
  score: '"x"'
  constraints: {max_per_channel: {fax: 1}}
"""
    policy, diags = check("", **{"q.yaml": extra})
    assert policy is None
    errs = [d for d in diags if ": error: " in d]
    expected = [
        ("q.yaml:3:16:", "unknown consent purpose `push_marketing`"),
        ("q.yaml:9:16:", "unknown event type `purchse`; did you mean `purchase`?"),
        ("q.yaml:10:14:", "invalid reentry `sometimes`"),
        ("q.yaml:14:32:", "unknown stage `s3`"),
        ("q.yaml:15:13:", "a transition needs exactly one of `on`"),
        ("q.yaml:17:19:", "invalid duration `2 days`"),
        ("q.yaml:20:14:", "unknown journey `jj`"),
        ("q.yaml:21:14:", "unknown channel `mail`; did you mean `email`?"),
        ("q.yaml:24:14:", "unknown stage `s9` in journey `j`"),
        ("q.yaml:26:18:", "channel `email` declares no placements"),
        ("q.yaml:27:33:", "unknown event type `purchse` (not in contracts.events)"),
        ("q.yaml:28:15:", "variant weights sum to 0"),
        ("q.yaml:29:9:", "duplicate action id `a` (first defined at q.yaml:19:9)"),
        ("q.yaml:33:39:", "unknown channel `sms`"),
        ("q.yaml:35:30:", "a suppression condition must be bool, but this expression is int"),
        ("q.yaml:35:64:", "unknown journey `nope`"),
        ("q.yaml:37:10:", "the arbitration score must be"),
        ("q.yaml:38:40:", "unknown channel `fax`"),
    ]
    assert len(errs) == len(expected), "\n".join(errs)
    for (prefix, fragment), line in zip(expected, errs, strict=True):
        assert line.startswith(prefix) and fragment in line, (prefix, fragment, line)
    assert errs == sorted(errs, key=lambda s: int(s.split(":")[1]))


def test_warnings_do_not_fail() -> None:
    extra = """\
  - id: web
    purposes: []
journeys:
  - id: j
    owner: o
    status: active
    triggers: [{event: purchase}]
    stages:
      - id: s1
      - id: orphan
actions:
  - {id: a, journey: j, channel: email}
  - {id: w, always_on: true, channel: web, fallback: true}
caps:
  - {id: zero, scope: global, limit: 0, window: 1d}
  - {id: wide, scope: global, limit: 5, window: 1d}
  - {id: narrow, scope: channel, targets: [email], limit: 9, window: 1h}
  - {id: unused, scope: tag, targets: [nothing], limit: 1, window: 1d}
"""
    policy, diags = check(extra)
    assert policy is not None, diags
    assert all(": warning: " in d for d in diags), diags
    text = "\n".join(diags)
    assert "explicit `purposes: []`" in text
    assert "stage `orphan` is unreachable from the entry stage `s1`" in text
    assert "cap limit 0: it never grants anything" in text
    assert "cap `narrow` (9 per 1h) can never be reached" in text
    assert "no action has tag `nothing`" in text
    assert "cap `unused` applies to no action" in text
    assert policy.warnings and all(isinstance(w, Diagnostic) for w in policy.warnings)


def test_unconsented_marketing_channel_is_an_error() -> None:
    extra = "  - id: web\nactions:\n  - {id: w, always_on: true, channel: web}\n"
    policy, diags = check(extra)
    assert policy is None
    assert diags[0].startswith("p.yaml:18:9: error: channel `web` is not transactional")


def test_compile_policy_raises_with_every_error() -> None:
    loaded = load_sources({"p.yaml": BASE + "actions:\n  - {id: a, channel: x}\n"})
    with pytest.raises(PolicyError) as info:
        compile_policy(loaded)
    assert len([d for d in info.value.diagnostics if d.severity == "error"]) == 2


# ----------------------------------------------------------------- arbiter policy validate


def test_validate_example_exits_zero() -> None:
    out, err = io.StringIO(), io.StringIO()
    assert validate(str(EXAMPLES), out=out, err=err) == 0
    assert out.getvalue() == ""
    assert "OK" in err.getvalue()


def _inject(path: Path, old: str, new: str) -> int:
    """Replace ``old`` (once) in ``path``; return the 1-based line of the change."""
    text = path.read_text()
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new))
    return text[: text.index(old)].count("\n") + 1


def test_validate_lists_every_injected_mistake(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "policies"
    shutil.copytree(EXAMPLES, root)
    mistakes = {
        # unknown attribute
        "actions/onboarding.yaml": _inject(
            root / "actions/onboarding.yaml", "'!profile.app_installed'", "'!profile.app_instaled'"
        ),
        # type error in CEL
        "actions/winback.yaml": _inject(
            root / "actions/winback.yaml",
            "profile.orders_count >= 3",
            'profile.orders_count >= "3"',
        ),
        # unknown channel
        "actions/upsell.yaml": _inject(
            root / "actions/upsell.yaml",
            "    stages: [consider]\n    channel: email",
            "    stages: [consider]\n    channel: emial",
        )
        + 1,
        # duplicate id
        "actions/browse_abandonment.yaml": _inject(
            root / "actions/browse_abandonment.yaml",
            "id: browse_web_hero",
            "id: browse_nudge_email",
        ),
        # bad duration
        "caps.yaml": _inject(root / "caps.yaml", "window: 4w", "window: 4 weeks"),
    }
    code = cli_main(["policy", "validate", str(root)])
    out = capsys.readouterr().out
    assert code == 1
    lines = out.splitlines()
    assert len([line for line in lines if ": error: " in line]) == len(mistakes), out
    for file, line in mistakes.items():
        prefix = f"{root / file}:{line}:"
        assert any(entry.startswith(prefix) and ": error: " in entry for entry in lines), (
            prefix,
            out,
        )
    assert "unknown profile attribute `app_instaled`; did you mean `app_installed`?" in out
    assert "found no matching overload for '_>=_' applied to '(int, string)'" in out
    assert "unknown channel `emial`; did you mean `email`?" in out
    assert "duplicate action id `browse_nudge_email`" in out
    assert "invalid duration `4 weeks`" in out
    # Sorted by file, line, column.
    keys = [(e.split(":")[0], int(e.split(":")[1]), int(e.split(":")[2])) for e in lines]
    assert keys == sorted(keys)


def test_validate_unreadable_directory(tmp_path: Path) -> None:
    err = io.StringIO()
    assert validate(str(tmp_path / "missing"), out=io.StringIO(), err=err) == 2
    assert validate(str(tmp_path), out=io.StringIO(), err=err) == 2


def test_a_removed_attribute_is_not_present_to_has() -> None:
    """A trait set to null is stored as a tombstone; `profile.has()` must say absent."""
    from arbiter.policies.contracts import FieldsView
    from arbiter.policies.snapshot import ProfileValue

    view = FieldsView(
        {"gone": ProfileValue(value=None, updated_ms=5), "kept": ProfileValue(value=1)}
    )
    assert view.has("kept") is True
    assert view.has("gone") is False
    assert view.has("never") is False


# --------------------------------------------------------------------------- payload contracts


def _with_actions(tmp_path: Path, actions: str) -> list[str]:
    root = tmp_path / "policies"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("tests"))
    (root / "actions" / "extra.yaml").write_text(actions)
    _, diagnostics = check_policy(load_directory(root))
    return [str(d) for d in diagnostics if d.severity == "error"]


def test_the_flow_map_comma_trap_in_a_payload_is_caught_at_its_position(tmp_path: Path) -> None:
    # Issue 10, item 19: the example once shipped this payload (a comma inside an unquoted
    # flow-map value makes `get a box` a key with a null value) and it passed validation.
    errors = _with_actions(
        tmp_path,
        """actions:
  - id: referral_banner_typo
    always_on: true
    channel: in_app
    placements: [home_banner]
    payload: {title: Give a box, get a box, deep_link: "acmebox://referral"}
""",
    )
    assert errors == [
        "actions/extra.yaml:6:34: error: unknown payload field `get a box` (not declared by "
        "channel `in_app`)"
    ]


def test_payloads_are_checked_against_the_channel_contract(tmp_path: Path) -> None:
    errors = _with_actions(
        tmp_path,
        """actions:
  - id: push_without_template
    always_on: true
    channel: push
    payload: {templte: x}
  - id: email_variants
    always_on: true
    channel: email
    payload: {template: t, utm_campaign: 7}
    variants:
      - {id: a, payload: {coupon: null}}
      - {id: b, payload: {template: u}}
""",
    )
    assert errors == [
        "actions/extra.yaml:5:14: error: the payload lacks required payload field `template` "
        "(channel `push`)",
        "actions/extra.yaml:5:15: error: unknown payload field `templte` (not declared by "
        "channel `push`); did you mean `template`?",
        "actions/extra.yaml:9:42: error: payload field `utm_campaign`: expected string",
        "actions/extra.yaml:11:35: error: payload field `coupon` is null (in a flow mapping an "
        "unquoted comma ends the value: quote strings that contain commas)",
    ]


def test_a_payload_contract_declares_typed_fields(tmp_path: Path) -> None:
    root = tmp_path / "policies"
    shutil.copytree(EXAMPLES, root, ignore=shutil.ignore_patterns("tests"))
    policy = load_policy(root)
    email = policy.channels["email"].payload
    assert email is not None and email["template"].required
    assert policy.channels["in_app"].payload is not None
