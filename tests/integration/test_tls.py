"""TLS on real ports: mutual TLS refusals, certificate rotation under load, SIGHUP, and a protected /metrics.

Certificates come from a private CA generated per test (``tests/tls_support.py``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import signal
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import grpc
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from arbiter.server.security.credentials import AuthSettings, JwtSettings, MtlsIdentity
from arbiter.server.security.identity import Role
from arbiter.server.security.tls import TlsFiles
from arbiter.state.memory import MemoryStore
from arbiter.v1 import decision_pb2, decision_pb2_grpc

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE.parent), str(_HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from server_procs import ServerProcess  # noqa: E402
from tls_support import Issued, TestCA, TokenIssuer  # noqa: E402

ServerHandle = Any  # tests/integration/conftest.py
SPIFFE = "spiffe://arbiter.test/ns/shop/sa/checkout"


def _health(address: str, creds: grpc.ChannelCredentials | None) -> Any:
    channel = grpc.secure_channel(address, creds) if creds else grpc.insecure_channel(address)
    with channel:
        stub = health_pb2_grpc.HealthStub(channel)
        try:
            return stub.Check(health_pb2.HealthCheckRequest(), timeout=3).status
        except grpc.RpcError as exc:
            return exc.code()


def _served_serial(port: int) -> int:
    """The serial number of the certificate a new connection to ``port`` is served."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    with (
        socket.create_connection(("127.0.0.1", port), timeout=3) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _serial(issued: Issued) -> int:
    return x509.load_pem_x509_certificate(issued.cert_pem).serial_number


def _install(issued: Issued, cert: Path, key: Path) -> None:
    """Replace the served files the way deployment tools do: write aside, rename over."""
    for source, target in ((issued.key_pem, key), (issued.cert_pem, cert)):
        aside = target.with_suffix(".new")
        aside.write_bytes(source)
        os.replace(aside, target)


