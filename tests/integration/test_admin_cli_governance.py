"""`arbiter admin` status, validate, activate, rollback, pause and resume against a real server.

One embedded-store server on the example policies; the commands run as an
operator would, in the order of an incident: look, validate a fix, refuse a
broken one, activate, roll back, pause a journey / an action / a channel for
a while, resume.
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from arbiter.server.cli import main

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from conftest import EXAMPLES, ServerHandle  # noqa: E402


@pytest.fixture
def server() -> Iterator[ServerHandle]:
    handle = ServerHandle()
    try:
        yield handle
    finally:
        handle.close()


def admin(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["admin", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _bumped(tmp_path: Path, version: str = "2025.06.9") -> Path:
    copy = tmp_path / "bumped"
    shutil.copytree(EXAMPLES, copy)
    policy = copy / "policy.yaml"
    policy.write_text(policy.read_text().replace('version: "2025.06.1"', f'version: "{version}"'))
    return copy


def _broken(tmp_path: Path) -> Path:
    copy = tmp_path / "broken"
    shutil.copytree(EXAMPLES, copy)
    actions = copy / "actions" / "always_on.yaml"
    actions.write_text(actions.read_text() + "\n  - id: [not, an, id]\n")
    return copy


def test_status_validate_activate_and_rollback(
    server: ServerHandle, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = ("--target", server.address)
    code, out, err = admin(capsys, "status", *target)
    assert code == 0, err
    assert out.startswith("active:  2025.06.1 (sha256:")
    first = json.loads(admin(capsys, "status", *target, "--json")[1])["active"]["digest"]
    bumped, broken = _bumped(tmp_path), _broken(tmp_path)

    code, out, err = admin(capsys, "validate", str(bumped), *target)
    assert code == 0, err
    assert out.startswith("valid: 2025.06.9 (sha256:")
    code, out, err = admin(capsys, "validate", str(broken), *target)
    assert code == 1 and "actions/always_on.yaml:" in out + err

    code, out, err = admin(capsys, "activate", str(broken), *target, "--reason", "x")
    assert code == 1 and "FAILED_PRECONDITION" in err and "always_on.yaml:" in err
    assert json.loads(admin(capsys, "status", *target, "--json")[1])["active"]["digest"] == first

    code, out, err = admin(capsys, "activate", str(bumped), *target, "--reason", "INC-1 fix")
    assert code == 0, err
    assert out.splitlines()[0].startswith("active:   2025.06.9 (sha256:")
    assert out.splitlines()[1].startswith(f"previous: 2025.06.1 ({first}")
    code, out, _ = admin(capsys, "status", *target)
    assert "history: 2025.06.1" in out

    code, out, err = admin(capsys, "rollback", *target, "--reason", "INC-2")
    assert code == 0, err
    assert out.startswith(f"active:   2025.06.1 ({first}")
    code, out, err = admin(capsys, "rollback", *target, "--digest", "sha256:nope")
    assert code == 1 and "NOT_FOUND" in err


def test_pause_and_resume_a_journey_an_action_and_a_channel(
    server: ServerHandle, capsys: pytest.CaptureFixture[str]
) -> None:
    target = ("--target", server.address)
    code, out, err = admin(
        capsys, "pause", "onboarding", *target, "--reason", "INC-3", "--until", "1h"
    )
    assert code == 0, err
    assert out.startswith("journey onboarding: paused until ") and "INC-3" in out
    action = next(iter(server.policy.actions))
    channel = next(iter(server.policy.channels))
    code, out, err = admin(capsys, "pause", action, "--action", *target, "--reason", "bad copy")
    assert code == 0, err
    assert out.startswith(f"action {action}: paused")
    code, out, err = admin(capsys, "pause", channel, "--channel", *target, "--json")
    assert code == 0, err
    assert json.loads(out)["pause"]["kind"] == "channel"

    code, out, _ = admin(capsys, "status", *target)
    assert "operator pauses:" in out
    assert f"action {action}: paused" in out and f"channel {channel}: paused" in out

    for argv in (("onboarding",), (action, "--action"), (channel, "--channel")):
        code, out, err = admin(capsys, "resume", *argv, *target)
        assert code == 0, err
    code, out, _ = admin(capsys, "status", *target)
    assert "operator pauses:" not in out
    code, out, err = admin(capsys, "pause", "no_such_journey", *target)
    assert code == 1 and "NOT_FOUND" in err
