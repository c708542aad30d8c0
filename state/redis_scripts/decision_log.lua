-- Append a batch of decision log records to the stream, trimmed to about
-- ARGV[1] entries, and index each by its decision id for ARGV[2] seconds.
-- KEYS[1]: the stream. ARGV[3]: the index key prefix (same hash tag).
-- ARGV[4..]: decision_id, record, decision_id, record, ...
-- Returns the number of records appended.
local stream = KEYS[1]
local maxlen = ARGV[1]
local ttl = ARGV[2]
local prefix = ARGV[3]
local n = 0
for i = 4, #ARGV, 2 do
  local entry = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*',
                           'decision_id', ARGV[i], 'record', ARGV[i + 1])
  redis.call('SET', prefix .. ARGV[i], entry, 'EX', ttl)
  n = n + 1
end
return n