def test_mutual_tls_refuses_plaintext_and_missing_or_foreign_client_certificates(
    start_server: Any, tmp_path: Path
) -> None:
    ca = TestCA(tmp_path / "ca")
    stranger = TestCA(tmp_path / "other", "Someone Else's CA")
    cert = ca.server()
    checkout = ca.client("checkout", "checkout", spiffe_id=SPIFFE)
    foreign = stranger.client("foreign", "checkout", spiffe_id=SPIFFE)
    handle: ServerHandle = start_server(
        tls=TlsFiles(str(cert.cert_path), str(cert.key_path), str(ca.cert_path)),
        auth=AuthSettings(mtls=(MtlsIdentity(SPIFFE, frozenset({Role.DECIDE})),)),
    )
    address = f"localhost:{handle.server.port}"
    unavailable = grpc.StatusCode.UNAVAILABLE
    assert _health(address, None) == unavailable  # plaintext
    assert _health(address, grpc.ssl_channel_credentials(ca.cert_pem)) == unavailable
    foreign_creds = grpc.ssl_channel_credentials(ca.cert_pem, foreign.key_pem, foreign.cert_pem)
    assert _health(address, foreign_creds) == unavailable
    good = grpc.ssl_channel_credentials(ca.cert_pem, checkout.key_pem, checkout.cert_pem)
    assert _health(address, good) == health_pb2.HealthCheckResponse.SERVING
    with grpc.secure_channel(address, good) as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        reply = stub.Decide(
            decision_pb2.DecideRequest(
                request_id=uuid.uuid4().hex, customer_id="c-1", placement="home_banner"
            ),
            timeout=5,
        )
        assert reply.policy_version
        with pytest.raises(grpc.RpcError) as refused:
            stub.Track(decision_pb2.TrackRequest(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert refused.value.details() == "`Track` needs role `ingest`"

    # The container's health probe, with and without its client certificate.
    import subprocess

    script = Path(__file__).resolve().parents[2] / "scripts" / "healthcheck.py"
    probe = [sys.executable, str(script), "--target", address, "--ca", str(ca.cert_path)]
    mine = ["--cert", str(checkout.cert_path), "--key", str(checkout.key_path)]
    run = subprocess.run
    assert run([*probe, *mine], capture_output=True, timeout=30, check=False).returncode == 0
    assert run(probe, capture_output=True, timeout=30, check=False).returncode == 1


class SlowStore(MemoryStore):
    """Reads of ``slow-*`` customers take ``delay_s``: calls that stay in flight."""

    def __init__(self, delay_s: float) -> None:
        super().__init__()
        self.delay_s = delay_s

    async def load(self, customer_id: str, *args: Any, **kwargs: Any) -> Any:
        if customer_id.startswith("slow-"):
            await asyncio.sleep(self.delay_s)
        return await super().load(customer_id, *args, **kwargs)


def test_an_expired_certificate_is_replaced_by_a_reload_without_dropping_in_flight_calls(
    start_server: Any, tmp_path: Path
) -> None:
    ca = TestCA(tmp_path)
    short = ca.server("short", lifetime=dt.timedelta(seconds=3))
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    _install(short, cert, key)
    handle: ServerHandle = start_server(
        store=SlowStore(delay_s=8.0), tls=TlsFiles(str(cert), str(key)), store_timeout_s=30.0
    )
    port = handle.server.port
    roots = grpc.ssl_channel_credentials(ca.cert_pem)
    with grpc.secure_channel(f"localhost:{port}", roots) as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        requests = [
            decision_pb2.DecideRequest(
                request_id=uuid.uuid4().hex, customer_id=f"slow-{i}", placement="home_banner"
            )
            for i in range(5)
        ]
        calls = [stub.Decide.future(r, timeout=30) for r in requests]
        time.sleep(max(0.0, (short.not_after - dt.datetime.now(dt.UTC)).total_seconds()) + 1.0)
        # Expired: a new connection is refused by the client's verification.
        assert _health(f"localhost:{port}", roots) == grpc.StatusCode.UNAVAILABLE
        assert not any(c.done() for c in calls), "the calls should still be in flight"

        fresh = ca.server("fresh")
        _install(fresh, cert, key)  # the file watcher reloads it
        deadline = time.monotonic() + 10
        while _served_serial(port) != _serial(fresh):
            assert time.monotonic() < deadline, "the new certificate was never served"
            time.sleep(0.1)
        assert _health(f"localhost:{port}", roots) == health_pb2.HealthCheckResponse.SERVING
        answers = [c.result(timeout=30) for c in calls]
        assert [a.request_id for a in answers] == [r.request_id for r in requests]
        assert all(a.policy_version for a in answers)


def test_a_replacement_that_does_not_load_keeps_the_current_certificate(
    start_server: Any, tmp_path: Path
) -> None:
    ca = TestCA(tmp_path)
    first = ca.server("first")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    _install(first, cert, key)
    handle: ServerHandle = start_server(tls=TlsFiles(str(cert), str(key)))
    other = ca.server("other")
    cert.write_bytes(other.cert_pem)  # the key no longer matches
    handle.server.reload()
    assert _served_serial(handle.server.port) == _serial(first)
    expired = ca.server("expired", expired=True)
    _install(expired, cert, key)
    handle.server.reload()
    assert _served_serial(handle.server.port) == _serial(first)


def test_sighup_reloads_the_certificate_of_a_running_process(tmp_path: Path) -> None:
    ca = TestCA(tmp_path)
    first = ca.server("first")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    _install(first, cert, key)
    roots = grpc.ssl_channel_credentials(ca.cert_pem)
    proc = ServerProcess(
        Path(__file__).resolve().parents[2] / "examples" / "policies",
        tmp_path,
        extra_args=("--tls-cert", str(cert), "--tls-key", str(key), "--log-level", "info"),
        channel_credentials=roots,
    )
    proc.start()
    try:
        assert _served_serial(proc.port) == _serial(first)
        second = ca.server("second")
        _install(second, cert, key)
        os.kill(proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while _served_serial(proc.port) != _serial(second):
            assert time.monotonic() < deadline, proc.log_tail()
            time.sleep(0.1)
        assert "SIGHUP" in proc.log_tail()
    finally:
        proc.stop()


def _get(url: str, context: ssl.SSLContext, token: str = "") -> tuple[int, str]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, context=context, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_on_its_own_address_over_tls_needs_the_metrics_role(
    start_server: Any, tmp_path: Path
) -> None:
    ca = TestCA(tmp_path)
    cert = ca.server()
    issuer = TokenIssuer(tmp_path)
    handle: ServerHandle = start_server(
        tls=TlsFiles(str(cert.cert_path), str(cert.key_path)),
        auth=AuthSettings(jwt=JwtSettings(str(issuer.jwks_path), issuer.issuer, issuer.audience)),
        metrics_listen="127.0.0.1:0",
    )
    metrics = handle.server._metrics_server
    assert metrics is not None and metrics.port != handle.server.port
    context = ssl.create_default_context(cadata=ca.cert_pem.decode())
    url = f"https://localhost:{metrics.port}"
    assert _get(f"{url}/metrics", context)[0] == 401
    assert _get(f"{url}/metrics", context, issuer.token(roles=["decide"])) == (
        403,
        "`metrics` needs role `metrics`\n",
    )
    status, body = _get(f"{url}/metrics", context, issuer.token(roles=["metrics"]))
    assert status == 200 and "arbiter_requests" in body
    assert _get(f"{url}/other", context, issuer.token(roles=["metrics"]))[0] == 404
    with pytest.raises(OSError) as failed:  # plaintext to the TLS port: the handshake fails
        urllib.request.urlopen(f"http://localhost:{metrics.port}/metrics", timeout=5)
    assert not isinstance(failed.value, urllib.error.HTTPError), failed.value


def _mutual_jwt_server(
    start_server: Any, tmp_path: Path
) -> tuple[TestCA, Issued, TokenIssuer, ServerHandle]:
    """A server with mutual TLS and JWTs; the CA, a client certificate and the token issuer."""
    ca = TestCA(tmp_path)
    cert = ca.server()
    issuer = TokenIssuer(tmp_path)
    handle: ServerHandle = start_server(
        tls=TlsFiles(str(cert.cert_path), str(cert.key_path), str(ca.cert_path)),
        auth=AuthSettings(jwt=JwtSettings(str(issuer.jwks_path), issuer.issuer, issuer.audience)),
    )
    return ca, ca.client("me", "me"), issuer, handle


def test_the_python_clients_use_tls_client_certificates_and_refreshing_tokens(
    start_server: Any, tmp_path: Path
) -> None:
    from arbiter_client import (
        ArbiterClient,
        AsyncArbiterClient,
        PermissionDeniedError,
        RefreshingToken,
        UnauthenticatedError,
        tls_credentials,
    )

    ca, me, issuer, handle = _mutual_jwt_server(start_server, tmp_path)
    target = f"localhost:{handle.server.port}"
    creds = tls_credentials(ca.cert_path, certificate_chain=me.cert_path, private_key=me.key_path)
    fetched: list[float] = []
    clock = [1000.0]

    def fetch() -> tuple[str, float]:
        fetched.append(clock[0])
        return issuer.token("me", roles=["decide"]), clock[0] + 300

    token = RefreshingToken(fetch, refresh_margin_s=60, clock=lambda: clock[0])
    with ArbiterClient(target, credentials=creds, token=token, raise_on_error=True) as client:
        assert client.decide("c-1", "home_banner", timeout=5).policy_version
        assert client.decide("c-1", "home_banner", timeout=5).policy_version
        assert fetched == [1000.0]  # cached
        clock[0] += 250  # within the refresh margin
        assert client.decide("c-1", "home_banner", timeout=5).policy_version
        assert fetched == [1000.0, 1250.0]
        with pytest.raises(PermissionDeniedError, match="needs role `ingest`"):
            client.track([], timeout=5)
    with (
        ArbiterClient(target, credentials=creds, raise_on_error=True) as anonymous,
        pytest.raises(UnauthenticatedError),
    ):
        anonymous.decide("c-1", "home_banner", timeout=5)

    async def use_async() -> str:
        async with AsyncArbiterClient(
            target, credentials=creds, token=issuer.token(roles=["decide"])
        ) as client:
            decision = await client.decide("c-1", "home_banner", timeout=5)
            return decision.policy_version

    assert asyncio.run(use_async())


def test_the_client_demo_runs_against_a_secured_server(start_server: Any, tmp_path: Path) -> None:
    import subprocess

    ca, me, issuer, handle = _mutual_jwt_server(start_server, tmp_path)
    root = Path(__file__).resolve().parents[2]
    argv = [
        sys.executable,
        str(root / "examples" / "client_demo.py"),
        "--target",
        f"localhost:{handle.server.port}",
        "--ca",
        str(ca.cert_path),
        "--cert",
        str(me.cert_path),
        "--key",
        str(me.key_path),
    ]
    env = {**os.environ, "ARBITER_TOKEN": issuer.token("demo", roles=["decide", "ingest"])}
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Decide" in done.stdout
    env.pop("ARBITER_TOKEN")
    refused = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode != 0
    assert "UNAUTHENTICATED" in refused.stdout + refused.stderr
