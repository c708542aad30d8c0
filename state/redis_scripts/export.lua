#!lua flags=no-writes
-- export: everything stored about one customer except the long, paged parts (privacy export).
-- KEYS: p j k e f (see state/redis_keys.py)
-- Returns {server clock ms, p flat, j flat, k flat, e flat, {feedback}}. Idempotency records and
-- dedup markers are read in pages by export_page.lua, live as of this clock.
local t = redis.call('TIME')
return {
  tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000),
  redis.call('HGETALL', KEYS[1]),
  redis.call('HGETALL', KEYS[2]),
  redis.call('HGETALL', KEYS[3]),
  redis.call('HGETALL', KEYS[4]),
  redis.call('LRANGE', KEYS[5], 0, -1),
}
