"""One request must not stall everyone: requests are bounded so the worst costs little CPU.

Found: a 3.9 MB Decide with ~950,000 context values, inside the documented
limits (each list at most 256 members, 8 levels), held the event loop for
1-2.2 s and every concurrent call waited as long. Now a request holds at
most ``MAX_VALUES`` values (all its maps together; a Track batch all its
events) and its body at most ``MAX_REQUEST_BYTES`` on both ports (gRPC's
max receive size, Connect's read limit). ``benchmarks/limits_bench.py``
(``make bench-limits``) measures the worst requests these limits allow.
"""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import grpc
import pytest
from inproc import ServerHandle

from arbiter.server import parse
from arbiter.v1 import decision_pb2, decision_pb2_grpc, value_pb2


@pytest.fixture(scope="module")
def server() -> Iterator[ServerHandle]:
    handle = ServerHandle(http_listen="127.0.0.1:0")
    try:
        yield handle
    finally:
        handle.close()


def _many_values(count: int) -> decision_pb2.DecideRequest:
    """``count`` values under one declared context key (a list of lists of ints)."""
    request = decision_pb2.DecideRequest(
        request_id=uuid.uuid4().hex, customer_id="lim-1", placement="home_banner"
    )
    outer = request.context["page_type"]
    left = count - 1
    while left > 0:
        inner = outer.list_value.values.add()
        left -= 1
        for _ in range(min(left, 255)):
            inner.list_value.values.add(int_value=1)
            left -= 1
    return request


def test_more_values_than_the_limit_are_refused_naming_it(server: ServerHandle) -> None:
    assert parse.MAX_VALUES <= 5000
    with grpc.insecure_channel(server.address) as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.Decide(_many_values(20_000), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert f"more than {parse.MAX_VALUES} values" in (err.value.details() or "")


def test_a_body_over_the_limit_is_refused_on_both_ports(server: ServerHandle) -> None:
    request = decision_pb2.DecideRequest(
        request_id=uuid.uuid4().hex, customer_id="lim-2", placement="home_banner"
    )
    request.context["page_type"].CopyFrom(value_pb2.Value(string_value="home"))
    body = request.SerializeToString() + b"\x92\x01" + b"\x80\x80\x48" + b"z" * (1 << 20)
    assert parse.MAX_REQUEST_BYTES < len(body) < 4 * 1024 * 1024
    with grpc.insecure_channel(server.address) as channel:
        raw = channel.unary_unary("/arbiter.v1.DecisionService/Decide")
        with pytest.raises(grpc.RpcError) as err:
            raw(body, timeout=10)
    assert err.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(parse.MAX_REQUEST_BYTES) in (err.value.details() or "")
    http = server.server.http
    assert http is not None
    post = urllib.request.Request(
        f"{http.url}/arbiter.v1.DecisionService/Decide",
        data=body,
        headers={"Content-Type": "application/proto"},
        method="POST",
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(post, timeout=10)
    assert refused.value.code in (413, 429, 400)
    assert b"resource_exhausted" in refused.value.read()
