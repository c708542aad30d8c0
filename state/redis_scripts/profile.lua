#!lua
-- profile: traits and consent with source-timestamp precedence, atomically.
-- Mirrors policies.effects.apply_profile_update: newer wins; a trait at an equal timestamp
-- applies; a consent at an equal timestamp applies only if it is a denial.
-- KEYS: p (see state/redis_keys.py)
-- ARGV: n, per field: field, kind ('t' trait / 'c' consent), timestamp_ms, flag ('-', 'g', 'd'), value
-- Returns {applied (0/1), stored_ms, ...} per field, in order.
local cache = {}
local out = {}
local i = 2
for _ = 1, tonumber(ARGV[1]) do
  local field, kind, ts, flag, value = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 4]
  i = i + 5
  local cur = cache[field]
  if cur == nil then
    local raw = redis.call('HGET', KEYS[1], field)
    if raw then
      local bar = string.find(raw, '|', 1, true)
      cur = {ms = tonumber(string.sub(raw, 1, bar - 1)), flag = string.sub(raw, bar + 1, bar + 1)}
    else
      cur = false
    end
  end
  local apply
  if cur == false then
    apply = true
  elseif kind == 't' then
    apply = ts >= cur.ms
  else
    apply = ts > cur.ms or (ts == cur.ms and flag == 'd')
  end
  if apply then
    redis.call('HSET', KEYS[1], field, value)
    cur = {ms = ts, flag = flag}
    out[#out + 1] = 1
  else
    out[#out + 1] = 0
  end
  cache[field] = cur
  out[#out + 1] = cur.ms
end
return out
