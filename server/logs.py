"""Server logs: text or one JSON object per line (``--log-format``), with the call's RPC, request id and decision id on every line.

:func:`configure` installs one stderr handler on the root logger.
:data:`CALL` is the context of the call being served (set by the RPC
observer, :mod:`arbiter.server.rpc_metrics`, on both transports): every
line logged while the call runs carries its ``rpc``, ``transport`` and
``request_id``, so the warnings of one call can be found by its request
id. The access line of a call (logger ``arbiter.access``) adds
``decision_id``, ``status`` and ``duration_ms``.

What never goes into a log line: customer attribute values, consent,
context values, tokens. Messages name fields, never their values (the
error table's rule, ``server/errors.py``); a test sends canary values
through every RPC and searches the logs for them.
"""

from __future__ import annotations

import contextvars
import datetime as _dt
import json
import logging
import sys
import time
from typing import Any, Final, Literal

__all__ = [
    "CALL",
    "LOG_FORMATS",
    "CallContext",
    "JsonFormatter",
    "TextFormatter",
    "Throttled",
    "configure",
]

LOG_FORMATS: Final = ("text", "json")
LogFormat = Literal["text", "json"]

# Attributes every LogRecord has; anything else a caller passed in ``extra`` is a field.
_STANDARD: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys() | {"message", "asctime"}
)


class CallContext:
    """The call a log line belongs to (mutable: the decision id is known late)."""

    __slots__ = ("decision_id", "request_id", "rpc", "transport")

    def __init__(self, rpc: str, transport: str, request_id: str = "") -> None:
        self.rpc = rpc
        self.transport = transport
        self.request_id = request_id
        self.decision_id = ""

    def fields(self) -> dict[str, str]:
        out = {"rpc": self.rpc, "transport": self.transport}
        if self.request_id:
            out["request_id"] = self.request_id
        if self.decision_id:
            out["decision_id"] = self.decision_id
        return out


CALL: Final[contextvars.ContextVar[CallContext | None]] = contextvars.ContextVar(
    "arbiter_call", default=None
)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The structured fields of ``record``: the call's context, then the caller's ``extra``."""
    call = CALL.get()
    out: dict[str, Any] = call.fields() if call is not None else {}
    for key, value in record.__dict__.items():
        if key not in _STANDARD and not key.startswith("_"):
            out[key] = value
    return out


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time``, ``level``, ``logger``, ``message``, the call's fields,
    ``extra`` fields, and ``exception`` (the traceback text) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = _dt.datetime.fromtimestamp(record.created, tz=_dt.UTC)
        line: dict[str, Any] = {
            "time": stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(_fields(record))
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message`` and, on a call's lines, ``[rpc request_id=...]``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = _fields(record)
        if not fields:
            return text
        head, sep, tail = text.partition("\n")  # keep a traceback below the first line
        rendered = " ".join(f"{k}={v}" for k, v in fields.items() if k != "audit")
        return f"{head} [{rendered}]{sep}{tail}" if rendered else text


class Throttled:
    """Warnings that every call repeats during an outage: one line per ``key`` every
    ``interval_s``, the next one saying how many were left out (field ``repeated``).

    A store outage degrades every call alike; a line per call would write as many lines
    per second as the server answers calls and bury the one that says what happened.
    ``key`` must come from a small set (a message and an exception class, never an id).
    """

    def __init__(self, logger: logging.Logger, interval_s: float = 10.0) -> None:
        self._logger = logger
        self._interval_s = interval_s
        self._last: dict[str, tuple[float, int]] = {}

    def warning(self, key: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        last, dropped = self._last.get(key, (-self._interval_s, 0))
        if now - last < self._interval_s:
            self._last[key] = (last, dropped + 1)
            return
        self._last[key] = (now, 0)
        if dropped:
            message += " (%d more like it left out in the last %.0fs)"
            args = (*args, dropped, now - last)
        self._logger.warning(message, *args, extra={"repeated": dropped} if dropped else None)


def configure(level: str = "info", log_format: LogFormat = "text") -> None:
    """Log to stderr at ``level`` in ``log_format`` (replaces the root logger's handlers)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    numeric = getattr(logging, level.upper())
    root.setLevel(numeric)
    # gRPC's own debug chatter (one line per call) is not ours to show.
    logging.getLogger("grpc").setLevel(max(numeric, logging.INFO))
