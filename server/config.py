"""Server settings: flags, ``ARBITER_*`` environment variables and an optional YAML config file.

Precedence: flag > environment variable > config file (``--config``) >
built-in default. Every option is one row of :data:`OPTIONS`; the config
file (schema :class:`ConfigFile`, validated with ``file:line:col`` errors
like policy files) also holds what does not fit on a command line: mTLS
identities and JWT claim names. Relative paths in the file are relative to
the file's directory. The options, their variables and the file layout are
documented in README "Run the server" and ``docs/security.md``.

Durations accept the policy syntax (``250ms``, ``10s``, ``24h``, ``1h30m``)
or a plain number of seconds (``2.5``).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import msgspec

from arbiter.policies import load_document, parse_duration_ms
from arbiter.server.security.credentials import (
    DEFAULT_ALGORITHMS,
    AuthSettings,
    JwtSettings,
    MtlsIdentity,
)
from arbiter.server.security.identity import Role
from arbiter.server.security.tls import TlsFiles

__all__ = [
    "DEFAULT_HTTP_LISTEN",
    "DEFAULT_LISTEN",
    "OPTIONS",
    "ConfigError",
    "ConfigFile",
    "Settings",
    "add_arguments",
    "default_workers",
    "exposure_problems",
    "is_loopback",
    "parse_seconds",
    "settings_from_args",
]

DEFAULT_LISTEN: Final = "127.0.0.1:50051"
DEFAULT_HTTP_LISTEN: Final = "127.0.0.1:8080"
_LEVELS: Final = ("debug", "info", "warning", "error", "critical")


class ConfigError(Exception):
    """Settings that cannot be used; ``problems`` lists every one (``file:line:col: ...`` for the file)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything ``arbiter serve`` needs to run; immutable."""

    policies: str
    listen: str = DEFAULT_LISTEN
    redis_url: str = ""
    log_level: str = "info"
    grace_period_s: float = 10.0
    drain_delay_s: float = 0.0
    idempotency_ttl_s: float = 24 * 3600.0
    metrics_port: int = 0
    metrics_listen: str = ""
    store_timeout_s: float = 0.25
    tls: TlsFiles | None = None
    auth: AuthSettings = field(default_factory=AuthSettings)
    insecure: bool = False
    # Connect / gRPC-Web / JSON listener; empty = none (the CLI turns it on by default).
    http_listen: str = ""
    # Browser origins allowed by CORS on the HTTP listener (``*`` = any); empty = no CORS.
    cors_origins: tuple[str, ...] = ()
    redis_allow_eviction: bool = False
    # Serving processes on the ports (``SO_REUSEPORT``); more than one needs Redis.
    workers: int = 1
    # Calls handled at once per process; further calls wait in a bounded queue, or are refused.
    max_concurrent_calls: int = 16
    # Calls gRPC's core holds before the event loop takes them: past a third of this some,
    # past all of it every new call is refused in C, before any Python work (gRPC's defaults).
    max_pending_calls: int = 3000
    # Logs: ``text`` or ``json`` lines; ``access_log``: one INFO line per call.
    log_format: str = "text"
    access_log: bool = False
    # The decision log (docs/observability.md): a JSON Lines file, ``redis`` (the stream on
    # redis_url) or a redis:// URL; empty = off.
    decision_log: str = ""
    decision_log_sample: float = 0.01
    decision_log_pii_key: str = ""  # file holding the HMAC key for personal fields
    decision_log_buffer: int = 100_000
    decision_log_max_bytes: int = 256 * 1024 * 1024
    decision_log_max_entries: int = 1_000_000
    # The embedded store's state file (docs/runbook.md, "The embedded state file"); empty = off.
    state_file: str = ""
    state_file_interval_s: float = 30.0
    watch: bool = False
    policy_history: int = 10
    # OpenTelemetry: spans of Decide to this OTLP/HTTP endpoint; empty = tracing off.
    otlp_endpoint: str = ""

    @property
    def metrics_address(self) -> str:
        """Where ``/metrics`` listens (``HOST:PORT``), or ``""`` when off."""
        if self.metrics_listen:
            return self.metrics_listen
        if self.metrics_port:
            return f"{self.listen.rpartition(':')[0]}:{self.metrics_port}"
        return ""


# --------------------------------------------------------------------------- value parsers


def parse_seconds(text: str) -> float:
    """``"2.5"`` -> 2.5; ``"250ms"``, ``"10s"``, ``"24h"`` -> seconds. ``ValueError`` if invalid."""
    stripped = str(text).strip()
    try:
        value = float(stripped)
    except ValueError:
        value = parse_duration_ms(stripped) / 1000.0
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"invalid duration `{text}`")
    return value


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError as exc:
        raise ValueError(f"invalid port `{text}`") from exc
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range: {port}")
    return port


def _listen(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"expected HOST:PORT, got `{text}`")
    return text


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise ValueError(f"invalid number `{text}`") from exc
    if value < 1:
        raise ValueError(f"must be at least 1: {value}")
    return value


def default_workers(redis_url: str) -> int:
    """Worker processes when ``--workers`` is not given: one per core the process may run on
    with Redis (state is shared), one with the embedded store (state lives in the process)."""
    if not redis_url:
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _level(text: str) -> str:
    if text.lower() not in _LEVELS:
        raise ValueError(f"invalid log level `{text}`: use one of {', '.join(_LEVELS)}")
    return text.lower()


def _bool(text: str) -> bool:
    lowered = str(text).strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("", "0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got `{text}`")


def _text(text: str) -> str:
    return str(text)


def _log_format(text: str) -> str:
    if str(text).strip().lower() not in ("text", "json"):
        raise ValueError(f"invalid log format `{text}`: use text or json")
    return str(text).strip().lower()


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise ValueError(f"expected a rate between 0 and 1, got `{text}`") from exc
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"expected a rate between 0 and 1, got `{text}`")
    return value


def _sink(text: str) -> str:
    """A decision log destination: a file path, ``redis`` or a redis:// URL; ``off`` = none."""
    stripped = str(text).strip()
    return "" if stripped.lower() in ("", "off", "none") else stripped


