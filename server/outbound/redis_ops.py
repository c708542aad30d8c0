"""The Redis side of outbound: key names and the Lua scripts, each one atomic step.

Keys (``<p>`` the store's prefix):

- ``<p>:{w}:wake`` / ``<p>:{w}:lease`` -- ZSETs of wake-ups (score: when to fire /
  when the claim's lease ends); the wake set is written by the store's commit
  and event scripts (``arbiter.state.wake_key``). On a Redis Cluster the
  store writes one wake set per slot; this worker claims only the
  single-node set (see docs/outbound.md, "Limits").
- per destination ``d``, all under the tag ``{o:d}`` (one slot):
  ``:outbox`` (STREAM, consumer group ``delivery``), ``:retry`` (ZSET of
  entries waiting for their backoff, score: when), ``:dlq`` (STREAM),
  ``:bucket`` (the token bucket's theoretical arrival time), ``:k:<key>``
  (an entry's idempotency key, set once when appended: a re-run of the
  same wake-up appends nothing).
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

import msgspec

__all__ = ["GROUP", "Entry", "OutboxKeys", "Scripts", "outbox_keys", "wake_keys"]

GROUP: Final = "delivery"


class Entry(msgspec.Struct, frozen=True, kw_only=True):
    """One outbound send: what the adapter delivers and what the feedback event reports."""

    key: str  # idempotency key, sent to the provider
    destination: str
    customer_id: str
    action: str
    channel: str
    decision_id: str
    tracking_id: str
    payload: dict[str, Any]
    due_ms: int  # when the step was due (lag is measured from here)
    fired_ms: int  # when the decision was made
    attempts: int = 0
    last_error: str = ""


_ENC = msgspec.json.Encoder()
_DEC = msgspec.json.Decoder(Entry)


def encode_entry(entry: Entry) -> bytes:
    return _ENC.encode(entry)


def decode_entry(raw: bytes | str) -> Entry:
    return _DEC.decode(raw)


class OutboxKeys(NamedTuple):
    stream: str
    retry: str
    dlq: str
    bucket: str
    dedup_prefix: str


def outbox_keys(prefix: str, destination: str) -> OutboxKeys:
    base = f"{prefix}:{{o:{destination}}}:"
    return OutboxKeys(base + "outbox", base + "retry", base + "dlq", base + "bucket", base + "k:")


def wake_keys(prefix: str) -> tuple[str, str]:
    """The single-node wake-up set and its lease set (same hash tag)."""
    return f"{prefix}:{{w}}:wake", f"{prefix}:{{w}}:lease"


_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS wake, lease; ARGV lease_ms, batch -> {now, member, score, member, score...}: expired
# leases first (a crashed worker's claims), then due wake-ups, each leased until now + lease_ms.
CLAIM: Final = (
    _NOW
    + """
local lease, batch = tonumber(ARGV[1]), tonumber(ARGV[2])
local out = {now}
local function take(m, due)
  redis.call('ZADD', KEYS[2], now + lease, m)
  out[#out + 1] = m
  out[#out + 1] = due
end
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'LIMIT', 0, batch)
for _, m in ipairs(expired) do
  take(m, -1)
end
local left = batch - #expired
if left > 0 then
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0, left)
  for i = 1, #due, 2 do
    redis.call('ZREM', KEYS[1], due[i])
    take(due[i], due[i + 1])
  end
end
return out
"""
)

# KEYS wake, lease; ARGV member [, new member, new score]: the claim is settled (and a deferred
# send rescheduled) in one step.
SETTLE: Final = """
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2])
end
return 1
"""

# KEYS stream, dedup key; ARGV dedup ttl ms, entry -> 1 appended, 0 already appended once.
APPEND: Final = """
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then
  redis.call('XADD', KEYS[1], '*', 'e', ARGV[2])
  return 1
end
return 0
"""

# KEYS stream; ARGV group, id: delivered -- acknowledged and removed.
ACK: Final = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"""

# KEYS stream, retry|dlq; ARGV group, id, entry, mode ('retry': score ARGV[5] | 'dlq').
MOVE: Final = """
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if ARGV[4] == 'retry' then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[3])
else
  redis.call('XADD', KEYS[2], '*', 'e', ARGV[3])
end
return 1
"""

# KEYS retry, stream; ARGV batch: retries whose backoff is over go back to the stream.
PROMOTE: Final = (
    _NOW
    + """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, e in ipairs(due) do
  redis.call('XADD', KEYS[2], '*', 'e', e)
  redis.call('ZREM', KEYS[1], e)
end
return #due
"""
)

# KEYS bucket; ARGV rate per s, burst -> 0: a token was taken, else microseconds to wait.
# GCRA (a token bucket kept as one number, the theoretical arrival time, on Redis's clock):
# with burst 1, sends are spaced by 1/rate, shared by every worker.
TAKE: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = 1000000 / tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then
  tat = now
end
local new = tat + interval
local wait = new - now - burst * interval
if wait > 0 then
  return math.ceil(wait)
end
redis.call('SET', KEYS[1], string.format('%d', new), 'PX', math.ceil((new - now) / 1000) + 1000)
return 0
"""


class Scripts:
    """The scripts registered on one client (``EVALSHA`` with a fallback to ``EVAL``)."""

    def __init__(self, client: Any) -> None:
        self.claim = client.register_script(CLAIM)
        self.settle = client.register_script(SETTLE)
        self.append = client.register_script(APPEND)
        self.ack = client.register_script(ACK)
        self.move = client.register_script(MOVE)
        self.promote = client.register_script(PROMOTE)
        self.take = client.register_script(TAKE)
