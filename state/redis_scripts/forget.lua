#!lua
-- forget: delete every key of one customer in one step; returns how many keys existed.
-- KEYS: p j k e r q d f (see state/redis_keys.py)
return redis.call('DEL', unpack(KEYS))
