-- One customer's decision log records, through the customer index
-- (decision_log.lua). KEYS[1]: the stream; ARGV[1]: the customer's index key
-- (same hash tag); ARGV[2]: "read" or "forget".
-- read (ARGV[3] offset, ARGV[4] count): the records of that page of the
--   index, oldest first, then the number of index entries scanned; entries
--   trimmed out of the stream are skipped.
-- forget: XDEL every indexed entry and the index; returns how many entries
--   were deleted.
local stream = KEYS[1]
local index = ARGV[1]
if ARGV[2] == 'read' then
  local offset = tonumber(ARGV[3])
  local ids = redis.call('ZRANGE', index, offset, offset + tonumber(ARGV[4]) - 1)
  local out = {}
  for _, id in ipairs(ids) do
    local found = redis.call('XRANGE', stream, id, id)
    if found[1] then
      local fields = found[1][2]
      for j = 1, #fields, 2 do
        if fields[j] == 'record' then out[#out + 1] = fields[j + 1] end
      end
    end
  end
  out[#out + 1] = #ids
  return out
end
local deleted = 0
local ids = redis.call('ZRANGE', index, 0, -1)
for start = 1, #ids, 1000 do
  deleted = deleted + redis.call('XDEL', stream, unpack(ids, start, math.min(start + 999, #ids)))
end
redis.call('DEL', index)
return deleted
