-- Give an account a new password and end every session but the caller's.
-- KEYS[1] account hash, KEYS[2] sessions hash
-- ARGV[1] the password hash (hex) the client checked the current password
-- against, ARGV[2] new salt (hex), ARGV[3] new scrypt hash (hex), ARGV[4] n,
-- ARGV[5] r, ARGV[6] p, ARGV[7] sha256(token) (hex) of the session to keep
-- Returns the number of other sessions ended; -1 (nothing changed) when the
-- stored hash is no longer ARGV[1], -2 when the session to keep is gone.
if redis.call('HGET', KEYS[1], 'hash') ~= ARGV[1] then
  return -1
end
local since = redis.call('HGET', KEYS[2], ARGV[7])
if not since then
  return -2
end
local others = redis.call('HLEN', KEYS[2]) - 1
redis.call('HSET', KEYS[1], 'salt', ARGV[2], 'hash', ARGV[3],
  'n', ARGV[4], 'r', ARGV[5], 'p', ARGV[6])
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], ARGV[7], since)
return others
