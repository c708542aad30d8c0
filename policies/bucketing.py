"""Deterministic bucketing: control group, journey holdouts and variant assignment.

Any system (a warehouse query, an SDK, another service) must be able to
reproduce an assignment from the customer id alone, so the hash is part of
the public contract and never changes within a major version:

    bucket(salt, customer_id) =
        int.from_bytes(SHA-256(UTF-8(salt + ":" + customer_id))[0:8], "big") % 10000

giving a bucket in ``0..9999`` (0.01 % resolution): the first 8 bytes of the
digest read as an *unsigned* 64-bit big-endian integer (in SQL dialects whose
integers are signed, take care to reinterpret them as unsigned first).
``bucket("cg-2024", "c-1")`` is a fixed value asserted by the unit tests, so a
reimplementation can check itself against them.

Uses, each with its own salt so that the assignments are independent:

- **Global control group**: held out iff ``bucket(holdouts.global.salt, id) <
  buckets`` where ``buckets = percent * 100`` exactly (``CompiledHoldout.buckets``;
  a percentage has at most two decimals, see :func:`percent_to_buckets`).
- **Journey holdout**: held out iff ``bucket(holdout.salt or journey_id, id) <
  percent * 100`` (``CompiledJourney.holdout_buckets``/``holdout_salt``).
  Two journeys with the same salt hold out the same customers -- use that on
  purpose to hold a customer out of a family of journeys.
- **Variants** of an action: salt ``"variant:" + action_id``; with weights
  ``w_0..w_n`` (declaration order) and ``W = sum(w)``, the point
  ``p = bucket * W // 10000`` lies in ``[0, W)`` and the first variant whose
  cumulative weight exceeds ``p`` is assigned. Zero-weight variants are never
  assigned; changing weights moves as few customers as the cumulative layout
  allows (appending a variant only takes customers from the tail).

SHA-256 rather than a faster non-cryptographic hash: every language and
database has it, and it is not the bottleneck (about 1 µs per call here;
the engine computes each bucket at most once per decision).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from decimal import Decimal
from typing import Final

__all__ = [
    "BUCKETS",
    "VARIANT_SALT_PREFIX",
    "bucket",
    "in_holdout",
    "percent_to_buckets",
    "pick_weighted",
    "variant_bucket",
]

BUCKETS: Final = 10_000
VARIANT_SALT_PREFIX: Final = "variant:"


def bucket(salt: str, customer_id: str) -> int:
    """The customer's bucket ``0..9999`` for ``salt`` (see the module docstring)."""
    digest = hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def percent_to_buckets(percent: float) -> int:
    """How many buckets (of 10,000) a percentage holds: exactly ``percent * 100``.

    A percentage must be a whole number of buckets -- at most two decimals
    (0.01 % per bucket) -- so no rounding rule is ever involved: ``0.125``
    (12.5 buckets) raises ``ValueError`` instead of becoming 12 here
    (round-half-even) and 13 in a warehouse (round-half-up). The decimal is
    read from the number's shortest representation (``repr``), the digits as
    written in the policy file.
    """
    if not 0 <= percent <= 100:
        raise ValueError(f"percent {percent!r} is outside 0..100")
    exact = Decimal(repr(float(percent))) * 100
    if exact != exact.to_integral_value():
        below = int(exact)
        raise ValueError(
            f"{percent!r} % is {exact.normalize()} buckets: a holdout is a whole number of "
            f"buckets of 0.01 % -- write {Decimal(below) / 100} or {Decimal(below + 1) / 100}"
        )
    return int(exact)


def in_holdout(salt: str, customer_id: str, buckets: int) -> bool:
    """Whether the customer falls in the first ``buckets`` buckets (``0`` = nobody)."""
    return buckets > 0 and bucket(salt, customer_id) < buckets


def variant_bucket(action_id: str, customer_id: str) -> int:
    """The bucket used for the variants of ``action_id``."""
    return bucket(VARIANT_SALT_PREFIX + action_id, customer_id)


def pick_weighted(weights: Sequence[int], bucket_value: int) -> int | None:
    """Index of the weight slot ``bucket_value`` falls into, or ``None`` when all weights are 0.

    ``p = bucket_value * sum(weights) // 10000``; the first index whose
    cumulative weight exceeds ``p`` wins.
    """
    total = sum(weights)
    if total <= 0:
        return None
    point = bucket_value * total // BUCKETS
    cumulative = 0
    for index, weight in enumerate(weights):
        cumulative += weight
        if point < cumulative:
            return index
    return None  # pragma: no cover - unreachable: point < total
