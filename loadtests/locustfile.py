"""Locust gRPC load test of ``arbiter.v1.DecisionService``: named scenarios over a Zipf-skewed, seeded population.

``make loadtest SCENARIO=... USERS=... DURATION=... STORE=...`` (``loadtests/run.py``)
seeds the population into a fresh server (embedded or Redis) and runs this
file headless with an HTML report and CSV stats. Each simulated user owns
one gRPC channel (as a backend keeps one per process) and fires Locust
``request`` events with the measured time of every call.

Scenarios (``ARBITER_LOAD_SCENARIO``), as relative weights of calls:

======================  ===========================================================
``product_surfaces``    Decide-heavy read mix: Decide 90 (home banner, cart drawer,
                        outbound email/push/sms, web sidebar), Check 10
``journey_ingestion``   Track-heavy: Track 85 (batches of 1-5 events), UpdateProfile
                        10, Decide 5
``mixed``               Decide 60, Track 25, UpdateProfile 10, Check 5
======================  ===========================================================

Customers are ``bench-<i>`` for ``i`` in ``[0, ARBITER_LOAD_CUSTOMERS)``
(the population ``loadtests/run.py`` seeds: profiles, consent, counters,
journeys, cap history), drawn with a Zipf skew (``ARBITER_LOAD_ZIPF``,
exponent; 0 = uniform): a few customers are hot, most are cold, as in
production.

Other variables: ``ARBITER_LOAD_TARGET`` (``--host`` overrides it),
``ARBITER_LOAD_DEADLINE`` (seconds, default 0.05 as the client's),
``ARBITER_LOAD_WAIT`` (think time between a user's calls, seconds).

A Decide answered with a degradation (state unavailable, a failing
expression) counts as a failure, and so does ``RESOURCE_EXHAUSTED`` (the
server shed the call): a load test must not hide either.
"""

from __future__ import annotations

import bisect
import itertools
import os
import random
import time
import uuid
from collections.abc import Callable
from typing import Any

import grpc.experimental.gevent as grpc_gevent

grpc_gevent.init_gevent()  # before any channel: make gRPC cooperate with Locust's gevent

import grpc  # noqa: E402
from google.protobuf import timestamp_pb2  # noqa: E402
from locust import User, constant, task  # noqa: E402

from arbiter.v1 import decision_pb2, decision_pb2_grpc  # noqa: E402

TARGET = os.environ.get("ARBITER_LOAD_TARGET", "127.0.0.1:50051")
CUSTOMERS = int(os.environ.get("ARBITER_LOAD_CUSTOMERS", "10000"))
ZIPF = float(os.environ.get("ARBITER_LOAD_ZIPF", "1.0"))
DEADLINE_S = float(os.environ.get("ARBITER_LOAD_DEADLINE", "0.05"))
WAIT_S = float(os.environ.get("ARBITER_LOAD_WAIT", "0"))
SCENARIO = os.environ.get("ARBITER_LOAD_SCENARIO", "mixed")

SCENARIOS: dict[str, dict[str, int]] = {
    "product_surfaces": {"decide": 90, "check": 10},
    "journey_ingestion": {"track": 85, "update_profile": 10, "decide": 5},
    "mixed": {"decide": 60, "track": 25, "update_profile": 10, "check": 5},
}
if SCENARIO not in SCENARIOS:
    raise SystemExit(
        f"ARBITER_LOAD_SCENARIO: unknown scenario {SCENARIO!r} (one of {sorted(SCENARIOS)})"
    )
MIX = {
    name: SCENARIOS[SCENARIO].get(name, 0)
    for name in ("decide", "check", "track", "update_profile")
}

# (placement, channels) a product backend asks about, with how often.
SURFACES = (
    (5, "home_banner", ("in_app",)),
    (2, "cart_drawer", ("in_app",)),
    (2, "", ("email", "push", "sms")),
    (1, "web_cart_sidebar", ("web",)),
)
CHECKS = (("default_home_banner", "in_app"), ("winback_offer_email", "email"))
REGIONS = ("US", "US", "US", "EU", "UK", "CA")
PURPOSES = ("email_marketing", "push_marketing", "sms_marketing", "personalization")

_CUMULATIVE = list(itertools.accumulate(1.0 / (i + 1) ** ZIPF for i in range(CUSTOMERS)))


class DegradedResponse(Exception):
    """The server answered, but fell back toward not sending (or rejected an event)."""


def customer() -> str:
    """A customer of the seeded population, Zipf-skewed."""
    i = bisect.bisect_left(_CUMULATIVE, random.random() * _CUMULATIVE[-1])
    return f"bench-{i}"


def _now_stamp() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(time.time_ns())
    return stamp


