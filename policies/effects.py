"""What a store must commit: the contract between the pure engine and the state layer.

The engine never writes. :func:`arbiter.policies.engine.decide` returns a
:class:`DecisionCommit`, :func:`arbiter.policies.engine.apply_event` returns
:class:`EventEffects`, and profile/consent writes arrive as
:class:`ProfileUpdate`. A store (``state.MemoryStore``, ``state.RedisStore``)
applies them **atomically per customer** with exactly the semantics of the
pure functions below -- :func:`apply_commit`, :func:`apply_effects`,
:func:`apply_profile_update` -- which a ``MemoryStore`` can call directly and
a Redis script must mirror (the store's contract tests compare the two).

Decision commit (``DecisionCommit``), in one atomic step:

1. **Idempotency.** If ``request_id`` already has a record for this
   customer, apply nothing and return the stored decision (the server sends
   it with ``replayed``). Otherwise store the record (the encoded
   :class:`~arbiter.policies.decision.Decision` as the engine returned it,
   see 4) and this commit's result, with the store's idempotency TTL.
2. **Grants, in order** (best first). For each grant, for each of its
   :class:`CapIncrement`: ``used = |{t in caps[key] : t > now_ms - window_ms}|`` (no upper
   bound: a commit stamped earlier may land after one stamped later)
   plus the increments of grants accepted earlier in this commit. If
   ``used + 1 > limit`` for *any* of its caps the grant is **rejected** and
   increments nothing; otherwise it is accepted and ``now_ms`` is appended
   to ``caps[key]`` for *every* cap (entries older than the key's window may
   be pruned; give the key a TTL of at least ``window_ms``). This re-check
   is what keeps caps exact under concurrent decisions: the engine's view
   may be stale, the store's is not.
3. **Journey changes** (timers the decision noticed: time-based stage
   transitions, max-duration exits) are best-effort: each applies only if
   its precondition (:class:`JourneyChange` ``expect_last_event_id``)
   holds; otherwise it is skipped (the next read recomputes it). They never
   affect grants.
4. The server removes rejected grants from the decision with
   :func:`arbiter.policies.engine.settle` (they become ``CAPPED``) before
   answering -- the first time and on every replay of the stored record.

Event effects (``EventEffects``), in one atomic step:

1. **Dedup.** If ``event_id`` was already applied for this customer, apply
   nothing (``DUPLICATE``). Otherwise remember it (TTL at least the
   longest trigger dedup window the store supports; the journey states
   carry a second line of defence, see :mod:`arbiter.policies.engine.events`).
2. **Journey changes, in order**, each with a compare-and-set: the stored
   state's ``last_event_id`` must equal ``expect_last_event_id`` (``None``:
   no state stored). On a mismatch the **whole** effect is rejected
   (:class:`StateConflict`) and nothing is written; the caller re-reads the
   snapshot and runs ``apply_event`` again (it is deterministic and the
   event is not yet marked applied, so this is not a blind retry).
3. **Counters**: per :class:`CounterIncrement`, ``total += count``,
   ``buckets[bucket_start_ms] += count``, ``first_ms = min``,
   ``last_ms = max`` (last-seen); buckets older than two days are merged
   into days, days older than 30 days into 30-day periods, and buckets that
   ended before ``last_ms - retention_ms`` are dropped (exactly as
   :func:`apply_counter`, so the stores agree bucket for bucket).
4. **Feedback** records are appended to the store's feedback / decision log
   keyed by ``decision_id``; they do not change the snapshot.

Profile and consent (``ProfileUpdate``): per field, newer source timestamp
wins; a trait write at an equal timestamp applies (a retry is idempotent);
a consent write at an equal timestamp applies only if it is a denial
("denied wins"). A trait set to ``None`` is stored as a tombstone so that an
older write cannot resurrect it. Segments (``ProfileUpdate.segments``, when
not ``None``) are the customer's *complete* membership as of
``timestamp_ms`` (a CDP sync sends the whole set), one field with a trait's
precedence: the set replaces the stored one when ``timestamp_ms >=``
``CustomerSnapshot.segments_updated_ms`` and is ignored as stale when older;
an empty set is a membership too (it empties the stored one and keeps its
timestamp). Each field reports applied / ignored-stale.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any, Final, Literal

import msgspec

from .snapshot import (
    DAY_MS,
    MONTH_MS,
    ConsentRecord,
    ConsentState,
    CustomerSnapshot,
    EventCounter,
    JourneyState,
    ProfileValue,
)

__all__ = [
    "COUNTER_DAILY_HORIZON_MS",
    "COUNTER_HOURLY_HORIZON_MS",
    "DEFAULT_COUNTER_RETENTION_MS",
    "CapIncrement",
    "CommitResult",
    "ConsentUpdate",
    "CounterIncrement",
    "DecisionCommit",
    "EventEffects",
    "FeedbackKind",
    "FeedbackRecord",
    "FieldResult",
    "Grant",
    "GrantRejection",
    "JourneyChange",
    "JourneyChangeKind",
    "ProfileUpdate",
    "StateConflict",
    "apply_commit",
    "apply_counter",
    "apply_effects",
    "apply_journey_change",
    "apply_profile_update",
    "cap_usage",
    "merge_consent",
    "merge_trait",
    "prune_grants",
]

# Buckets of an event counter older than this may be dropped by the store.
# Expressions asking about longer windows see fewer events (documented in
# docs/policy-language.md); ``total`` and ``first_ms``/``last_ms`` are kept.
DEFAULT_COUNTER_RETENTION_MS: Final = 400 * 86_400_000
# Counter buckets coarsen with age (see :func:`apply_counter`): hourly for
# events up to two days older than the counter's newest, then whole UTC days
# up to 30 days, then 30-day periods.
COUNTER_HOURLY_HORIZON_MS: Final = 2 * DAY_MS
COUNTER_DAILY_HORIZON_MS: Final = 30 * DAY_MS

JourneyChangeKind = Literal["enter", "reenter", "transition", "complete", "exit", "timeout"]


class _Effect(msgspec.Struct, frozen=True, kw_only=True):
    """Base: immutable, keyword-only values a store can encode as they are."""


class StateConflict(Exception):
    """A journey change's precondition does not hold: the snapshot it was computed from is stale."""

    def __init__(self, journey: str, expected: str | None, found: str | None) -> None:
        self.journey = journey
        self.expected = expected
        self.found = found
        super().__init__(
            f"journey `{journey}`: expected last event {expected!r}, found {found!r}; "
            "re-read the snapshot and apply the event again"
        )


