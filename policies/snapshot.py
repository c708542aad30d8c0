"""The customer snapshot: everything a decision may read about one customer, as plain typed values.

A store builds a :class:`CustomerSnapshot` in one read; the engine never
fetches anything else. Conventions, for every store and test:

- Instants are **integer milliseconds since the Unix epoch (UTC)**, named
  ``*_ms``; durations are integer milliseconds too.
- Profile values are JSON-like (``str``, ``int``, ``float``, ``bool``, lists,
  maps); attributes declared ``timestamp`` or ``duration`` in the contracts
  hold epoch / span milliseconds.
- Event counters are time-bucketed per event type, coarser with age so that
  a counter's size is bounded whatever the customer's history: ``buckets``
  maps the start of a recent bucket (ms, a multiple of ``bucket_ms``, an
  hour) to the number of events in it, ``days`` holds whole UTC days older
  than two days, ``months`` 30-day periods (aligned to the epoch) older
  than 30 days (see ``policies.effects.apply_counter``). A rolling-window
  count sums the buckets that overlap the window, so it is exact to within
  one bucket at the window's far edge: an hour for windows up to 48 h, a
  day up to 30 days, 30 days beyond.
- Cap usage lists the grant instants of each cap key within the longest
  window of that cap (older entries may be pruned by the store).
- ``unavailable`` names the parts the store could not read; the engine fails
  safe on them (e.g. consent unavailable = every consent-gated channel denied).

:class:`SnapshotNeeds` says which parts a compiled policy set reads at all,
derived from the expressions' ``Program.references`` and the set's channels,
caps and journeys, so a store reads nothing more.
"""

from __future__ import annotations

from typing import Any, Final, Literal

import msgspec

__all__ = [
    "DAY_MS",
    "HOUR_MS",
    "MONTH_MS",
    "PARTS",
    "ConsentRecord",
    "ConsentState",
    "CustomerSnapshot",
    "EventCounter",
    "JourneyState",
    "JourneyStatus",
    "ProfileValue",
    "SnapshotNeeds",
    "SnapshotPart",
    "cap_count",
    "event_count",
]

ConsentState = Literal["granted", "denied"]
JourneyStatus = Literal["active", "completed", "exited"]
SnapshotPart = Literal["profile", "consent", "events", "segments", "journeys", "caps"]
PARTS: Final[tuple[SnapshotPart, ...]] = (
    "profile",
    "consent",
    "events",
    "segments",
    "journeys",
    "caps",
)

HOUR_MS: Final = 3_600_000
DAY_MS: Final = 86_400_000
# The widest counter bucket: a 30-day period aligned to the Unix epoch.
MONTH_MS: Final = 30 * DAY_MS


# The snapshot structs are plain data trees (no value refers back to its holder), so they
# can be in no reference cycle: ``gc=False`` keeps them out of the garbage collector's full
# collections, which walked every customer an embedded store holds (docs/decisions.md,
# "Garbage collection"). Dicts and lists inside them are tracked as usual.
class ProfileValue(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One profile attribute: its value and the write that set it (newer writes win)."""

    value: Any
    updated_ms: int = 0
    source: str = ""


class ConsentRecord(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Consent for one purpose. Newer wins; at equal ``updated_ms`` ``denied`` wins.

    An expired record (``expires_ms <= now``) counts as unset.
    """

    state: ConsentState
    updated_ms: int
    source: str = ""
    expires_ms: int | None = None


class EventCounter(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """Occurrences of one event type.

    ``buckets`` (width ``bucket_ms``) are the recent ones; ``days`` (width
    :data:`DAY_MS`) and ``months`` (width :data:`MONTH_MS`) hold older
    events merged at write time, so the counter stays small (at most 72
    hourly, 60 daily and one per 30 days of retention: ~145 buckets) however
    long the history is.
    """

    total: int = 0
    first_ms: int | None = None
    last_ms: int | None = None
    bucket_ms: int = HOUR_MS
    buckets: dict[int, int] = {}
    days: dict[int, int] = {}
    months: dict[int, int] = {}


class JourneyState(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The customer's state in one journey (the latest entry).

    ``entries`` counts entries over time (for re-entry rules); ``dedup``
    remembers trigger dedup keys (key -> ms of the entry they caused).
    Every change names the event that caused it (``*_event_id``).
    """

    status: JourneyStatus
    stage: str
    entered_ms: int
    stage_entered_ms: int
    entry_event_id: str = ""
    last_event_id: str = ""
    exited_ms: int | None = None
    exit_reason: str = ""
    entries: int = 1
    dedup: dict[str, int] = {}


class CustomerSnapshot(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    customer_id: str
    profile: dict[str, ProfileValue] = {}
    consent: dict[str, ConsentRecord] = {}
    events: dict[str, EventCounter] = {}
    segments: frozenset[str] = frozenset()
    # Source timestamp of the stored segment membership (0: never written), for precedence.
    segments_updated_ms: int = 0
    journeys: dict[str, JourneyState] = {}
    # Cap key (see ``CapBinding.key``) -> grant instants (ms), ascending.
    caps: dict[str, list[int]] = {}
    unavailable: frozenset[SnapshotPart] = frozenset()


class SnapshotNeeds(msgspec.Struct, frozen=True, kw_only=True):
    """Which parts of the snapshot a compiled policy set reads.

    ``profile_attributes``: attributes read by expressions or by the set's
    rules (consent region, do-not-contact, time zone). ``event_types``: the
    counters read, or ``None`` when an expression names an event type that
    is not a literal (read them all). ``cap_keys``: every cap key an action
    can count against.
    """

    parts: frozenset[SnapshotPart]
    profile_attributes: frozenset[str] = frozenset()
    context_fields: frozenset[str] = frozenset()
    event_types: frozenset[str] | None = frozenset()
    consent_purposes: frozenset[str] = frozenset()
    cap_keys: frozenset[str] = frozenset()


def event_count(counter: EventCounter, now_ms: int, window_ms: int) -> int:
    """Events in the rolling window ``(now - window, now]``, at bucket granularity:
    a bucket counts when it overlaps the window (so the far edge may over-count by
    less than one bucket). Buckets that start after ``now`` are ignored."""
    since = now_ms - window_ms
    # ``start + width > since`` as ``start > since - width``: one chained comparison per bucket.
    low = since - counter.bucket_ms
    total = sum([n for start, n in counter.buckets.items() if low < start <= now_ms])
    if counter.days:
        low = since - DAY_MS
        total += sum([n for start, n in counter.days.items() if low < start <= now_ms])
    if counter.months:
        low = since - MONTH_MS
        total += sum([n for start, n in counter.months.items() if low < start <= now_ms])
    return total


def cap_count(grants: list[int], now_ms: int, window_ms: int) -> int:
    """Grants in the rolling window ``(now - window, now]``."""
    since = now_ms - window_ms
    # Grants are ascending; scan from the newest.
    n = 0
    for at in reversed(grants):
        if at <= since:
            break
        if at <= now_ms:
            n += 1
    return n