def _event(customer_id: str) -> decision_pb2.Event:
    event = decision_pb2.Event(
        event_id=uuid.uuid4().hex, customer_id=customer_id, timestamp=_now_stamp()
    )
    kind = random.random()
    if kind < 0.4:
        event.type = "app_opened"
        event.properties["platform"].string_value = random.choice(("ios", "android", "web"))
    elif kind < 0.7:
        event.type = "product_viewed"
        event.properties["product_id"].string_value = f"p-{random.randrange(500)}"
        event.properties["price"].double_value = round(random.uniform(5, 80), 2)
    elif kind < 0.85:
        event.type = "cart_updated"
        event.properties["cart_id"].string_value = f"cart-{customer_id}"
        event.properties["item_count"].int_value = random.randint(1, 6)
        event.properties["cart_value"].double_value = round(random.uniform(10, 150), 2)
    elif kind < 0.95:
        event.type = "order_placed"
        event.properties["order_id"].string_value = uuid.uuid4().hex[:12]
        event.properties["total"].double_value = round(random.uniform(20, 200), 2)
    else:
        event.type = "signed_up"
        event.properties["channel"].string_value = "web"
    return event


class ArbiterUser(User):
    """One backend process: one channel, calls back to back (or with ``ARBITER_LOAD_WAIT``)."""

    wait_time = constant(WAIT_S)

    def on_start(self) -> None:
        self.channel = grpc.insecure_channel(self.host or TARGET)
        self.stub: Any = decision_pb2_grpc.DecisionServiceStub(self.channel)

    def on_stop(self) -> None:
        self.channel.close()

    def _call(
        self, name: str, method: Callable[..., Any], request: Any, check: Callable[[Any], None]
    ) -> None:
        started = time.perf_counter()
        exception: Exception | None = None
        length = 0
        try:
            response = method(request, timeout=DEADLINE_S)
            length = response.ByteSize()
            check(response)
        except (grpc.RpcError, DegradedResponse) as exc:
            exception = exc
        self.environment.events.request.fire(
            request_type="grpc",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=length,
            exception=exception,
            context={"scenario": SCENARIO},
        )

    @task(MIX["decide"])
    def decide(self) -> None:
        _, placement, channels = random.choices(SURFACES, [w for w, *_ in SURFACES])[0]
        request = decision_pb2.DecideRequest(
            request_id=uuid.uuid4().hex,
            customer_id=customer(),
            placement=placement,
            channels=channels,
        )
        request.context["device"].string_value = random.choice(("ios", "android", "web"))
        if placement == "web_cart_sidebar":
            request.context["cart_value"].double_value = round(random.uniform(5, 90), 2)

        def check(response: decision_pb2.DecideResponse) -> None:
            if response.degradations:
                raise DegradedResponse(response.degradations[0].detail)

        self._call(f"Decide {placement or 'outbound'}", self.stub.Decide, request, check)

    @task(MIX["check"])
    def check(self) -> None:
        action, channel = random.choice(CHECKS)
        request = decision_pb2.CheckRequest(
            request_id=uuid.uuid4().hex, customer_id=customer(), action_id=action, channel=channel
        )
        self._call("Check", self.stub.Check, request, lambda _: None)

    @task(MIX["track"])
    def track(self) -> None:
        who = customer()
        request = decision_pb2.TrackRequest(
            events=[_event(who) for _ in range(random.randint(1, 5))]
        )

        def check(response: decision_pb2.TrackResponse) -> None:
            for result in response.results:
                if result.status == decision_pb2.EVENT_STATUS_REJECTED:
                    raise DegradedResponse(f"event rejected: {result.field}: {result.detail}")

        self._call("Track", self.stub.Track, request, check)

    @task(MIX["update_profile"])
    def update_profile(self) -> None:
        request = decision_pb2.UpdateProfileRequest(
            request_id=uuid.uuid4().hex,
            customer_id=customer(),
            source="load",
            timestamp=_now_stamp(),
        )
        request.traits["region"].string_value = random.choice(REGIONS)
        request.traits["plan"].string_value = random.choice(("none", "basic", "premium"))
        request.traits["lifetime_value"].double_value = round(random.uniform(0, 2000), 2)
        request.traits["app_installed"].bool_value = random.random() < 0.6
        for purpose in random.sample(PURPOSES, k=random.randint(1, len(PURPOSES))):
            granted = random.random() < 0.8
            request.consents.add(
                purpose=purpose,
                state=decision_pb2.CONSENT_STATE_GRANTED
                if granted
                else decision_pb2.CONSENT_STATE_DENIED,
            )
        self._call("UpdateProfile", self.stub.UpdateProfile, request, lambda _: None)
