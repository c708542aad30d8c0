#!lua
-- event: one event's effects, atomically -- dedup, journey compare-and-set, counters, feedback.
-- Mirrors policies.effects.apply_effects (dedup and feedback are the store's part).
-- KEYS: j e d f (see state/redis_keys.py), then the wake-up set of the customer's slot
-- ARGV: msgpack plan, journey state values (one per change, in order), feedback records
--       plan = {event_id, dedup_ttl_ms, feedback_limit, feedback_ttl_ms, changes, counters,
--               max_markers}
--       changes = {{journey, has_expect (0/1), expect_last_event_id, wake_ms (-1: none), member}...}
--       every change with a wake-up adds member to the wake-up set at wake_ms
--       counters = {{event_type, at_ms, bucket_ms, bucket_start_ms, count, retention_ms,
--                    hourly_horizon_ms, daily_horizon_ms, day_ms, month_ms}...}
-- Returns {1} applied, {0} duplicate, or {2, journey, has_expect, expect, has_found, found}
-- when a journey precondition fails (then nothing was written).
local t = redis.call('TIME')
local clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local plan = cmsgpack.unpack(ARGV[1])
local eid = plan[1]
local seen = redis.call('ZSCORE', KEYS[3], eid)
if seen and tonumber(seen) > clock then
  return {0}
end

local function last_event(value)
  local colon = string.find(value, ':', 1, true)
  local n = tonumber(string.sub(value, 1, colon - 1))
  return string.sub(value, colon + 1, colon + n)
end

-- Check every journey precondition, in order, before writing anything.
local changes = plan[5]
local found = {}
local writes = {}
for n, ch in ipairs(changes) do
  local journey, value = ch[1], ARGV[1 + n]
  local cur = found[journey]
  if cur == nil then
    local raw = redis.call('HGET', KEYS[1], journey)
    cur = raw and last_event(raw) or false
  end
  if not ((ch[2] == 1 and cur == ch[3]) or (ch[2] == 0 and cur == false)) then
    return {2, journey, ch[2], ch[3], cur and 1 or 0, cur or ''}
  end
  found[journey] = last_event(value)
  writes[#writes + 1] = journey
  writes[#writes + 1] = value
end
if #writes > 0 then
  redis.call('HSET', KEYS[1], unpack(writes))
  for _, ch in ipairs(changes) do
    if ch[4] and ch[4] >= 0 then
      redis.call('ZADD', KEYS[5], string.format('%d', ch[4]), ch[5])
    end
  end
end

-- Counters: {total, first (false = none), last, bucket_ms, {day, n, ...}, {month, n, ...},
-- start, n, start, n, ...}; a value without the two lists (older writes) has no coarse buckets.
-- Mirrors policies.effects.apply_counter: count, coarsen (hour -> day -> 30 days), expire.
local function load_pairs(into, flat)
  for j = 1, #flat, 2 do
    into[flat[j]] = flat[j + 1]
  end
end
local function flat_pairs(buckets)
  local starts = {}
  for s in pairs(buckets) do
    starts[#starts + 1] = s
  end
  table.sort(starts)
  local out = {}
  for _, s in ipairs(starts) do
    out[#out + 1] = s
    out[#out + 1] = buckets[s]
  end
  return out
end
local function expire(buckets, width, horizon)
  for s in pairs(buckets) do
    if not (s + width > horizon) then
      buckets[s] = nil
    end
  end
end
local counters = {}
local order = {}
local maxret = 0
for _, inc in ipairs(plan[6]) do
  local etype, at, bucket_ms, start, count, retention = inc[1], inc[2], inc[3], inc[4], inc[5], inc[6]
  local hourly, daily, day, month = inc[7], inc[8], inc[9], inc[10]
  local c = counters[etype]
  if c == nil then
    local raw = redis.call('HGET', KEYS[2], etype)
    c = {total = 0, first = false, last = false, width = bucket_ms, hours = {}, days = {},
         months = {}}
    if raw then
      local arr = cmsgpack.unpack(raw)
      c.total, c.first, c.last, c.width = arr[1], arr[2], arr[3], arr[4]
      local from = 5
      if type(arr[5]) == 'table' then
        load_pairs(c.days, arr[5])
        load_pairs(c.months, arr[6])
        from = 7
      end
      for j = from, #arr, 2 do
        c.hours[arr[j]] = arr[j + 1]
      end
    end
    counters[etype] = c
    order[#order + 1] = etype
  end
  c.hours[start] = (c.hours[start] or 0) + count
  c.total = c.total + count
  if c.first == false or at < c.first then
    c.first = at
  end
  if c.last == false or at > c.last then
    c.last = at
  end
  local ref = c.last
  if day % c.width == 0 then
    local cut = ref - hourly
    for s, n in pairs(c.hours) do
      local d = s - s % day
      if d + day <= cut then
        c.hours[s] = nil
        c.days[d] = (c.days[d] or 0) + n
      end
    end
    cut = ref - daily
    for s, n in pairs(c.days) do
      local m = s - s % month
      if m + month <= cut then
        c.days[s] = nil
        c.months[m] = (c.months[m] or 0) + n
      end
    end
  end
  local horizon = ref - retention
  expire(c.hours, c.width, horizon)
  expire(c.days, day, horizon)
  expire(c.months, month, horizon)
  if retention > maxret then
    maxret = retention
  end
end
for _, etype in ipairs(order) do
  local c = counters[etype]
  local arr = {c.total, c.first, c.last, c.width, flat_pairs(c.days), flat_pairs(c.months)}
  for _, v in ipairs(flat_pairs(c.hours)) do
    arr[#arr + 1] = v
  end
  redis.call('HSET', KEYS[2], etype, cmsgpack.pack(arr))
end
if #order > 0 then
  if maxret < 1 then
    maxret = 1
  end
  if redis.call('PTTL', KEYS[2]) < maxret then
    redis.call('PEXPIRE', KEYS[2], string.format('%d', maxret))
  end
end

-- Feedback, newest last, capped.
local first = 2 + #changes
if #ARGV >= first then
  redis.call('RPUSH', KEYS[4], unpack(ARGV, first, #ARGV))
  redis.call('LTRIM', KEYS[4], -plan[3], -1)
  if redis.call('PTTL', KEYS[4]) < plan[4] then
    redis.call('PEXPIRE', KEYS[4], string.format('%d', plan[4]))
  end
end

-- Remember the event id; drop expired markers, then the soonest to expire beyond the bound.
local ttl = plan[2]
redis.call('ZADD', KEYS[3], string.format('%d', clock + ttl), eid)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', clock)
local extra = redis.call('ZCARD', KEYS[3]) - plan[7]
if extra > 0 then
  redis.call('ZPOPMIN', KEYS[3], extra)
end
if redis.call('PTTL', KEYS[3]) < ttl then
  redis.call('PEXPIRE', KEYS[3], string.format('%d', ttl))
end
return {1}
