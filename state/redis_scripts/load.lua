#!lua flags=no-writes
-- load: one customer's snapshot parts and the idempotency record of a request, in one round trip.
-- KEYS: p j k e r q (see state/redis_keys.py)
-- ARGV: request_id ("" = none), want_journeys (0/1),
--       n_fields, <p fields...>, events (-1 = all, else n), <event types...>, n_caps, <cap keys...>
-- Returns {record or nil, {p values}, {journey, value, ...}, events, {cap values}} where events is
-- {type, value, ...} (all) or {values} (listed). Read-only; record expiry by the server clock.
local rid = ARGV[1]
local record = false
if rid ~= '' then
  local exp = redis.call('ZSCORE', KEYS[6], rid)
  if exp then
    local t = redis.call('TIME')
    if tonumber(exp) > tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) then
      record = redis.call('HGET', KEYS[5], rid)
    end
  end
end
local i = 3
local n = tonumber(ARGV[i])
local profile = {}
if n > 0 then
  profile = redis.call('HMGET', KEYS[1], unpack(ARGV, i + 1, i + n))
end
i = i + n + 1
local journeys = {}
if ARGV[2] == '1' then
  journeys = redis.call('HGETALL', KEYS[2])
end
n = tonumber(ARGV[i])
local events = {}
if n < 0 then
  events = redis.call('HGETALL', KEYS[4])
  n = 0
elseif n > 0 then
  events = redis.call('HMGET', KEYS[4], unpack(ARGV, i + 1, i + n))
end
i = i + n + 1
n = tonumber(ARGV[i])
local caps = {}
if n > 0 then
  caps = redis.call('HMGET', KEYS[3], unpack(ARGV, i + 1, i + n))
end
return {record, profile, journeys, events, caps}
