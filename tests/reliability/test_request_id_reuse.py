"""A ``request_id`` reused with a different body is refused; with the same body it replays.

Found: a ``Check`` reusing an id with another action answered
``allowed=true recorded=true replayed=true`` for an action the customer was
not eligible for, and a ``Decide`` asking for ``email`` got the earlier
``in_app`` banner replayed. The stores keep a fingerprint with each
idempotency record, but the server never passed one. Now Decide and Check
store a digest of the request body, and a reuse whose body differs is
``INVALID_ARGUMENT`` naming ``request_id``, with nothing written.

Checked on the embedded store and on a real Redis, over gRPC. (A reuse
that the check refuses before reading state -- an unknown action, a channel
the action does not use -- answers its refusal and writes nothing; it never
reaches the stored record.)
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from inproc import ServerHandle, fresh_customer
from redis_support import RedisServer

from arbiter.v1 import decision_pb2, decision_pb2_grpc


@pytest.fixture(scope="module", params=["memory", "redis"])
def server(request: pytest.FixtureRequest) -> Iterator[ServerHandle]:
    if request.param == "memory":
        handle = ServerHandle()
        try:
            yield handle
        finally:
            handle.close()
        return
    redis = RedisServer().start()
    try:
        handle = ServerHandle(redis_url=redis.url)
        try:
            yield handle
        finally:
            handle.close()
    finally:
        redis.close()


def _stub(server: ServerHandle) -> tuple[Any, grpc.Channel]:
    channel = grpc.insecure_channel(server.address)
    return decision_pb2_grpc.DecisionServiceStub(channel), channel


def _state(server: ServerHandle, customer: str) -> Any:
    exported = server.export(customer)
    return (exported["decisions"], exported.get("caps"), exported.get("journeys"))


def test_decide_reuse_with_other_channels_is_refused_same_body_replays(
    server: ServerHandle,
) -> None:
    customer = fresh_customer(server.policy)
    rid = uuid.uuid4().hex
    first = decision_pb2.DecideRequest(
        request_id=rid, customer_id=customer, placement="home_banner", channels=["in_app"]
    )
    stub, channel = _stub(server)
    with channel:
        answer = stub.Decide(first, timeout=10)
        written = _state(server, customer)
        other = decision_pb2.DecideRequest()
        other.CopyFrom(first)
        other.channels[:] = ["email"]
        with pytest.raises(grpc.RpcError) as err:
            stub.Decide(other, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (err.value.details() or "").startswith("request_id:")
        assert _state(server, customer) == written  # nothing written
        again = stub.Decide(first, timeout=10)
    assert again.replayed
    assert again.decision_id == answer.decision_id
    assert list(again.actions) == list(answer.actions)


def test_check_reuse_with_another_action_is_refused_same_body_replays(
    server: ServerHandle,
) -> None:
    customer = fresh_customer(server.policy)
    rid = uuid.uuid4().hex
    first = decision_pb2.CheckRequest(
        request_id=rid,
        customer_id=customer,
        action_id="welcome_email",
        channel="email",
        record=True,
    )
    stub, channel = _stub(server)
    with channel:
        answer = stub.Check(first, timeout=10)
        written = _state(server, customer)
        other = decision_pb2.CheckRequest()
        other.CopyFrom(first)
        other.action_id, other.channel = "browse_nudge_email", "email"
        with pytest.raises(grpc.RpcError) as err:
            stub.Check(other, timeout=10)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert (err.value.details() or "").startswith("request_id:")
        assert _state(server, customer) == written
        again = stub.Check(first, timeout=10)
    assert again.replayed
    assert (again.allowed, again.reason) == (answer.allowed, answer.reason)
