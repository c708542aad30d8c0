#!lua
-- profile: traits, consent and segments with source-timestamp precedence, atomically.
-- Mirrors policies.effects.apply_profile_update: newer wins; a trait or the segment set at an
-- equal timestamp applies; a consent at an equal timestamp applies only if it is a denial.
-- KEYS: p (see state/redis_keys.py)
-- ARGV: msgpack plan, then one stored value per field, in order
--       plan = {{field, kind ('t' trait / 'c' consent / 'g' segments), timestamp_ms,
--                flag ('-', 'g', 'd'), bumps (1: a consent or the do-not-contact trait)}...}
-- Returns {applied (0/1), stored_ms, ...} per field, in order. An applied field that bumps
-- increments the consent version (field v) once per call: see commit.lua.
local plan = cmsgpack.unpack(ARGV[1])
local cache = {}
local out = {}
local bump = false
for n, f in ipairs(plan) do
  local field, kind, ts, flag, bumps = f[1], f[2], f[3], f[4], f[5]
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
  elseif kind == 'c' then
    apply = ts > cur.ms or (ts == cur.ms and flag == 'd')
  else
    apply = ts >= cur.ms
  end
  if apply then
    redis.call('HSET', KEYS[1], field, ARGV[1 + n])
    cur = {ms = ts, flag = flag}
    out[#out + 1] = 1
    if bumps == 1 then
      bump = true
    end
  else
    out[#out + 1] = 0
  end
  cache[field] = cur
  out[#out + 1] = cur.ms
end
if bump then
  redis.call('HINCRBY', KEYS[1], 'v', 1)
end
return out
