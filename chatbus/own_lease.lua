-- A secured hub's presence: each user keeps their own leases, which only they
-- can write and everyone can read.
-- KEYS[1] NS:{presence}:lease:{user}  hash  lease id -> expiry (ms, hub clock)
-- KEYS[2] NS:{presence}:until:{user}  string  the latest expiry (ms)
-- ARGV[1] "join" (also the heartbeat) or "leave", ARGV[2] the users channel,
-- ARGV[3] the user's display name, ARGV[4] lease id, ARGV[5] lease TTL in ms
-- Expired leases are dropped; KEYS[2] (and KEYS[1]'s expiry) follow the latest
-- live one, and both go when none is left. When that makes the user come
-- online or go offline, publishes {"type": "join"|"leave", "name": NAME}:
-- a claim readers check against KEYS[2], since anyone may publish there.
-- Returns 1 when the user came online (join) or went offline (leave), else 0.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local was = tonumber(redis.call('GET', KEYS[2]) or '0') > now
if ARGV[1] == 'join' then
  redis.call('HSET', KEYS[1], ARGV[4], now + tonumber(ARGV[5]))
elseif ARGV[1] == 'leave' then
  redis.call('HDEL', KEYS[1], ARGV[4])
else
  return redis.error_reply('unknown lease operation ' .. tostring(ARGV[1]))
end
local latest = 0
local leases = redis.call('HGETALL', KEYS[1])
for i = 1, #leases, 2 do
  local expiry = tonumber(leases[i + 1]) or 0
  if expiry <= now then
    redis.call('HDEL', KEYS[1], leases[i])
  elseif expiry > latest then
    latest = expiry
  end
end
local is = latest > now
if is then
  redis.call('SET', KEYS[2], latest, 'PXAT', latest)
  redis.call('PEXPIREAT', KEYS[1], latest)
else
  redis.call('DEL', KEYS[1], KEYS[2])
end
if is ~= was then
  redis.call('SPUBLISH', ARGV[2], cjson.encode({type = is and 'join' or 'leave', name = ARGV[3]}))
  return 1
end
return 0
