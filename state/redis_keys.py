"""Redis key design of ``RedisStore``: eight keys per customer, all under one Cluster hash tag.

Every key of customer ``<id>`` is ``<prefix>:{c:<id>}:<part>`` (prefix
``arb`` by default). The ``{c:<id>}`` hash tag puts all of them in one
Redis Cluster slot, so every script can declare all the keys it touches and
run atomically on one node. Customer ids are validated
(:func:`state.store.validate_id`: never ``{``, ``}`` or whitespace), so an id
cannot break out of its tag.

======  =====  ===================================================  ======================  ==================
part    type   content                                              TTL                     written by
======  =====  ===================================================  ======================  ==================
``p``   HASH   ``t:<attr>`` traits, ``c:<purpose>`` consent,        none (lives until       update_profile
               ``g`` segments (see below)                           forget)
``j``   HASH   ``<journey>`` -> journey state                       none (until forget)     commit, event
``k``   HASH   ``<cap key>`` -> msgpack ``[longest window, t...]``  >= longest window       commit
               (grant instants, ascending)                          written (PEXPIRE max)
``e``   HASH   ``<event type>`` -> msgpack ``[total, first, last,   >= longest retention    event
               bucket_ms, [day, n...], [month, n...], start, n...]`` written (400 d default)
               (coarsened with age, see policies.effects.apply_counter)
``r``   HASH   ``<request id>`` -> idempotency record               >= longest record TTL   commit
``q``   ZSET   ``<request id>`` scored by expiry (server ms)        same as ``r``           commit
``d``   ZSET   ``<event id>`` scored by expiry (server ms)          >= longest dedup TTL    event
``f``   LIST   feedback records (msgpack), newest last, capped      feedback retention      event
               at ``FEEDBACK_LIMIT``                                (400 d)
======  =====  ===================================================  ======================  ==================

Value encodings (the Lua scripts read only the headers):

- ``p`` fields: ``<updated_ms>|<flag><msgpack>`` -- ``flag`` is ``-`` for a
  trait and for ``g``, ``g`` / ``d`` for a granted / denied consent; the
  msgpack body is the :class:`~policies.snapshot.ProfileValue` /
  :class:`~policies.snapshot.ConsentRecord` as the engine defines it, for
  ``g`` the sorted list of segment ids (``updated_ms`` is
  ``segments_updated_ms``).
- ``j`` fields: ``<n>:<last_event_id (n bytes)><msgpack JourneyState>`` --
  the header is the compare-and-set token of journey changes.
- ``r`` fields: ``<n>:<msgpack result (n bytes)><record bytes>`` -- the
  :class:`~policies.effects.CommitResult` as the commit script computed it
  (``[[granted...], [[tracking_id, action, cap_id, key]...], [skipped...]]``)
  followed by the caller's opaque record.

- ``p`` also holds ``v``: the customer's consent version, an integer bumped
  by every applied consent or do-not-contact write (compared by the commit
  script, so a revocation between a decision's read and its commit wins).

State epoch. Besides the customer keys, one marker says "this Redis holds
the state of record": ``<prefix>:epoch`` on a single node; on a Cluster one
per slot, ``<prefix>:{<tag>}:epoch`` with a tag chosen to hash to that slot
(:func:`epoch_key`), so the read and commit scripts of any customer can
check it without leaving the customer's slot. Written once by
``arbiter state init``; never expires.

Records in ``r`` / ``q`` and ``d`` expire individually by their ZSET score
(checked on every read, pruned on every write); the keys' own TTLs are only
ever raised, to the longest TTL written, so that an idle customer's keys
vanish by themselves. A fixed set of keys per customer makes export and
forget one script each, with no SCAN and no index set.
"""

from __future__ import annotations

import binascii
from functools import cache
from typing import Final, NamedTuple

from .store import validate_id

__all__ = [
    "DEFAULT_PREFIX",
    "FEEDBACK_TTL_MS",
    "PARTS",
    "SLOTS",
    "CustomerKeys",
    "customer_keys",
    "epoch_key",
    "hash_tag",
    "slot_of",
    "wake_key",
]

DEFAULT_PREFIX: Final = "arb"
PARTS: Final = ("p", "j", "k", "e", "r", "q", "d", "f")
# How long a customer's feedback list lives after its last write.
FEEDBACK_TTL_MS: Final = 400 * 86_400_000
SLOTS: Final = 16384  # Redis Cluster hash slots


class CustomerKeys(NamedTuple):
    """The eight keys of one customer (see the module docstring)."""

    profile: str
    journeys: str
    caps: str
    events: str
    records: str
    record_expiry: str
    dedup: str
    feedback: str


def hash_tag(customer_id: str) -> str:
    """The Cluster hash tag of a customer: ``{c:<id>}``."""
    return "{c:" + customer_id + "}"


def customer_keys(customer_id: str, prefix: str = DEFAULT_PREFIX) -> CustomerKeys:
    """All keys of ``customer_id`` (validated: ``ValueError`` for an invalid id)."""
    validate_id(customer_id)
    base = prefix + ":{c:" + customer_id + "}:"
    return CustomerKeys(*(base + part for part in PARTS))


def slot_of(customer_id: str) -> int:
    """The Cluster hash slot of every key of ``customer_id`` (CRC16 of its hash tag)."""
    return binascii.crc_hqx(("c:" + customer_id).encode(), 0) % SLOTS


@cache
def _slot_tags() -> tuple[str, ...]:
    """For every slot, a short hash tag that hashes to it (computed once, ~0.2 s)."""
    tags: list[str | None] = [None] * SLOTS
    left, n = SLOTS, 0
    while left:
        tag = f"e{n:x}"
        slot = binascii.crc_hqx(tag.encode(), 0) % SLOTS
        if tags[slot] is None:
            tags[slot] = tag
            left -= 1
        n += 1
    return tuple(t for t in tags if t is not None)


def wake_key(prefix: str = DEFAULT_PREFIX, slot: int | None = None) -> str:
    """The sorted set of due wake-ups (member
    :func:`state.redis_codec.wake_member`, score the instant to fire) that the commit and event scripts of a customer write: ``<prefix>:{w}:wake`` on a
    single node, on a Cluster one per slot under the slot's tag (atomic with the customer's
    state change, so a Cluster worker claims slot by slot). ``:lease`` beside it holds the
    claimed ones (score: lease expiry)."""
    tag = "w" if slot is None else _slot_tags()[slot]
    return prefix + ":{" + tag + "}:wake"


def epoch_key(prefix: str = DEFAULT_PREFIX, slot: int | None = None) -> str:
    """The state epoch marker: ``<prefix>:epoch``, or on a Cluster the one of ``slot``."""
    if slot is None:
        return prefix + ":epoch"
    return prefix + ":{" + _slot_tags()[slot] + "}:epoch"
