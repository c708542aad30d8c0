"""Synthetic policy sets and customers for ``arbiter policy bench``, built through the real loader and compiler.

So the numbers cover exactly the code the server runs: every feature the
engine evaluates, at the scale asked for, seeded and reproducible.
"""

from __future__ import annotations

import random
from typing import Any, Final

import yaml

from arbiter.policies import (
    CompiledPolicy,
    ConsentRecord,
    CustomerSnapshot,
    EventCounter,
    JourneyState,
    ProfileValue,
    compile_policy,
    load_sources,
)

__all__ = ["BENCH_NOW_MS", "synthetic_policy", "synthetic_snapshots"]

_HOUR: Final = 3_600_000
_DAY: Final = 24 * _HOUR
# A fixed instant for synthetic runs: Tuesday 2025-06-03 15:00 UTC.
BENCH_NOW_MS: Final = 1_748_962_800_000

_CHANNELS: Final = ("email", "push", "sms", "in_app", "web")
_PLACEMENTS: Final = {"in_app": ("home_banner", "cart_drawer"), "web": ("web_home_hero",)}
_EVENTS: Final[dict[str, Any]] = {
    **{f"e{i}": {"properties": {"sku": "string", "amount": "double"}} for i in range(12)},
    "complaint_opened": {"properties": {"ticket_id": "string"}},
    "complaint_resolved": {"properties": {"ticket_id": "string"}},
    "order_placed": {"properties": {"total": "double"}},
}
# Every section but the policy_set, journeys and actions, in file order.
_SECTIONS: Final[dict[str, Any]] = {
    "contracts": {
        "profile": {
            "region": "string",
            "timezone": "string",
            "tier": {"type": "string", "default": "basic"},
            "ltv": {"type": "double", "default": 0.0},
            "orders": {"type": "int", "default": 0},
            "app_installed": {"type": "bool", "default": False},
            "email_verified": {"type": "bool", "default": False},
            "do_not_contact": {"type": "bool", "default": False},
            "deceased": {"type": "bool", "default": False},
        },
        "events": _EVENTS,
        "context": {"timezone": "string", "page": "string", "cart_value": "double"},
    },
    "consent": {
        "purposes": [
            {"id": p}
            for p in ("email_marketing", "push_marketing", "sms_marketing", "personalization")
        ],
        "region_attribute": "region",
        "defaults": [
            {"regions": ["EU"], "unset": "deny"},
            {
                "regions": ["US"],
                "purposes": ["email_marketing", "push_marketing", "personalization"],
                "unset": "allow",
            },
        ],
        "unset": "deny",
        "do_not_contact": "do_not_contact",
    },
    "channels": [
        {
            "id": "email",
            "purposes": ["email_marketing"],
            "caps": [{"limit": 4, "window": "7d"}],
        },
        {
            "id": "push",
            "purposes": ["push_marketing"],
            "quiet_hours": [{"start": "21:00", "end": "08:00"}],
            "caps": [{"limit": 2, "window": "24h"}],
        },
        {
            "id": "sms",
            "purposes": ["sms_marketing"],
            "quiet_hours": [{"start": "20:00", "end": "09:00"}],
        },
        {
            "id": "in_app",
            "purposes": ["personalization"],
            "placements": list(_PLACEMENTS["in_app"]),
        },
        {"id": "web", "purposes": ["personalization"], "placements": list(_PLACEMENTS["web"])},
        {"id": "receipts", "transactional": True},
    ],
    "caps": [
        {
            "id": "outbound_daily",
            "scope": "channel",
            "targets": ["email", "push", "sms"],
            "limit": 3,
            "window": "24h",
        },
        {"id": "marketing_monthly", "scope": "global", "limit": 40, "window": "4w"},
        {"id": "per_journey_daily", "scope": "journey", "limit": 2, "window": "24h"},
        {
            "id": "promotions_weekly",
            "scope": "tag",
            "targets": ["promo"],
            "limit": 2,
            "window": "7d",
        },
    ],
    "suppressions": [
        {
            "id": "service_recovery",
            "reason": "OPEN_COMPLAINT",
            "when": 'events.seen("complaint_opened") && events.since("complaint_opened") < events.since("complaint_resolved")',
            "exempt_transactional": True,
        },
        {
            "id": "recent_purchase",
            "reason": "RECENT_PURCHASE",
            "when": 'events.since("order_placed") < duration("48h")',
            "scope": {"tags": ["promo"]},
        },
        {"id": "deceased", "reason": "DECEASED", "when": "profile.deceased"},
    ],
    "holdouts": {"global": {"percent": 5, "salt": "synthetic-cg"}},
    "arbitration": {
        "score": "double(priority) * 10.0 + value * propensity",
        "default_propensity": 0.5,
        "constraints": {
            "max_per_journey": 1,
            "max_per_channel": {"email": 1, "push": 1, "sms": 1},
            "max_actions": 3,
        },
    },
}
# Eligibility shapes the example set uses; ``{e}`` / ``{s}`` are filled in per action.
_ELIGIBILITY: Final = (
    None,
    "profile.ltv > 50.0",
    'events.count("e{e}", duration("168h")) >= 1',
    'profile.tier == "gold" || profile.orders > 3',
    "profile.app_installed",
    'segments.contains("s{s}") && profile.email_verified',
    'events.since("e{e}") > duration("24h")',
    "customer.local_hour() >= 9 && customer.local_hour() < 20",
    '!segments.contains("price_sensitive")',
    'context.has("cart_value") && context.cart_value > 30.0',
)


