"""Every RPC of every service x every kind of caller, against real TLS servers on a private Redis.

The rows come from the service descriptors of ``arbiter.v1`` (a new RPC is
covered without touching this file, and fails if it has no rule in
``arbiter.server.security.roles.RULES``); the expected status of each cell
comes from the RPC's role in that table: UNAUTHENTICATED without valid
credentials, PERMISSION_DENIED (naming the role) without the role, and
otherwise what the handler answers (OK for the DecisionService samples,
UNIMPLEMENTED for an AdminService RPC not built yet). The matrix is printed.

Two servers share one private ``redis-server``: one with TLS and bearer
credentials (JWTs from a JWKS file, API keys), one with mutual TLS whose
client certificate identities stand in for tokens. Every RPC is called over
both transports the servers offer: gRPC and Connect JSON on the HTTPS port
(same guard, same table). Client-certificate identities are a gRPC-port
feature (Hypercorn does not hand the peer certificate to the application),
so over Connect the mTLS caller is expected to be UNAUTHENTICATED. Every
refused call runs first and the whole keyspace (keys and values) is
compared before and after.
"""

from __future__ import annotations

import json
import ssl
import sys
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis
from google.protobuf import json_format, message_factory, timestamp_pb2

from arbiter.server.security.credentials import AuthSettings, JwtSettings, MtlsIdentity
from arbiter.server.security.identity import Role
from arbiter.server.security.roles import RULES
from arbiter.server.security.tls import TlsFiles
from arbiter.v1 import admin_pb2, decision_pb2, value_pb2

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE.parent), str(_HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from redis_support import RedisServer  # noqa: E402
from tls_support import TestCA, TokenIssuer  # noqa: E402

SERVICES = [
    service
    for file in (decision_pb2.DESCRIPTOR, admin_pb2.DESCRIPTOR)
    for service in file.services_by_name.values()
]
METHODS = [(f"/{s.full_name}/{m.name}", m) for s in SERVICES for m in s.methods]
OK, UNAUTH, DENIED = (
    grpc.StatusCode.OK,
    grpc.StatusCode.UNAUTHENTICATED,
    grpc.StatusCode.PERMISSION_DENIED,
)
SPIFFE = "spiffe://arbiter.test/ns/shop/sa/checkout"
TRANSPORTS = ("grpc", "connect")
API_KEY = "arb_" + uuid.uuid4().hex


def _stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def _sample(method: str, customer: str) -> Any:
    """A valid request for the DecisionService RPCs; ``None`` for RPCs without a sample."""
    rid = uuid.uuid4().hex
    now = datetime.now(UTC)
    name = method.rpartition("/")[2]
    if name == "Decide":
        return decision_pb2.DecideRequest(
            request_id=rid, customer_id=customer, placement="home_banner", channels=["in_app"]
        )
    if name == "Check":
        return decision_pb2.CheckRequest(
            request_id=rid,
            customer_id=customer,
            action_id="default_home_banner",
            channel="in_app",
            record=True,
        )
    if name == "Track":
        return decision_pb2.TrackRequest(
            events=[
                decision_pb2.Event(
                    event_id=rid,
                    customer_id=customer,
                    type="app_opened",
                    timestamp=_stamp(now - timedelta(seconds=1)),
                    properties={"platform": value_pb2.Value(string_value="ios")},
                )
            ]
        )
    if name == "UpdateProfile":
        return decision_pb2.UpdateProfileRequest(
            request_id=rid,
            customer_id=customer,
            source="crm",
            timestamp=_stamp(now - timedelta(minutes=1)),
            traits={"plan": value_pb2.Value(string_value="basic")},
        )
    if name == "GetPolicyStatus":
        return admin_pb2.GetPolicyStatusRequest()
    if name == "ExplainDecision":
        return admin_pb2.ExplainDecisionRequest(decision_id="d-" + rid)
    if name == "ExportCustomer":
        return admin_pb2.ExportCustomerRequest(customer_id=customer)
    if name == "ForgetCustomer":
        return admin_pb2.ForgetCustomerRequest(customer_id=customer, reason="ticket-" + rid)
    return None


def _request(method: str, descriptor: Any, customer: str) -> Any:
    sample = _sample(method, customer)
    if sample is not None:
        return sample
    message = message_factory.GetMessageClass(descriptor.input_type)()
    if "customer_id" in descriptor.input_type.fields_by_name:
        message.customer_id = customer
    return message


# What an admitted caller gets from a handler that does not answer OK on these servers.
_HANDLER_ANSWERS = {
    # The matrix servers run without a decision log.
    "ExplainDecision": grpc.StatusCode.FAILED_PRECONDITION,
    # Empty requests: no policy source, no journey/action/channel id.
    "ValidatePolicy": grpc.StatusCode.INVALID_ARGUMENT,
    "ActivatePolicy": grpc.StatusCode.INVALID_ARGUMENT,
    "PauseJourney": grpc.StatusCode.INVALID_ARGUMENT,
    "ResumeJourney": grpc.StatusCode.INVALID_ARGUMENT,
    "PauseAction": grpc.StatusCode.INVALID_ARGUMENT,
    "ResumeAction": grpc.StatusCode.INVALID_ARGUMENT,
    "PauseChannel": grpc.StatusCode.INVALID_ARGUMENT,
    "ResumeChannel": grpc.StatusCode.INVALID_ARGUMENT,
    # One version only: nothing earlier to roll back to.
    "RollbackPolicy": grpc.StatusCode.NOT_FOUND,
}


def _admitted(method: str) -> grpc.StatusCode:
    """What an authorised caller gets: the handler's answer."""
    if (answer := _HANDLER_ANSWERS.get(method.rpartition("/")[2])) is not None:
        return answer
    return OK if _sample(method, "c") is not None else grpc.StatusCode.UNIMPLEMENTED


@dataclass(frozen=True)
class Caller:
    """One column: how it connects and what it presents; ``roles`` None = not authenticated."""

    name: str
    server: str  # "tls" | "mtls"
    metadata: tuple[tuple[str, str], ...]
    roles: frozenset[Role] | None
    client_cert: Any = None


def _expected(method: str, caller: Caller, transport: str = "grpc") -> grpc.StatusCode:
    rule = RULES[method]
    if caller.roles is None or (transport == "connect" and not caller.metadata):
        return UNAUTH
    if rule.role is not None and rule.role not in caller.roles:
        return DENIED
    return _admitted(method)


@dataclass
class World:
    ca: TestCA
    issuer: TokenIssuer
    tls: Any  # ServerHandle
    mtls: Any
    redis: redis.Redis
    callers: list[Caller]
    channel: Callable[[Caller], grpc.Channel]
    https: Callable[[Caller], tuple[str, ssl.SSLContext]]


def _bearer(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    from conftest import ServerHandle

    directory = tmp_path_factory.mktemp("auth-matrix")
    ca = TestCA(directory)
    server_cert = ca.server()
    checkout = ca.client("checkout", "checkout", spiffe_id=SPIFFE)
    issuer = TokenIssuer(directory)
    forger = TokenIssuer(directory)  # same kid scheme, another key: a forged signature
    keys = directory / "api-keys.yaml"
    from arbiter.server.security.credentials import hash_api_key

    keys.write_text(
        "keys:\n"
        f"  - id: backend\n    sha256: {hash_api_key(API_KEY)}\n    roles: [decide, ingest]\n"
    )
    jwt = JwtSettings(jwks=str(issuer.jwks_path), issuer=issuer.issuer, audience=issuer.audience)
    server = RedisServer().start()
    tls = mtls = None
    try:
        tls = ServerHandle(
            redis_url=server.url,
            tls=TlsFiles(str(server_cert.cert_path), str(server_cert.key_path)),
            auth=AuthSettings(jwt=jwt, api_keys=str(keys)),
            http_listen="127.0.0.1:0",
        )
        mtls = ServerHandle(
            redis_url=server.url,
            tls=TlsFiles(str(server_cert.cert_path), str(server_cert.key_path), str(ca.cert_path)),
            auth=AuthSettings(
                jwt=jwt,
                mtls=(MtlsIdentity(SPIFFE, frozenset({Role.DECIDE, Role.INGEST})),),
            ),
            http_listen="127.0.0.1:0",
        )
        callers = [
            Caller("none", "tls", (), None),
            Caller("bad-token", "tls", _bearer(forger.token(roles=list(Role))), None),
            Caller("bad-key", "tls", _bearer("arb_not-a-key"), None),
            Caller("expired", "tls", _bearer(issuer.token(roles=list(Role), lifetime_s=-120)), None),
            Caller("wrong-aud", "tls", _bearer(issuer.token(roles=list(Role), audience="other")), None),
            *(
                Caller(f"role:{r}", "tls", _bearer(issuer.token(roles=[r.value])), frozenset({r}))
                for r in Role
            ),
            Caller("key:backend", "tls", (("x-api-key", API_KEY),), frozenset({Role.DECIDE, Role.INGEST})),
            Caller("mtls:checkout", "mtls", (), frozenset({Role.DECIDE, Role.INGEST}), checkout),
        ]  # fmt: skip
        channels: dict[str, grpc.Channel] = {}

        def channel(caller: Caller) -> grpc.Channel:
            if caller.server not in channels:
                client = caller.client_cert
                creds = grpc.ssl_channel_credentials(
                    ca.cert_pem,
                    client.key_pem if client else None,
                    client.cert_pem if client else None,
                )
                handle = tls if caller.server == "tls" else mtls
                channels[caller.server] = grpc.secure_channel(
                    f"localhost:{handle.server.port}", creds
                )
            return channels[caller.server]

        def https(caller: Caller) -> tuple[str, ssl.SSLContext]:
            context = ssl.create_default_context(cadata=ca.cert_pem.decode())
            if caller.client_cert is not None:
                cert = caller.client_cert
                context.load_cert_chain(cert.cert_path, cert.key_path)
            handle = tls if caller.server == "tls" else mtls
            return f"https://localhost:{handle.server.http.port}", context

        client = redis.Redis(host="127.0.0.1", port=server.port)
        yield World(ca, issuer, tls, mtls, client, callers, channel, https)
        client.close()
        for ch in channels.values():
            ch.close()
    finally:
        for handle in (tls, mtls):
            if handle is not None:
                handle.close()
        server.close()


def _call(
    world: World, caller: Caller, method: str, request: Any, transport: str = "grpc"
) -> tuple[grpc.StatusCode, str]:
    if transport == "connect":
        return _call_connect(world, caller, method, request)
    descriptor = dict(METHODS)[method]
    output = message_factory.GetMessageClass(descriptor.output_type)
    stub = world.channel(caller).unary_unary(
        method,
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=output.FromString,
    )
    try:
        stub(request, timeout=10, metadata=caller.metadata or None)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return OK, ""


def _call_connect(
    world: World, caller: Caller, method: str, request: Any
) -> tuple[grpc.StatusCode, str]:
    """A Connect unary call with a JSON body; the Connect error code maps to the gRPC one."""
    base, context = world.https(caller)
    http = urllib.request.Request(
        base + method,
        data=json_format.MessageToJson(request).encode(),
        headers={"content-type": "application/json", "connect-protocol-version": "1"},
        method="POST",
    )
    for key, value in caller.metadata:
        http.add_header(key, value)
    try:
        with urllib.request.urlopen(http, context=context, timeout=10):
            return OK, ""
    except urllib.error.HTTPError as exc:
        error = json.loads(exc.read() or b"{}")
        return grpc.StatusCode[str(error.get("code", "unknown")).upper()], error.get("message", "")


def _keyspace(client: redis.Redis) -> dict[bytes, bytes | None]:
    """Every key's content, but the replicas' heartbeats (written every second, by no call)."""
    return {
        key: client.dump(key)
        for key in client.scan_iter(count=1000)
        if not key.endswith(b"{gov}:replicas")
    }


def _print_matrix(
    rows: list[str], callers: list[Caller], cells: dict[tuple[str, str], tuple[Any, Any]]
) -> str:
    def short(code: grpc.StatusCode) -> str:
        return {"PERMISSION_DENIED": "DENIED", "UNAUTHENTICATED": "UNAUTH"}.get(
            code.name, code.name
        )

    width = max(len(r) for r in rows)
    names = [c.name for c in callers]
    widths = [max(len(n), 13) for n in names]
    lines = [
        " " * width + " | " + " | ".join(n.ljust(w) for n, w in zip(names, widths, strict=True))
    ]
    for row in rows:
        out = []
        for caller, w in zip(callers, widths, strict=True):
            expected, got = cells[(row, caller.name)]
            text = short(got) if got == expected else f"{short(expected)}!={short(got)}"
            out.append(text.ljust(w))
        lines.append(row.ljust(width) + " | " + " | ".join(out))
    return "\n".join(lines)


def test_every_rpc_has_a_rule_in_the_roles_table() -> None:
    missing = [m for m, _ in METHODS if m not in RULES]
    assert missing == [], f"add these RPCs to arbiter.server.security.roles.RULES: {missing}"


def test_auth_matrix_every_rpc_by_every_caller(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    def row(transport: str, method: str) -> str:
        return f"{transport:<7} {method.removeprefix('/arbiter.v1.')}"

    rows = [row(t, m) for t in TRANSPORTS for m, _ in METHODS]
    cells: dict[tuple[str, str], tuple[grpc.StatusCode, grpc.StatusCode]] = {}
    messages: dict[tuple[str, str], str] = {}
    rules: dict[str, str] = {row(t, m): m for t in TRANSPORTS for m, _ in METHODS}
    plan = [(t, m, d, c) for t in TRANSPORTS for m, d in METHODS for c in world.callers]
    refused = [p for p in plan if _expected(p[1], p[3], p[0]) in (UNAUTH, DENIED)]
    admitted = [p for p in plan if p not in refused]

    def run(cells_to_call: list[tuple[str, str, Any, Caller]]) -> None:
        for transport, method, descriptor, caller in cells_to_call:
            request = _request(method, descriptor, f"m-{uuid.uuid4().hex[:10]}")
            got, details = _call(world, caller, method, request, transport)
            key = (row(transport, method), caller.name)
            cells[key] = (_expected(method, caller, transport), got)
            messages[key] = details

    before = _keyspace(world.redis)
    run(refused)
    after_refused = _keyspace(world.redis)
    run(admitted)
    after_admitted = _keyspace(world.redis)

    table = _print_matrix(rows, world.callers, cells)
    mismatches = [
        f"{k}: expected {e.name}, got {g.name} ({messages[k]})"
        for k, (e, g) in cells.items()
        if e != g
    ]
    with capsys.disabled():
        print(
            f"\nauth matrix ({len(rows)} transport x RPC rows x {len(world.callers)} callers,"
            " expected!=got on mismatch):"
        )
        print(table)
        print(
            f"{len(mismatches)} mismatches; {len(refused)} refused calls, {len(admitted)} admitted"
        )
    assert mismatches == []
    assert after_refused == before, "a refused call wrote to Redis"
    assert len(after_admitted) > len(after_refused), "the admitted calls should have written"
    # A refusal for a missing role names the role needed.
    for (name, caller), (expected, _) in cells.items():
        if expected == DENIED:
            role = RULES[rules[name]].role
            assert f"needs role `{role}`" in messages[(name, caller)]


def test_a_token_bound_to_one_customer_cannot_act_for_another(world: World) -> None:
    a, b = f"a-{uuid.uuid4().hex[:8]}", f"b-{uuid.uuid4().hex[:8]}"
    token = world.issuer.token("sdk", roles=["decide", "ingest"], customer_id=a)
    sdk = Caller("sdk", "tls", _bearer(token), frozenset({Role.DECIDE, Role.INGEST}))
    before = _keyspace(world.redis)
    track = "/arbiter.v1.DecisionService/Track"
    for transport in TRANSPORTS:
        for method in ("Decide", "Check", "Track", "UpdateProfile"):
            full = f"/arbiter.v1.DecisionService/{method}"
            code, details = _call(world, sdk, full, _sample(full, b), transport)
            assert code == DENIED, (transport, method, code, details)
            assert "bound to one customer" in details
        mixed = _sample(track, a)
        mixed.events.append(_sample(track, b).events[0])
        assert _call(world, sdk, track, mixed, transport)[0] == DENIED
    assert _keyspace(world.redis) == before
    for transport in TRANSPORTS:
        for method in ("Decide", "Check", "Track", "UpdateProfile"):
            full = f"/arbiter.v1.DecisionService/{method}"
            assert _call(world, sdk, full, _sample(full, a), transport) == (OK, ""), method
    # Bound credentials cannot reach RPCs that are not about one customer.
    admin = world.issuer.token("sdk", roles=["admin"], customer_id=a)
    code, _ = _call(
        world,
        Caller("x", "tls", _bearer(admin), frozenset({Role.ADMIN})),
        "/arbiter.v1.AdminService/GetPolicyStatus",
        admin_pb2.GetPolicyStatusRequest(),
    )
    assert code == DENIED


def test_a_credential_limited_to_placements_asks_only_about_them(world: World) -> None:
    token = world.issuer.token("app", roles=["decide"], placements=["home_banner"])
    app = Caller("app", "tls", _bearer(token), frozenset({Role.DECIDE}))
    decide = "/arbiter.v1.DecisionService/Decide"
    check = "/arbiter.v1.DecisionService/Check"
    customer = f"p-{uuid.uuid4().hex[:8]}"
    assert _call(world, app, decide, _sample(decide, customer))[0] == OK
    other = _sample(decide, customer)
    other.placement = "cart_drawer"
    code, details = _call(world, app, decide, other)
    assert (code, details) == (DENIED, "placement `cart_drawer` is not allowed for this credential")
    assert _call(world, app, check, _sample(check, customer))[0] == OK  # default_home_banner
    elsewhere = _sample(check, customer)
    elsewhere.action_id = "cart_drawer_free_shipping"
    assert _call(world, app, check, elsewhere)[0] == DENIED


def test_admin_and_privacy_calls_are_audited_with_the_caller_never_the_token(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    token = world.issuer.token("ops-alice", roles=["privacy"])
    ops = Caller("ops", "tls", _bearer(token), frozenset({Role.PRIVACY}))
    with caplog.at_level("INFO", logger="arbiter.audit"):
        _call(
            world,
            ops,
            "/arbiter.v1.AdminService/ForgetCustomer",
            admin_pb2.ForgetCustomerRequest(customer_id="c-1", reason="ticket-7"),
        )
        _call(world, ops, "/arbiter.v1.AdminService/PauseJourney", admin_pb2.PauseJourneyRequest())
    records = [getattr(r, "audit", None) for r in caplog.records if r.name == "arbiter.audit"]
    assert records[0] is not None and records[1] is not None
    assert {
        k: records[0][k] for k in ("rpc", "principal", "auth", "outcome", "customer_id", "reason")
    } == {
        "rpc": "/arbiter.v1.AdminService/ForgetCustomer",
        "principal": "jwt:ops-alice",
        "auth": "jwt",
        "outcome": "OK",
        "customer_id": "c-1",
        "reason": "ticket-7",
    }
    assert records[1]["outcome"] == "PERMISSION_DENIED"
    assert records[1]["principal"] == "jwt:ops-alice"
    assert all(token not in r.getMessage() for r in caplog.records)


def test_the_http_port_of_a_mutual_tls_server_refuses_callers_without_a_certificate(
    world: World,
) -> None:
    """The handshake fails on the Connect port too: plaintext and TLS without a client certificate."""
    port = world.mtls.server.http.port
    decide = "/arbiter.v1.DecisionService/Decide"
    body = json_format.MessageToJson(_sample(decide, "c-1")).encode()
    token = world.issuer.token(roles=["decide"])
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}
    no_cert = ssl.create_default_context(cadata=world.ca.cert_pem.decode())
    for url, context in (
        (f"http://localhost:{port}", None),
        (f"https://localhost:{port}", no_cert),
    ):
        request = urllib.request.Request(url + decide, data=body, headers=headers, method="POST")
        with pytest.raises(OSError) as failed:  # reset / handshake failure, never an answer
            urllib.request.urlopen(request, context=context, timeout=10)
        assert not isinstance(failed.value, urllib.error.HTTPError), failed.value
    # With a certificate from the client CA, the same token is admitted.
    mtls_caller = next(c for c in world.callers if c.client_cert is not None)
    bearer = Caller(
        "cert+token", "mtls", _bearer(token), frozenset({Role.DECIDE}), mtls_caller.client_cert
    )
    assert _call(world, bearer, decide, _sample(decide, "c-1"), "connect") == (OK, "")


def test_the_service_core_sees_the_admitted_caller_on_every_transport(world: World) -> None:
    """The identity the guard admitted is what the core reads (``CALLER``), over gRPC and Connect."""
    from arbiter.server.security.grpc_guard import CALLER

    core = world.tls.server.core
    original = core._handlers["Decide"]
    seen: list[Any] = []

    async def spy(request: Any, call: Any) -> Any:
        seen.append(CALLER.get())
        return await original(request, call)

    core._handlers["Decide"] = spy
    try:
        decide = "/arbiter.v1.DecisionService/Decide"
        token = world.issuer.token("spy-app", roles=["decide"], customer_id="c-9")
        caller = Caller("spy", "tls", _bearer(token), frozenset({Role.DECIDE}))
        for transport in TRANSPORTS:
            assert _call(world, caller, decide, _sample(decide, "c-9"), transport) == (OK, "")
    finally:
        core._handlers["Decide"] = original
    assert [(i.principal, i.customer_id, i.roles) for i in seen] == [
        ("jwt:spy-app", "c-9", frozenset({Role.DECIDE}))
    ] * 2
