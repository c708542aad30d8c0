#!lua flags=no-writes
-- export_page: one page of a customer's live idempotency records or dedup markers.
-- KEYS: the expiry ZSET (q or d), then for records the hash (r)
-- ARGV: clock ms (live = expiry after it), offset, count
-- Returns {ids scanned, id, ...} for markers, {ids scanned, id, record, ...} for records (in
-- expiry order; a record already gone from the hash is skipped). Fewer than count scanned: last.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[1], '+inf', 'LIMIT', ARGV[2], ARGV[3])
if #KEYS == 1 or #ids == 0 then
  table.insert(ids, 1, #ids)
  return ids
end
local values = redis.call('HMGET', KEYS[2], unpack(ids))
local out = {#ids}
for j, id in ipairs(ids) do
  if values[j] then
    out[#out + 1] = id
    out[#out + 1] = values[j]
  end
end
return out
