"""Deterministic bucketing: the documented hash, holdout thresholds and weighted variants."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from arbiter.policies.bucketing import (
    BUCKETS,
    bucket,
    in_holdout,
    percent_to_buckets,
    pick_weighted,
    variant_bucket,
)


def test_bucket_matches_the_documented_hash() -> None:
    digest = hashlib.sha256(b"cg-2024:c-1").digest()
    assert bucket("cg-2024", "c-1") == int.from_bytes(digest[:8], "big") % 10_000


@pytest.mark.parametrize(
    ("salt", "customer", "expected"),
    [("cg-2024", "c-1", 2697), ("", "", 4368), ("variant:a", "alice", 4066)],
)
def test_bucket_values_are_pinned(salt: str, customer: str, expected: int) -> None:
    # Other systems reproduce assignments from these; they must never change.
    assert bucket(salt, customer) == expected


def test_variant_bucket_uses_the_variant_salt() -> None:
    assert variant_bucket("a", "alice") == bucket("variant:a", "alice")


def test_buckets_are_roughly_uniform_and_salts_independent() -> None:
    ids = [f"customer-{i}" for i in range(20_000)]
    first = [bucket("s1", c) for c in ids]
    second = [bucket("s2", c) for c in ids]
    assert all(0 <= b < BUCKETS for b in first)
    tenth = sum(1 for b in first if b < 1000)
    assert 1800 < tenth < 2200
    both = sum(1 for a, b in zip(first, second, strict=True) if a < 1000 and b < 1000)
    assert 120 < both < 290  # ~1% of 20,000 when independent


def test_percent_to_buckets() -> None:
    assert percent_to_buckets(0) == 0
    assert percent_to_buckets(5) == 500
    assert percent_to_buckets(12.34) == 1234
    assert percent_to_buckets(100) == BUCKETS
    assert percent_to_buckets(150) == BUCKETS


def test_in_holdout_threshold() -> None:
    b = bucket("salt", "c")
    assert in_holdout("salt", "c", b + 1)
    assert not in_holdout("salt", "c", b)
    assert not in_holdout("salt", "c", 0)


def test_pick_weighted_follows_the_cumulative_layout() -> None:
    assert pick_weighted([50, 50], 0) == 0
    assert pick_weighted([50, 50], 4999) == 0
    assert pick_weighted([50, 50], 5000) == 1
    assert pick_weighted([50, 50], 9999) == 1
    assert pick_weighted([0, 1], 0) == 1  # zero weights are never assigned
    assert pick_weighted([0, 0], 123) is None
    assert pick_weighted([], 123) is None


def test_pick_weighted_proportions() -> None:
    counts = Counter(pick_weighted([1, 3], variant_bucket("x", f"c{i}")) for i in range(8000))
    assert 1700 < counts[0] < 2300
    assert counts[0] + counts[1] == 8000
