"""Realistic traffic for the example policies: profiles with consent, events that enter journeys, Decides on every surface.

Used by the decision log tests (replay, impact), the metrics tests and
``benchmarks/decision_log_bench.py`` (import it with ``tests/integration`` on
``sys.path``). :func:`seed` writes a customer's profile and a few events;
:func:`decide_request` draws one Decide from a fixed mix of surfaces
(in-app banner, cart drawer, web, outbound on every channel), so that the
recorded decisions cover consent denials, caps, journeys, quiet hours and
fallbacks. Everything is drawn from a seeded ``random.Random``.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from google.protobuf import timestamp_pb2

from arbiter.v1 import decision_pb2, value_pb2

__all__ = ["SURFACES", "decide_request", "events", "profile_update", "seed"]

REGIONS: Final = ("US", "EU", "UK", "CA", "OTHER")
PLANS: Final = ("none", "basic", "premium")
PURPOSES: Final = ("email_marketing", "push_marketing", "sms_marketing", "personalization")
# (placement, channels, limit)
SURFACES: Final = (
    ("home_banner", ("in_app",), 1),
    ("cart_drawer", ("in_app",), 1),
    ("web_cart_sidebar", ("web",), 1),
    ("web_home_hero", ("web",), 1),
    ("", (), 3),
)


def _stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _value(obj: Any) -> value_pb2.Value:
    if isinstance(obj, bool):
        return value_pb2.Value(bool_value=obj)
    if isinstance(obj, int):
        return value_pb2.Value(int_value=obj)
    if isinstance(obj, float):
        return value_pb2.Value(double_value=obj)
    return value_pb2.Value(string_value=str(obj))


def profile_update(
    rng: random.Random, customer: str, **extra: Any
) -> decision_pb2.UpdateProfileRequest:
    """A profile with a region, a plan, a time zone and some consents (granted or denied)."""
    now = datetime.now(UTC)
    traits = {
        "region": rng.choice(REGIONS),
        "plan": rng.choice(PLANS),
        "timezone": rng.choice(("America/New_York", "Europe/Berlin", "Asia/Tokyo")),
        "orders_count": rng.randrange(0, 12),
        "lifetime_value": round(rng.uniform(0, 900), 2),
        **extra,
    }
    request = decision_pb2.UpdateProfileRequest(
        request_id=uuid.uuid4().hex,
        customer_id=customer,
        source="crm",
        timestamp=_stamp(now - timedelta(minutes=5)),
        traits={k: _value(v) for k, v in traits.items()},
    )
    for purpose in PURPOSES:
        roll = rng.random()
        if roll < 0.6:
            request.consents.add(
                purpose=purpose,
                state=decision_pb2.CONSENT_STATE_GRANTED
                if roll < 0.45
                else decision_pb2.CONSENT_STATE_DENIED,
            )
    return request


def events(rng: random.Random, customer: str) -> decision_pb2.TrackRequest:
    """A few events that enter journeys (cart, browse, order, sign-up, app open)."""
    now = datetime.now(UTC)
    batch = decision_pb2.TrackRequest()
    kinds = rng.sample(
        ["cart_updated", "product_viewed", "order_placed", "signed_up", "app_opened"], k=2
    )
    for kind in kinds:
        properties: dict[str, Any] = {}
        if kind == "cart_updated":
            properties = {"cart_id": f"cart-{customer}", "item_count": 2, "cart_value": 42.0}
        elif kind == "product_viewed":
            properties = {"product_id": "p-1", "category": "snacks", "price": 4.5}
        elif kind == "order_placed":
            properties = {"order_id": f"o-{uuid.uuid4().hex[:8]}", "total": 39.0}
        batch.events.add(
            event_id=uuid.uuid4().hex,
            customer_id=customer,
            type=kind,
            timestamp=_stamp(now - timedelta(minutes=rng.randrange(2, 90))),
            properties={k: _value(v) for k, v in properties.items()},
        )
    return batch


def seed(stub: Any, rng: random.Random, customer: str, **extra: Any) -> None:
    """Write a profile and events for ``customer`` through the service."""
    stub.UpdateProfile(profile_update(rng, customer, **extra), timeout=10)
    stub.Track(events(rng, customer), timeout=10)


def decide_request(
    rng: random.Random,
    customer: str,
    *,
    dry_run: bool = False,
    surface: tuple[str, tuple[str, ...], int] | None = None,
) -> decision_pb2.DecideRequest:
    """One Decide on ``surface`` (default: drawn from :data:`SURFACES`), with a cart value and a
    page type in the context."""
    placement, channels, limit = surface or rng.choice(SURFACES)
    request = decision_pb2.DecideRequest(
        request_id=uuid.uuid4().hex,
        customer_id=customer,
        placement=placement,
        channels=list(channels),
        limit=limit,
        dry_run=dry_run,
    )
    request.context["cart_value"].double_value = round(rng.uniform(5, 80), 2)
    request.context["page_type"].string_value = rng.choice(("home", "cart", "product"))
    return request
