"""Log lines: JSON objects with the call's fields, text lines with them in brackets, and the access line's level."""

from __future__ import annotations

import io
import json
import logging

import pytest

from arbiter.server.logs import CALL, CallContext, JsonFormatter, TextFormatter, configure
from arbiter.server.rpc_metrics import RpcObserver


def _capture(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger = logging.getLogger(f"arbiter.test.{id(stream)}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_json_lines_carry_the_call_and_extra_fields() -> None:
    logger, stream = _capture(JsonFormatter())
    call = CallContext("Decide", "grpc", "req-1")
    token = CALL.set(call)
    try:
        call.decision_id = "d-1"
        logger.warning("store slow: %s", "load", extra={"duration_ms": 3.5})
    finally:
        CALL.reset(token)
    logger.info("outside a call")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "store slow: load" and first["level"] == "warning"
    assert (first["rpc"], first["transport"], first["request_id"], first["decision_id"]) == (
        "Decide",
        "grpc",
        "req-1",
        "d-1",
    )
    assert first["duration_ms"] == 3.5 and first["time"].endswith("Z")
    assert "rpc" not in second and second["message"] == "outside a call"


def test_json_lines_keep_a_traceback_in_one_field() -> None:
    logger, stream = _capture(JsonFormatter())
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("unexpected (ref abc)")
    (line,) = stream.getvalue().splitlines()
    record = json.loads(line)
    assert "RuntimeError: boom" in record["exception"]


def test_text_lines_show_the_call_in_brackets() -> None:
    logger, stream = _capture(TextFormatter())
    token = CALL.set(CallContext("Check", "connect", "req-9"))
    try:
        logger.warning("customer state unavailable")
    finally:
        CALL.reset(token)
    assert (
        stream.getvalue()
        .rstrip()
        .endswith("customer state unavailable [rpc=Check transport=connect request_id=req-9]")
    )


def test_access_lines_are_info_when_on_and_only_server_failures_when_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="arbiter.access")
    for access_log, code, logged in (
        (True, "OK", logging.INFO),
        (False, "OK", None),
        (False, "INVALID_ARGUMENT", None),
        (False, "UNAVAILABLE", logging.WARNING),
    ):
        caplog.clear()
        observer = RpcObserver(access_log=access_log)
        token = observer.begin("Decide", "grpc", None)
        observer.end(token, code, 0.00042, "d-7")
        levels = [r.levelno for r in caplog.records if r.name == "arbiter.access"]
        assert levels == ([] if logged is None else [logged]), (access_log, code)
        if logged is not None:
            record = caplog.records[-1]
            assert record.getMessage() == f"Decide {code} 0.42ms"
            assert record.__dict__["status"] == code


def test_configure_installs_one_handler_in_the_format(capsys: pytest.CaptureFixture[str]) -> None:
    root = logging.getLogger()
    saved = (root.level, list(root.handlers))
    try:
        configure("warning", "json")
        logging.getLogger("arbiter.test").warning("hello")
        logging.getLogger("arbiter.test").info("hidden")
        err = capsys.readouterr().err.splitlines()
        assert [json.loads(line)["message"] for line in err] == ["hello"]
    finally:
        root.handlers = saved[1]
        root.setLevel(saved[0])


def test_failure_lines_repeat_once_per_interval_with_a_count(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from arbiter.server import rpc_metrics

    clock = [1000.0]
    monkeypatch.setattr(rpc_metrics.time, "monotonic", lambda: clock[0])
    caplog.set_level(logging.WARNING, logger="arbiter.access")
    observer = RpcObserver()
    for _ in range(50):  # an outage: every call fails alike
        observer.end(observer.begin("Track", "grpc", None), "UNAVAILABLE", 0.001)
    clock[0] += rpc_metrics.REPEAT_INTERVAL_S
    observer.end(observer.begin("Track", "grpc", None), "UNAVAILABLE", 0.001)
    observer.end(observer.begin("Decide", "grpc", None), "UNAVAILABLE", 0.001)
    lines = [r for r in caplog.records if r.name == "arbiter.access"]
    assert [(r.getMessage().split()[0], r.__dict__.get("repeated")) for r in lines] == [
        ("Track", None),
        ("Track", 49),
        ("Decide", None),
    ]