def _http_listen(text: str) -> str:
    """``HOST:PORT``, or ``off`` / empty for no HTTP listener."""
    if str(text).strip().lower() in ("", "off", "none"):
        return ""
    return _listen(str(text))


def _origins(text: str) -> tuple[str, ...]:
    """``"https://a.example, https://b.example"`` -> a tuple; ``*`` allows any origin."""
    origins = tuple(o.strip().rstrip("/") for o in str(text).split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ValueError(f"expected http(s)://HOST[:PORT] or *, got `{origin}`")
    return origins


def is_loopback(host_port: str) -> bool:
    """Whether ``HOST:PORT`` listens on a loopback address only (``localhost``, ``127.x``, ``::1``)."""
    host = host_port.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------- the options


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its flag, ``ARBITER_*`` variable, key in the config file, parser and default."""

    dest: str
    key: str  # dotted path in the config file
    parse: Callable[[str], Any]
    default: Any
    help: str
    metavar: str | None = None

    @property
    def flag(self) -> str:
        return "--" + self.dest.replace("_", "-")

    @property
    def env(self) -> str:
        return "ARBITER_" + self.dest.upper()


OPTIONS: Final[tuple[Option, ...]] = (
    Option("policies", "policies", _text, None, "policy set directory", "DIR"),
    Option("listen", "listen", _listen, DEFAULT_LISTEN, "gRPC listen address", "HOST:PORT"),
    Option("redis_url", "redis_url", _text, "", "Redis URL; empty = embedded in-memory store", "URL"),
    Option("log_level", "log_level", _level, "info", "debug, info, warning, error", "LEVEL"),
    Option("grace_period", "grace_period", parse_seconds, 10.0, "in-flight calls' time on SIGTERM", "D"),
    Option("drain_delay", "drain_delay", parse_seconds, 0.0, "on SIGTERM, serve this long with health NOT_SERVING before refusing new calls", "D"),
    Option("idempotency_ttl", "idempotency_ttl", parse_seconds, 86400.0, "how long a Decide/Check request_id replays", "D"),
    Option("store_timeout", "store_timeout", parse_seconds, 0.25, "store call bound when the caller set no deadline", "D"),
    Option("metrics_port", "metrics.port", _port, 0, "Prometheus /metrics port on the gRPC host; 0 = off", "PORT"),
    Option("metrics_listen", "metrics.listen", _text, "", "Prometheus /metrics on its own address", "HOST:PORT"),
    Option("tls_cert", "tls.cert", _text, "", "server certificate chain (PEM); enables TLS", "FILE"),
    Option("tls_key", "tls.key", _text, "", "server private key (PEM)", "FILE"),
    Option("tls_client_ca", "tls.client_ca", _text, "", "CA of client certificates; requires mutual TLS", "FILE"),
    Option("jwks", "auth.jwt.jwks", _text, "", "JWKS file or https URL; enables JWT bearer tokens", "FILE|URL"),
    Option("jwt_issuer", "auth.jwt.issuer", _text, "", "required JWT `iss`", "ISSUER"),
    Option("jwt_audience", "auth.jwt.audience", _text, "", "required JWT `aud`", "AUDIENCE"),
    Option("api_keys", "auth.api_keys", _text, "", "API key file (hashed keys, roles)", "FILE"),
    Option("http_listen", "http.listen", _http_listen, DEFAULT_HTTP_LISTEN, "HTTP address for Connect (JSON, binary), gRPC-Web and curl; `off` = none", "HOST:PORT"),
    Option("cors_origins", "http.cors_origins", _origins, (), "browser origins allowed to call the HTTP port (comma-separated; `*` = any)", "ORIGINS"),
    Option("insecure", "insecure", _bool, False, "allow a non-loopback address without TLS and auth"),
    Option("redis_allow_eviction", "redis_allow_eviction", _bool, False, "serve on a Redis whose maxmemory-policy evicts keys (an evicted consent or cap is forgotten)"),
    Option("workers", "workers", _count, None, "serving processes sharing the ports (default: one per core with --redis-url, else 1; more than 1 needs --redis-url)", "N"),
    Option("max_concurrent_calls", "max_concurrent_calls", _count, 16, "DecisionService calls handled at once per process; more wait briefly or are refused RESOURCE_EXHAUSTED", "N"),
    Option("max_pending_calls", "max_pending_calls", _count, 3000, "calls gRPC holds per process while the event loop is busy; past N/3 some and past N all new calls are refused at once by gRPC's core (a burst beyond it is cancelled, not queued)", "N"),
    Option("log_format", "log_format", _log_format, "text", "log lines as `text` or `json` (one object per line)", "FORMAT"),
    Option("access_log", "access_log", _bool, False, "log one line per call (rpc, status, duration, request and decision id)"),
    Option("decision_log", "decision_log.sink", _sink, "", "decision log: a JSON Lines FILE, `redis` (a stream on --redis-url) or a redis:// URL; `off` = none", "DEST"),
    Option("decision_log_sample", "decision_log.sample", _rate, 0.01, "share of dry runs and Checks logged (committed decisions: all)", "RATE"),
    Option("decision_log_pii_key", "decision_log.pii_key", _text, "", "file with a secret key: personal fields become HMAC pseudonyms (else ***)", "FILE"),
    Option("decision_log_buffer", "decision_log.buffer", _count, 100_000, "records queued for the sink before new ones are dropped (and counted)", "N"),
    Option("decision_log_max_bytes", "decision_log.max_bytes", _count, 256 * 1024 * 1024, "file sink: rotate to FILE.1 past this size", "BYTES"),
    Option("decision_log_max_entries", "decision_log.max_entries", _count, 1_000_000, "Redis sink: trim the stream to about this many records", "N"),
    Option("state_file", "state_file.path", _text, "", "embedded store: keep customer state in FILE across restarts (read on start, written atomically every --state-file-interval and on shutdown)", "FILE"),
    Option("state_file_interval", "state_file.interval", parse_seconds, 30.0, "how often the state file is written when something changed", "D"),
    Option("watch", "watch", _bool, False, "reload the policy directory when its files change (development), through the activation gate; SIGHUP reloads it too"),
    Option("policy_history", "policy_history", _count, 10, "policy versions kept for rollback (in Redis with --redis-url)", "N"),
    Option("otlp_endpoint", "otlp_endpoint", _text, "", "OpenTelemetry: send spans of Decide (validate, load, decide, commit) to this OTLP/HTTP endpoint, e.g. http://collector:4318; empty = off", "URL"),
)  # fmt: skip


# --------------------------------------------------------------------------- the config file

Duration = str | float
RoleName = Literal["decide", "ingest", "admin", "privacy", "metrics"]


class TlsSection(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    cert: str | None = None
    key: str | None = None
    client_ca: str | None = None


class JwtSection(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    jwks: str | None = None
    issuer: str | None = None
    audience: str | None = None
    algorithms: list[str] | None = None
    leeway: Duration = 30.0
    roles_claim: str = "roles"
    customer_claim: str = "customer_id"
    placements_claim: str = "placements"


class MtlsEntry(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    identity: str
    roles: list[RoleName]
    placements: list[str] | None = None


class AuthSection(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    jwt: JwtSection | None = None
    api_keys: str | None = None
    mtls: list[MtlsEntry] = []


class MetricsSection(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    listen: str | None = None
    port: int | None = None


class HttpSection(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    listen: str | None = None
    cors_origins: list[str] | None = None


class DecisionLogSection(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    sink: str | None = None
    sample: float | None = None
    pii_key: str | None = None
    buffer: int | None = None
    max_bytes: int | None = None
    max_entries: int | None = None


class StateFileSection(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    path: str | None = None
    interval: Duration | None = None


class ConfigFile(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """``arbiter serve --config FILE``: every option of :data:`OPTIONS`, nested as in its key."""

    policies: str | None = None
    listen: str | None = None
    redis_url: str | None = None
    log_level: str | None = None
    grace_period: Duration | None = None
    drain_delay: Duration | None = None
    idempotency_ttl: Duration | None = None
    store_timeout: Duration | None = None
    insecure: bool | None = None
    redis_allow_eviction: bool | None = None
    workers: int | None = None
    max_concurrent_calls: int | None = None
    max_pending_calls: int | None = None
    log_format: str | None = None
    access_log: bool | None = None
    decision_log: DecisionLogSection | None = None
    state_file: StateFileSection | None = None
    otlp_endpoint: str | None = None
    watch: bool | None = None
    policy_history: int | None = None
    metrics: MetricsSection | None = None
    http: HttpSection | None = None
    tls: TlsSection | None = None
    auth: AuthSection | None = None


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}{key}.")
    elif value is not None:
        yield prefix[:-1], value


_PATH_KEYS: Final = (
    "policies",
    "tls.cert",
    "tls.key",
    "tls.client_ca",
    "auth.api_keys",
    "decision_log.pii_key",
    "state_file.path",
)


def _check_file(config: ConfigFile) -> Iterator[tuple[tuple[str | int, ...], str]]:
    flat = dict(_flatten(msgspec.to_builtins(config)))
    for option in OPTIONS:
        if option.key in flat and option.parse is not _text:
            try:
                raw = flat[option.key]
                option.parse(",".join(map(str, raw)) if isinstance(raw, list) else str(raw))
            except ValueError as exc:
                yield tuple(option.key.split(".")), str(exc)
    jwt_section = config.auth.jwt if config.auth else None
    if jwt_section is not None:
        try:
            parse_seconds(str(jwt_section.leeway))
        except ValueError as exc:
            yield ("auth", "jwt", "leeway"), str(exc)


def read_config_file(path: str) -> tuple[dict[str, Any], ConfigFile]:
    """The options set in a config file (by dest, relative paths resolved) and the file itself."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"cannot read config file {path}: {exc.strerror or exc}"]) from exc
    config, diagnostics = load_document(path, text, ConfigFile, _check_file)
    if config is None:
        raise ConfigError([str(d) for d in diagnostics])
    base = Path(path).resolve().parent
    flat = dict(_flatten(msgspec.to_builtins(config)))
    values: dict[str, Any] = {}
    for option in OPTIONS:
        if option.key in flat:
            raw = flat[option.key]
            if option.key in _PATH_KEYS:
                raw = str(base / raw)
            if isinstance(raw, bool):
                values[option.dest] = raw
            else:
                values[option.dest] = option.parse(
                    ",".join(map(str, raw)) if isinstance(raw, list) else str(raw)
                )
    return values, config


# --------------------------------------------------------------------------- flags + env + file


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str] | None = None) -> None:
    """Add the server flags to ``parser``; ``env`` (``os.environ``) is read by :func:`settings_from_args`."""
    parser.set_defaults(_env=dict(os.environ if env is None else env))
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="YAML config file; flags and ARBITER_* variables override it [ARBITER_CONFIG]",
    )
    for option in OPTIONS:
        default = "" if option.default in (None, "", ()) else f" (default {option.default})"
        if option.parse is _bool:
            parser.add_argument(
                option.flag,
                action="store_const",
                const="true",
                default=None,
                help=f"{option.help} [{option.env}]",
            )
            continue
        parser.add_argument(
            option.flag,
            metavar=option.metavar,
            default=None,
            help=f"{option.help} [{option.env}]{default}",
        )


