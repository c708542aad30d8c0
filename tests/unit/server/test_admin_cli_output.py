"""`arbiter admin` output for the policy lifecycle and kill-switch answers, from canned replies.

The servers these commands talk to are tested in
``tests/integration/test_admin_cli.py``; this checks the rendering of every
answer shape (human and ``--json``) and the exit code of a refused
validation, with a stand-in for the channel.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import grpc
import pytest

from arbiter.server.cli import admin as cli
from arbiter.v1 import admin_pb2


class Canned:
    """Answers each RPC with a fixed reply and records the requests."""

    def __init__(self, **replies: Any) -> None:
        self.replies = replies
        self.requests: list[tuple[str, Any]] = []

    def call(self, rpc: str, request: Any) -> Any:
        self.requests.append((rpc, request))
        return self.replies[rpc]


def _info(version: str, digest: str, by: str = "") -> admin_pb2.PolicyInfo:
    info = admin_pb2.PolicyInfo(version=version, digest=digest, activated_by=by)
    if by:
        info.activated_at.FromMilliseconds(1_750_000_000_000)
    return info


def _args(**extra: Any) -> argparse.Namespace:
    return argparse.Namespace(**{"json": False, **extra})


def test_status_lists_the_active_set_history_journeys_and_errors(
    capsys: pytest.CaptureFixture[str],
) -> None:
    reply = admin_pb2.GetPolicyStatusResponse(
        active=_info("2025.06.2", "sha256:bbb", "jwt:alice"),
        history=[_info("2025.06.1", "sha256:aaa", "jwt:bob")],
        journeys=[
            admin_pb2.JourneyInfo(journey_id="onboarding", status=admin_pb2.JOURNEY_STATUS_ACTIVE),
            admin_pb2.JourneyInfo(
                journey_id="winback",
                status=admin_pb2.JOURNEY_STATUS_PAUSED,
                paused_by_operator=True,
                reason="bad copy",
            ),
        ],
        last_errors=[
            admin_pb2.PolicyError(
                file="journeys/upsell.yaml", line=3, column=7, code="unknown", message="no"
            )
        ],
    )
    assert cli._status(Canned(GetPolicyStatus=reply), _args()) == 0
    assert capsys.readouterr().out.splitlines() == [
        "active:  2025.06.2 (sha256:bbb), activated 2025-06-15T15:06:40.000Z by jwt:alice",
        "history: 2025.06.1 (sha256:aaa), activated 2025-06-15T15:06:40.000Z by jwt:bob",
        "journeys:",
        "  onboarding: active",
        "  winback: paused (operator): bad copy",
        "last failed load or activation:",
        "  journeys/upsell.yaml:3:7: no [unknown]",
    ]
    assert cli._status(Canned(GetPolicyStatus=reply), _args(json=True)) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["active"] == {
        "version": "2025.06.2",
        "digest": "sha256:bbb",
        "activated_by": "jwt:alice",
        "activated_at": "2025-06-15T15:06:40.000Z",
    }
    assert doc["journeys"][1]["status"] == "JOURNEY_STATUS_PAUSED"


def test_validate_sends_the_directory_and_an_invalid_set_exits_1(
    tmp_path: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "policy.yaml").write_text("policy: {}\n")
    (tmp_path / "journeys").mkdir()
    (tmp_path / "journeys" / "a.yaml").write_text("journeys: []\n")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref\n")
    invalid = admin_pb2.ValidatePolicyResponse(
        valid=False,
        errors=[admin_pb2.PolicyError(file="policy.yaml", line=1, message="missing `id`")],
    )
    canned = Canned(ValidatePolicy=invalid)
    assert cli._validate(canned, _args(directory=str(tmp_path), server_path=False)) == 1
    sent = canned.requests[0][1]
    assert sorted(f.path for f in sent.bundle.files) == ["journeys/a.yaml", "policy.yaml"]
    assert capsys.readouterr().out.splitlines() == [
        "invalid: 1 error(s)",
        "  policy.yaml:1: missing `id`",
    ]
    valid = admin_pb2.ValidatePolicyResponse(valid=True, policy=_info("v2", "sha256:c"))
    canned = Canned(ValidatePolicy=valid)
    assert cli._validate(canned, _args(directory="/srv/policies", server_path=True)) == 0
    assert canned.requests[0][1].directory == "/srv/policies"
    assert capsys.readouterr().out == "valid: v2 (sha256:c)\n"


def test_activate_rollback_pause_and_resume(capsys: pytest.CaptureFixture[str]) -> None:
    swap = {"active": _info("v2", "sha256:b", "key:ops"), "previous": _info("v1", "sha256:a")}
    canned = Canned(
        ActivatePolicy=admin_pb2.ActivatePolicyResponse(**swap),
        RollbackPolicy=admin_pb2.RollbackPolicyResponse(**swap),
        PauseJourney=admin_pb2.PauseJourneyResponse(
            journey=admin_pb2.JourneyInfo(
                journey_id="winback", status=admin_pb2.JOURNEY_STATUS_PAUSED
            )
        ),
        ResumeJourney=admin_pb2.ResumeJourneyResponse(
            journey=admin_pb2.JourneyInfo(
                journey_id="winback", status=admin_pb2.JOURNEY_STATUS_ACTIVE
            )
        ),
    )
    assert (
        cli._activate(
            canned,
            _args(directory="/srv/p", server_path=True, expect_digest="sha256:b", reason="r"),
        )
        == 0
    )
    assert cli._rollback(canned, _args(digest="", reason="oops")) == 0
    assert cli._pause(canned, _args(id="winback", kind="journey", reason="storm", until=None)) == 0
    assert cli._resume(canned, _args(id="winback", kind="journey", reason="")) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "active:   v2 (sha256:b), activated 2025-06-15T15:06:40.000Z by key:ops"
    assert out[1] == "previous: v1 (sha256:a)"
    assert out[4:] == ["journey winback: paused", "journey winback: active"]
    activate = canned.requests[0][1]
    assert (activate.expected_digest, activate.reason) == ("sha256:b", "r")
    assert canned.requests[2][1].reason == "storm"


def test_a_bundle_over_what_a_server_accepts_is_refused_before_sending(tmp_path: Any) -> None:
    (tmp_path / "policy.yaml").write_text("x" * (cli._MAX_BUNDLE_BYTES + 1))
    canned = Canned()
    with pytest.raises(cli._Failed, match="--server-path"):
        cli._validate(canned, _args(directory=str(tmp_path), server_path=False))
    assert canned.requests == []


class _Refused(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("code", "exit_code", "hint"),
    [
        (grpc.StatusCode.UNIMPLEMENTED, 5, "does not implement AdminService.PauseChannel"),
        (grpc.StatusCode.PERMISSION_DENIED, 4, "lacks the admin role"),
        (grpc.StatusCode.UNAVAILABLE, 3, "is a server listening at h:1?"),
        (grpc.StatusCode.INTERNAL, 6, ""),
    ],
)
def test_a_refusal_is_one_line_with_a_hint_and_its_exit_code(
    code: grpc.StatusCode, exit_code: int, hint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """An older server answers UNIMPLEMENTED for an RPC it lacks (the hint names the RPC the
    command chose: PauseChannel for `pause --channel`)."""

    def refuse(_admin: Any, args: argparse.Namespace) -> int:
        args.rpc = "PauseChannel"
        raise _Refused(code, "no")

    args = argparse.Namespace(
        target="h:1", timeout=1.0, json=True, tls=False, ca="", cert="", key="", token="",
        token_file="", api_key="",
    )  # fmt: skip
    assert cli._run(args, "pause", "PauseJourney", refuse) == exit_code
    out, err = capsys.readouterr()
    assert err.startswith(f"arbiter admin pause: {code.name}: no")
    assert hint in err and "Traceback" not in err
    assert json.loads(out) == {"error": {"code": code.name, "message": "no"}}