def synthetic_policy(
    n_actions: int = 100, n_journeys: int = 10, *, seed: int = 7
) -> CompiledPolicy:
    """A realistic generated policy set: every feature the engine evaluates, at scale.

    ``n_journeys`` journeys of 3 stages; 80 % of the actions are journey
    stage actions (spread over journeys, stages and channels), the rest
    always-on, plus one fallback per placement; eligibility, value and
    suppression expressions of the shapes the example set uses; channel,
    journey, tag and global caps; quiet hours; a global control group and
    journey holdouts; the example's CEL score formula.
    """
    rng = random.Random(seed)
    policy: dict[str, Any] = {
        "policy_set": {
            "id": "synthetic",
            "version": f"{n_actions}a-{n_journeys}j",
            "timezone": {"context": "timezone", "attribute": "timezone", "default": "UTC"},
        },
        **_SECTIONS,
        "journeys": [_journey(rng, j) for j in range(n_journeys)],
        "actions": _actions(rng, n_actions, n_journeys),
    }
    text = yaml.safe_dump(policy, sort_keys=False)
    return compile_policy(load_sources({"synthetic.yaml": text}))


def _journey(rng: random.Random, j: int) -> dict[str, Any]:
    """Journey ``j``: three stages on timers and one event, an exit, every third one held out."""
    return {
        "id": f"j{j}",
        "owner": "bench",
        "status": "active" if j % 7 != 6 else "paused",
        "priority": rng.randint(10, 90),
        "triggers": [{"event": f"e{j % 12}", "when": "event.properties.amount > 10.0"}],
        "reentry": "after 7d",
        "stages": [
            {"id": "s0", "transitions": [{"after": "1h", "to": "s1"}]},
            {
                "id": "s1",
                "transitions": [
                    {"after": "2d", "to": "s2"},
                    {"on": f"e{(j + 1) % 12}", "to": "s2"},
                ],
            },
            {"id": "s2", "transitions": [{"after": "3d", "to": "exit"}]},
        ],
        "exits": [{"on": "order_placed", "reason": "converted"}],
        "max_duration": "14d",
        **({"holdout": {"percent": 10}} if j % 3 == 0 else {}),
    }


