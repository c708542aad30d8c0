"""Credential verification and authorization rules, without a server: JWT claims, API key files, mTLS, restrictions."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from arbiter.server.cli import main
from arbiter.server.security.credentials import (
    ApiKeys,
    Authenticator,
    CredentialsError,
    JwtSettings,
    JwtVerifier,
    MtlsIdentities,
    MtlsIdentity,
    hash_api_key,
)
from arbiter.server.security.guard import Guard
from arbiter.server.security.identity import (
    Identity,
    PeerCertificate,
    PermissionDenied,
    Role,
    Unauthenticated,
    peer_from_pem,
)
from arbiter.v1 import decision_pb2

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tls_support import TestCA, TokenIssuer


def run(coro: Any) -> Any:
    return asyncio.run(coro)


@pytest.fixture
def issuer(tmp_path: Path) -> TokenIssuer:
    return TokenIssuer(tmp_path)


@pytest.fixture
def verifier(issuer: TokenIssuer) -> JwtVerifier:
    return JwtVerifier(JwtSettings(str(issuer.jwks_path), issuer.issuer, issuer.audience))


def refusal(coro: Any) -> str:
    with pytest.raises(Unauthenticated) as error:
        run(coro)
    return error.value.message


def test_a_valid_token_maps_its_claims(issuer: TokenIssuer, verifier: JwtVerifier) -> None:
    token = issuer.token("app", roles=["decide", "nonsense"], customer_id="c-1", placements=["a"])
    assert run(verifier.verify(token)) == Identity(
        "jwt:app", "jwt", frozenset({Role.DECIDE}), "c-1", frozenset({"a"})
    )
    import jwt

    spaced = jwt.encode(
        {
            "iss": issuer.issuer,
            "aud": issuer.audience,
            "sub": "svc",
            "exp": 2**40,
            "roles": "decide ingest",
        },
        issuer.key,
        algorithm="RS256",
        headers={"kid": issuer.kid},
    )
    assert run(verifier.verify(spaced)).roles == {Role.DECIDE, Role.INGEST}


def test_tokens_that_must_not_pass(
    tmp_path: Path, issuer: TokenIssuer, verifier: JwtVerifier
) -> None:
    assert refusal(verifier.verify(issuer.token(lifetime_s=-120))) == "token expired"
    assert refusal(verifier.verify(issuer.token(audience="x"))) == "token audience is not `arbiter`"
    assert refusal(verifier.verify(issuer.token(issuer="https://evil"))) == (
        "token issuer is not `https://issuer.test`"
    )
    forged = TokenIssuer(tmp_path).token()
    assert refusal(verifier.verify(forged)) == "invalid token: no matching signing key"
    header, payload, _ = issuer.token().split(".")
    other_signature = TokenIssuer(tmp_path).token().split(".")[2]
    tampered = f"{header}.{payload}.{other_signature}"
    assert refusal(verifier.verify(tampered)) == "invalid token: signature or format"
    assert refusal(verifier.verify("a.b.c")) == "invalid token: malformed"


def test_a_token_without_expiry_is_refused(issuer: TokenIssuer, verifier: JwtVerifier) -> None:
    import jwt

    token = jwt.encode(
        {"iss": issuer.issuer, "aud": issuer.audience, "sub": "x"},
        issuer.key,
        algorithm="RS256",
        headers={"kid": issuer.kid},
    )
    assert refusal(verifier.verify(token)) == "token lacks the `exp` claim"


def test_api_keys_are_stored_hashed_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(
        f"keys:\n  - id: ci\n    sha256: {hash_api_key('arb_secret')}\n    roles: [ingest]\n"
    )
    keys = ApiKeys(str(path))
    assert keys.verify("arb_secret") == Identity("key:ci", "api_key", frozenset({Role.INGEST}))
    with pytest.raises(Unauthenticated):
        keys.verify("arb_other")
    assert "arb_secret" not in path.read_text()


def test_a_broken_api_key_file_is_located_and_keeps_the_last_good_one(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(f"keys:\n  - id: ci\n    sha256: {hash_api_key('k')}\n    roles: [ingest]\n")
    keys = ApiKeys(str(path))
    path.write_text("keys:\n  - id: ci\n    sha: nope\n    roles: [ingest]\n")
    with pytest.raises(CredentialsError) as error:
        keys.reload()
    assert error.value.diagnostics == (
        "keys.yaml:2:5: error: missing required field `sha256`",
        "keys.yaml:3:5: error: unknown field `sha`; did you mean `sha256`?",
    )
    Authenticator(api_keys=keys).reload()  # logs, keeps the last good keys
    assert keys.verify("k").principal == "key:ci"


def test_client_certificates_map_by_spiffe_id_or_subject(tmp_path: Path) -> None:
    ca = TestCA(tmp_path)
    spiffe = "spiffe://arbiter.test/sa/checkout"
    with_uri = peer_from_pem(ca.client("a", "checkout", spiffe_id=spiffe).cert_pem)
    plain = peer_from_pem(ca.client("b", "ops").cert_pem)
    assert with_uri == PeerCertificate("CN=checkout", "checkout", (spiffe,))
    identities = MtlsIdentities(
        [
            MtlsIdentity(spiffe, frozenset({Role.DECIDE})),
            MtlsIdentity("CN=ops", frozenset({Role.ADMIN})),
        ]
    )
    assert identities.identify(with_uri).roles == {Role.DECIDE}
    assert identities.identify(plain) == Identity("mtls:CN=ops", "mtls", frozenset({Role.ADMIN}))
    stranger = PeerCertificate("CN=x", "x")
    assert identities.identify(stranger) == Identity("mtls:CN=x", "mtls")


def test_a_bearer_credential_wins_over_the_certificate(tmp_path: Path) -> None:
    identities = MtlsIdentities([MtlsIdentity("CN=ops", frozenset({Role.ADMIN}))])
    auth = Authenticator(mtls=identities)
    peer = PeerCertificate("CN=ops", "ops")
    assert run(auth.authenticate({}, peer)).roles == {Role.ADMIN}
    assert refusal(auth.authenticate({"authorization": "Bearer arb_x"}, peer)) == (
        "API keys are not accepted by this server"
    )
    assert refusal(auth.authenticate({"authorization": "Basic eDp5"}, None)) == (
        "unsupported authorization header: use `Bearer <token>`"
    )
    assert refusal(auth.authenticate({}, None)) == (
        "no credentials: send `authorization: Bearer <token>`"
    )
    assert run(Authenticator().authenticate({}, None)) == Identity.anonymous()


def _admit(identity: Identity, method: str, request: Any) -> str:
    class Fixed(Authenticator):
        async def authenticate(self, headers: Any, peer: Any) -> Identity:
            return identity

    guard = Guard(Fixed(), {"banner": frozenset({"home"}), "mail": frozenset()}.get)
    try:
        run(guard.admit(f"/arbiter.v1.DecisionService/{method}", {}, None, request))
    except PermissionDenied as exc:
        return exc.message
    return "ok"


def test_restrictions_customer_binding_and_placements() -> None:
    sdk = Identity(
        "jwt:sdk", "jwt", frozenset({Role.DECIDE, Role.INGEST}), "A", frozenset({"home"})
    )
    assert (
        _admit(sdk, "Decide", decision_pb2.DecideRequest(customer_id="A", placement="home")) == "ok"
    )
    assert "bound to one customer" in _admit(
        sdk, "Decide", decision_pb2.DecideRequest(customer_id="B", placement="home")
    )
    assert _admit(sdk, "Decide", decision_pb2.DecideRequest(customer_id="A", placement="cart")) == (
        "placement `cart` is not allowed for this credential"
    )
    assert (
        _admit(sdk, "Check", decision_pb2.CheckRequest(customer_id="A", action_id="banner")) == "ok"
    )
    for action in ("mail", "unknown"):
        assert "not offered on a placement" in _admit(
            sdk, "Check", decision_pb2.CheckRequest(customer_id="A", action_id=action)
        )
    batch = decision_pb2.TrackRequest(events=[{"customer_id": "A"}, {"customer_id": "B"}])
    assert "bound to one customer" in _admit(sdk, "Track", batch)
    reader = Identity("key:r", "api_key", frozenset({Role.DECIDE}))
    assert _admit(reader, "Track", batch) == "`Track` needs role `ingest`"


def test_new_key_prints_a_key_whose_hash_it_prints(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["auth", "new-key", "--id", "ci", "--roles", "ingest"]) == 0
    out = capsys.readouterr().out
    key = out.split("key (shown once): ")[1].split()[0]
    assert f"sha256: {hash_api_key(key)}" in out
    assert main(["auth", "new-key", "--id", "ci", "--roles", "root"]) == 2


def test_a_jwks_url_is_fetched_and_a_rotated_jwks_file_reloads(tmp_path: Path) -> None:
    import http.server
    import json
    import threading

    issuer = TokenIssuer(tmp_path)
    body = json.dumps(issuer.jwks).encode()

    class Jwks(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
        by_url = JwtVerifier(JwtSettings(url, issuer.issuer, issuer.audience))
        assert run(by_url.verify(issuer.token("u", roles=["admin"]))).roles == {Role.ADMIN}
    finally:
        server.shutdown()
        server.server_close()

    by_file = JwtVerifier(JwtSettings(str(issuer.jwks_path), issuer.issuer, issuer.audience))
    successor = TokenIssuer(tmp_path)
    new_token = successor.token("n", roles=["decide"])
    assert refusal(by_file.verify(new_token)) == "invalid token: no matching signing key"
    issuer.jwks_path.write_text(json.dumps(successor.jwks))  # the IdP rotated its key
    assert by_file.reload() is True
    assert run(by_file.verify(new_token)).principal == "jwt:n"
    assert refusal(by_file.verify(issuer.token("old"))) == "invalid token: no matching signing key"
