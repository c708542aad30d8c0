"""clients/service-config.json: the published gRPC retry/deadline policy says what the clients do."""

from __future__ import annotations

import json
from pathlib import Path

from arbiter_client import RetryPolicy, Timeouts

CONFIG = Path(__file__).resolve().parents[3] / "clients" / "service-config.json"


def _seconds(text: str) -> float:
    assert text.endswith("s")
    return float(text[:-1])


def test_service_config_matches_the_python_client_defaults() -> None:
    config = json.loads(CONFIG.read_text())
    timeouts, retry = Timeouts(), RetryPolicy()
    by_method = {
        name["method"]: method
        for method in config["methodConfig"]
        for name in method["name"]
        if name["service"] == "arbiter.v1.DecisionService"
    }
    assert set(by_method) == {"Decide", "Check", "Track", "UpdateProfile"}
    for method, default in (
        ("Decide", timeouts.decide),
        ("Check", timeouts.check),
        ("Track", timeouts.track),
        ("UpdateProfile", timeouts.update_profile),
    ):
        entry = by_method[method]
        assert _seconds(entry["timeout"]) == default
        policy = entry["retryPolicy"]
        assert policy["maxAttempts"] == retry.max_attempts
        assert _seconds(policy["initialBackoff"]) == retry.initial_backoff
        assert _seconds(policy["maxBackoff"]) == retry.max_backoff
        assert policy["backoffMultiplier"] == retry.multiplier
        assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
