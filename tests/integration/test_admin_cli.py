"""`arbiter admin` against real servers on real ports: output, --json, exit codes, and clean errors.

Every subcommand is run as an operator would (``arbiter admin ... --target``);
a refused, missing, unreachable or unimplemented call is one line on stderr
with a hint and a documented exit code, never a traceback.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from arbiter.server.admin_service import AdminService
from arbiter.server.cli import main
from arbiter.server.security.credentials import AuthSettings, JwtSettings, hash_api_key
from arbiter.server.security.identity import Role
from arbiter.server.security.tls import TlsFiles
from arbiter.v1 import admin_pb2, decision_pb2_grpc

_HERE = Path(__file__).resolve().parent
for _path in (str(_HERE.parent), str(_HERE)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

from conftest import EXAMPLES, ServerHandle, fresh_customer  # noqa: E402
from server_procs import ROOT, ServerProcess, free_port, write_test_policies  # noqa: E402
from tls_support import TestCA, TokenIssuer  # noqa: E402
from traffic import SURFACES, decide_request, seed  # noqa: E402

PRIVACY_KEY = "arb_" + uuid.uuid4().hex
DECIDE_KEY = "arb_" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def logged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    """A server with a decision log (every Decide recorded)."""
    path = tmp_path_factory.mktemp("admin-cli") / "decisions.jsonl"
    handle = ServerHandle(decision_log=str(path), decision_log_sample=1.0)
    try:
        yield handle
    finally:
        handle.close()


def admin(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["admin", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _customer_with_history(handle: ServerHandle) -> tuple[str, list[str]]:
    customer = fresh_customer(handle.policy, "cli")
    rng = random.Random(customer)
    with grpc.insecure_channel(handle.address) as channel:
        stub = decision_pb2_grpc.DecisionServiceStub(channel)
        seed(stub, rng, customer)
        decided = [
            stub.Decide(decide_request(rng, customer, surface=s), timeout=10).decision_id
            for s in SURFACES
        ]
    return customer, decided


def test_export_prints_a_summary_and_the_complete_export_as_json(
    logged: ServerHandle, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    customer, decided = _customer_with_history(logged)
    assert logged.server.decisions is not None
    logged.call(logged.server.decisions.flush())
    target = ("--target", logged.address)
    code, out, err = admin(capsys, "export", customer, *target)
    assert code == 0 and not err
    assert out.startswith(f"customer {customer} (exported ")
    assert "traits: " in out and "region" in out
    assert "history: 5 decisions, " in out and ", 5 decision log" in out

    stored = logged.export(customer)
    output = tmp_path / "export.json"
    code, out, err = admin(
        capsys, "export", customer, *target, "--json", "--page-size", "2", "--output", str(output)
    )
    assert code == 0 and not err
    doc = json.loads(out)
    assert json.loads(output.read_text()) == doc
    assert doc["customer_id"] == customer and "next_page_token" not in doc
    assert doc["traits"]["region"] == stored["profile"]["region"]["value"]
    # Pages of two history entries, merged: the store's export, value for value, and the
    # customer's decision log records.
    logged_records = doc["state"].pop("decision_log")
    assert doc["state"] == {k: v for k, v in stored.items() if k != "customer_id"}
    assert sorted(r["decision_id"] for r in logged_records) == sorted(decided)
    assert {c["purpose"] for c in doc["consent"]} == set(stored["consent"])


def test_forget_needs_yes_then_erases_and_says_so_again(
    logged: ServerHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    customer, _ = _customer_with_history(logged)
    target = ("--target", logged.address)
    code, out, err = admin(capsys, "forget", customer, *target)
    assert code == 2 and "pass --yes" in err and not out
    assert logged.export(customer)["profile"]  # nothing was erased
    code, out, err = admin(capsys, "forget", customer, *target, "--yes", "--reason", "T-1")
    assert code == 0 and out.startswith(f"customer {customer}: erased at ")
    assert not logged.export(customer)["profile"]
    code, out, err = admin(capsys, "forget", customer, *target, "--yes", "--json")
    assert code == 0 and json.loads(out).get("existed", False) is False
    code, out, err = admin(capsys, "forget", customer, *target, "--yes")
    assert code == 0 and "nothing was stored" in out


def test_explain_shows_a_decision_and_a_missing_one_is_not_found(
    logged: ServerHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    customer, decided = _customer_with_history(logged)
    assert logged.server.decisions is not None
    logged.call(logged.server.decisions.flush())
    target = ("--target", logged.address)
    code, out, err = admin(capsys, "explain", decided[0], *target)
    assert code == 0 and not err
    assert out.startswith(f"decision {decided[0]} (decide) at ")
    assert f"customer {customer}" in out and "chose: " in out
    code, out, err = admin(capsys, "explain", decided[1], *target, "--json")
    record = json.loads(out)["record"]
    assert code == 0 and record["decision_id"] == decided[1]
    assert record["record_json"]["decision_id"] == decided[1]  # an object, not a string
    code, out, err = admin(capsys, "explain", "d-never", *target)
    assert code == 1 and not out
    assert err.startswith("arbiter admin explain: NOT_FOUND: decision `d-never` is not in")
    code, out, err = admin(capsys, "explain", "not an id", *target, "--json")
    assert code == 1 and json.loads(out)["error"]["code"] == "INVALID_ARGUMENT"
    assert "decision_id: " in err and "Traceback" not in err


def test_explain_on_a_server_without_a_decision_log_says_how_to_turn_it_on(
    capsys: pytest.CaptureFixture[str],
) -> None:
    handle = ServerHandle()
    try:
        code, out, err = admin(capsys, "explain", "d-1", "--target", handle.address)
    finally:
        handle.close()
    assert code == 1 and not out and "FAILED_PRECONDITION" in err and "--decision-log" in err


def _unimplemented() -> list[str]:
    """The AdminService RPCs this server does not implement yet (answered UNIMPLEMENTED)."""
    return [
        m.name
        for m in admin_pb2.DESCRIPTOR.services_by_name["AdminService"].methods
        if getattr(AdminService, m.name).__qualname__.startswith("_unimplemented")
    ]


_COMMANDS: dict[str, tuple[str, ...]] = {
    "GetPolicyStatus": ("status",),
    "ValidatePolicy": ("validate", EXAMPLES),
    "ActivatePolicy": ("activate", EXAMPLES, "--reason", "test"),
    "RollbackPolicy": ("rollback",),
    "PauseJourney": ("pause", "onboarding", "--reason", "test"),
    "ResumeJourney": ("resume", "onboarding"),
}


def test_commands_whose_rpc_the_server_does_not_implement_say_so_cleanly(
    logged: ServerHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = [rpc for rpc in _unimplemented() if rpc in _COMMANDS]
    if not missing:
        pytest.skip("every AdminService RPC with a command is implemented")
    for rpc in missing:
        code, out, err = admin(capsys, *_COMMANDS[rpc], "--target", logged.address)
        assert code == 5, (rpc, err)
        assert not out
        assert f": UNIMPLEMENTED: AdminService.{rpc} is not implemented yet" in err
        assert f"hint: this server does not implement AdminService.{rpc}" in err
        code, out, err = admin(capsys, *_COMMANDS[rpc], "--target", logged.address, "--json")
        assert code == 5 and json.loads(out)["error"]["code"] == "UNIMPLEMENTED"


def test_an_unreachable_server_is_exit_3_with_a_hint(capsys: pytest.CaptureFixture[str]) -> None:
    nowhere = f"127.0.0.1:{free_port()}"
    for argv in (("status",), ("export", "c-1"), ("forget", "c-1", "--yes")):
        code, out, err = admin(capsys, *argv, "--target", nowhere, "--timeout", "2")
        assert code == 3, err
        assert ": UNAVAILABLE" in err or ": DEADLINE_EXCEEDED" in err
        assert "hint: " in err and "Traceback" not in err and not out


def test_credentials_are_sent_and_a_missing_role_is_exit_4(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys.yaml"
    keys.write_text(
        "keys:\n"
        f"  - id: dpo\n    sha256: {hash_api_key(PRIVACY_KEY)}\n    roles: [privacy]\n"
        f"  - id: backend\n    sha256: {hash_api_key(DECIDE_KEY)}\n    roles: [decide, ingest]\n"
    )
    handle = ServerHandle(auth=AuthSettings(api_keys=str(keys)))
    target = ("--target", handle.address)
    try:
        code, out, err = admin(capsys, "export", "c-1", *target)
        assert code == 4 and ": UNAUTHENTICATED: " in err and "--api-key" in err
        code, out, err = admin(capsys, "export", "c-1", *target, "--api-key", DECIDE_KEY)
        assert code == 4 and ": PERMISSION_DENIED: " in err
        assert "lacks the privacy role" in err
        code, out, err = admin(capsys, "export", "c-1", *target, "--api-key", PRIVACY_KEY)
        assert code == 0 and out.startswith("customer c-1 ")
        code, out, err = admin(capsys, "explain", "d-1", *target, "--api-key", PRIVACY_KEY)
        assert code == 4 and "lacks the admin role" in err
        token_file = tmp_path / "token"
        token_file.write_text("not-a-jwt\n")
        code, out, err = admin(capsys, "export", "c-1", *target, "--token-file", str(token_file))
        assert code == 4 and ": UNAUTHENTICATED: " in err
    finally:
        handle.close()
    assert PRIVACY_KEY not in err and DECIDE_KEY not in err


def test_tls_mutual_tls_and_a_jwt_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server with mutual TLS and JWTs: the CLI trusts --ca, presents --cert/--key, sends
    ARBITER_TOKEN; without the CA the handshake fails (exit 3, the hint names --ca)."""
    from arbiter.server.security.credentials import MtlsIdentity

    ca = TestCA(tmp_path / "ca")
    cert = ca.server()
    client = ca.client("ops", "ops-laptop")
    issuer = TokenIssuer(tmp_path)
    handle = ServerHandle(
        tls=TlsFiles(str(cert.cert_path), str(cert.key_path), str(ca.cert_path)),
        auth=AuthSettings(
            jwt=JwtSettings(
                jwks=str(issuer.jwks_path), issuer=issuer.issuer, audience=issuer.audience
            ),
            mtls=(MtlsIdentity("ops-laptop", frozenset({Role.DECIDE})),),
        ),
    )
    target = ("--target", f"localhost:{handle.server.port}")
    tls = (
        "--ca",
        str(ca.cert_path),
        "--cert",
        str(client.cert_path),
        "--key",
        str(client.key_path),
    )
    try:
        code, out, err = admin(capsys, "export", "c-1", *target, "--timeout", "3")
        assert code == 3 and ": UNAVAILABLE" in err and "--ca" in err
        code, out, err = admin(capsys, "export", "c-1", *target, *tls)
        assert code == 4 and "PERMISSION_DENIED" in err  # the certificate's identity: decide
        monkeypatch.setenv("ARBITER_TOKEN", issuer.token("dpo", roles=["privacy"]))
        code, out, err = admin(capsys, "export", "c-1", *target, *tls, "--json")
        assert code == 0, err
        assert json.loads(out)["customer_id"] == "c-1"
    finally:
        handle.close()


