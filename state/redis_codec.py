"""Value encodings of ``RedisStore``: what the Lua scripts store, and how Python reads and writes it.

The layouts are described in :mod:`state.redis_keys` (headers the scripts
compare, opaque msgpack bodies only Python reads). Kept apart from the store
so that the store module is about calls, deadlines and failures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Final

import msgspec

from arbiter.policies.effects import CommitResult, FeedbackRecord, GrantRejection, JourneyChange
from arbiter.policies.snapshot import (
    ConsentRecord,
    EventCounter,
    JourneyState,
    ProfileValue,
    SnapshotNeeds,
)

from .store import StoredDecision

__all__ = [
    "LoadPlan",
    "consent_value",
    "counter_value",
    "decode_caps",
    "decode_commit_result",
    "decode_consent",
    "decode_counter",
    "decode_feedback",
    "decode_journey_value",
    "decode_profile",
    "decode_segments_value",
    "decode_stored",
    "encode",
    "journey_plan",
    "journey_value",
    "load_plan",
    "milliseconds",
    "p_body",
    "pairs",
    "segments_value",
    "text",
    "trait_value",
    "wake_member",
]

encode: Final = msgspec.msgpack.Encoder().encode
_decode_profile = msgspec.msgpack.Decoder(ProfileValue).decode
_decode_consent = msgspec.msgpack.Decoder(ConsentRecord).decode
_decode_journey = msgspec.msgpack.Decoder(JourneyState).decode
decode_feedback: Final = msgspec.msgpack.Decoder(FeedbackRecord).decode
_decode_list = msgspec.msgpack.Decoder(list[Any]).decode
_decode_segments = msgspec.msgpack.Decoder(list[str]).decode
_decode_result = msgspec.msgpack.Decoder(
    tuple[list[str], list[tuple[str, str, str, str]], list[str]]
).decode


class LoadPlan(msgspec.Struct, frozen=True):
    """The ``load.lua`` plan for one ``SnapshotNeeds`` and how to read the reply."""

    blob: bytes  # msgpack {want_journeys, {p fields}, all_events, {event types}, {cap keys}}
    fields: tuple[tuple[str, str], ...]  # (kind "t"/"c"/"g", name) per requested p field
    event_types: tuple[str, ...] | None  # None: all counters were read
    cap_keys: tuple[str, ...]


def load_plan(needs: SnapshotNeeds) -> LoadPlan:
    """What ``load.lua`` must read for ``needs`` (a pure function of it: memoised by the store)."""
    parts = needs.parts
    fields: list[tuple[str, str]] = []
    if "profile" in parts:
        fields += [("t", name) for name in sorted(needs.profile_attributes)]
    if "consent" in parts:
        fields += [("c", name) for name in sorted(needs.consent_purposes)]
    if "segments" in parts:
        fields.append(("g", ""))
    event_types: tuple[str, ...] | None = ()
    if "events" in parts:
        event_types = None if needs.event_types is None else tuple(sorted(needs.event_types))
    cap_keys = tuple(sorted(needs.cap_keys)) if "caps" in parts else ()
    blob = encode(
        [
            1 if "journeys" in parts else 0,
            [_field(kind, name) for kind, name in fields],
            1 if event_types is None else 0,
            list(event_types or ()),
            list(cap_keys),
        ]
    )
    return LoadPlan(blob, tuple(fields), event_types, cap_keys)


def _field(kind: str, name: str) -> str:
    return "g" if kind == "g" else f"{kind}:{name}"


def _split_header(raw: bytes, sep: bytes, start: int = 0) -> tuple[bytes, int]:
    """``<head><sep>rest`` (from ``start``) -> (head, index of rest)."""
    at = raw.index(sep, start)
    return raw[start:at], at + 1


def journey_value(state: JourneyState) -> bytes:
    token = state.last_event_id.encode("utf-8")
    return b"%d:%b%b" % (len(token), token, encode(state))


def decode_journey_value(raw: bytes) -> JourneyState:
    head, at = _split_header(raw, b":")
    return _decode_journey(memoryview(raw)[at + int(head) :])


def trait_value(value: ProfileValue) -> bytes:
    return b"%d|-%b" % (value.updated_ms, encode(value))


def consent_value(record: ConsentRecord) -> bytes:
    flag = b"d" if record.state == "denied" else b"g"
    return b"%d|%b%b" % (record.updated_ms, flag, encode(record))


def segments_value(segments: frozenset[str], updated_ms: int) -> bytes:
    return b"%d|-%b" % (updated_ms, encode(sorted(segments)))


def decode_segments_value(raw: bytes) -> tuple[frozenset[str], int]:
    """The ``g`` field: (segments, updated_ms)."""
    head, at = _split_header(raw, b"|")
    return frozenset(_decode_segments(memoryview(raw)[at + 1 :])), int(head)


def p_body(raw: bytes) -> memoryview:
    _, at = _split_header(raw, b"|")
    return memoryview(raw)[at + 1 :]


def decode_profile(raw: bytes) -> ProfileValue:
    return _decode_profile(p_body(raw))


def decode_consent(raw: bytes) -> ConsentRecord:
    return _decode_consent(p_body(raw))


def decode_counter(raw: bytes) -> EventCounter:
    """``[total, first, last, bucket_ms, [day, n, ...], [month, n, ...], start, n, ...]``;
    a value written before coarse buckets existed has no two lists (read as none)."""
    arr = _decode_list(raw)
    first, last = arr[1], arr[2]
    days: dict[int, int] = {}
    months: dict[int, int] = {}
    at = 4
    if len(arr) > 5 and isinstance(arr[4], list):
        days, months = _pairs_dict(arr[4]), _pairs_dict(arr[5])
        at = 6
    return EventCounter(
        total=arr[0],
        first_ms=None if first is False else first,
        last_ms=None if last is False else last,
        bucket_ms=arr[3],
        buckets=_pairs_dict(arr[at:]),
        days=days,
        months=months,
    )


def _pairs_dict(flat: list[int]) -> dict[int, int]:
    pairs = iter(flat)
    return dict(zip(pairs, pairs, strict=False))  # start, n, start, n, ...


def _flat(buckets: dict[int, int]) -> list[int]:
    flat: list[int] = []
    for start, n in sorted(buckets.items()):
        flat += [start, n]
    return flat


def counter_value(counter: EventCounter) -> bytes:
    flat: list[Any] = [
        counter.total,
        False if counter.first_ms is None else counter.first_ms,
        False if counter.last_ms is None else counter.last_ms,
        counter.bucket_ms,
        _flat(counter.days),
        _flat(counter.months),
    ]
    flat += _flat(counter.buckets)
    return encode(flat)


def decode_caps(raw: bytes, now_ms: int | None) -> list[int]:
    """Grant instants of one cap key; with ``now_ms``, without those past its longest window."""
    arr = _decode_list(raw)
    window = arr[0]
    if now_ms is None or window <= 0:
        return arr[1:]
    since = now_ms - window
    return [t for t in arr[1:] if t > since]


def decode_stored(raw: bytes) -> StoredDecision:
    """An idempotency record: ``<n>:<m>:<result (n)><fingerprint (m)><record>``."""
    n, at = _split_header(raw, b":")
    m, at = _split_header(raw, b":", at)
    mid = at + int(n)
    end = mid + int(m)
    return StoredDecision(
        record=raw[end:], result=decode_commit_result(raw[at:mid]), fingerprint=raw[mid:end]
    )


def decode_commit_result(raw: bytes) -> CommitResult:
    granted, rejected, skipped = _decode_result(raw)
    return CommitResult(
        granted=tuple(granted),
        rejected=tuple(
            GrantRejection(tracking_id=t, action=a, cap_id=c, key=k) for t, a, c, k in rejected
        ),
        skipped_journeys=tuple(skipped),
    )


def wake_member(customer_id: str, journey: str, fire_ms: int, stage_ms: int | None = None) -> str:
    """A wake-up: ``<customer>|<journey>|<fire ms>|<stage ms>``. ``stage_ms`` is the instant of
    the stage transition it is about (the timer's due instant, also for a deferred send that
    fires later), so a worker can tell a live wake-up from one the journey has moved past."""
    return f"{customer_id}|{journey}|{fire_ms}|{fire_ms if stage_ms is None else stage_ms}"


def journey_plan(changes: Sequence[JourneyChange], customer_id: str) -> list[list[str | int]]:
    """``{journey, has_expect, expect, wake_ms (-1: none), wake member}`` per change (the new
    states travel as separate ARGV); the wake-up member is :func:`wake_member` of the change."""
    plan: list[list[str | int]] = []
    for ch in changes:
        expect = ch.expect_last_event_id
        wake = -1 if ch.wake_ms is None else ch.wake_ms
        member = "" if ch.wake_ms is None else wake_member(customer_id, ch.journey, ch.wake_ms)
        plan.append([ch.journey, 0 if expect is None else 1, expect or "", wake, member])
    return plan


def milliseconds(seconds: float, name: str) -> int:
    """A positive duration in whole milliseconds (rounded up); ``ValueError`` otherwise."""
    if not seconds > 0 or math.isinf(seconds):
        raise ValueError(f"{name} must be > 0")
    return max(1, math.ceil(seconds * 1000))


def text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def pairs(flat: Sequence[Any]) -> list[tuple[str, bytes]]:
    return [(text(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]
