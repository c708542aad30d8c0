#!lua
-- seed: replace one customer's state (tests, scenario runs, benchmarks; not on the request path).
-- KEYS: p j k e r q d f (see state/redis_keys.py)
-- ARGV: caps_ttl_ms, events_ttl_ms, n_p, n_j, n_k, n_e, then field/value pairs of p, j, k, e.
-- The consent version (p field v) survives and is bumped: the consent may have changed.
local version = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
for j = 1, 4 do
  redis.call('DEL', KEYS[j])
end
local i = 7
for j = 1, 4 do
  local n = tonumber(ARGV[2 + j])
  if n > 0 then
    redis.call('HSET', KEYS[j], unpack(ARGV, i, i + 2 * n - 1))
    if j == 3 then
      redis.call('PEXPIRE', KEYS[j], ARGV[1])
    elseif j == 4 then
      redis.call('PEXPIRE', KEYS[j], ARGV[2])
    end
  end
  i = i + 2 * n
end
redis.call('HSET', KEYS[1], 'v', version + 1)
return 1
