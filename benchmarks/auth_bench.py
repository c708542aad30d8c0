"""What the guard costs: Decide latency with authentication off, API keys, JWT over TLS and mutual TLS, same run.

Run from the repository root::

    .venv/bin/python -m benchmarks.auth_bench [--calls 2000]

Each configuration is an in-process server (embedded store, example
policies) on a free 127.0.0.1 port; one client calls Decide back to back
``--calls`` times on one channel after a warm-up, and the client-observed
latency is reported (p50 / p99, µs) next to the baseline without
authentication. A second table times ``Guard.admit`` alone (µs per call),
which is the guard's own CPU cost per call. Certificates and keys come from
``tests/tls_support.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from conftest import ServerHandle  # noqa: E402
from tls_support import TestCA, TokenIssuer  # noqa: E402

from arbiter.server.security.credentials import (  # noqa: E402
    Authenticator,
    AuthSettings,
    JwtSettings,
    MtlsIdentity,
    build_authenticator,
    hash_api_key,
)
from arbiter.server.security.guard import Guard  # noqa: E402
from arbiter.server.security.identity import Role  # noqa: E402
from arbiter.server.security.tls import TlsFiles  # noqa: E402
from arbiter.v1 import decision_pb2, decision_pb2_grpc  # noqa: E402

SPIFFE = "spiffe://bench/sa/client"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _run(handle: ServerHandle, creds: Any, metadata: Any, calls: int) -> tuple[float, float]:
    target = f"localhost:{handle.server.port}"
    channel = grpc.secure_channel(target, creds) if creds else grpc.insecure_channel(target)
    stub = decision_pb2_grpc.DecisionServiceStub(channel)
    timings: list[float] = []
    for i in range(calls + 200):
        request = decision_pb2.DecideRequest(
            request_id=uuid.uuid4().hex,
            customer_id=f"b-{i % 500}",
            placement="home_banner",
            channels=["in_app"],
            dry_run=True,
        )
        started = time.perf_counter()
        stub.Decide(request, timeout=5, metadata=metadata)
        if i >= 200:
            timings.append((time.perf_counter() - started) * 1e6)
    channel.close()
    return statistics.median(timings), _percentile(timings, 0.99)


def _guard_cost(guard: Guard, headers: dict[str, str], peer: Any, rounds: int) -> float:
    request = decision_pb2.DecideRequest(customer_id="c", placement="home_banner")
    method = "/arbiter.v1.DecisionService/Decide"

    async def loop() -> float:
        await guard.admit(method, headers, peer, request)  # warm caches
        started = time.perf_counter()
        for _ in range(rounds):
            await guard.admit(method, headers, peer, request)
        return (time.perf_counter() - started) / rounds * 1e6

    return asyncio.run(loop())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="arbiter-auth-bench-"))
    ca = TestCA(work)
    cert = ca.server()
    client = ca.client("client", "client", spiffe_id=SPIFFE)
    issuer = TokenIssuer(work)
    key = "arb_" + uuid.uuid4().hex
    keys = work / "keys.yaml"
    keys.write_text(f"keys:\n  - id: bench\n    sha256: {hash_api_key(key)}\n    roles: [decide]\n")
    jwt = JwtSettings(str(issuer.jwks_path), issuer.issuer, issuer.audience)
    tls = TlsFiles(str(cert.cert_path), str(cert.key_path))
    mtls = TlsFiles(str(cert.cert_path), str(cert.key_path), str(ca.cert_path))
    roots = grpc.ssl_channel_credentials(ca.cert_pem)
    mutual = grpc.ssl_channel_credentials(ca.cert_pem, client.key_pem, client.cert_pem)
    token = issuer.token("bench", roles=["decide"], lifetime_s=3600)
    bearer = (("authorization", f"Bearer {token}"),)
    configs: list[tuple[str, dict[str, Any], Any, Any]] = [
        ("plaintext, auth off (baseline)", {}, None, None),
        ("plaintext, API key", {"auth": AuthSettings(api_keys=str(keys))}, None, (("x-api-key", key),)),
        ("TLS, auth off", {"tls": tls}, roots, None),
        ("TLS, JWT (RS256)", {"tls": tls, "auth": AuthSettings(jwt=jwt)}, roots, bearer),
        ("mutual TLS, SPIFFE identity", {"tls": mtls, "auth": AuthSettings(mtls=(MtlsIdentity(SPIFFE, frozenset({Role.DECIDE})),))}, mutual, None),
    ]  # fmt: skip
    print(
        f"Decide (dry run), {args.calls} sequential calls per configuration, client latency in µs"
    )
    print(f"{'configuration':<34} {'p50':>8} {'p99':>8} {'p50 vs baseline':>16}")
    baseline = 0.0
    for name, settings, creds, metadata in configs:
        handle = ServerHandle(**settings)
        try:
            p50, p99 = _run(handle, creds, metadata, args.calls)
        finally:
            handle.close()
        baseline = baseline or p50
        print(f"{name:<34} {p50:>8.0f} {p99:>8.0f} {p50 - baseline:>+15.0f}")

    from arbiter.server.security.identity import PeerCertificate

    guards: list[tuple[str, Guard, dict[str, str], Any]] = [
        ("auth off", Guard(Authenticator()), {}, None),
        ("API key", Guard(build_authenticator(AuthSettings(api_keys=str(keys)))), {"x-api-key": key}, None),
        ("JWT (cached after first)", Guard(build_authenticator(AuthSettings(jwt=jwt))), {"authorization": bearer[0][1]}, None),
        ("mTLS identity", Guard(build_authenticator(AuthSettings(mtls=(MtlsIdentity(SPIFFE, frozenset({Role.DECIDE})),)))), {}, PeerCertificate("CN=client", "client", (SPIFFE,))),
    ]  # fmt: skip
    print("\nGuard.admit alone, µs per call (20,000 rounds)")
    for name, guard, headers, peer in guards:
        print(f"{name:<34} {_guard_cost(guard, headers, peer, 20_000):>8.1f}")
    uncached: Callable[[], float] = lambda: _jwt_uncached(jwt, issuer)  # noqa: E731
    print(f"{'JWT verify, uncached (RS256)':<34} {uncached():>8.1f}")
    return 0


def _jwt_uncached(settings: JwtSettings, issuer: TokenIssuer, rounds: int = 300) -> float:
    from arbiter.server.security.credentials import JwtVerifier

    tokens = [issuer.token(f"s{i}", roles=["decide"]) for i in range(rounds)]
    verifier = JwtVerifier(settings)

    async def loop() -> float:
        started = time.perf_counter()
        for token in tokens:
            await verifier.verify(token)
        return (time.perf_counter() - started) / rounds * 1e6

    return asyncio.run(loop())


if __name__ == "__main__":
    sys.exit(main())
