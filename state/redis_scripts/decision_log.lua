-- Append a batch of decision log records to the stream, trimmed to about
-- ARGV[1] entries; index each by its decision id for ARGV[2] seconds, and by
-- its customer (a ZSET of entry ids scored by their ms, the newest ARGV[5]
-- kept, expiring ARGV[2] seconds after the customer's last record).
-- KEYS[1]: the stream. ARGV[3]: the decision id index prefix, ARGV[4]: the
-- customer index prefix (both in the stream's hash tag).
-- ARGV[6..]: decision_id, customer_id, record, decision_id, ...
-- Returns the number of records appended.
local stream = KEYS[1]
local maxlen = ARGV[1]
local ttl = ARGV[2]
local prefix = ARGV[3]
local by_customer = ARGV[4]
local keep = tonumber(ARGV[5])
local n = 0
for i = 6, #ARGV, 3 do
  local customer = ARGV[i + 1]
  local entry = redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*',
                           'decision_id', ARGV[i], 'customer_id', customer,
                           'record', ARGV[i + 2])
  redis.call('SET', prefix .. ARGV[i], entry, 'EX', ttl)
  if customer ~= '' then
    local index = by_customer .. customer
    redis.call('ZADD', index, tonumber(string.match(entry, '^(%d+)')), entry)
    if redis.call('ZCARD', index) > keep then
      redis.call('ZREMRANGEBYRANK', index, 0, -(keep + 1))
    end
    redis.call('EXPIRE', index, ttl)
  end
  n = n + 1
end
return n
