"""Server CPU of the worst requests the request limits allow (``make bench-limits``).

Each request is decoded from its bytes and run through
:meth:`~arbiter.server.service.DecisionCore.invoke` on the embedded store
with the example policies, in this process, one at a time: the CPU time
(``time.process_time``) is what the event loop is held for while that call
runs -- every other call on the process waits as long. The limits are those
of :mod:`arbiter.server.parse` (``MAX_VALUES``, ``MAX_REQUEST_BYTES``, ...);
the target is <= 20 ms for the worst one. A small Decide is the baseline of
the same run (the machine may be shared: compare against it).

    python -m benchmarks.limits_bench [--repeat 20]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from arbiter.server import parse
from arbiter.server.errors import CallFailed
from arbiter.server.registry import PolicyRegistry
from arbiter.server.service import METHODS, Call, DecisionCore
from arbiter.state.memory import MemoryStore
from arbiter.v1 import decision_pb2, value_pb2

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "policies"


def _ts(message: Any) -> None:
    message.FromSeconds(int(time.time()) - 60)


def small_decide() -> decision_pb2.DecideRequest:
    request = decision_pb2.DecideRequest(
        request_id=uuid.uuid4().hex, customer_id="lim-small", placement="home_banner"
    )
    request.context["page_type"].string_value = "home"
    return request


def _wide_list(values: int, chars: int) -> value_pb2.Value:
    value = value_pb2.Value()
    for _ in range(values):
        value.list_value.values.add(string_value="s" * chars)
    return value


def decide_max_values() -> decision_pb2.DecideRequest:
    """MAX_VALUES values in the context: 16 keys, each a list (1 value) of 255 strings."""
    request = small_decide()
    request.customer_id = "lim-values"
    per_key = parse.MAX_COLLECTION - 1
    keys = (parse.MAX_VALUES - 1) // (per_key + 1)
    chars = (parse.MAX_REQUEST_BYTES - 4096) // (keys * per_key) - 8
    for i in range(keys):
        request.context[f"k{i}"].CopyFrom(_wide_list(per_key, max(chars, 1)))
    return request


def decide_max_fields_explained() -> decision_pb2.DecideRequest:
    """Every channel, the highest limit, explain on, every declared context field."""
    request = decision_pb2.DecideRequest(
        request_id=uuid.uuid4().hex,
        customer_id="lim-explain",
        limit=parse.MAX_LIMIT,
        explain=True,
    )
    request.context["page_type"].string_value = "cart"
    request.context["device"].string_value = "ios"
    request.context["cart_value"].double_value = 99.5
    return request


def decide_over_values() -> decision_pb2.DecideRequest:
    """One value more than MAX_VALUES (refused)."""
    request = decide_max_values()
    request.customer_id = "lim-over"
    request.context["extra"].CopyFrom(_wide_list(parse.MAX_COLLECTION - 1, 1))
    return request


def old_worst_decide() -> decision_pb2.DecideRequest:
    """The request of the report (~950k values in 3.9 MB; now over MAX_REQUEST_BYTES too)."""
    request = small_decide()
    request.customer_id = "lim-old"
    inner = value_pb2.Value()
    for _ in range(255):
        inner.list_value.values.add(int_value=1)
    outer = value_pb2.Value()
    for _ in range(255):
        outer.list_value.values.add().CopyFrom(inner)
    for i in range(15):
        request.context[f"k{i}"].CopyFrom(outer)
    return request


def track_max() -> decision_pb2.TrackRequest:
    """MAX_EVENTS events, their properties MAX_VALUES values together."""
    request = decision_pb2.TrackRequest()
    per_event = parse.MAX_VALUES // parse.MAX_EVENTS
    for i in range(parse.MAX_EVENTS):
        event = request.events.add(
            event_id=f"e-{uuid.uuid4().hex}", customer_id=f"lim-t{i % 50}", type="page_view"
        )
        _ts(event.timestamp)
        for j in range(per_event):
            event.properties[f"p{j}"].string_value = "v" * 64
    return request


def profile_max() -> decision_pb2.UpdateProfileRequest:
    request = decision_pb2.UpdateProfileRequest(
        request_id=uuid.uuid4().hex, customer_id="lim-profile", source="crm"
    )
    _ts(request.timestamp)
    for i in range(parse.MAX_FIELDS):
        request.traits[f"t{i}"].string_value = "x" * 1000
    for _ in range(parse.MAX_CONSENTS):
        request.consents.add(purpose="email_marketing", state=decision_pb2.CONSENT_STATE_GRANTED)
    request.segments.segments.extend(f"seg-{i}" for i in range(parse.MAX_SEGMENTS))
    return request


CASES: dict[str, tuple[str, Callable[[], Any]]] = {
    "Decide small (baseline)": ("Decide", small_decide),
    "Decide, explain, limit 100": ("Decide", decide_max_fields_explained),
    "Decide, MAX_VALUES context": ("Decide", decide_max_values),
    "Decide, MAX_VALUES + 255": ("Decide", decide_over_values),
    "Decide of the report (950k values)": ("Decide", old_worst_decide),
    "Track, 500 events": ("Track", track_max),
    "UpdateProfile, every limit": ("UpdateProfile", profile_max),
}


async def measure(repeat: int) -> list[dict[str, Any]]:
    registry = PolicyRegistry()
    registry.load(str(EXAMPLES))
    core = DecisionCore(registry, MemoryStore(), store_timeout_s=5.0, max_concurrent_calls=1)
    rows = []
    for name, (method, build) in CASES.items():
        request_type = METHODS[method][0]
        times, outcome = [], "OK"
        for _ in range(repeat):
            message = build()
            if hasattr(message, "request_id"):
                message.request_id = uuid.uuid4().hex
            body = message.SerializeToString()
            started = time.process_time()
            request = request_type.FromString(body)
            try:
                await core.invoke(method, request, Call.with_timeout(None))
                outcome = "OK"
            except CallFailed as failed:
                outcome = f"{failed.status.code.name}: {failed.status.message[:60]}"
            times.append((time.process_time() - started) * 1000)
        rows.append(
            {
                "request": name,
                "bytes": len(body),
                "over body limit": len(body) > parse.MAX_REQUEST_BYTES,
                "cpu ms median": round(statistics.median(times), 2),
                "cpu ms max": round(max(times), 2),
                "answer": outcome,
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    rows = asyncio.run(measure(args.repeat))
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + "|".join("---" for _ in columns) + "|")
    for row in rows:
        print("| " + " | ".join(str(row[c]) for c in columns) + " |")
    print(
        f"\nlimits: MAX_VALUES={parse.MAX_VALUES} MAX_REQUEST_BYTES={parse.MAX_REQUEST_BYTES} "
        f"MAX_STRING={parse.MAX_STRING} MAX_EVENTS={parse.MAX_EVENTS}; "
        "a request over the body limit is refused by the transport before decoding "
        "(its row shows what decoding and parsing it would cost)"
    )


if __name__ == "__main__":
    main()
