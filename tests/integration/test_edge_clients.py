"""The HTTP surface against a real ``arbiter serve``: curl, CORS, the TypeScript client's suite and the browser demo.

One server process (example policies, embedded store, HTTP listener on a
free port, CORS for the demo page's origin) serves the module. The Node
suites run as they would for a developer: ``npm test`` in
``clients/typescript`` (Connect JSON, Connect binary, gRPC-Web) and in
``examples/web`` (headless Chromium).

Node and Chromium are required: a missing one fails the test with what to
install. Locally only, ``ARBITER_SKIP_NODE_TESTS=1`` skips them with that
reason instead; under CI (``CI`` set) they always run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from server_procs import ROOT, ServerProcess, free_port

TS_CLIENT: Final = ROOT / "clients" / "typescript"
WEB_DEMO: Final = ROOT / "examples" / "web"
CHROMIUM: Final = os.environ.get("ARBITER_CHROMIUM", "/usr/bin/chromium")
DECIDE_PATH: Final = "/arbiter.v1.DecisionService/Decide"


def _missing(what: str, how: str) -> None:
    """Fail (CI, or no opt-out) or skip (local opt-out) because ``what`` is not installed."""
    message = f"{what} is required for the edge-client tests: {how}"
    if os.environ.get("ARBITER_SKIP_NODE_TESTS") == "1" and not os.environ.get("CI"):
        pytest.skip(f"{message} (skipped: ARBITER_SKIP_NODE_TESTS=1)")
    pytest.fail(message + " -- or set ARBITER_SKIP_NODE_TESTS=1 to skip locally")


def _require_node_package(directory: Path) -> str:
    npm = shutil.which("npm")
    if npm is None or shutil.which("node") is None:
        _missing("Node.js 20+ with npm", "install it (Debian: apt-get install nodejs npm)")
    if not (directory / "node_modules").is_dir():
        _missing(
            f"{directory.relative_to(ROOT)}/node_modules",
            "run `make node-deps` (npm ci from the committed package-lock.json)",
        )
    assert npm is not None
    return npm


def _npm_test(directory: Path, env: dict[str, str], timeout_s: float = 240) -> str:
    npm = _require_node_package(directory)
    done = subprocess.run(
        [npm, "test", "--silent"],
        cwd=directory,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    output = done.stdout + done.stderr
    print(output)
    assert done.returncode == 0, (
        f"npm test in {directory.relative_to(ROOT)} failed:\n{output[-6000:]}"
    )
    return output


@pytest.fixture(scope="module")
def page_port() -> int:
    """The port the demo page is served from (its origin is allowed by CORS)."""
    return free_port()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, page_port: int) -> Iterator[ServerProcess]:
    log_dir = tmp_path_factory.mktemp("edge-server")
    proc = ServerProcess(
        ROOT / "examples" / "policies",
        log_dir,
        name="edge",
        extra_args=("--cors-origins", f"http://127.0.0.1:{page_port}"),
    )
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


# --------------------------------------------------------------------------- curl


def test_curl_decide_returns_the_decision_json(server: ServerProcess) -> None:
    """The README's curl call, verbatim apart from the port."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.fail("curl is required (Debian: apt-get install curl)")
    body = {
        "requestId": "req-curl-1",
        "customerId": "cust-42",
        "placement": "home_banner",
        "channels": ["in_app"],
        "context": {"cart_value": {"doubleValue": 59.9}},
        "explain": True,
    }
    done = subprocess.run(
        [
            curl,
            "-sS",
            "-H",
            "content-type: application/json",
            "-d",
            json.dumps(body),
            f"{server.http_url}{DECIDE_PATH}",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    decision = json.loads(done.stdout)
    assert decision["requestId"] == "req-curl-1"
    assert len(decision["decisionId"]) == 32
    assert decision["policyVersion"].startswith("2025.06.1+sha256:")
    # cust-42 has no profile: no region, so unset personalisation consent denies.
    assert "actions" not in decision
    assert {c["actionId"] for c in decision["candidates"]} == {
        "vip_referral_banner",
        "default_home_banner",
    }
    assert {c["reason"] for c in decision["candidates"]} == {"REASON_CONSENT_UNKNOWN"}


def test_connect_errors_use_the_error_table(server: ServerProcess) -> None:
    """INVALID_ARGUMENT names the field, as on the gRPC port; HTTP status 400 per the Connect spec."""
    status, _, body = _post(
        f"{server.http_url}{DECIDE_PATH}",
        json.dumps({"requestId": "r-bad-1", "customerId": "c-1", "channels": ["fax"]}).encode(),
        {"content-type": "application/json"},
    )
    assert status == 400
    assert json.loads(body) == {
        "code": "invalid_argument",
        "message": "channels[0]: unknown channel",
    }


def test_examples_http_file_requests_work(server: ServerProcess) -> None:
    """Every request in examples/http/decision.http answers 200 with the documented shape."""
    requests = _http_file_requests(ROOT / "examples" / "http" / "decision.http")
    assert [path for path, _ in requests] == [
        "/arbiter.v1.DecisionService/UpdateProfile",
        "/arbiter.v1.DecisionService/Track",
        "/arbiter.v1.DecisionService/Decide",
        "/arbiter.v1.DecisionService/Check",
    ]
    answers: dict[str, Any] = {}
    for path, body in requests:
        status, _, raw = _post(
            f"{server.http_url}{path}", body.encode(), {"content-type": "application/json"}
        )
        assert status == 200, (path, raw)
        answers[path.rsplit("/", 1)[1]] = json.loads(raw)
    assert {r["name"] for r in answers["UpdateProfile"]["results"]} >= {"region", "personalization"}
    assert answers["Track"]["results"][0]["status"] == "EVENT_STATUS_APPLIED"
    assert answers["Decide"]["actions"][0]["actionId"] == "default_home_banner"
    assert answers["Check"]["allowed"] is True


def _http_file_requests(path: Path) -> list[tuple[str, str]]:
    """``(path, json body)`` of each ``POST {{host}}/...`` block of a .http file."""
    out: list[tuple[str, str]] = []
    for block in path.read_text().split("###")[1:]:  # the first block is the preamble
        lines = block.strip().splitlines()[1:]  # after the request's title
        method, url = lines[0].split()[:2]
        assert method == "POST", lines[0]
        body_start = lines.index("") + 1
        out.append((url.replace("{{host}}", ""), "\n".join(lines[body_start:])))
    return out


def test_one_http2_connection_serves_thousands_of_calls(server: ServerProcess) -> None:
    """Cleartext HTTP/2 (prior knowledge): 2,400 Decides over one connection all answer in time.

    Hypercorn's default closes a connection after 1,000 requests; over HTTP/2
    that stranded the streams in flight, and their callers timed out.
    """
    import asyncio

    from connectrpc.compat import google_protobuf_binary_codec
    from connectrpc.errors import ConnectError
    from connectrpc.protocol import ProtocolType
    from pyqwest import Client, HTTPTransport, HTTPVersion

    from arbiter.v1 import decision_pb2
    from arbiter.v1.decision_connect import DecisionServiceClient

    async def run() -> list[str]:
        client = DecisionServiceClient(
            server.http_url,
            protocol=ProtocolType.CONNECT,
            codec=google_protobuf_binary_codec(),
            send_compression=None,
            http_client=Client(HTTPTransport(http_version=HTTPVersion.HTTP2)),
        )
        failures: list[str] = []

        async def caller(n: int) -> None:
            for i in range(600):
                request = decision_pb2.DecideRequest(
                    request_id=f"h2-{n}-{i}",
                    customer_id="h2-c",
                    placement="home_banner",
                    dry_run=True,
                )
                try:
                    await client.decide(request, timeout_ms=3000)
                except ConnectError as exc:
                    failures.append(f"{n}/{i}: {exc.code.name}: {exc.message}")

        try:
            await asyncio.gather(*(caller(n) for n in range(4)))
        finally:
            await client.close()
        return failures

    assert asyncio.run(run()) == []


# --------------------------------------------------------------------------- CORS


def test_cors_preflight_allows_the_configured_origin_only(
    server: ServerProcess, page_port: int
) -> None:
    allowed = f"http://127.0.0.1:{page_port}"

    def preflight(origin: str) -> tuple[int, dict[str, str]]:
        request = urllib.request.Request(
            f"{server.http_url}{DECIDE_PATH}",
            method="OPTIONS",
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "content-type,connect-protocol-version,connect-timeout-ms",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, {k.lower(): v for k, v in response.headers.items()}
        except urllib.error.HTTPError as error:
            return error.code, {k.lower(): v for k, v in error.headers.items()}

    status, headers = preflight(allowed)
    assert status == 200
    assert headers["access-control-allow-origin"] == allowed
    assert "connect-timeout-ms" in headers["access-control-allow-headers"].lower()
    status, headers = preflight("https://evil.example")
    assert status == 400
    assert "access-control-allow-origin" not in headers


# --------------------------------------------------------------------------- Node


def test_typescript_client_suite_over_connect_and_grpc_web(server: ServerProcess) -> None:
    output = _npm_test(TS_CLIENT, {"ARBITER_HTTP_URL": server.http_url})
    assert "# fail 0" in output or "ℹ fail 0" in output


def test_browser_demo_in_headless_chromium(
    server: ServerProcess, page_port: int, tmp_path: Path
) -> None:
    if not Path(CHROMIUM).exists():
        _missing(f"Chromium ({CHROMIUM})", "apt-get install chromium (Debian's package)")
    out_dir = Path(os.environ.get("ARBITER_TEST_OUTPUT", tmp_path))
    output = _npm_test(
        WEB_DEMO,
        {
            "ARBITER_HTTP_URL": server.http_url,
            "ARBITER_PAGE_PORT": str(page_port),
            "ARBITER_CHROMIUM": CHROMIUM,
            "ARBITER_TEST_OUTPUT": str(out_dir),
        },
    )
    assert "ℹ fail 0" in output
    for name in ("eligible.png", "opted-out.png"):
        shot = out_dir / name
        assert shot.is_file() and shot.stat().st_size > 1000, shot


# --------------------------------------------------------------------------- TLS + auth


def test_https_listener_applies_the_same_guard(tmp_path: Path) -> None:
    """TLS and API keys configured: the HTTP port is HTTPS and refuses as the gRPC port does."""
    import ssl

    sys.path.insert(0, str(ROOT / "tests"))
    from tls_support import TestCA

    from arbiter.server.security.credentials import hash_api_key

    ca = TestCA(tmp_path)
    cert = ca.server()
    keys = tmp_path / "api-keys.yaml"
    keys.write_text(
        "keys:\n"
        f"  - id: backend\n    sha256: {hash_api_key('k-backend-1')}\n    roles: [decide]\n"
        f"  - id: ingest-only\n    sha256: {hash_api_key('k-ingest-1')}\n    roles: [ingest]\n"
        f"  - id: operator\n    sha256: {hash_api_key('k-admin-1')}\n    roles: [admin]\n"
    )
    proc = ServerProcess(
        ROOT / "examples" / "policies",
        tmp_path,
        name="edge-tls",
        extra_args=(
            "--tls-cert",
            str(cert.cert_path),
            "--tls-key",
            str(cert.key_path),
            "--api-keys",
            str(keys),
        ),
    )
    import grpc

    context = ssl.create_default_context(cafile=str(ca.cert_path))
    url = f"https://127.0.0.1:{proc.http_port}{DECIDE_PATH}"
    body = json.dumps({"requestId": "r-tls-1", "customerId": "c-tls-1"}).encode()

    def post(
        headers: dict[str, str], target: str = url, data: bytes = body
    ) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            target,
            data=data,
            headers={"content-type": "application/json", **headers},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=10, context=context) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    channel_creds = grpc.ssl_channel_credentials(ca.cert_pem)
    proc.wait_serving = lambda wait_s: _wait_tls_serving(proc, channel_creds, wait_s)  # type: ignore[method-assign]
    proc.start()
    try:
        status, answer = post({})
        assert (status, answer["code"]) == (401, "unauthenticated")
        assert answer["message"].startswith("no credentials")
        status, answer = post({"x-api-key": "k-ingest-1"})
        assert (status, answer["code"]) == (403, "permission_denied")
        assert "`Decide` needs role `decide`" in answer["message"]
        status, answer = post({"authorization": "Bearer k-backend-1"})
        assert status == 200
        assert answer["requestId"] == "r-tls-1"
        # AdminService: the same servicer and roles as on the gRPC port.
        admin = f"https://127.0.0.1:{proc.http_port}/arbiter.v1.AdminService/GetPolicyStatus"
        status, answer = post({"x-api-key": "k-backend-1"}, admin, b"{}")
        assert (status, answer["code"]) == (403, "permission_denied")
        assert "needs role `admin`" in answer["message"]
        status, answer = post({"x-api-key": "k-admin-1"}, admin, b"{}")
        assert status == 200
        assert answer["active"]["digest"].startswith("sha256:")
        assert len(answer["replicas"]) == 1
    finally:
        proc.stop()


def _wait_tls_serving(proc: ServerProcess, creds: Any, wait_s: float) -> None:
    import time

    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        assert proc.proc is not None and proc.proc.poll() is None, proc.log_tail()
        try:
            with grpc.secure_channel(proc.address, creds) as channel:
                reply = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=1
                )
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.RpcError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"TLS server never became SERVING: {proc.log_tail()}")


# --------------------------------------------------------------------------- mobile


def test_kotlin_message_types_generate_from_buf_gen_mobile(tmp_path: Path) -> None:
    """buf.gen.mobile.yaml generates Kotlin for every message of the contract (protoc's builtins)."""
    buf = TS_CLIENT / "node_modules" / ".bin" / "buf"
    if not buf.exists():
        _missing("clients/typescript/node_modules (buf)", "run `make node-deps`")
    if shutil.which("protoc") is None:
        _missing("protoc", "apt-get install protobuf-compiler")
    subprocess.run(
        [str(buf), "generate", "--template", "buf.gen.mobile.yaml", "-o", str(tmp_path)],
        cwd=ROOT,
        check=True,
        timeout=120,
    )
    kotlin = {p.name for p in (tmp_path / "build" / "gen" / "kotlin" / "kotlin").rglob("*.kt")}
    for message in ("DecideRequest", "DecideResponse", "CheckRequest", "Event", "Value"):
        assert f"{message}Kt.kt" in kotlin, sorted(kotlin)
