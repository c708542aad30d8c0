#!lua flags=no-writes
-- export: everything stored about one customer, live records only (privacy export).
-- KEYS: p j k e r q d f (see state/redis_keys.py)
-- Returns {p flat, j flat, k flat, e flat, {request_id, record, ...}, {live event ids}, {feedback}}.
local t = redis.call('TIME')
local clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rids = redis.call('ZRANGEBYSCORE', KEYS[6], '(' .. string.format('%d', clock), '+inf')
local records = {}
if #rids > 0 then
  local values = redis.call('HMGET', KEYS[5], unpack(rids))
  for j, rid in ipairs(rids) do
    if values[j] then
      records[#records + 1] = rid
      records[#records + 1] = values[j]
    end
  end
end
return {
  redis.call('HGETALL', KEYS[1]),
  redis.call('HGETALL', KEYS[2]),
  redis.call('HGETALL', KEYS[3]),
  redis.call('HGETALL', KEYS[4]),
  records,
  redis.call('ZRANGEBYSCORE', KEYS[7], '(' .. string.format('%d', clock), '+inf'),
  redis.call('LRANGE', KEYS[8], 0, -1),
}