def _actions(rng: random.Random, n_actions: int, n_journeys: int) -> list[dict[str, Any]]:
    """The generated actions, one fallback per placement and a transactional receipt."""
    n_always = max(1, n_actions // 5)
    actions = [
        _action(rng, i, journey=i < n_actions - n_always, n_journeys=n_journeys)
        for i in range(n_actions)
    ]
    for channel, places in _PLACEMENTS.items():
        for place in places:
            actions.append(
                {
                    "id": f"fallback_{place}",
                    "channel": channel,
                    "always_on": True,
                    "fallback": True,
                    "placements": [place],
                    "payload": {"template": "default"},
                }
            )
    actions.append(
        {
            "id": "receipt",
            "channel": "receipts",
            "always_on": True,
            "eligibility": 'events.since("order_placed") < duration("1h")',
            "priority": 100,
            "caps": [{"limit": 1, "window": "1h", "include_transactional": True}],
        }
    )
    return actions


def _action(rng: random.Random, i: int, *, journey: bool, n_journeys: int) -> dict[str, Any]:
    channel = _CHANNELS[i % len(_CHANNELS)]
    action: dict[str, Any] = {
        "id": f"a{i}",
        "channel": channel,
        "priority": rng.randint(0, 90),
        "value": round(rng.uniform(0.5, 10.0), 2)
        if i % 4
        else f"1.0 + profile.ltv * 0.0{rng.randint(1, 9)}",
        "payload": {"template": f"t{i}", "campaign": f"c{i % 7}"},
    }
    if journey:
        action["journey"] = f"j{i % n_journeys}"
        action["stages"] = [f"s{(i // n_journeys) % 3}"]
    else:
        action["always_on"] = True
    if channel in _PLACEMENTS:
        places = _PLACEMENTS[channel]
        action["placements"] = [places[i % len(places)]]
    cond = _ELIGIBILITY[i % len(_ELIGIBILITY)]
    if cond is not None:
        action["eligibility"] = cond.format(e=rng.randint(0, 11), s=rng.randint(0, 4))
    if i % 6 == 0:
        action["tags"] = ["promo"]
    if i % 9 == 0:
        action["variants"] = [
            {"id": "A", "weight": 50, "payload": {"template": f"t{i}a"}},
            {"id": "B", "weight": 50, "payload": {"template": f"t{i}b"}},
        ]
    if i % 11 == 0:
        action["caps"] = [{"limit": 1, "window": "3d"}]
    return action


def synthetic_snapshots(
    policy: CompiledPolicy, count: int, *, now_ms: int = BENCH_NOW_MS, seed: int = 11
) -> list[CustomerSnapshot]:
    """Generated customers for ``policy``: profiles, consent, counters, journey states, cap usage."""
    rng = random.Random(seed)
    purposes = sorted(policy.consent.purposes)
    snapshots = []
    for n in range(count):
        profile = _profile(rng, policy, now_ms)
        consent = {
            p: ConsentRecord(
                state="granted" if rng.random() < 0.7 else "denied",
                updated_ms=now_ms - 30 * _DAY,
                source="cmp",
            )
            for p in purposes
            if rng.random() < 0.6
        }
        events = _counters(rng, policy, now_ms)
        states = _journey_states(rng, policy, now_ms, n)
        caps = {
            key: sorted(now_ms - rng.randint(0, 6 * _DAY) for _ in range(rng.randint(0, 2)))
            for key in sorted(policy.needs.cap_keys)
            if rng.random() < 0.3
        }
        snapshots.append(
            CustomerSnapshot(
                customer_id=f"cust-{n}",
                profile=profile,
                consent=consent,
                events=events,
                segments=frozenset(
                    s for s in ("s0", "s1", "s2", "s3", "price_sensitive") if rng.random() < 0.3
                ),
                journeys=states,
                caps=caps,
            )
        )
    return snapshots


def _profile(rng: random.Random, policy: CompiledPolicy, now_ms: int) -> dict[str, ProfileValue]:
    profile: dict[str, ProfileValue] = {}
    for name, spec in policy.profile.items():
        value: Any
        t = spec.type_text
        if name == "region":
            value = rng.choice(["US", "US", "US", "EU", "OTHER"])
        elif name == "timezone":
            value = rng.choice(["America/New_York", "Europe/Berlin", "America/Los_Angeles", "UTC"])
        elif name in ("do_not_contact", "deceased"):
            value = rng.random() < 0.02
        elif t == "bool":
            value = rng.random() < 0.6
        elif t == "double":
            value = round(rng.uniform(0, 400), 2)
        elif t == "int":
            value = rng.randint(0, 12)
        elif t == "string" and spec.values:
            value = rng.choice(sorted(spec.values))
        elif t == "string":
            value = rng.choice(["basic", "gold", "silver"])
        else:
            continue
        profile[name] = ProfileValue(value=value, updated_ms=now_ms - _DAY, source="bench")
    return profile


def _counters(rng: random.Random, policy: CompiledPolicy, now_ms: int) -> dict[str, EventCounter]:
    events: dict[str, EventCounter] = {}
    for e in sorted(policy.events):
        if rng.random() < 0.5:
            buckets: dict[int, int] = {}
            for _ in range(rng.randint(1, 6)):
                at = now_ms - rng.randint(0, 40 * _DAY)
                start = at - at % _HOUR
                buckets[start] = buckets.get(start, 0) + 1
            starts = sorted(buckets)
            events[e] = EventCounter(
                total=sum(buckets.values()),
                first_ms=starts[0],
                last_ms=starts[-1] + rng.randint(0, _HOUR - 1),
                buckets=buckets,
            )
    return events


def _journey_states(
    rng: random.Random, policy: CompiledPolicy, now_ms: int, n: int
) -> dict[str, JourneyState]:
    states: dict[str, JourneyState] = {}
    for jid in sorted(policy.journeys):
        if rng.random() < 0.5:
            stages = list(policy.journeys[jid].stages)
            entered = now_ms - rng.randint(0, 3 * _DAY)
            states[jid] = JourneyState(
                status="active",
                stage=rng.choice(stages),
                entered_ms=entered,
                stage_entered_ms=now_ms - rng.randint(0, 20 * 60_000),
                entry_event_id=f"ev-{n}-{jid}",
                last_event_id=f"ev-{n}-{jid}",
            )
    return states
