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
-- Buckets are kept as ascending arrays of starts and counts (the stored order): a new count
-- lands at the end, coarsening and expiry take from the front, so a write touches the
-- buckets that change, not all of them (a counter holds up to ~145; Track stays flat).
local function load_sorted(arr, from)
  local starts, counts, sorted = {}, {}, true
  for j = from, #arr, 2 do
    local s = arr[j]
    if #starts > 0 and s <= starts[#starts] then
      sorted = false
    end
    starts[#starts + 1] = s
    counts[#counts + 1] = arr[j + 1]
  end
  if not sorted then -- written otherwise (by hand, an old version): merge equal starts, sort
    local sums, order = {}, {}
    for i, s in ipairs(starts) do
      if sums[s] == nil then
        order[#order + 1] = s
      end
      sums[s] = (sums[s] or 0) + counts[i]
    end
    table.sort(order)
    starts, counts = order, {}
    for i, s in ipairs(order) do
      counts[i] = sums[s]
    end
  end
  return {starts = starts, counts = counts}
end
-- Add n at start s (usually at or after the last start: searched from the end).
local function add(b, s, n)
  local starts, counts = b.starts, b.counts
  local i = #starts
  while i > 0 and starts[i] > s do
    i = i - 1
  end
  if i > 0 and starts[i] == s then
    counts[i] = counts[i] + n
  else
    table.insert(starts, i + 1, s)
    table.insert(counts, i + 1, n)
  end
end
-- Remove and return the leading buckets for which done(start) holds (a prefix: done is
-- monotonic in the start).
local function take_front(b, done)
  local starts, counts = b.starts, b.counts
  local k = 0
  while k < #starts and done(starts[k + 1]) do
    k = k + 1
  end
  if k == 0 then
    return {}, {}
  end
  local ts, tc, rs, rc = {}, {}, {}, {}
  for i = 1, #starts do
    if i <= k then
      ts[#ts + 1], tc[#tc + 1] = starts[i], counts[i]
    else
      rs[#rs + 1], rc[#rc + 1] = starts[i], counts[i]
    end
  end
  b.starts, b.counts = rs, rc
  return ts, tc
end
local function flat(b, into)
  into = into or {}
  for i, s in ipairs(b.starts) do
    into[#into + 1] = s
    into[#into + 1] = b.counts[i]
  end
  return into
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
    c = {total = 0, first = false, last = false, width = bucket_ms}
    c.hours = {starts = {}, counts = {}}
    c.days, c.months = {starts = {}, counts = {}}, {starts = {}, counts = {}}
    if raw then
      local arr = cmsgpack.unpack(raw)
      c.total, c.first, c.last, c.width = arr[1], arr[2], arr[3], arr[4]
      local from = 5
      if type(arr[5]) == 'table' then
        c.days = load_sorted(arr[5], 1)
        c.months = load_sorted(arr[6], 1)
        from = 7
      end
      c.hours = load_sorted(arr, from)
    end
    counters[etype] = c
    order[#order + 1] = etype
  end
  add(c.hours, start, count)
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
    local ts, tc = take_front(c.hours, function(s) return (s - s % day) + day <= cut end)
    for i, s in ipairs(ts) do
      add(c.days, s - s % day, tc[i])
    end
    cut = ref - daily
    ts, tc = take_front(c.days, function(s) return (s - s % month) + month <= cut end)
    for i, s in ipairs(ts) do
      add(c.months, s - s % month, tc[i])
    end
  end
  local horizon = ref - retention
  take_front(c.hours, function(s) return not (s + c.width > horizon) end)
  take_front(c.days, function(s) return not (s + day > horizon) end)
  take_front(c.months, function(s) return not (s + month > horizon) end)
  if retention > maxret then
    maxret = retention
  end
end
for _, etype in ipairs(order) do
  local c = counters[etype]
  local arr = flat(c.hours, {c.total, c.first, c.last, c.width, flat(c.days), flat(c.months)})
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
