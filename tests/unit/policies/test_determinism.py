"""Determinism: the same policy, snapshot, request and `now` give byte-identical decisions.

A property test over generated snapshots of the example policy set: two
decisions from equal inputs (one of them rebuilt through a JSON round trip,
as a store would) encode to the same bytes, and the explain trace never
changes the answer.
"""

from __future__ import annotations

from pathlib import Path

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arbiter.policies import CompiledPolicy, decide, load_policy
from arbiter.policies.decision import Request
from arbiter.policies.snapshot import (
    ConsentRecord,
    CustomerSnapshot,
    EventCounter,
    JourneyState,
    ProfileValue,
)

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "policies"
NOW = 1_748_876_400_000
HOUR = 3_600_000
POLICY: CompiledPolicy = load_policy(EXAMPLES)

_profile = st.fixed_dictionaries(
    {},
    optional={
        "region": st.sampled_from(["EU", "UK", "US", "CA", "OTHER"]),
        "timezone": st.sampled_from(
            ["America/New_York", "Europe/Berlin", "Asia/Tokyo", "Nope/Zone"]
        ),
        "app_installed": st.booleans(),
        "email_verified": st.booleans(),
        "do_not_contact": st.booleans(),
        "deceased": st.booleans(),
        "lifetime_value": st.floats(0, 1000, allow_nan=False),
        "orders_count": st.integers(0, 20),
        "plan": st.sampled_from(["none", "basic", "premium"]),
        "subscription_status": st.sampled_from(["none", "active", "paused", "cancelled"]),
    },
).map(lambda d: {k: ProfileValue(value=v, updated_ms=1) for k, v in d.items()})

_consent = st.dictionaries(
    st.sampled_from(["email_marketing", "push_marketing", "sms_marketing", "personalization"]),
    st.builds(
        ConsentRecord,
        state=st.sampled_from(["granted", "denied"]),
        updated_ms=st.integers(0, NOW),
        expires_ms=st.none() | st.integers(NOW - 10 * HOUR, NOW + 10 * HOUR),
    ),
)


def _counter(offsets: list[int]) -> EventCounter:
    buckets: dict[int, int] = {}
    for off in offsets:
        at = NOW - off
        buckets[at - at % HOUR] = buckets.get(at - at % HOUR, 0) + 1
    return EventCounter(
        total=len(offsets), first_ms=NOW - max(offsets), last_ms=NOW - min(offsets), buckets=buckets
    )


_events = st.dictionaries(
    st.sampled_from(
        ["cart_updated", "order_placed", "complaint_opened", "complaint_resolved", "product_viewed"]
    ),
    st.lists(st.integers(0, 30 * 24 * HOUR), min_size=1, max_size=4).map(_counter),
)

_stages = {jid: list(j.stages) for jid, j in POLICY.journeys.items()}
_journeys = st.dictionaries(
    st.sampled_from(sorted(_stages)),
    st.tuples(st.integers(0, 10), st.integers(0, 60 * 24 * HOUR), st.integers(0, 48 * HOUR)),
).map(
    lambda d: {
        jid: JourneyState(
            status="active",
            stage=_stages[jid][pick % len(_stages[jid])],
            entered_ms=NOW - entered,
            stage_entered_ms=NOW - min(entered, stage),
            last_event_id="e",
        )
        for jid, (pick, entered, stage) in d.items()
    }
)

_caps = st.dictionaries(
    st.sampled_from(sorted(POLICY.needs.cap_keys)),
    st.lists(st.integers(0, 7 * 24 * HOUR), max_size=4).map(lambda xs: sorted(NOW - x for x in xs)),
)

snapshots = st.builds(
    CustomerSnapshot,
    customer_id=st.from_regex(r"[a-z0-9]{1,12}", fullmatch=True),
    profile=_profile,
    consent=_consent,
    events=_events,
    segments=st.frozensets(st.sampled_from(["vip", "price_sensitive"])),
    journeys=_journeys,
    caps=_caps,
    unavailable=st.frozensets(
        st.sampled_from(["consent", "caps", "events", "profile"]), max_size=1
    ),
)
requests = st.builds(
    Request,
    customer_id=st.just("x"),
    placement=st.sampled_from(["", "home_banner", "cart_drawer", "web_cart_sidebar"]),
    channels=st.sampled_from(
        [(), ("email", "push"), ("sms",), ("in_app",), ("transactional_email",)]
    ),
    context=st.fixed_dictionaries({}, optional={"cart_value": st.floats(0, 200, allow_nan=False)}),
    limit=st.integers(0, 4),
    request_id=st.from_regex(r"[a-z0-9]{1,8}", fullmatch=True),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(snapshot=snapshots, request=requests, offset=st.integers(-48 * HOUR, 48 * HOUR))
def test_same_inputs_give_byte_identical_decisions(
    snapshot: CustomerSnapshot, request: Request, offset: int
) -> None:
    now = NOW + offset
    request = msgspec.structs.replace(request, customer_id=snapshot.customer_id, explain=True)
    first, commit1 = decide(POLICY, request, snapshot, now)
    # The same snapshot as a store would rebuild it (fresh objects, JSON round trip).
    copy = msgspec.json.decode(msgspec.json.encode(snapshot), type=CustomerSnapshot)
    second, commit2 = decide(POLICY, request, copy, now)
    assert msgspec.json.encode(first) == msgspec.json.encode(second)
    assert msgspec.json.encode(commit1) == msgspec.json.encode(commit2)
    quiet, commit3 = decide(POLICY, msgspec.structs.replace(request, explain=False), snapshot, now)
    assert msgspec.json.encode(
        msgspec.structs.replace(first, candidates=())
    ) == msgspec.json.encode(quiet)
    assert commit3 == commit1
