"""`arbiter serve --state-file` across real restarts of a real server process.

What a developer's restart must keep (profiles, consent, caps, journey state,
idempotency records) is written on SIGTERM and every interval (so a SIGKILL
loses at most one interval), an erasure is written at once (a restart must
not bring a forgotten customer back), and a file that is not a state file
stops the start with a message naming it -- it is never overwritten.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from arbiter.v1 import admin_pb2, admin_pb2_grpc, decision_pb2, decision_pb2_grpc

_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

from server_procs import (  # noqa: E402
    SERVICE_CHANNEL,
    SERVICE_PLACEMENT,
    ServerProcess,
    write_test_policies,
)

CUSTOMERS = ("dev-1", "dev-2")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    policies = write_test_policies(tmp_path, limit=2)
    started: list[ServerProcess] = []

    def start(state_file: Path, interval: str = "1h", name: str = "arbiter") -> ServerProcess:
        server = ServerProcess(
            policies,
            tmp_path,
            name=name,
            extra_args=("--state-file", str(state_file), "--state-file-interval", interval),
        )
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


def _stubs(server: ServerProcess) -> tuple[grpc.Channel, Any, Any]:
    channel = grpc.insecure_channel(server.address)
    return (
        channel,
        decision_pb2_grpc.DecisionServiceStub(channel),
        admin_pb2_grpc.AdminServiceStub(channel),
    )


def _populate(stub: Any, customer: str) -> None:
    profile = decision_pb2.UpdateProfileRequest(
        request_id=f"p-{customer}", customer_id=customer, source="crm"
    )
    profile.timestamp.GetCurrentTime()
    profile.traits["region"].string_value = "EU"
    profile.traits["plan"].string_value = "basic"
    profile.consents.add(purpose="email_marketing", state=decision_pb2.CONSENT_STATE_GRANTED)
    stub.UpdateProfile(profile, timeout=10)
    track = decision_pb2.TrackRequest()
    track.events.add(event_id=f"signup-{customer}", customer_id=customer, type="signed_up")
    track.events[0].timestamp.GetCurrentTime()
    stub.Track(track, timeout=10)
    for i in range(2):  # the service action's cap (2 per day) is now full
        stub.Decide(_service_decide(customer, f"svc-{customer}-{i}"), timeout=10)


def _service_decide(customer: str, request_id: str) -> decision_pb2.DecideRequest:
    return decision_pb2.DecideRequest(
        request_id=request_id,
        customer_id=customer,
        placement=SERVICE_PLACEMENT,
        channels=[SERVICE_CHANNEL],
    )


def _export(admin: Any, customer: str) -> admin_pb2.ExportCustomerResponse:
    page: admin_pb2.ExportCustomerResponse = admin.ExportCustomer(
        admin_pb2.ExportCustomerRequest(customer_id=customer, page_size=1000), timeout=10
    )
    page.ClearField("exported_at")
    return page


def test_a_restart_keeps_profiles_consent_caps_journeys_and_idempotency(
    tmp_path: Path, servers: Callable[..., ServerProcess]
) -> None:
    state_file = tmp_path / "dev.state"
    first = servers(state_file)
    channel, stub, admin = _stubs(first)
    with channel:
        for customer in CUSTOMERS:
            _populate(stub, customer)
        before = {customer: _export(admin, customer) for customer in CUSTOMERS}
    assert first.stop() == 0  # SIGTERM: the last write happens after in-flight calls

    second = servers(state_file, name="restarted")
    channel, stub, admin = _stubs(second)
    with channel:
        after = {customer: _export(admin, customer) for customer in CUSTOMERS}
        assert after == before
        state = after["dev-1"].state.map_value.fields
        assert "onboarding" in state["journeys"].map_value.fields
        assert after["dev-1"].traits["plan"].string_value == "basic"
        assert [c.purpose for c in after["dev-1"].consent] == ["email_marketing"]
        # The cap is still full, and a retried request replays the stored decision.
        fresh = stub.Decide(_service_decide("dev-1", "svc-dev-1-after"), timeout=10)
        assert not fresh.actions
        retried = stub.Decide(_service_decide("dev-1", "svc-dev-1-0"), timeout=10)
        assert retried.replayed and [a.action_id for a in retried.actions]


def test_the_interval_write_survives_a_kill_and_a_forget_is_written_at_once(
    tmp_path: Path, servers: Callable[..., ServerProcess]
) -> None:
    state_file = tmp_path / "dev.state"
    server = servers(state_file, interval="300ms")
    channel, stub, admin = _stubs(server)
    with channel:
        for customer in CUSTOMERS:
            _populate(stub, customer)
        expected = _export(admin, "dev-2")
        time.sleep(1.5)  # a few intervals
        server.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        server.stop()
    server = servers(state_file, interval="1h", name="after-kill")
    channel, stub, admin = _stubs(server)
    with channel:
        assert _export(admin, "dev-2") == expected
        erased = admin.ForgetCustomer(
            admin_pb2.ForgetCustomerRequest(customer_id="dev-2"), timeout=10
        )
        assert erased.existed
        time.sleep(1.0)  # the erasure is written at once, not at the next (hourly) interval
        server.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
        server.stop()
    server = servers(state_file, name="after-forget")
    channel, stub, admin = _stubs(server)
    with channel:
        gone = _export(admin, "dev-2")
        assert not gone.traits and not gone.consent
        assert _export(admin, "dev-1").traits["region"].string_value == "EU"


def test_a_file_that_is_not_a_state_file_stops_the_start_and_is_left_alone(
    tmp_path: Path, servers: Callable[..., ServerProcess]
) -> None:
    state_file = tmp_path / "notes.txt"
    state_file.write_text("my notes, not arbiter state\n")
    with pytest.raises(RuntimeError) as refused:
        servers(state_file)
    message = str(refused.value)
    assert "exited with 2" in message
    assert f"{state_file}: not an Arbiter state file" in message
    assert "Traceback" not in message
    assert state_file.read_text() == "my notes, not arbiter state\n"


def test_policy_versions_and_pauses_survive_a_restart_on_the_embedded_store(
    tmp_path: Path, servers: Callable[..., ServerProcess], capsys: pytest.CaptureFixture[str]
) -> None:
    """An activation and a pause made through AdminService are in the state file: a restart
    with the same --policies directory serves the activated version, paused as it was."""
    import shutil

    from arbiter.server.cli import main

    state_file = tmp_path / "dev.state"
    first = servers(state_file)
    bumped = tmp_path / "bumped"
    shutil.copytree(first.policies, bumped)
    policy = bumped / "policy.yaml"
    policy.write_text(policy.read_text().replace('version: "2025.06.1"', 'version: "2025.06.7"'))
    target = ("--target", first.address)
    assert main(["admin", "activate", str(bumped), *target, "--reason", "fix"]) == 0
    assert main(["admin", "pause", "onboarding", *target, "--reason", "INC-9"]) == 0
    capsys.readouterr()
    assert first.stop() == 0

    second = servers(state_file, name="restarted")
    assert main(["admin", "status", "--target", second.address]) == 0
    out = capsys.readouterr().out
    assert out.startswith("active:  2025.06.7 (sha256:")
    assert "history: 2025.06.1" in out
    assert "journey onboarding: paused" in out and "INC-9" in out
