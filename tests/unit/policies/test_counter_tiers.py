"""Counter buckets coarsen with age (``apply_counter``) without losing the precision windows need.

Windows up to 48 h count exactly as hourly buckets would; windows up to 30 days
over-count by less than a day at the far edge; the counter stays bounded.
"""

from __future__ import annotations

import random

from arbiter.policies.effects import CounterIncrement, apply_counter
from arbiter.policies.snapshot import DAY_MS, HOUR_MS, EventCounter, event_count

NOW = 1_700_000_000_000


def _count(times: list[int]) -> EventCounter:
    counter = None
    for at in times:
        counter = apply_counter(
            counter,
            CounterIncrement(
                event_type="v", at_ms=at, bucket_ms=HOUR_MS, bucket_start_ms=at - at % HOUR_MS
            ),
        )
    assert counter is not None
    return counter


def _hourly(times: list[int], now: int, window: int) -> int:
    """What one-hour buckets (no coarsening) count: events whose hour overlaps the window."""
    since = now - window
    return sum(1 for t in times if t - t % HOUR_MS + HOUR_MS > since and t <= now)


def test_windows_up_to_48h_count_exactly_as_hourly_buckets() -> None:
    rng = random.Random(7)
    times = sorted(NOW - rng.randrange(0, 90 * DAY_MS) for _ in range(3_000))
    counter = _count(times)
    assert len(counter.buckets) <= 72 and counter.days and counter.months
    for later in (0, 5 * HOUR_MS, 20 * HOUR_MS):  # reads after the last write, before the next
        now = times[-1] + later
        for hours in (1, 6, 24, 47, 48 - later // HOUR_MS):
            assert event_count(counter, now, hours * HOUR_MS) == _hourly(
                times, now, hours * HOUR_MS
            )


def test_windows_up_to_30_days_over_count_by_less_than_a_day() -> None:
    rng = random.Random(8)
    times = sorted(NOW - rng.randrange(0, 200 * DAY_MS) for _ in range(3_000))
    counter = _count(times)
    now = times[-1]
    for days in (3, 7, 29, 30):
        got = event_count(counter, now, days * DAY_MS)
        exact = _hourly(times, now, days * DAY_MS)
        assert exact <= got <= _hourly(times, now, days * DAY_MS + DAY_MS)
    assert event_count(counter, now, 400 * DAY_MS) == counter.total == 3_000


def test_late_events_count_in_the_total_and_in_a_bucket() -> None:
    rng = random.Random(9)
    times = [NOW - rng.randrange(0, 100 * DAY_MS) for _ in range(500)]
    shuffled = _count(times)
    assert shuffled.total == 500 and shuffled.last_ms == max(times)
    assert (
        sum(shuffled.buckets.values()) + sum(shuffled.days.values()) + sum(shuffled.months.values())
        == 500
    )
