#!lua
-- commit: one decision, atomically -- idempotency, per-grant cap re-check + count, journey CAS.
-- Mirrors policies.effects.apply_commit exactly (the contract suite compares it with MemoryStore).
-- KEYS: j k r q p (see state/redis_keys.py), then the state epoch marker of the customer's slot,
--       then the wake-up set of the customer's slot (redis_keys.wake_key)
-- ARGV: msgpack plan, record, request fingerprint, journey state values (one per change, in order)
--       plan = {now_ms, request_id, ttl_ms, grants, changes, consent_version (-1: unchecked),
--               max_records, abort_on_rejection (0/1)}
--       grants = {{tracking_id, action, {{cap_id, key, window_ms, limit}...}}...}
--       changes = {{journey, has_expect (0/1), expect_last_event_id, wake_ms (-1: none), member}...}
--       an applied change with a wake-up adds member to the wake-up set at wake_ms
-- Returns {2} when the epoch marker is missing (state lost: nothing applied); {1, stored record}
-- when request_id already has a live record (nothing applied); {3} when the consent version is
-- no longer the one the decision was made on (nothing applied, nothing stored); {4} when
-- abort_on_rejection is set and a grant is rejected (nothing applied, nothing stored); else
-- {0, msgpack result} where result = {{granted...}, {{tracking_id, action, cap_id, key}...},
-- {skipped journeys...}}. A stored record is <n>:<m>:<result (n)><fingerprint (m)><record>.
if redis.call('EXISTS', KEYS[6]) == 0 then
  return {2}
end
local t = redis.call('TIME')
local clock = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local plan = cmsgpack.unpack(ARGV[1])
local rid = plan[2]
local exp = redis.call('ZSCORE', KEYS[4], rid)
if exp and tonumber(exp) > clock then
  local stored = redis.call('HGET', KEYS[3], rid)
  if stored then
    return {1, stored}
  end
end
if plan[6] >= 0 and tonumber(redis.call('HGET', KEYS[5], 'v') or '0') ~= plan[6] then
  return {3}
end

local now = plan[1]
local ttl = plan[3]

-- cap key -> {w = longest window seen, ts = grant instants ascending}
local caps = {}
local dirty = {}
local maxwin = 0
local function cap(key)
  local c = caps[key]
  if c == nil then
    local raw = redis.call('HGET', KEYS[2], key)
    local ts = {}
    local w = 0
    if raw then
      local arr = cmsgpack.unpack(raw)
      w = arr[1]
      for j = 2, #arr do
        ts[j - 1] = arr[j]
      end
    end
    c = {w = w, ts = ts}
    caps[key] = c
  end
  return c
end

local granted, rejected = {}, {}
for _, g in ipairs(plan[4]) do
  local incs = g[3]
  local refused = nil
  for _, inc in ipairs(incs) do
    local since = now - inc[3]
    local used = 0
    for _, at in ipairs(cap(inc[2]).ts) do
      -- No upper bound: a commit stamped earlier may land after a later one.
      if at > since then
        used = used + 1
      end
    end
    if used + 1 > inc[4] then
      refused = inc
      break
    end
  end
  if refused then
    rejected[#rejected + 1] = {g[1], g[2], refused[1], refused[2]}
  else
    for _, inc in ipairs(incs) do
      local key, window = inc[2], inc[3]
      local c = cap(key)
      local since = now - window
      local kept = {}
      for _, at in ipairs(c.ts) do
        if at > since then
          kept[#kept + 1] = at
        end
      end
      kept[#kept + 1] = now
      table.sort(kept)
      c.ts = kept
      if window > c.w then
        c.w = window
      end
      if window > maxwin then
        maxwin = window
      end
      dirty[key] = true
    end
    granted[#granted + 1] = g[1]
  end
end

if plan[8] == 1 and #rejected > 0 then
  return {4}
end

for key in pairs(dirty) do
  local c = caps[key]
  local arr = {c.w}
  for j, at in ipairs(c.ts) do
    arr[j + 1] = at
  end
  redis.call('HSET', KEYS[2], key, cmsgpack.pack(arr))
end
if next(dirty) ~= nil then
  -- The key must outlive its newest grant by the longest window written: only ever raise the TTL.
  if maxwin < 1 then
    maxwin = 1
  end
  if redis.call('PTTL', KEYS[2]) < maxwin then
    redis.call('PEXPIRE', KEYS[2], string.format('%d', maxwin))
  end
end

-- Journey changes: best effort, each a compare-and-set on the stored last_event_id.
local function last_event(value)
  local colon = string.find(value, ':', 1, true)
  local n = tonumber(string.sub(value, 1, colon - 1))
  return string.sub(value, colon + 1, colon + n)
end
local found = {}
local skipped = {}
for n, ch in ipairs(plan[5]) do
  local journey, value = ch[1], ARGV[3 + n]
  local cur = found[journey]
  if cur == nil then
    local raw = redis.call('HGET', KEYS[1], journey)
    cur = raw and last_event(raw) or false
  end
  if (ch[2] == 1 and cur == ch[3]) or (ch[2] == 0 and cur == false) then
    redis.call('HSET', KEYS[1], journey, value)
    found[journey] = last_event(value)
    if ch[4] and ch[4] >= 0 then
      redis.call('ZADD', KEYS[7], string.format('%d', ch[4]), ch[5])
    end
  else
    found[journey] = cur
    skipped[#skipped + 1] = journey
  end
end

local result = cmsgpack.pack({granted, rejected, skipped})
local header = string.format('%d:%d:', #result, #ARGV[3])
redis.call('HSET', KEYS[3], rid, header .. result .. ARGV[3] .. ARGV[2])
redis.call('ZADD', KEYS[4], string.format('%d', clock + ttl), rid)
local old = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', clock, 'LIMIT', 0, 100)
if #old > 0 then
  redis.call('HDEL', KEYS[3], unpack(old))
  redis.call('ZREM', KEYS[4], unpack(old))
end
-- At most max_records per customer: evict the soonest to expire (in chunks: unpack is bounded).
local extra = redis.call('ZCARD', KEYS[4]) - plan[7]
while extra > 0 do
  local gone = redis.call('ZPOPMIN', KEYS[4], math.min(extra, 1000))
  local ids = {}
  for j = 1, #gone, 2 do
    ids[#ids + 1] = gone[j]
  end
  redis.call('HDEL', KEYS[3], unpack(ids))
  extra = extra - #ids
end
if redis.call('PTTL', KEYS[3]) < ttl or redis.call('PTTL', KEYS[4]) < ttl then
  redis.call('PEXPIRE', KEYS[3], string.format('%d', ttl))
  redis.call('PEXPIRE', KEYS[4], string.format('%d', ttl))
end
return {0, result}
