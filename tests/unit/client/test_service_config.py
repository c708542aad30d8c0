"""clients/service-config.json: the published gRPC retry/deadline policy is what the clients do."""

from __future__ import annotations

import json
from pathlib import Path

from arbiter_client import (
    DEFAULT_CHANNEL_OPTIONS,
    ArbiterClient,
    RetryPolicy,
    Timeouts,
    service_config,
    service_config_json,
)

CONFIG = Path(__file__).resolve().parents[3] / "clients" / "service-config.json"


def _seconds(text: str) -> float:
    assert text.endswith("s")
    return float(text[:-1])


def test_the_published_file_is_the_python_client_defaults() -> None:
    assert json.loads(CONFIG.read_text()) == service_config(RetryPolicy(), Timeouts())
    assert CONFIG.read_text() == service_config_json(RetryPolicy(), Timeouts())


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
        assert policy["retryableStatusCodes"] == ["UNAVAILABLE", "CANCELLED"]
    assert config["retryThrottling"] == {
        "maxTokens": retry.max_tokens,
        "tokenRatio": retry.token_ratio,
    }


def test_the_client_channel_carries_its_retry_policy_without_method_timeouts() -> None:
    """Per-call deadlines stay the client's: a service-config timeout would cap a longer one."""
    retry = RetryPolicy(max_attempts=4, initial_backoff=0.01)
    client = ArbiterClient("127.0.0.1:1", retry=retry)
    try:
        options = dict(client._channel_options)
    finally:
        client.close()
    config = json.loads(str(options["grpc.service_config"]))
    assert config == service_config(retry)
    assert all("timeout" not in m for m in config["methodConfig"])
    assert {m["retryPolicy"]["maxAttempts"] for m in config["methodConfig"]} == {4}
    assert options["grpc.enable_retries"] == 1
    assert dict(DEFAULT_CHANNEL_OPTIONS)["grpc.enable_retries"] == 1


def test_one_attempt_means_no_retry_policy() -> None:
    config = service_config(RetryPolicy(max_attempts=1))
    assert all("retryPolicy" not in m for m in config["methodConfig"])


def test_distinct_deadlines_get_their_own_method_entries() -> None:
    config = service_config(RetryPolicy(), Timeouts(decide=0.2))
    deadlines = {n["method"]: m["timeout"] for m in config["methodConfig"] for n in m["name"]}
    assert deadlines == {"Decide": "0.2s", "Check": "0.05s", "Track": "1s", "UpdateProfile": "1s"}