# --------------------------------------------------------------------------- decisions


class CapIncrement(_Effect, frozen=True, kw_only=True):
    """One counter a grant counts against: ``limit`` grants per rolling ``window_ms`` under ``key``."""

    cap_id: str
    key: str
    window_ms: int
    limit: int


class Grant(_Effect, frozen=True, kw_only=True):
    """A chosen action to count. ``caps`` empty: nothing to count (e.g. transactional)."""

    tracking_id: str
    action: str
    channel: str
    journey: str = ""
    stage: str = ""
    caps: tuple[CapIncrement, ...] = ()


class JourneyChange(_Effect, frozen=True, kw_only=True):
    """One change of a customer's state in one journey, and the event that caused it.

    ``state`` is the complete new state (the store writes it as it is).
    ``expect_last_event_id`` is the precondition: the ``last_event_id`` of
    the stored state the change was computed from, ``None`` when there was
    none. ``cause_event_id`` is the event id, or ``timer:<kind>:<stage>@<ms>``
    for changes caused by time (stage ``after`` transitions, max duration).
    """

    journey: str
    kind: JourneyChangeKind
    cause_event_id: str
    at_ms: int
    from_stage: str = ""
    to_stage: str = ""
    expect_last_event_id: str | None = None
    state: JourneyState
    # When the new state's next timed step comes due (server ms): the store records a wake-up
    # with the change, atomically, so ``arbiter worker`` fires it (``None``: nothing timed).
    # Set by the service (:func:`arbiter.policies.engine.wakeups.with_wakeups`), not the engine.
    wake_ms: int | None = None