def _gather(args: argparse.Namespace) -> tuple[dict[str, Any], ConfigFile | None, list[str]]:
    env: Mapping[str, str] = getattr(args, "_env", os.environ)
    problems: list[str] = []
    values: dict[str, Any] = {o.dest: o.default for o in OPTIONS}
    config_path = args.config or env.get("ARBITER_CONFIG", "")
    config: ConfigFile | None = None
    if config_path:
        file_values, config = read_config_file(config_path)
        values.update(file_values)
    for option in OPTIONS:
        flag_value = getattr(args, option.dest, None)
        for source, raw in ((option.env, env.get(option.env)), (option.flag, flag_value)):
            if raw is None:
                continue
            try:
                values[option.dest] = option.parse(raw)
            except ValueError as exc:
                problems.append(f"{source}: {exc}")
    return values, config, problems


def _auth(values: Mapping[str, Any], config: ConfigFile | None) -> AuthSettings:
    section = config.auth if config and config.auth else AuthSection()
    jwt_file = section.jwt or JwtSection()
    jwt = None
    if values["jwks"]:
        jwt = JwtSettings(
            jwks=values["jwks"],
            issuer=values["jwt_issuer"],
            audience=values["jwt_audience"],
            algorithms=tuple(jwt_file.algorithms or DEFAULT_ALGORITHMS),
            leeway_s=parse_seconds(str(jwt_file.leeway)),
            roles_claim=jwt_file.roles_claim,
            customer_claim=jwt_file.customer_claim,
            placements_claim=jwt_file.placements_claim,
        )
    mtls = tuple(
        MtlsIdentity(
            e.identity,
            frozenset(Role(r) for r in e.roles),
            None if e.placements is None else frozenset(e.placements),
        )
        for e in section.mtls
    )
    return AuthSettings(jwt=jwt, api_keys=values["api_keys"], mtls=mtls)


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The :class:`Settings` of a namespace parsed with :func:`add_arguments`; :class:`ConfigError` lists every problem."""
    values, config, problems = _gather(args)
    if not values["policies"]:
        problems.append(
            "--policies (or ARBITER_POLICIES, or `policies:` in the config file) is required"
        )
    if bool(values["tls_cert"]) != bool(values["tls_key"]):
        problems.append("--tls-cert and --tls-key go together")
    if values["tls_client_ca"] and not values["tls_cert"]:
        problems.append("--tls-client-ca needs --tls-cert and --tls-key")
    if values["jwks"] and not (values["jwt_issuer"] and values["jwt_audience"]):
        problems.append("--jwks needs --jwt-issuer and --jwt-audience (both are checked)")
    if (values["jwt_issuer"] or values["jwt_audience"]) and not values["jwks"]:
        problems.append("--jwt-issuer/--jwt-audience need --jwks")
    workers = values["workers"] or default_workers(values["redis_url"])
    if workers > 1 and not values["redis_url"]:
        problems.append(
            f"--workers {workers} needs --redis-url: with the embedded store every worker would "
            "keep its own customer state (caps, consent and idempotency would diverge); "
            "use --workers 1 or share state in Redis"
        )
    if values["decision_log"] == "redis" and not values["redis_url"]:
        problems.append("--decision-log redis needs --redis-url (or give a redis:// URL)")
    elif workers > 1 and values["decision_log"] and not values["decision_log"].startswith("redis"):
        problems.append(
            f"--decision-log FILE with --workers {workers}: the file sink is for one process; "
            "use --decision-log redis (the stream on --redis-url)"
        )
    if values["state_file"] and values["redis_url"]:
        problems.append(
            "--state-file is for the embedded store; with --redis-url the state lives in Redis"
        )
    if values["state_file_interval"] <= 0:
        problems.append("--state-file-interval must be > 0")
    if values["metrics_listen"]:
        try:
            _listen(values["metrics_listen"])
        except ValueError as exc:
            problems.append(f"metrics listen address: {exc}")
    if problems:
        raise ConfigError(problems)
    tls = None
    if values["tls_cert"]:
        tls = TlsFiles(values["tls_cert"], values["tls_key"], values["tls_client_ca"])
    return Settings(
        policies=values["policies"],
        listen=values["listen"],
        redis_url=values["redis_url"],
        log_level=values["log_level"],
        grace_period_s=values["grace_period"],
        drain_delay_s=values["drain_delay"],
        idempotency_ttl_s=values["idempotency_ttl"],
        metrics_port=values["metrics_port"],
        metrics_listen=values["metrics_listen"],
        store_timeout_s=values["store_timeout"],
        tls=tls,
        auth=_auth(values, config),
        insecure=values["insecure"],
        http_listen=values["http_listen"],
        cors_origins=values["cors_origins"],
        redis_allow_eviction=values["redis_allow_eviction"],
        workers=workers,
        max_concurrent_calls=values["max_concurrent_calls"],
        max_pending_calls=values["max_pending_calls"],
        log_format=values["log_format"],
        access_log=values["access_log"],
        decision_log=values["decision_log"],
        decision_log_sample=values["decision_log_sample"],
        decision_log_pii_key=values["decision_log_pii_key"],
        decision_log_buffer=values["decision_log_buffer"],
        decision_log_max_bytes=values["decision_log_max_bytes"],
        decision_log_max_entries=values["decision_log_max_entries"],
        state_file=values["state_file"],
        state_file_interval_s=values["state_file_interval"],
        otlp_endpoint=values["otlp_endpoint"],
        watch=values["watch"],
        policy_history=values["policy_history"],
    )


def exposure_problems(settings: Settings) -> list[str]:
    """What is unsafe about the addresses: a non-loopback one without TLS or without authentication."""
    problems = []
    missing = [
        what
        for what, ok in (
            ("TLS", settings.tls is not None),
            ("authentication", settings.auth.enabled),
        )
        if not ok
    ]
    if missing:
        for name, address in (
            ("gRPC", settings.listen),
            ("HTTP", settings.http_listen),
            ("metrics", settings.metrics_address),
        ):
            if address and not is_loopback(address):
                problems.append(f"{name} listens on {address} without {' and '.join(missing)}")
    return problems
