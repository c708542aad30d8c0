"""ExportCustomer and ForgetCustomer on a real server, on the embedded store and on a real Redis, over gRPC and Connect.

A customer is written through the public API (profile with consent, events
that enter journeys, Decides that count against a cap and store their
idempotency records), then exported -- everything, in pages that add up to
the single-page export -- and forgotten: afterwards the store holds nothing,
a Decide replays nothing, and a second forget says nothing existed.
"""

from __future__ import annotations

import json
import random
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from arbiter.v1 import admin_pb2, admin_pb2_grpc, decision_pb2, decision_pb2_grpc
from arbiter_client import from_value

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE.parent), str(_HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from conftest import ServerHandle, fresh_customer  # noqa: E402
from redis_support import redis_url  # noqa: E402
from server_procs import SERVICE_CHANNEL, SERVICE_PLACEMENT, write_test_policies  # noqa: E402
from traffic import SURFACES, decide_request, seed  # noqa: E402

__all__ = ["redis_url"]  # session fixture, re-exported for pytest

HISTORY = ("decisions", "feedback", "applied_events")


@pytest.fixture(params=["memory", "redis"])
def server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ServerHandle, Any, Any]]:
    """A server on the embedded store or on a real Redis, with a DecisionService and an
    AdminService stub."""
    policies = str(write_test_policies(tmp_path, limit=5))
    options: dict[str, Any] = {"policies": policies, "http_listen": "127.0.0.1:0"}
    if request.param == "redis":
        options["redis_url"] = request.getfixturevalue("redis_url")
    handle = ServerHandle(**options)
    channel = grpc.insecure_channel(handle.address)
    try:
        yield (
            handle,
            decision_pb2_grpc.DecisionServiceStub(channel),
            admin_pb2_grpc.AdminServiceStub(channel),
        )
    finally:
        channel.close()
        handle.close()


def _populate(handle: ServerHandle, stub: Any, customer: str) -> list[str]:
    """Profile, consent, events and decisions for ``customer``; the request ids decided."""
    rng = random.Random(customer)
    seed(stub, rng, customer)
    signed_up = decision_pb2.TrackRequest()  # enters the onboarding journey
    signed_up.events.add(event_id=f"signup-{customer}", customer_id=customer, type="signed_up")
    signed_up.events[0].timestamp.GetCurrentTime()
    stub.Track(signed_up, timeout=10)
    request_ids = []
    for surface in SURFACES[:3]:
        reply = stub.Decide(decide_request(rng, customer, surface=surface), timeout=10)
        request_ids.append(reply.request_id)
    for i in range(3):  # counted against the service action's cap
        stub.Decide(
            decision_pb2.DecideRequest(
                request_id=f"svc-{customer}-{i}",
                customer_id=customer,
                placement=SERVICE_PLACEMENT,
                channels=[SERVICE_CHANNEL],
            ),
            timeout=10,
        )
        request_ids.append(f"svc-{customer}-{i}")
    return request_ids


def _pages(admin: Any, customer: str, page_size: int) -> list[admin_pb2.ExportCustomerResponse]:
    pages = []
    token = ""
    while True:
        page = admin.ExportCustomer(
            admin_pb2.ExportCustomerRequest(
                customer_id=customer, page_size=page_size, page_token=token
            ),
            timeout=10,
        )
        pages.append(page)
        token = page.next_page_token
        if not token:
            return pages


def _state(page: admin_pb2.ExportCustomerResponse) -> dict[str, Any]:
    state = from_value(page.state)
    assert isinstance(state, dict)
    return state


