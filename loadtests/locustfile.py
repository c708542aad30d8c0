"""Locust gRPC load test of ``arbiter.v1.DecisionService``: a Decide / Track / UpdateProfile mix.

Each simulated user owns one gRPC channel (as a real backend would keep one
per process) and fires Locust ``request`` events with the measured time of
every call. Customers are drawn uniformly from a fixed population, so state
(profiles, consent, counters, caps, journeys) builds up the way it does in
production and decisions are not all for empty customers.

Configuration (environment variables):

=========================  =======================  ==========================================
variable                   default                  meaning
=========================  =======================  ==========================================
``ARBITER_LOAD_TARGET``    ``127.0.0.1:50051``      server address (``--host`` overrides it)
``ARBITER_LOAD_CUSTOMERS`` ``10000``                customer population size
``ARBITER_LOAD_MIX``       ``decide:8,track:1,      relative weights of the three calls
                           update_profile:1``
``ARBITER_LOAD_DEADLINE``  ``1.0``                  per-call deadline, seconds
``ARBITER_LOAD_EXPLAIN``   ``0``                    1: Decide with ``explain`` (bigger answers)
``ARBITER_LOAD_WAIT``      ``0``                    think time between a user's calls, seconds
=========================  =======================  ==========================================

A Decide answered with a degradation (state unavailable, a failing
expression) counts as a failure: under load it means the server fell back
toward not sending, which a load test must not hide.

Run: ``locust -f loadtests/locustfile.py --headless -u 20 -r 20 --run-time 20s``
(``make loadtest`` starts a local server and does this).
"""

from __future__ import annotations

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
DEADLINE_S = float(os.environ.get("ARBITER_LOAD_DEADLINE", "1.0"))
EXPLAIN = os.environ.get("ARBITER_LOAD_EXPLAIN", "0") not in ("", "0", "false")
WAIT_S = float(os.environ.get("ARBITER_LOAD_WAIT", "0"))


def _mix(text: str) -> dict[str, int]:
    weights = {"decide": 8, "track": 1, "update_profile": 1}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, weight = part.partition(":")
        if name.strip() not in weights:
            raise ValueError(f"ARBITER_LOAD_MIX: unknown call {name!r}")
        weights[name.strip()] = int(weight)
    return weights


MIX = _mix(os.environ.get("ARBITER_LOAD_MIX", ""))

# (placement, channels) a product backend would ask about.
SURFACES = (
    ("home_banner", ("in_app",)),
    ("cart_drawer", ("in_app",)),
    ("", ("email", "push", "sms")),
    ("web_cart_sidebar", ("web",)),
)
REGIONS = ("US", "US", "US", "EU", "UK", "CA")
PURPOSES = ("email_marketing", "push_marketing", "sms_marketing", "personalization")


class DegradedResponse(Exception):
    """The server answered, but fell back toward not sending."""


def _customer() -> str:
    return f"load-{random.randrange(CUSTOMERS)}"


def _now_stamp() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(time.time_ns())
    return stamp


def _event(customer: str) -> decision_pb2.Event:
    event = decision_pb2.Event(
        event_id=uuid.uuid4().hex, customer_id=customer, timestamp=_now_stamp()
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
        event.properties["cart_id"].string_value = f"cart-{customer}"
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
        except grpc.RpcError as exc:
            exception = exc
        except DegradedResponse as exc:
            exception = exc
        self.environment.events.request.fire(
            request_type="grpc",
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=length,
            exception=exception,
            context={},
        )

    @task(MIX["decide"])
    def decide(self) -> None:
        placement, channels = random.choice(SURFACES)
        request = decision_pb2.DecideRequest(
            request_id=uuid.uuid4().hex,
            customer_id=_customer(),
            placement=placement,
            channels=channels,
            explain=EXPLAIN,
        )
        if placement == "web_cart_sidebar":
            request.context["cart_value"].double_value = round(random.uniform(5, 90), 2)
        request.context["device"].string_value = "ios"

        def check(response: decision_pb2.DecideResponse) -> None:
            if response.degradations:
                raise DegradedResponse(response.degradations[0].detail)

        self._call("Decide", self.stub.Decide, request, check)

    @task(MIX["track"])
    def track(self) -> None:
        customer = _customer()
        request = decision_pb2.TrackRequest(events=[_event(customer)])

        def check(response: decision_pb2.TrackResponse) -> None:
            for result in response.results:
                if result.status == decision_pb2.EVENT_STATUS_REJECTED:
                    raise DegradedResponse(f"event rejected: {result.field}: {result.detail}")

        self._call("Track", self.stub.Track, request, check)

    @task(MIX["update_profile"])
    def update_profile(self) -> None:
        request = decision_pb2.UpdateProfileRequest(
            request_id=uuid.uuid4().hex,
            customer_id=_customer(),
            source="load",
            timestamp=_now_stamp(),
        )
        request.traits["region"].string_value = random.choice(REGIONS)
        request.traits["plan"].string_value = random.choice(("none", "basic", "premium"))
        request.traits["lifetime_value"].double_value = round(random.uniform(0, 2000), 2)
        request.traits["app_installed"].bool_value = random.random() < 0.6
        for purpose in random.sample(PURPOSES, k=random.randint(1, len(PURPOSES))):
            request.consents.add(
                purpose=purpose,
                state=(
                    decision_pb2.CONSENT_STATE_GRANTED
                    if random.random() < 0.8
                    else decision_pb2.CONSENT_STATE_DENIED
                ),
            )
        self._call("UpdateProfile", self.stub.UpdateProfile, request, lambda _: None)
