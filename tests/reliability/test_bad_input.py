"""Bad input against a real ``arbiter serve`` on a real Redis: refused with the right status, nothing written.

Two suites, one server process (Redis store, the example policies):

- **Generated.** For each DecisionService RPC, valid seed requests (each
  with its own customer) are mutated -- byte flips, truncation, a tag's
  wire type changed, random fields appended, oversized values (a string of
  64 KiB - 5 MiB, thousands of context entries) -- and sent as raw bytes.
  Answers are counted by status code. ``make test`` sends 300 per RPC;
  ``make reliability`` (``ARBITER_RELIABILITY_FULL=1``) 10,000 per RPC.
- **Hand-written.** More than 80 requests, each wrong in one named way,
  across every RPC of DecisionService and AdminService, with the status
  each must get.

For both: 0 ``UNKNOWN``, 0 ``INTERNAL``; every Redis key is dumped before
and after, and a key that changed must belong to a customer of a request
that was answered ``OK`` (a mutation can still be a valid request, which
may write): nothing refused wrote anything. Health is ``SERVING`` after,
and a valid Decide answers.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
from grpc_health.v1 import health_pb2
from hostile import FULL, record_row
from redis_support import RedisServer
from server_procs import EXAMPLES, ServerProcess, health_status

from arbiter.v1 import admin_pb2, decision_pb2, value_pb2

PER_RPC = 10_000 if FULL else 300
CONCURRENCY = 32
SEED = 20261204

DECISION = "/arbiter.v1.DecisionService/"
ADMIN = "/arbiter.v1.AdminService/"


# --------------------------------------------------------------------------- seeds


def _ts(message: Any) -> None:
    message.FromSeconds(1_764_800_000)


def seed_decide(customer: str, rng: random.Random) -> decision_pb2.DecideRequest:
    request = decision_pb2.DecideRequest(
        request_id=uuid.uuid4().hex,
        customer_id=customer,
        placement=rng.choice(["home_banner", "cart_drawer", "web_home_hero"]),
        channels=rng.sample(["in_app", "web"], rng.randint(0, 1)),
        limit=rng.randint(0, 3),
        explain=rng.random() < 0.3,
    )
    request.context["page_type"].string_value = rng.choice(["home", "cart"])
    request.context["cart_value"].double_value = rng.random() * 100
    return request


def seed_check(customer: str, rng: random.Random) -> decision_pb2.CheckRequest:
    return decision_pb2.CheckRequest(
        request_id=uuid.uuid4().hex,
        customer_id=customer,
        action_id=rng.choice(["default_home_banner", "browse_nudge_email", "cart_reminder_push"]),
        channel=rng.choice(["in_app", "email", "push"]),
        record=rng.random() < 0.7,
    )


def seed_track(customer: str, rng: random.Random) -> decision_pb2.TrackRequest:
    request = decision_pb2.TrackRequest()
    for _ in range(rng.randint(1, 3)):
        event = request.events.add(
            event_id=uuid.uuid4().hex,
            customer_id=customer,
            type=rng.choice(["page_view", "purchase", "cart_updated", "app_open"]),
        )
        _ts(event.timestamp)
    return request


def seed_profile(customer: str, rng: random.Random) -> decision_pb2.UpdateProfileRequest:
    request = decision_pb2.UpdateProfileRequest(
        request_id=uuid.uuid4().hex, customer_id=customer, source="crm"
    )
    _ts(request.timestamp)
    request.traits["region"].string_value = rng.choice(["US", "EU"])
    request.consents.add(purpose="email_marketing", state=decision_pb2.CONSENT_STATE_GRANTED)
    return request


SEEDS: dict[str, Callable[[str, random.Random], Any]] = {
    "Decide": seed_decide,
    "Check": seed_check,
    "Track": seed_track,
    "UpdateProfile": seed_profile,
}
TYPES: dict[str, type[Any]] = {
    "Decide": decision_pb2.DecideRequest,
    "Check": decision_pb2.CheckRequest,
    "Track": decision_pb2.TrackRequest,
    "UpdateProfile": decision_pb2.UpdateProfileRequest,
}


# --------------------------------------------------------------------------- mutations


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _ld(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def flip(body: bytes, rng: random.Random) -> bytes:
    data = bytearray(body or b"\x00")
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return bytes(data)


def truncate(body: bytes, rng: random.Random) -> bytes:
    return body[: rng.randrange(max(len(body), 1))]


def wire_type(body: bytes, rng: random.Random) -> bytes:
    """The first byte (a tag) of the body, or of a random position, gets another wire type."""
    data = bytearray(body or b"\x0a")
    at = 0 if rng.random() < 0.5 else rng.randrange(len(data))
    data[at] = (data[at] & ~0x07) | rng.choice([0, 1, 2, 3, 4, 5, 6, 7])
    return bytes(data)


def random_field(body: bytes, rng: random.Random) -> bytes:
    number = rng.choice([rng.randint(1, 12), rng.randint(13, 536_870_911)])
    kind = rng.randrange(4)
    if kind == 0:
        extra = _varint(number << 3) + _varint(rng.getrandbits(64))
    elif kind == 1:
        extra = _ld(number, rng.randbytes(rng.randint(0, 64)))
    elif kind == 2:
        extra = _varint(number << 3 | 5) + rng.randbytes(4)
    else:
        extra = _varint(number << 3 | 1) + rng.randbytes(8)
    return body + extra if rng.random() < 0.7 else extra + body


def oversized(body: bytes, rng: random.Random) -> bytes:
    choice = rng.randrange(3)
    if choice == 0:  # a huge string in a low field (ids, placement, ...)
        size = rng.choice([65_536, 1 << 20, 5 << 20])
        return body + _ld(rng.randint(1, 4), b"x" * size)
    if choice == 1:  # thousands of map entries (DecideRequest.context / traits)
        entry = _ld(1, b"k%d") + _ld(2, _ld(2, b"v"))
        count = rng.choice([1_000, 20_000])
        return body + b"".join(_ld(6, entry.replace(b"%d", str(i).encode())) for i in range(count))
    return body + _ld(1, _ld(2, b"\xff" * 100_000))  # nested, invalid UTF-8


MUTATIONS: dict[str, Callable[[bytes, random.Random], bytes]] = {
    "flip": flip,
    "truncate": truncate,
    "wire_type": wire_type,
    "random_field": random_field,
    "oversized": oversized,
}


# --------------------------------------------------------------------------- harness


def dump_keys(client: redis.Redis) -> dict[bytes, bytes | None]:
    return {key: client.dump(key) for key in client.scan_iter(count=1000)}


def changed_customers(before: dict[bytes, Any], after: dict[bytes, Any]) -> tuple[set[str], set]:
    """Customers whose keys changed, and changed keys that belong to no customer."""
    customers: set[str] = set()
    other: set[bytes] = set()
    for key in before.keys() | after.keys():
        if before.get(key) == after.get(key):
            continue
        text = key.decode(errors="replace")
        if "{c:" in text:
            customers.add(text.split("{c:", 1)[1].split("}", 1)[0])
        else:
            other.add(key)
    return customers, other


def customers_of(method: str, body: bytes) -> set[str]:
    message = TYPES[method]()
    message.ParseFromString(body)
    if method == "Track":
        return {e.customer_id for e in message.events}
    return {message.customer_id}


async def send_all(
    address: str, calls: list[tuple[str, bytes]], timeout_s: float = 10.0
) -> list[str]:
    """Each (full method path, raw body) once; the status code names, in order."""
    channel = grpc.aio.insecure_channel(
        address, options=[("grpc.max_send_message_length", 64 << 20)]
    )
    gate = asyncio.Semaphore(CONCURRENCY)
    stubs: dict[str, Any] = {}

    async def one(path: str, body: bytes) -> str:
        stub = stubs.get(path)
        if stub is None:
            stub = stubs[path] = channel.unary_unary(path)
        async with gate:
            try:
                await stub(body, timeout=timeout_s)
                return "OK"
            except grpc.aio.AioRpcError as exc:
                return exc.code().name

    try:
        return list(await asyncio.gather(*(one(p, b) for p, b in calls)))
    finally:
        await channel.close()


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    store = RedisServer().start()
    log_dir: Path = tmp_path_factory.mktemp("bad-input")
    server = ServerProcess(EXAMPLES, log_dir, redis_url=store.url)
    try:
        server.start()
        yield server, store
    finally:
        server.stop()
        store.close()


def _healthy(server: Any) -> None:
    assert health_status(server.address) == health_pb2.HealthCheckResponse.SERVING
    request = seed_decide(f"after-{uuid.uuid4().hex[:8]}", random.Random(1))
    codes = asyncio.run(
        send_all(server.address, [(DECISION + "Decide", request.SerializeToString())])
    )
    assert codes == ["OK"]


# --------------------------------------------------------------------------- generated


@pytest.mark.parametrize("method", list(SEEDS))
def test_generated_bad_input(method: str, hostile_server: tuple[Any, Any]) -> None:
    server, store = hostile_server
    rng = random.Random(f"{SEED}-{method}")
    calls: list[tuple[str, bytes]] = []
    kinds: list[str] = []
    names = list(MUTATIONS)
    for i in range(PER_RPC):
        kind = names[i % len(names)]
        seed = SEEDS[method](f"fz-{method[:2].lower()}-{i}", rng).SerializeToString()
        calls.append((DECISION + method, MUTATIONS[kind](seed, rng)))
        kinds.append(kind)
    client = redis.Redis.from_url(store.url)
    before = dump_keys(client)
    codes = asyncio.run(send_all(server.address, calls))
    after = dump_keys(client)
    ok_customers: set[str] = set()
    for (_, body), code in zip(calls, codes, strict=True):
        if code == "OK":
            ok_customers |= customers_of(method, body)
    changed, other = changed_customers(before, after)
    unexplained = changed - ok_customers
    by_code = Counter(codes)
    record_row(
        "bad input (generated)",
        {
            "rpc": method,
            "requests": len(codes),
            **{code: by_code[code] for code in sorted(by_code)},
            "refused writes": len(unexplained),
        },
    )
    assert by_code["UNKNOWN"] == 0 and by_code["INTERNAL"] == 0, by_code
    assert not unexplained, sorted(unexplained)[:10]
    # Volume guard counters are fleet-wide keys written by grants (OK answers) only.
    assert not other or by_code["OK"], other
    _healthy(server)


# --------------------------------------------------------------------------- hand-written

D, C, T, U = (
    decision_pb2.DecideRequest,
    decision_pb2.CheckRequest,
    decision_pb2.TrackRequest,
    decision_pb2.UpdateProfileRequest,
)
INV = "INVALID_ARGUMENT"
LONG = "x" * 129
HUGE = "y" * 70_000


def _d(**fields: Any) -> Any:
    base: dict[str, Any] = {
        "request_id": "hw-r1",
        "customer_id": "hw-c1",
        "placement": "home_banner",
    }
    base.update(fields)
    return D(**{k: v for k, v in base.items() if v is not None})


def _d_ctx(key: str, value: value_pb2.Value) -> Any:
    request = _d()
    request.context[key].CopyFrom(value)
    return request


def _c(**fields: Any) -> Any:
    base: dict[str, Any] = {
        "request_id": "hw-r2",
        "customer_id": "hw-c2",
        "action_id": "default_home_banner",
        "channel": "in_app",
        "record": True,
    }
    base.update(fields)
    return C(**{k: v for k, v in base.items() if v is not None})


def _event(**fields: Any) -> Any:
    base: dict[str, Any] = {"event_id": "hw-e1", "customer_id": "hw-c3", "type": "page_view"}
    base.update(fields)
    request = T()
    event = request.events.add(**{k: v for k, v in base.items() if v is not None})
    if "no_ts" not in fields.get("type", ""):
        _ts(event.timestamp)
    return request


def _u(**fields: Any) -> Any:
    base: dict[str, Any] = {"request_id": "hw-r4", "customer_id": "hw-c4", "source": "crm"}
    base.update(fields)
    request = U(**{k: v for k, v in base.items() if v is not None})
    _ts(request.timestamp)
    return request


def _u_trait(name: str, value: value_pb2.Value) -> Any:
    request = _u()
    request.traits[name].CopyFrom(value)
    return request


def _u_consent(purpose: str, state: int = decision_pb2.CONSENT_STATE_GRANTED) -> Any:
    request = _u()
    request.consents.add(purpose=purpose, state=state)
    return request


def _deep_value(depth: int) -> value_pb2.Value:
    value = value_pb2.Value(string_value="bottom")
    for _ in range(depth):
        outer = value_pb2.Value()
        outer.list_value.values.append(value)
        value = outer
    return value


# (name, method path, request message or raw bytes, accepted status codes)
HAND: list[tuple[str, str, Any, tuple[str, ...]]] = [
    # Decide
    ("decide: empty", "Decide", D(), (INV,)),
    ("decide: no request_id", "Decide", _d(request_id=""), (INV,)),
    ("decide: no customer_id", "Decide", _d(customer_id=""), (INV,)),
    ("decide: no placement (optional: all placements)", "Decide", _d(placement=""), (INV, "OK")),
    ("decide: request_id too long", "Decide", _d(request_id=LONG), (INV,)),
    ("decide: customer_id too long", "Decide", _d(customer_id=LONG), (INV,)),
    ("decide: request_id with space", "Decide", _d(request_id="a b"), (INV,)),
    ("decide: customer_id with NUL", "Decide", _d(customer_id="a\x00b"), (INV,)),
    ("decide: customer_id with braces", "Decide", _d(customer_id="a}{c:b"), (INV,)),
    ("decide: customer_id unicode", "Decide", _d(customer_id="kundé"), (INV,)),
    ("decide: unknown placement", "Decide", _d(placement="nope"), (INV,)),
    ("decide: placement huge", "Decide", _d(placement=HUGE), (INV,)),
    ("decide: unknown channel", "Decide", _d(channels=["fax"]), (INV,)),
    ("decide: empty channel", "Decide", _d(channels=[""]), (INV,)),
    ("decide: 10,000 channels", "Decide", _d(channels=["in_app"] * 10_000), (INV,)),
    ("decide: limit huge", "Decide", _d(limit=4_000_000_000), (INV, "OK")),
    ("decide: context key empty", "Decide", _d_ctx("", value_pb2.Value(string_value="x")), (INV,)),
    ("decide: context key huge", "Decide", _d_ctx(HUGE, value_pb2.Value(int_value=1)), (INV,)),
    ("decide: context value unset", "Decide", _d_ctx("k", value_pb2.Value()), (INV, "OK")),
    (
        "decide: context string huge",
        "Decide",
        _d_ctx("k", value_pb2.Value(string_value="z" * 2_000_000)),
        (INV, "RESOURCE_EXHAUSTED"),
    ),
    (
        "decide: context nan",
        "Decide",
        _d_ctx("k", value_pb2.Value(double_value=float("nan"))),
        (INV, "OK"),
    ),
    (
        "decide: context inf",
        "Decide",
        _d_ctx("k", value_pb2.Value(double_value=float("inf"))),
        (INV, "OK"),
    ),
    ("decide: context nested 30", "Decide", _d_ctx("k", _deep_value(30)), (INV, "OK")),
    ("decide: context nested 35", "Decide", _d_ctx("k", _deep_value(35)), (INV, "OK")),
    (
        "decide: propensity nan",
        "Decide",
        D(
            request_id="hw-r1",
            customer_id="hw-c1",
            placement="home_banner",
            propensities={"a": float("nan")},
        ),
        (INV, "OK"),
    ),
    (
        "decide: propensity unknown action",
        "Decide",
        D(
            request_id="hw-r1",
            customer_id="hw-c1",
            placement="home_banner",
            propensities={"zz": 0.5},
        ),
        (INV, "OK"),
    ),
    (
        "decide: propensity negative",
        "Decide",
        D(
            request_id="hw-r1",
            customer_id="hw-c1",
            placement="home_banner",
            propensities={"default_home_banner": -5.0},
        ),
        (INV, "OK"),
    ),
    ("decide: body garbage", "Decide", b"\xff\xff\xff\xff", (INV,)),
    ("decide: body truncated varint", "Decide", b"\x0a\x80", (INV,)),
    ("decide: body group tag", "Decide", b"\x0b\x0c", (INV,)),
    # Check
    ("check: empty", "Check", C(), (INV,)),
    ("check: no request_id when recording", "Check", _c(request_id=""), (INV,)),
    ("check: no customer_id", "Check", _c(customer_id=""), (INV,)),
    ("check: no action_id", "Check", _c(action_id=""), (INV,)),
    ("check: no channel", "Check", _c(channel=""), (INV,)),
    ("check: unknown action", "Check", _c(action_id="nope"), (INV,)),
    ("check: unknown channel", "Check", _c(channel="fax"), (INV,)),
    ("check: action_id huge", "Check", _c(action_id=HUGE), (INV,)),
    ("check: request_id too long", "Check", _c(request_id=LONG), (INV,)),
    ("check: customer_id with slash", "Check", _c(customer_id="a/b c"), (INV,)),
    ("check: decision_id huge", "Check", _c(decision_id=HUGE), (INV,)),
    ("check: decision_id with space", "Check", _c(decision_id="d 1"), (INV, "OK")),
    ("check: body garbage", "Check", b"\x12\xff\x01", (INV,)),
    ("check: invalid utf-8 action", "Check", b"\x1a\x02\xc3\x28", (INV,)),
    # Track
    ("track: empty", "Track", T(), (INV, "OK")),
    ("track: no event_id", "Track", _event(event_id=""), (INV, "OK")),
    ("track: no customer_id", "Track", _event(customer_id=""), (INV, "OK")),
    ("track: no type", "Track", _event(type=""), (INV, "OK")),
    ("track: unknown type", "Track", _event(type="nope"), (INV, "OK")),
    ("track: event_id too long", "Track", _event(event_id=LONG), (INV, "OK")),
    ("track: customer_id unicode", "Track", _event(customer_id="é"), (INV, "OK")),
    ("track: version huge", "Track", _event(version=4_000_000_000), (INV, "OK")),
    ("track: tracking_id huge", "Track", _event(tracking_id=HUGE), (INV, "OK")),
    ("track: feedback unknown enum", "Track", _event(feedback=99), (INV, "OK")),
    (
        "track: 100,000 events",
        "Track",
        T(
            events=[
                decision_pb2.Event(event_id=f"e{i}", customer_id="hw-c3", type="page_view")
                for i in range(100_000)
            ]
        ),
        (INV, "RESOURCE_EXHAUSTED"),
    ),
    ("track: body garbage", "Track", b"\x0a\x05\xff\xff\xff\xff\xff", (INV,)),
    # UpdateProfile
    ("profile: empty", "UpdateProfile", U(), (INV,)),
    ("profile: no customer_id", "UpdateProfile", _u(customer_id=""), (INV,)),
    ("profile: no source", "UpdateProfile", _u(source=""), (INV,)),
    (
        "profile: no timestamp",
        "UpdateProfile",
        U(request_id="r", customer_id="hw-c4", source="crm"),
        (INV,),
    ),
    ("profile: source huge", "UpdateProfile", _u(source=HUGE), (INV,)),
    ("profile: customer_id too long", "UpdateProfile", _u(customer_id=LONG), (INV,)),
    (
        "profile: unknown trait",
        "UpdateProfile",
        _u_trait("nope", value_pb2.Value(string_value="x")),
        (INV,),
    ),
    (
        "profile: trait wrong type",
        "UpdateProfile",
        _u_trait("region", value_pb2.Value(int_value=3)),
        (INV,),
    ),
    (
        "profile: trait huge",
        "UpdateProfile",
        _u_trait("region", value_pb2.Value(string_value=HUGE)),
        (INV,),
    ),
    ("profile: trait nested", "UpdateProfile", _u_trait("region", _deep_value(20)), (INV,)),
    ("profile: unknown purpose", "UpdateProfile", _u_consent("nope"), (INV,)),
    ("profile: purpose empty", "UpdateProfile", _u_consent(""), (INV,)),
    ("profile: consent state unset", "UpdateProfile", _u_consent("email_marketing", 0), (INV,)),
    ("profile: consent state 99", "UpdateProfile", _u_consent("email_marketing", 99), (INV,)),
    (
        "profile: segment with space",
        "UpdateProfile",
        _u(segments=decision_pb2.SegmentMembership(segments=["a b"])),
        (INV,),
    ),
    (
        "profile: 100,000 segments",
        "UpdateProfile",
        _u(segments=decision_pb2.SegmentMembership(segments=[f"s{i}" for i in range(100_000)])),
        (INV, "RESOURCE_EXHAUSTED"),
    ),
    ("profile: body garbage", "UpdateProfile", b"\x22\x03\x08", (INV,)),
    # AdminService (no credentials configured: the calls reach the service)
    (
        "admin: explain empty id",
        ADMIN + "ExplainDecision",
        admin_pb2.ExplainDecisionRequest(),
        (INV, "FAILED_PRECONDITION", "NOT_FOUND"),
    ),
    (
        "admin: explain id huge",
        ADMIN + "ExplainDecision",
        admin_pb2.ExplainDecisionRequest(decision_id=HUGE),
        (INV, "FAILED_PRECONDITION", "NOT_FOUND"),
    ),
    ("admin: export empty id", ADMIN + "ExportCustomer", admin_pb2.ExportCustomerRequest(), (INV,)),
    (
        "admin: export id with space",
        ADMIN + "ExportCustomer",
        admin_pb2.ExportCustomerRequest(customer_id="a b"),
        (INV,),
    ),
    (
        "admin: export bad page token",
        ADMIN + "ExportCustomer",
        admin_pb2.ExportCustomerRequest(customer_id="hw-c1", page_token="%%%"),
        (INV,),
    ),
    (
        "admin: export page size huge",
        ADMIN + "ExportCustomer",
        admin_pb2.ExportCustomerRequest(customer_id="hw-c1", page_size=4_000_000_000),
        (INV, "OK"),
    ),
    ("admin: forget empty id", ADMIN + "ForgetCustomer", admin_pb2.ForgetCustomerRequest(), (INV,)),
    (
        "admin: forget id too long",
        ADMIN + "ForgetCustomer",
        admin_pb2.ForgetCustomerRequest(customer_id=LONG),
        (INV,),
    ),
    (
        "admin: pause unknown journey",
        ADMIN + "PauseJourney",
        admin_pb2.PauseJourneyRequest(journey_id="nope"),
        (INV, "NOT_FOUND", "UNIMPLEMENTED", "FAILED_PRECONDITION"),
    ),
    (
        "admin: resume empty journey",
        ADMIN + "ResumeJourney",
        admin_pb2.ResumeJourneyRequest(),
        (INV, "NOT_FOUND", "UNIMPLEMENTED", "FAILED_PRECONDITION"),
    ),
    (
        "admin: rollback bad digest",
        ADMIN + "RollbackPolicy",
        admin_pb2.RollbackPolicyRequest(digest="zz"),
        (INV, "NOT_FOUND", "UNIMPLEMENTED", "FAILED_PRECONDITION"),
    ),
    (
        "admin: validate empty",
        ADMIN + "ValidatePolicy",
        admin_pb2.ValidatePolicyRequest(),
        (INV, "UNIMPLEMENTED", "FAILED_PRECONDITION"),
    ),
    (
        "admin: activate empty",
        ADMIN + "ActivatePolicy",
        admin_pb2.ActivatePolicyRequest(),
        (INV, "UNIMPLEMENTED", "FAILED_PRECONDITION"),
    ),
    (
        "admin: activate bad directory",
        ADMIN + "ActivatePolicy",
        admin_pb2.ActivatePolicyRequest(directory="/nonexistent/../../etc"),
        (INV, "UNIMPLEMENTED", "FAILED_PRECONDITION", "PERMISSION_DENIED"),
    ),
    ("admin: status garbage body", ADMIN + "GetPolicyStatus", b"\xff\xff", (INV,)),
    ("admin: export garbage body", ADMIN + "ExportCustomer", b"\x0a\xff", (INV,)),
]


def test_hand_written_bad_inputs(hostile_server: tuple[Any, Any]) -> None:
    assert len(HAND) >= 80
    server, store = hostile_server
    calls = []
    for _, method, request, _ in HAND:
        path = method if method.startswith("/") else DECISION + method
        body = request if isinstance(request, bytes) else request.SerializeToString()
        calls.append((path, body))
    client = redis.Redis.from_url(store.url)
    before = dump_keys(client)
    codes = asyncio.run(send_all(server.address, calls))
    after = dump_keys(client)
    wrong = [
        (name, code, expected)
        for (name, _, _, expected), code in zip(HAND, codes, strict=True)
        if code not in expected
    ]
    ok_customers = {
        customer
        for (_, method, request, _), code in zip(HAND, codes, strict=True)
        if code == "OK" and not method.startswith("/")
        for customer in customers_of(
            method, request if isinstance(request, bytes) else request.SerializeToString()
        )
    }
    changed, _ = changed_customers(before, after)
    by_code = Counter(codes)
    record_row(
        "bad input (hand-written)",
        {
            "requests": len(codes),
            **{code: by_code[code] for code in sorted(by_code)},
            "unexpected status": len(wrong),
            "refused writes": len(changed - ok_customers),
        },
    )
    assert by_code["UNKNOWN"] == 0 and by_code["INTERNAL"] == 0, by_code
    assert not wrong, wrong
    assert not changed - ok_customers, changed - ok_customers
    _healthy(server)