def test_export_holds_everything_stored_and_pages_add_up_to_it(
    server: tuple[ServerHandle, Any, Any],
) -> None:
    handle, stub, admin = server
    customer = fresh_customer(handle.policy, "exp")
    request_ids = _populate(handle, stub, customer)

    (whole,) = _pages(admin, customer, 1000)
    state = _state(whole)
    stored = handle.export(customer)
    assert whole.customer_id == customer and whole.exported_at.seconds > 0
    assert dict(whole.traits)["region"].string_value == stored["profile"]["region"]["value"]
    assert {c.purpose for c in whole.consent} == set(stored["consent"])
    assert all(c.state and c.updated_at.seconds for c in whole.consent)
    # The state map is the store's export, value for value.
    assert state == {key: value for key, value in stored.items() if key != "customer_id"}
    assert state["journeys"] and set(state["journeys"]) == set(stored["journeys"])
    assert state["events"] and set(state["events"]) == set(stored["events"])
    assert any(key.startswith("service_notice_daily") for key in state["caps"])
    assert len(next(v for k, v in state["caps"].items() if "service_notice" in k)) == 3
    assert {d["request_id"] for d in state["decisions"]} == set(request_ids)
    assert len(state["applied_events"]) == len(stored["applied_events"]) > 0

    pages = _pages(admin, customer, 2)
    total = sum(len(stored[key]) for key in HISTORY)
    assert len(pages) == -(-total // 2) > 1
    merged: dict[str, list[Any]] = {key: [] for key in HISTORY}
    for i, page in enumerate(pages):
        page_state = _state(page)
        assert sum(len(page_state.get(key, [])) for key in HISTORY) <= 2
        if i > 0:  # later pages: only the history, no profile
            assert not page.traits and not page.consent
            assert set(page_state) <= set(HISTORY)
        for key in HISTORY:
            merged[key] += page_state.get(key, [])
    assert merged == {key: stored[key] for key in HISTORY}


def test_forget_removes_everything_and_is_idempotent(
    server: tuple[ServerHandle, Any, Any],
) -> None:
    handle, stub, admin = server
    customer = fresh_customer(handle.policy, "fgt")
    other = fresh_customer(handle.policy, "keep")
    request_ids = _populate(handle, stub, customer)
    _populate(handle, stub, other)
    before_other = handle.export(other)

    first = admin.ForgetCustomer(
        admin_pb2.ForgetCustomerRequest(customer_id=customer, reason="ticket-1"), timeout=10
    )
    assert first.existed and first.forgotten_at.seconds > 0
    stored = handle.export(customer)
    assert all(not stored[key] for key in stored if key not in ("customer_id",)), stored
    (page,) = _pages(admin, customer, 100)
    assert not page.traits and not page.consent and not page.next_page_token
    assert all(not value for value in _state(page).values())
    # The idempotency records went too: the same request id is decided afresh.
    again = stub.Decide(
        decision_pb2.DecideRequest(
            request_id=request_ids[-1],
            customer_id=customer,
            placement=SERVICE_PLACEMENT,
            channels=[SERVICE_CHANNEL],
        ),
        timeout=10,
    )
    assert not again.replayed
    second = admin.ForgetCustomer(admin_pb2.ForgetCustomerRequest(customer_id=customer), timeout=10)
    assert second.existed  # the Decide above stored a record again
    third = admin.ForgetCustomer(admin_pb2.ForgetCustomerRequest(customer_id=customer), timeout=10)
    assert not third.existed and third.forgotten_at.seconds > 0
    assert handle.export(other) == before_other  # nobody else was touched


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (admin_pb2.ExportCustomerRequest(), "customer_id"),
        (admin_pb2.ExportCustomerRequest(customer_id="a b"), "customer_id"),
        (admin_pb2.ExportCustomerRequest(customer_id="c-1", page_size=1001), "page_size"),
        (admin_pb2.ExportCustomerRequest(customer_id="c-1", page_token="garbage"), "page_token"),
        (admin_pb2.ForgetCustomerRequest(), "customer_id"),
        (admin_pb2.ForgetCustomerRequest(customer_id="x" * 129), "customer_id"),
    ],
)
def test_bad_requests_name_the_field_and_touch_nothing(
    request_: Any, field: str, server: tuple[ServerHandle, Any, Any]
) -> None:
    handle, stub, admin = server
    customer = fresh_customer(handle.policy, "bad")
    _populate(handle, stub, customer)
    before = handle.export(customer)
    method = admin.ExportCustomer if "Export" in type(request_).__name__ else admin.ForgetCustomer
    with pytest.raises(grpc.RpcError) as refused:
        method(request_, timeout=10)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert (refused.value.details() or "").startswith(f"{field}: ")
    assert handle.export(customer) == before


