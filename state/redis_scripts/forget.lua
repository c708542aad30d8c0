#!lua
-- forget: delete every key of one customer in one step; returns how many keys existed.
-- UNLINK: the keys vanish at once, their memory is freed in the background, so a customer with
-- a long history does not block the server.
-- KEYS: p j k e r q d f (see state/redis_keys.py)
return redis.call('UNLINK', unpack(KEYS))
