#!lua
-- health: can this node take a commit now, and does it hold the state of record?
-- KEYS: the state epoch marker of a slot this node serves (see state/redis_keys.py)
-- Deliberately not flagged no-writes: Redis then refuses to run it wherever it would refuse a
-- commit -- out of memory (OOM), read-only replica (READONLY), failing persistence (MISCONF),
-- too few replicas (NOREPLICAS) -- besides LOADING, BUSY and CLUSTERDOWN. Writes nothing.
-- Returns 1 when the epoch marker exists, 0 when the state was lost.
return redis.call('EXISTS', KEYS[1])