class DecisionCommit(_Effect, frozen=True, kw_only=True):
    """What a decision asks the store to write (see the module docstring, "Decision commit")."""

    customer_id: str
    request_id: str
    decision_id: str
    now_ms: int
    policy_version: str
    grants: tuple[Grant, ...] = ()
    journeys: tuple[JourneyChange, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing to count or change (the idempotency record is still stored)."""
        return not self.grants and not self.journeys


class GrantRejection(_Effect, frozen=True, kw_only=True, gc=False):
    """A grant the store refused: ``cap_id``/``key`` is the first cap it would have overshot."""

    tracking_id: str
    action: str
    cap_id: str
    key: str


class CommitResult(_Effect, frozen=True, kw_only=True, gc=False):
    """What a commit did. Holds only strings (no cycles): not tracked by the garbage collector,
    since every stored decision keeps one."""

    granted: tuple[str, ...] = ()  # tracking ids, in commit order
    rejected: tuple[GrantRejection, ...] = ()
    skipped_journeys: tuple[str, ...] = ()  # journey changes whose precondition failed


# --------------------------------------------------------------------------- events


class FeedbackKind(StrEnum):
    IMPRESSION = "impression"
    CLICK = "click"
    CONVERSION = "conversion"
    DISMISS = "dismiss"


class CounterIncrement(_Effect, frozen=True, kw_only=True):
    """Count ``count`` events of ``event_type`` at ``at_ms`` (bucket ``bucket_start_ms`` of width ``bucket_ms``)."""

    event_type: str
    at_ms: int
    bucket_ms: int
    bucket_start_ms: int
    count: int = 1
    retention_ms: int = DEFAULT_COUNTER_RETENTION_MS


class FeedbackRecord(_Effect, frozen=True, kw_only=True):
    """Feedback on a chosen action, tied to its decision (for the decision log and learning)."""

    kind: FeedbackKind
    decision_id: str
    tracking_id: str = ""
    action: str = ""
    event_id: str
    at_ms: int


class EventEffects(_Effect, frozen=True, kw_only=True):
    """What one event changes (see the module docstring, "Event effects").

    ``event_ms`` is when the event happened, ``now_ms`` when it was applied.
    """

    customer_id: str
    event_id: str
    event_type: str
    event_ms: int
    now_ms: int
    counters: tuple[CounterIncrement, ...] = ()
    journeys: tuple[JourneyChange, ...] = ()
    feedback: tuple[FeedbackRecord, ...] = ()


# --------------------------------------------------------------------------- profile writes


class ConsentUpdate(_Effect, frozen=True, kw_only=True):
    purpose: str
    state: ConsentState
    expires_ms: int | None = None


class ProfileUpdate(_Effect, frozen=True, kw_only=True):
    """An ``UpdateProfile`` call: every field is written at ``timestamp_ms`` by ``source``.

    ``traits``: name -> value, ``None`` removes. ``do_not_contact`` is written
    to the profile attribute the policy's consent section names (``None``
    leaves it unchanged). ``segments`` is the complete segment membership
    (``None`` leaves it unchanged; ``()`` empties it).
    """

    customer_id: str
    source: str
    timestamp_ms: int
    traits: dict[str, Any] = {}
    consents: tuple[ConsentUpdate, ...] = ()
    do_not_contact: bool | None = None
    segments: tuple[str, ...] | None = None


class FieldResult(_Effect, frozen=True, kw_only=True):
    kind: Literal["trait", "consent", "do_not_contact", "segments"]
    name: str
    applied: bool
    stored_ms: int  # the timestamp of the stored value after the call


# --------------------------------------------------------------------------- semantics


def merge_trait(
    current: ProfileValue | None, value: Any, timestamp_ms: int, source: str
) -> ProfileValue | None:
    """The new stored value, or ``None`` when the write is stale (older than the stored one)."""
    if current is not None and timestamp_ms < current.updated_ms:
        return None
    return ProfileValue(value=value, updated_ms=timestamp_ms, source=source)


def merge_consent(current: ConsentRecord | None, update: ConsentRecord) -> bool:
    """Whether ``update`` replaces ``current``: newer wins; at equal timestamps a denial wins."""
    if current is None or update.updated_ms > current.updated_ms:
        return True
    return update.updated_ms == current.updated_ms and update.state == "denied"


def apply_profile_update(
    snapshot: CustomerSnapshot,
    update: ProfileUpdate,
    *,
    do_not_contact_attribute: str | None = None,
) -> tuple[CustomerSnapshot, tuple[FieldResult, ...]]:
    """Apply a profile/consent write with source-timestamp precedence (pure)."""
    profile = dict(snapshot.profile)
    consent = dict(snapshot.consent)
    results: list[FieldResult] = []

    def write_trait(kind: Literal["trait", "do_not_contact"], name: str, value: Any) -> None:
        merged = merge_trait(profile.get(name), value, update.timestamp_ms, update.source)
        if merged is None:
            results.append(
                FieldResult(kind=kind, name=name, applied=False, stored_ms=profile[name].updated_ms)
            )
            return
        profile[name] = merged
        results.append(FieldResult(kind=kind, name=name, applied=True, stored_ms=merged.updated_ms))

    for name in sorted(update.traits):
        write_trait("trait", name, update.traits[name])
    if update.do_not_contact is not None:
        if do_not_contact_attribute is None:
            raise ValueError("the policy declares no do-not-contact attribute")
        write_trait("do_not_contact", do_not_contact_attribute, update.do_not_contact)
    for c in update.consents:
        record = ConsentRecord(
            state=c.state,
            updated_ms=update.timestamp_ms,
            source=update.source,
            expires_ms=c.expires_ms,
        )
        current = consent.get(c.purpose)
        if merge_consent(current, record):
            consent[c.purpose] = record
            results.append(
                FieldResult(
                    kind="consent", name=c.purpose, applied=True, stored_ms=record.updated_ms
                )
            )
        else:
            assert current is not None
            results.append(
                FieldResult(
                    kind="consent", name=c.purpose, applied=False, stored_ms=current.updated_ms
                )
            )
    new = msgspec.structs.replace(snapshot, profile=profile, consent=consent)
    if update.segments is not None:
        # A whole-set write with a trait's precedence: newer or equal wins.
        applied = update.timestamp_ms >= snapshot.segments_updated_ms
        if applied:
            new = msgspec.structs.replace(
                new,
                segments=frozenset(update.segments),
                segments_updated_ms=update.timestamp_ms,
            )
        results.append(
            FieldResult(
                kind="segments",
                name="segments",
                applied=applied,
                stored_ms=new.segments_updated_ms,
            )
        )
    return new, tuple(results)


def prune_grants(grants: Iterable[int], now_ms: int, window_ms: int) -> list[int]:
    """Grant instants still inside the window ``(now - window, ...]``, ascending."""
    since = now_ms - window_ms
    return sorted(t for t in grants if t > since)


def cap_usage(grants: list[int], now_ms: int, window_ms: int) -> int:
    """Grants after ``now - window`` -- with no upper bound: this is the
    commit-time re-check, and a concurrent commit stamped slightly later than
    this one (servers stamp ``now`` when a request arrives, and commits can
    land out of order) must count too, or the cap is overshot. Evaluation
    (:func:`policies.snapshot.cap_count`) keeps ``(now - window, now]``."""
    since = now_ms - window_ms
    return sum(1 for t in grants if t > since)


def apply_commit(
    snapshot: CustomerSnapshot, commit: DecisionCommit
) -> tuple[CustomerSnapshot, CommitResult]:
    """Apply a decision commit (steps 2 and 3 of the module docstring; idempotency is the store's)."""
    caps: dict[str, list[int]] = dict(snapshot.caps)
    now = commit.now_ms
    granted: list[str] = []
    rejected: list[GrantRejection] = []
    for grant in commit.grants:
        refused: CapIncrement | None = None
        for inc in grant.caps:
            if cap_usage(caps.get(inc.key, []), now, inc.window_ms) + 1 > inc.limit:
                refused = inc
                break
        if refused is not None:
            rejected.append(
                GrantRejection(
                    tracking_id=grant.tracking_id,
                    action=grant.action,
                    cap_id=refused.cap_id,
                    key=refused.key,
                )
            )
            continue
        for inc in grant.caps:
            kept = prune_grants(caps.get(inc.key, []), now, inc.window_ms)
            kept.append(now)
            kept.sort()
            caps[inc.key] = kept
        granted.append(grant.tracking_id)
    journeys = dict(snapshot.journeys)
    skipped: list[str] = []
    for change in commit.journeys:
        if not apply_journey_change(journeys, change):
            skipped.append(change.journey)
    new = msgspec.structs.replace(snapshot, caps=caps, journeys=journeys)
    return new, CommitResult(
        granted=tuple(granted), rejected=tuple(rejected), skipped_journeys=tuple(skipped)
    )


def apply_journey_change(journeys: dict[str, JourneyState], change: JourneyChange) -> bool:
    """Compare-and-set one journey state in ``journeys`` (mutated); ``False`` when the precondition fails."""
    current = journeys.get(change.journey)
    found = None if current is None else current.last_event_id
    if found != change.expect_last_event_id:
        return False
    journeys[change.journey] = change.state
    return True


def apply_counter(counter: EventCounter | None, inc: CounterIncrement) -> EventCounter:
    """The counter after one increment: count it, coarsen old buckets, drop expired ones.

    With ``ref`` the counter's newest instant after the increment (``last_ms``):

    - the increment adds to its bucket (``bucket_start_ms``);
    - a recent bucket whose whole UTC day ended at or before
      ``ref - COUNTER_HOURLY_HORIZON_MS`` moves into ``days`` (that day's
      start), and a day whose whole 30-day period (epoch-aligned) ended at
      or before ``ref - COUNTER_DAILY_HORIZON_MS`` moves into ``months``;
      only whole coarse buckets are formed, so no coarse bucket reaches
      into the hourly (resp. daily) horizon and windows up to 48 h stay
      exact to the hour, up to 30 days to the day;
    - a bucket of any width that ended at or before ``ref - retention_ms``
      is dropped.

    So a counter holds at most 72 hourly, 60 daily and
    ``retention / 30 days + 1`` monthly buckets, whatever the history: reading
    and writing it costs the same at 10 and at 10,000 events. Coarsening
    applies only when ``bucket_ms`` divides a day. A store mirrors this
    exactly (``state/redis_scripts/event.lua``).
    """
    if counter is None:
        counter = EventCounter(bucket_ms=inc.bucket_ms)
    width = counter.bucket_ms
    hours = dict(counter.buckets)
    hours[inc.bucket_start_ms] = hours.get(inc.bucket_start_ms, 0) + inc.count
    days, months = counter.days, counter.months
    first = inc.at_ms if counter.first_ms is None else min(counter.first_ms, inc.at_ms)
    ref = inc.at_ms if counter.last_ms is None else max(counter.last_ms, inc.at_ms)
    if DAY_MS % width == 0:
        cut = ref - COUNTER_HOURLY_HORIZON_MS
        oldest = min(hours)
        if oldest - oldest % DAY_MS + DAY_MS <= cut:
            days = dict(days)
            for start in [s for s in hours if s - s % DAY_MS + DAY_MS <= cut]:
                day = start - start % DAY_MS
                days[day] = days.get(day, 0) + hours.pop(start)
        if days:
            cut = ref - COUNTER_DAILY_HORIZON_MS
            oldest = min(days)
            if oldest - oldest % MONTH_MS + MONTH_MS <= cut:
                days, months = dict(days), dict(months)
                for start in [s for s in days if s - s % MONTH_MS + MONTH_MS <= cut]:
                    month = start - start % MONTH_MS
                    months[month] = months.get(month, 0) + days.pop(start)
    horizon = ref - inc.retention_ms
    hours = _unexpired(hours, width, horizon)
    days = _unexpired(days, DAY_MS, horizon)
    months = _unexpired(months, MONTH_MS, horizon)
    return EventCounter(
        total=counter.total + inc.count,
        first_ms=first,
        last_ms=ref,
        bucket_ms=width,
        buckets=hours,
        days=days,
        months=months,
    )


def _unexpired(buckets: dict[int, int], width: int, horizon: int) -> dict[int, int]:
    """``buckets`` without those that ended at or before ``horizon`` (the same dict when none did)."""
    if not buckets or min(buckets) + width > horizon:
        return buckets
    return {start: n for start, n in buckets.items() if start + width > horizon}


def apply_effects(snapshot: CustomerSnapshot, effects: EventEffects) -> CustomerSnapshot:
    """Apply an event's effects (steps 2-3 of "Event effects"; dedup is the store's).

    Raises :class:`StateConflict` (and changes nothing) when a journey
    change's precondition fails.
    """
    journeys = dict(snapshot.journeys)
    for change in effects.journeys:
        if not apply_journey_change(journeys, change):
            current = journeys.get(change.journey)
            raise StateConflict(
                change.journey,
                change.expect_last_event_id,
                None if current is None else current.last_event_id,
            )
    events: dict[str, EventCounter] = dict(snapshot.events)
    for inc in effects.counters:
        events[inc.event_type] = apply_counter(events.get(inc.event_type), inc)
    return msgspec.structs.replace(snapshot, journeys=journeys, events=events)