def test_a_page_token_of_another_customer_is_refused(
    server: tuple[ServerHandle, Any, Any],
) -> None:
    handle, stub, admin = server
    customer = fresh_customer(handle.policy, "tok")
    _populate(handle, stub, customer)
    token = admin.ExportCustomer(
        admin_pb2.ExportCustomerRequest(customer_id=customer, page_size=1), timeout=10
    ).next_page_token
    assert token
    with pytest.raises(grpc.RpcError) as refused:
        admin.ExportCustomer(
            admin_pb2.ExportCustomerRequest(customer_id="someone-else", page_token=token),
            timeout=10,
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "page_token" in (refused.value.details() or "")


def _connect(handle: ServerHandle, method: str, body: dict[str, Any]) -> tuple[int, Any]:
    assert handle.server.http is not None
    request = urllib.request.Request(
        f"{handle.server.http.url}/arbiter.v1.AdminService/{method}",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_export_and_forget_over_connect(server: tuple[ServerHandle, Any, Any]) -> None:
    handle, stub, _admin = server
    customer = fresh_customer(handle.policy, "http")
    _populate(handle, stub, customer)
    status, page = _connect(handle, "ExportCustomer", {"customerId": customer, "pageSize": 3})
    assert status == 200 and page["customerId"] == customer and page["nextPageToken"]
    assert page["traits"]["region"]
    status, refused = _connect(handle, "ExportCustomer", {"customerId": customer, "pageSize": 5000})
    assert status == 400 and refused["code"] == "invalid_argument"
    assert refused["message"].startswith("page_size: ")
    status, erased = _connect(handle, "ForgetCustomer", {"customerId": customer})
    assert status == 200 and erased["existed"] is True
    status, erased = _connect(handle, "ForgetCustomer", {"customerId": customer})
    assert status == 200 and not erased.get("existed", False)
    assert not handle.export(customer)["decisions"]


def test_a_store_that_does_not_answer_is_unavailable_and_retryable(tmp_path: Path) -> None:
    handle = ServerHandle(policies=str(write_test_policies(tmp_path)))
    try:
        handle.store.unavailable = True
        with grpc.insecure_channel(handle.address) as channel:
            admin = admin_pb2_grpc.AdminServiceStub(channel)
            for call in (
                lambda: admin.ExportCustomer(
                    admin_pb2.ExportCustomerRequest(customer_id="c-1"), timeout=10
                ),
                lambda: admin.ForgetCustomer(
                    admin_pb2.ForgetCustomerRequest(customer_id="c-1"), timeout=10
                ),
            ):
                with pytest.raises(grpc.RpcError) as failed:
                    call()
                assert failed.value.code() == grpc.StatusCode.UNAVAILABLE
    finally:
        handle.store.unavailable = False
        handle.close()


@pytest.fixture(params=["file", "redis"])
def logged_server(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ServerHandle, Any, Any]]:
    """A server with a decision log: the JSON Lines file on the embedded store, or the stream on
    a real Redis (and the Redis store)."""
    options: dict[str, Any] = {
        "policies": str(write_test_policies(tmp_path, limit=5)),
        "decision_log_sample": 1.0,
    }
    if request.param == "redis":
        options.update(redis_url=request.getfixturevalue("redis_url"), decision_log="redis")
    else:
        options["decision_log"] = str(tmp_path / "decisions.jsonl")
    handle = ServerHandle(**options)
    channel = grpc.insecure_channel(handle.address)
    try:
        yield (
            handle,
            decision_pb2_grpc.DecisionServiceStub(channel),
            admin_pb2_grpc.AdminServiceStub(channel),
        )
    finally:
        channel.close()
        handle.close()


def _explain(admin: Any, decision_id: str) -> grpc.StatusCode:
    try:
        admin.ExplainDecision(admin_pb2.ExplainDecisionRequest(decision_id=decision_id), timeout=10)
    except grpc.RpcError as error:
        return error.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def test_the_decision_log_records_are_exported_and_erased_too(
    logged_server: tuple[ServerHandle, Any, Any],
) -> None:
    handle, stub, admin = logged_server
    customer = fresh_customer(handle.policy, "dlog")
    other = fresh_customer(handle.policy, "dkeep")
    _populate(handle, stub, customer)
    _populate(handle, stub, other)
    decided = [
        stub.Decide(
            decision_pb2.DecideRequest(
                request_id=f"logged-{customer}-{i}",
                customer_id=customer,
                placement=SERVICE_PLACEMENT,
                channels=[SERVICE_CHANNEL],
            ),
            timeout=10,
        ).decision_id
        for i in range(2)
    ]
    other_decision = stub.Decide(
        decision_pb2.DecideRequest(
            request_id=f"logged-{other}", customer_id=other, placement=SERVICE_PLACEMENT
        ),
        timeout=10,
    ).decision_id

    pages = _pages(admin, customer, 3)  # the log's records are paged with the rest
    records = [r for page in pages for r in _state(page).get("decision_log", [])]
    assert len(records) == 8  # 3 + 3 + 2 committed Decides
    assert {r["customer_id"] for r in records} == {customer}
    assert set(decided) <= {r["decision_id"] for r in records}
    assert _explain(admin, decided[0]) == grpc.StatusCode.OK

    erased = admin.ForgetCustomer(admin_pb2.ForgetCustomerRequest(customer_id=customer), timeout=10)
    assert erased.existed
    (page,) = _pages(admin, customer, 100)
    assert _state(page)["decision_log"] == []
    assert _explain(admin, decided[0]) == grpc.StatusCode.NOT_FOUND
    assert _explain(admin, other_decision) == grpc.StatusCode.OK  # others' records stay
    other_records = _state(_pages(admin, other, 1000)[0])["decision_log"]
    assert len(other_records) == 7
    if handle.settings.decision_log != "redis":
        assert customer not in Path(handle.settings.decision_log).read_text()
    again = admin.ForgetCustomer(admin_pb2.ForgetCustomerRequest(customer_id=customer), timeout=10)
    assert not again.existed


def test_the_do_not_contact_flag_is_reported_from_the_policys_attribute(
    server: tuple[ServerHandle, Any, Any],
) -> None:
    handle, stub, admin = server
    customer = fresh_customer(handle.policy, "dnc")
    (page,) = _pages(admin, customer, 100)
    assert not page.do_not_contact
    update = decision_pb2.UpdateProfileRequest(
        request_id=f"dnc-{customer}", customer_id=customer, source="support", do_not_contact=True
    )
    update.timestamp.GetCurrentTime()
    stub.UpdateProfile(update, timeout=10)
    (page,) = _pages(admin, customer, 100)
    assert page.do_not_contact
    assert _state(page)["profile"]["do_not_contact"]["value"] is True


def test_a_page_of_big_records_stays_under_the_clients_message_limit(tmp_path: Path) -> None:
    """30 stored decisions of 300 KB at page_size 1000: pages stop at ~2 MiB, each fits the
    default 4 MiB a gRPC client accepts, and together they hold all 30."""
    from arbiter.policies.effects import DecisionCommit

    handle = ServerHandle(policies=str(write_test_policies(tmp_path)))
    try:
        big = b'{"pad":"' + b"x" * 300_000 + b'"}'
        for i in range(30):
            commit = DecisionCommit(
                customer_id="c-big",
                request_id=f"r-{i:02d}",
                decision_id=f"d-{i}",
                now_ms=1,
                policy_version="v",
            )
            handle.call(handle.store.commit_decision(commit, big))
        with grpc.insecure_channel(handle.address) as channel:  # default 4 MiB receive limit
            pages = _pages(admin_pb2_grpc.AdminServiceStub(channel), "c-big", 1000)
    finally:
        handle.close()
    assert len(pages) > 1 and all(page.ByteSize() < 3 * 1024 * 1024 for page in pages)
    ids = [d["request_id"] for page in pages for d in _state(page)["decisions"]]
    assert ids == [f"r-{i:02d}" for i in range(30)]