def test_local_problems_are_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    target = ("--target", f"127.0.0.1:{free_port()}")
    code, _, err = admin(capsys, "validate", str(tmp_path / "missing"), *target)
    assert code == 2 and "not a directory" in err
    code, _, err = admin(capsys, "export", "c-1", *target, "--cert", "c.pem")
    assert code == 2 and "--cert and --key go together" in err
    code, _, err = admin(capsys, "export", "c-1", *target, "--token-file", str(tmp_path / "no"))
    assert code == 2 and "--token-file" in err
    assert main(["admin", "export", "c-1", "--timeout", "-1"]) == 2
    assert "--timeout: must be > 0" in capsys.readouterr().err
    assert main(["admin"]) == 2
    assert main(["admin", "export"]) == 2  # CUSTOMER is required


def test_the_installed_command_against_a_server_process(tmp_path: Path) -> None:
    """The console entry as an operator runs it: a separate process, exit codes, no traceback."""
    server = ServerProcess(write_test_policies(tmp_path), tmp_path).start()
    env = {**os.environ, "ARBITER_TARGET": server.address}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))

    def run(*argv: str) -> Any:
        return subprocess.run(
            [sys.executable, "-m", "arbiter.server.cli", "admin", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    try:
        exported = run("export", "nobody", "--json")
        assert exported.returncode == 0, exported.stderr
        assert json.loads(exported.stdout)["customer_id"] == "nobody"
        forgotten = run("forget", "nobody", "--yes")
        assert forgotten.returncode == 0 and "nothing was stored" in forgotten.stdout
    finally:
        server.stop()
    down = run("status", "--timeout", "2")
    assert down.returncode == 3 and "Traceback" not in down.stderr
    assert down.stderr.startswith("arbiter admin status: UNAVAILABLE")
