"""The Lua scripts of the Redis store: each operation that reads and writes runs in one of them,
so it is atomic across every instance sharing the Redis (no read-modify-write races).

Keys (``P`` is ``[conversations] key_prefix``), passed in ``KEYS`` in this order:

1. ``P live``: sorted set, conversation id → its expiry (wall clock, seconds)
2. ``P changed``: set of ids put or used since any instance's last drain
3. ``P deleted``: set of ids finished or expired since
4. ``P evicted``: hash, id → ``<expires_at>\\n<data>`` of conversations pushed out by ``max_live``

A conversation is the hash ``P c:<id>`` (``d`` its JSON, ``e`` its expiry, ``n`` its lifetime),
found from its id with ``ARGV[1]`` (the prefix). Its Redis expiry is set relative to the
instance's ``now`` (``PEXPIRE``), so Redis drops what nobody touches even if no instance runs;
expiry is also checked against ``now`` on every read, so the two agree to the millisecond.
"""

from __future__ import annotations

# Shared by the writing scripts: one conversation ends (expired or finished).
_END = """
local function ended(prefix, id)
  redis.call('DEL', prefix .. 'c:' .. id)
  redis.call('ZREM', KEYS[1], id)
  redis.call('SREM', KEYS[2], id)
  redis.call('HDEL', KEYS[4], id)
  redis.call('SADD', KEYS[3], id)
end
local function live(prefix, id, now)
  local e = redis.call('HGET', prefix .. 'c:' .. id, 'e')
  return e and tonumber(e) > now
end
"""

# ARGV: prefix, id, data, expires_at, lifetime, now, mode, max_live, lock token ('' for none),
# release ('1': once stored, delete the lock the token holds, a turn's commit and unlock at once)
# mode: 'put' (always), 'add' (only if not live), 'replace' (only if live), 'restore' (only if
# not live and not expired; not a change). Returns 1 if stored, 0 if not, -1 if the token is stale.
STORE = _END + """
local prefix, id, now = ARGV[1], ARGV[2], tonumber(ARGV[6])
local mode, token = ARGV[7], ARGV[9]
if token ~= '' and redis.call('GET', prefix .. 'lock:' .. id) ~= token then return -1 end
local is_live = live(prefix, id, now)
if (mode == 'add' or mode == 'restore') and is_live then return 0 end
if mode == 'replace' and not is_live then return 0 end
local expires = tonumber(ARGV[4])
if expires <= now then return 0 end
local key = prefix .. 'c:' .. id
redis.call('HSET', key, 'd', ARGV[3], 'e', ARGV[4], 'n', ARGV[5])
redis.call('PEXPIRE', key, math.ceil((expires - now) * 1000))
redis.call('ZADD', KEYS[1], expires, id)
redis.call('HDEL', KEYS[4], id)
if mode ~= 'restore' then
  redis.call('SREM', KEYS[3], id)
  redis.call('SADD', KEYS[2], id)
end
local max_live = tonumber(ARGV[8])
while redis.call('ZCARD', KEYS[1]) > max_live do
  local victims = redis.call('ZRANGE', KEYS[1], 0, 1, 'WITHSCORES')
  local victim, score = victims[1], tonumber(victims[2])
  if victim == id then victim, score = victims[3], tonumber(victims[4]) end
  if victim == nil then break end
  if score <= now then
    ended(prefix, victim)
  else
    local vkey = prefix .. 'c:' .. victim
    local saved = redis.call('HMGET', vkey, 'e', 'd')
    redis.call('DEL', vkey)
    redis.call('ZREM', KEYS[1], victim)
    redis.call('SREM', KEYS[2], victim)
    if saved[2] then redis.call('HSET', KEYS[4], victim, saved[1] .. '\\n' .. saved[2]) end
  end
end
if token ~= '' and ARGV[10] == '1' then redis.call('DEL', prefix .. 'lock:' .. id) end
return 1
"""

# A use: the conversation's countdown starts again (its own lifetime ``n``).
_USE = """
local function used(prefix, id, key, lifetime, now)
  local expires = now + lifetime
  redis.call('HSET', key, 'e', string.format('%.6f', expires))
  redis.call('PEXPIRE', key, math.ceil(lifetime * 1000))
  redis.call('ZADD', KEYS[1], expires, id)
  redis.call('SREM', KEYS[3], id)
  redis.call('SADD', KEYS[2], id)
end
"""

# ARGV: prefix, id, now.
TOUCH = _USE + """
local prefix, id, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local key = prefix .. 'c:' .. id
local fields = redis.call('HMGET', key, 'e', 'n')
if not fields[1] or tonumber(fields[1]) <= now then return 0 end
used(prefix, id, key, tonumber(fields[2]), now)
return 1
"""

# ARGV: prefix, id, now, lease in ms. A turn's start: the lock taken with a fresh fencing token,
# the conversation read and used, in one round trip. Returns {0} if the conversation is not live
# (nothing taken), {1} if it is but another holds its lock, {2, token, data} once taken.
ACQUIRE = _USE + """
local prefix, id, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
local key = prefix .. 'c:' .. id
local fields = redis.call('HMGET', key, 'e', 'n', 'd')
if not fields[1] or not fields[3] or tonumber(fields[1]) <= now then return {0} end
local lock = prefix .. 'lock:' .. id
if redis.call('EXISTS', lock) == 1 then return {1} end
local token = redis.call('INCR', prefix .. 'fence')
redis.call('SET', lock, token, 'PX', ARGV[4])
used(prefix, id, key, tonumber(fields[2]), now)
return {2, token, fields[3]}
"""

# ARGV: prefix, id, now. Returns 1 if it was live.
DELETE = _END + """
local prefix, id, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
if not live(prefix, id, now) then return 0 end
ended(prefix, id)
return 1
"""

# ARGV: prefix, now, sweep limit. Ends the expired ones first, then hands over (and clears)
# the three records at once: each id goes to exactly one instance's saver.
DRAIN = _END + """
local prefix, now = ARGV[1], tonumber(ARGV[2])
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))) do
  ended(prefix, id)
end
local changed = redis.call('SMEMBERS', KEYS[2])
local deleted = redis.call('SMEMBERS', KEYS[3])
local evicted = redis.call('HGETALL', KEYS[4])
redis.call('DEL', KEYS[2], KEYS[3], KEYS[4])
return {changed, deleted, evicted}
"""

# KEYS: the lock, the fencing counter; ARGV: lease in ms. A fresh token, or nil if held.
# A lock alone, for what is not a live conversation (an OpenAI conversation: ``responses.hold``).
LOCK = """
local token = redis.call('INCR', KEYS[2])
if redis.call('SET', KEYS[1], token, 'NX', 'PX', ARGV[1]) then return token end
return false
"""

# KEYS: the lock; ARGV: token, lease in ms. 1 if the lease was still ours and is extended.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""

# KEYS: the lock; ARGV: token. Deletes it only if it is still ours (a lapsed lease may be another's).
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
