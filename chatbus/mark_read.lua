-- Some messages of one sender have been read: lower their unread count.
-- KEYS[1] the reader's unread hash
-- ARGV[1] the sender's display name (the field), ARGV[2] how many were read
-- Returns the count left; the field is removed when none are left (or when it
-- holds anything but a count, which no chatbus client writes).
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
local left = (current or 0) - tonumber(ARGV[2])
if current == nil or left <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], left)
return left
