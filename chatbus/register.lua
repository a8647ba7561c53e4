-- Create an account and its first session, unless the name is taken.
-- KEYS[1] account hash, KEYS[2] sessions hash
-- ARGV[1] display name, ARGV[2] salt (hex), ARGV[3] scrypt hash (hex),
-- ARGV[4] n, ARGV[5] r, ARGV[6] p, ARGV[7] sha256(token) (hex)
-- Returns 1 when created, 0 when the name was already registered.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('HSET', KEYS[1], 'name', ARGV[1], 'salt', ARGV[2], 'hash', ARGV[3],
  'n', ARGV[4], 'r', ARGV[5], 'p', ARGV[6], 'created', now)
redis.call('HSET', KEYS[2], ARGV[7], now)
return 1
