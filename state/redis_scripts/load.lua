#!lua flags=no-writes
-- load: one customer's snapshot parts and the idempotency record of a request, in one round trip.
-- KEYS: p j k e r q (see state/redis_keys.py), then the state epoch marker of the customer's slot
-- ARGV: request_id ("" = none), msgpack plan
--       {want_journeys (0/1), {p fields...}, all_events (0/1), {event types...}, {cap keys...}}
-- Returns {0} when the epoch marker is missing (the state was lost), else
-- {1, server clock ms, consent version, record or nil, {p values}, {journey, value, ...}, events,
-- {cap values}} where events is {type, value, ...} (all) or {values} (listed). Read-only; record
-- expiry by the server clock, which is also the clock the caller decides at.
if redis.call('EXISTS', KEYS[7]) == 0 then
  return {0}
end
local t = redis.call('TIME')
local clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rid = ARGV[1]
local plan = cmsgpack.unpack(ARGV[2])
local record = false
if rid ~= '' then
  local exp = redis.call('ZSCORE', KEYS[6], rid)
  if exp and tonumber(exp) > clock then
    record = redis.call('HGET', KEYS[5], rid)
  end
end
local version = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local profile = {}
if #plan[2] > 0 then
  profile = redis.call('HMGET', KEYS[1], unpack(plan[2]))
end
local journeys = {}
if plan[1] == 1 then
  journeys = redis.call('HGETALL', KEYS[2])
end
local events = {}
if plan[3] == 1 then
  events = redis.call('HGETALL', KEYS[4])
elseif #plan[4] > 0 then
  events = redis.call('HMGET', KEYS[4], unpack(plan[4]))
end
local caps = {}
if #plan[5] > 0 then
  caps = redis.call('HMGET', KEYS[3], unpack(plan[5]))
end
return {1, clock, version, record, profile, journeys, events, caps}
