-- A member has read a room up to a message.
-- KEYS[1] the room's read positions, KEYS[2] its mention counts, KEYS[3] its
-- members, KEYS[4] its log, KEYS[5] the room hash (one slot)
-- ARGV[1] the member (lower-case), ARGV[2] the number of the last message
-- read, ARGV[3] its stream id
-- A position is only ever moved forward. The mention count is then what the
-- log holds after that message for the member: 0 when it is the room's last.
-- Returns the member's position after the call ("<n> <stream id>"), or nil
-- for someone who is not a member.
local member = ARGV[1]
if redis.call('HEXISTS', KEYS[3], member) == 0 then
  return false
end
local current = redis.call('HGET', KEYS[1], member)
local seq = tonumber(ARGV[2])
if current and tonumber(string.match(current, '^(%d+)')) >= seq then
  return current
end
local position = ARGV[2] .. ' ' .. ARGV[3]
redis.call('HSET', KEYS[1], member, position)
local last = tonumber(redis.call('HGET', KEYS[5], 'seq') or '0')
if seq >= last then
  redis.call('HDEL', KEYS[2], member)
  return position
end
local needle, count = ',' .. member .. ',', 0
for _, entry in ipairs(redis.call('XRANGE', KEYS[4], '(' .. ARGV[3], '+')) do
  local fields = entry[2]
  for j = 1, #fields, 2 do
    if fields[j] == 'at' and string.find(fields[j + 1], needle, 1, true) then
      count = count + 1
    end
  end
end
if count > 0 then
  redis.call('HSET', KEYS[2], member, count)
else
  redis.call('HDEL', KEYS[2], member)
end
return position
