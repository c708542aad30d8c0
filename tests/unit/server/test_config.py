"""``arbiter serve`` settings: precedence flag > ARBITER_* > config file > default, file:line:col errors, safe exposure."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from arbiter.server.cli import main
from arbiter.server.config import (
    ConfigError,
    Settings,
    add_arguments,
    exposure_problems,
    is_loopback,
    settings_from_args,
)
from arbiter.server.security.credentials import AuthSettings
from arbiter.server.security.identity import Role
from arbiter.server.security.tls import TlsFiles

ROOT = Path(__file__).resolve().parents[3]


def settings(argv: list[str], env: dict[str, str] | None = None) -> Settings:
    parser = argparse.ArgumentParser()
    add_arguments(parser, env or {})
    return settings_from_args(parser.parse_args(argv))


def problems(argv: list[str], env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as error:
        settings(argv, env)
    return error.value.problems


def test_the_documented_production_example_loads(tmp_path: Path) -> None:
    loaded = settings(["--config", str(ROOT / "examples" / "arbiter.yaml")])
    base = ROOT / "examples"
    assert loaded.listen == "0.0.0.0:50051"
    assert loaded.tls == TlsFiles(
        "/etc/arbiter/tls/tls.crt", "/etc/arbiter/tls/tls.key", "/etc/arbiter/tls/client-ca.crt"
    )
    assert loaded.auth.jwt is not None and loaded.auth.jwt.audience == "arbiter"
    assert loaded.auth.mtls[0].roles == frozenset({Role.ADMIN})
    assert loaded.metrics_listen == "0.0.0.0:9090"
    assert loaded.policies == "/etc/arbiter/policies"
    assert exposure_problems(loaded) == []
    assert base.is_dir()


def test_flags_beat_environment_beats_file_beats_default(tmp_path: Path) -> None:
    config = tmp_path / "arbiter.yaml"
    config.write_text("policies: pol\nlisten: 127.0.0.1:1\nstore_timeout: 1s\nlog_level: debug\n")
    env = {"ARBITER_LISTEN": "127.0.0.1:2", "ARBITER_CONFIG": str(config)}
    loaded = settings(["--listen", "127.0.0.1:3"], env)
    assert loaded.listen == "127.0.0.1:3"
    assert settings([], env).listen == "127.0.0.1:2"
    from_file = settings([], {"ARBITER_CONFIG": str(config)})
    assert from_file.listen == "127.0.0.1:1"
    assert from_file.store_timeout_s == 1.0
    assert from_file.policies == str(tmp_path / "pol")  # relative to the file
    assert from_file.grace_period_s == 10.0  # the default


def test_config_file_errors_are_located_like_policy_errors(tmp_path: Path) -> None:
    config = tmp_path / "arbiter.yaml"
    config.write_text(
        "policies: p\n"
        "listn: 0.0.0.0:1\n"
        "grace_period: soon\n"
        "auth:\n"
        "  mtls:\n"
        "    - identity: CN=ops\n"
        "      roles: [admin, root]\n"
    )
    assert problems(["--config", str(config)]) == [
        f"{config}:2:1: error: unknown field `listn`; did you mean `listen`?",
        f"{config}:7:22: error: Invalid enum value 'root'",
    ]


def test_semantic_errors_in_the_file_are_located(tmp_path: Path) -> None:
    config = tmp_path / "arbiter.yaml"
    config.write_text("policies: p\ngrace_period: soon\nlisten: nowhere\n")
    assert problems(["--config", str(config)]) == [
        f"{config}:2:15: error: invalid duration `soon`: use an integer and a unit ms, s, m, h, d"
        " or w (e.g. 30m, 24h, 7d, 1h30m)",
        f"{config}:3:9: error: expected HOST:PORT, got `nowhere`",
    ]


def test_flag_and_environment_errors_name_their_source() -> None:
    found = problems(["--policies", "p", "--grace-period", "x"], {"ARBITER_LISTEN": "nope"})
    assert found[0] == "ARBITER_LISTEN: expected HOST:PORT, got `nope`"
    assert found[1].startswith("--grace-period: invalid duration `x`")
    assert problems(["--policies", "p", "--tls-cert", "c"]) == [
        "--tls-cert and --tls-key go together"
    ]
    assert problems(["--policies", "p", "--jwks", "j"]) == [
        "--jwks needs --jwt-issuer and --jwt-audience (both are checked)"
    ]


def test_a_public_address_needs_tls_and_authentication() -> None:
    assert is_loopback("127.0.0.1:1") and is_loopback("[::1]:1") and is_loopback("localhost:1")
    assert not is_loopback("0.0.0.0:1") and not is_loopback("10.0.0.1:1")
    assert exposure_problems(Settings(policies="p")) == []
    assert exposure_problems(Settings(policies="p", listen="0.0.0.0:1")) == [
        "gRPC listens on 0.0.0.0:1 without TLS and authentication"
    ]
    tls = TlsFiles("c", "k")
    assert exposure_problems(Settings(policies="p", listen="0.0.0.0:1", tls=tls)) == [
        "gRPC listens on 0.0.0.0:1 without authentication"
    ]
    authed = Settings(policies="p", listen="0.0.0.0:1", tls=tls, auth=AuthSettings(api_keys="k"))
    assert exposure_problems(authed) == []
    metrics = Settings(policies="p", metrics_listen="0.0.0.0:9")
    assert exposure_problems(metrics) == [
        "metrics listens on 0.0.0.0:9 without TLS and authentication"
    ]


def test_serve_refuses_a_public_address_without_insecure(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(
        ["serve", "--policies", str(ROOT / "examples" / "policies"), "--listen", "0.0.0.0:0"]
    )
    assert code == 2


def test_serve_reports_every_settings_problem(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--policies", "p", "--log-level", "loud", "--metrics-port", "x"]) == 2
    err = capsys.readouterr().err
    assert "--log-level: invalid log level `loud`" in err
    assert "--metrics-port: invalid port `x`" in err


def test_http_listener_is_on_by_default_and_can_be_turned_off() -> None:
    assert settings(["--policies", "p"]).http_listen == "127.0.0.1:8080"
    assert settings(["--policies", "p", "--http-listen", "off"]).http_listen == ""
    assert settings(["--policies", "p"], {"ARBITER_HTTP_LISTEN": "127.0.0.1:9090"}).http_listen == (
        "127.0.0.1:9090"
    )
    assert problems(["--policies", "p", "--http-listen", "8080"]) == [
        "--http-listen: expected HOST:PORT, got `8080`"
    ]


def test_cors_origins_from_flag_env_and_file(tmp_path: Path) -> None:
    assert settings(["--policies", "p"]).cors_origins == ()
    assert settings(
        ["--policies", "p", "--cors-origins", "https://a.example, http://127.0.0.1:8000/"]
    ).cors_origins == ("https://a.example", "http://127.0.0.1:8000")
    assert settings(["--policies", "p"], {"ARBITER_CORS_ORIGINS": "*"}).cors_origins == ("*",)
    config = tmp_path / "arbiter.yaml"
    config.write_text(
        "policies: p\nhttp:\n  listen: 127.0.0.1:8181\n  cors_origins: [https://app.example]\n"
    )
    loaded = settings(["--config", str(config)])
    assert (loaded.http_listen, loaded.cors_origins) == ("127.0.0.1:8181", ("https://app.example",))
    assert problems(["--policies", "p", "--cors-origins", "app.example"]) == [
        "--cors-origins: expected http(s)://HOST[:PORT] or *, got `app.example`"
    ]


def test_a_public_http_listener_needs_tls_and_auth() -> None:
    exposed = settings(["--policies", "p", "--http-listen", "0.0.0.0:8080"])
    assert exposure_problems(exposed) == [
        "HTTP listens on 0.0.0.0:8080 without TLS and authentication"
    ]


def test_workers_default_to_one_per_core_with_redis_and_one_embedded() -> None:
    assert settings(["--policies", "p"]).workers == 1
    cores = len(os.sched_getaffinity(0))
    assert (
        settings(["--policies", "p"], {"ARBITER_REDIS_URL": "redis://127.0.0.1:6390"}).workers
        == cores
    )
    assert (
        settings(
            ["--policies", "p", "--workers", "3", "--redis-url", "redis://127.0.0.1:6390"]
        ).workers
        == 3
    )
    assert settings(["--policies", "p", "--max-concurrent-calls", "8"]).max_concurrent_calls == 8
    assert settings(["--policies", "p"]).max_concurrent_calls == 16


def test_max_pending_calls_bounds_the_calls_grpc_core_holds() -> None:
    from arbiter.server.app import grpc_server_options

    defaults = dict(grpc_server_options(settings(["--policies", "p"]), shared=True))
    assert defaults["grpc.server.max_pending_requests"] == 1000  # gRPC's own defaults
    assert defaults["grpc.server.max_pending_requests_hard_limit"] == 3000
    assert defaults["grpc.so_reuseport"] == 1
    chosen = settings(["--policies", "p", "--max-pending-calls", "30"])
    assert chosen.max_pending_calls == 30
    options = dict(grpc_server_options(chosen, shared=False))
    assert options["grpc.server.max_pending_requests"] == 10
    assert options["grpc.server.max_pending_requests_hard_limit"] == 30
    assert options["grpc.so_reuseport"] == 0
    with pytest.raises(ConfigError, match="at least 1"):
        settings(["--policies", "p", "--max-pending-calls", "0"])


def test_more_than_one_worker_on_the_embedded_store_is_refused_with_why() -> None:
    found = problems(["--policies", "p", "--workers", "2"])
    assert len(found) == 1
    assert "--workers 2 needs --redis-url" in found[0]
    assert "diverge" in found[0]
    assert problems(["--policies", "p", "--workers", "0"]) == ["--workers: must be at least 1: 0"]


def test_observability_options_from_flags_environment_and_file(tmp_path: Path) -> None:
    config = tmp_path / "arbiter.yaml"
    config.write_text(
        "policies: pol\nlog_format: json\naccess_log: true\n"
        "decision_log: {sink: /var/log/arbiter/decisions.jsonl, sample: 0.25, pii_key: key.txt,"
        " buffer: 5000, max_bytes: 1000000, max_entries: 20000}\n"
    )
    loaded = settings(["--config", str(config)])
    assert (loaded.log_format, loaded.access_log) == ("json", True)
    assert loaded.decision_log == "/var/log/arbiter/decisions.jsonl"
    assert loaded.decision_log_sample == 0.25
    assert loaded.decision_log_pii_key == str(tmp_path / "key.txt")  # relative to the file
    assert (loaded.decision_log_buffer, loaded.decision_log_max_bytes) == (5000, 1_000_000)
    assert loaded.decision_log_max_entries == 20_000
    env = {"ARBITER_DECISION_LOG": "off", "ARBITER_LOG_FORMAT": "text"}
    assert settings(["--config", str(config)], env).decision_log == ""
    flags = settings(["--policies", "p", "--decision-log", "d.jsonl", "--decision-log-sample", "1"])
    assert (flags.decision_log, flags.decision_log_sample, flags.log_format) == (
        "d.jsonl",
        1.0,
        "text",
    )


def test_bad_observability_options_are_named() -> None:
    assert problems(
        [
            "--policies",
            "p",
            "--log-format",
            "xml",
            "--decision-log-sample",
            "2",
            "--decision-log-buffer",
            "0",
        ]
    ) == [
        "--log-format: invalid log format `xml`: use text or json",
        "--decision-log-sample: expected a rate between 0 and 1, got `2`",
        "--decision-log-buffer: must be at least 1: 0",
    ]
    assert problems(["--policies", "p", "--decision-log", "redis"]) == [
        "--decision-log redis needs --redis-url (or give a redis:// URL)"
    ]


def test_a_decision_log_file_is_for_one_process() -> None:
    found = problems(
        [
            "--policies",
            "p",
            "--redis-url",
            "redis://h:1",
            "--workers",
            "2",
            "--decision-log",
            "d.jsonl",
        ]
    )
    assert found == [
        "--decision-log FILE with --workers 2: the file sink is for one process; "
        "use --decision-log redis (the stream on --redis-url)"
    ]
    shared = ["--policies", "p", "--redis-url", "redis://h:1", "--workers", "2"]
    assert settings([*shared, "--decision-log", "redis"]).decision_log == "redis"


def test_the_state_file_from_flags_environment_and_file(tmp_path: Path) -> None:
    config = tmp_path / "arbiter.yaml"
    config.write_text("policies: pol\nstate_file: {path: dev.state, interval: 10s}\n")
    loaded = settings(["--config", str(config)])
    assert loaded.state_file == str(tmp_path / "dev.state")  # relative to the file
    assert loaded.state_file_interval_s == 10.0
    flags = settings(["--policies", "p", "--state-file", "s.arb", "--state-file-interval", "2"])
    assert (flags.state_file, flags.state_file_interval_s) == ("s.arb", 2.0)
    assert settings(["--policies", "p"], {"ARBITER_STATE_FILE": "e.arb"}).state_file == "e.arb"
    assert settings(["--policies", "p"]).state_file == ""


def test_the_state_file_is_for_the_embedded_store() -> None:
    assert problems(["--policies", "p", "--redis-url", "redis://h:1", "--state-file", "s.arb"]) == [
        "--state-file is for the embedded store; with --redis-url the state lives in Redis"
    ]
    assert problems(["--policies", "p", "--state-file", "s", "--state-file-interval", "0"]) == [
        "--state-file-interval must be > 0"
    ]
