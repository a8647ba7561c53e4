-- Put messages in one mailbox, then announce them: persist, then notify.
-- KEYS[1] mailbox stream, KEYS[2] unread hash, KEYS[3] account hash (all of the
-- mailbox's owner, so all in one slot)
-- ARGV[1] the owner's inbox channel, ARGV[2] approximate mailbox length to keep,
-- ARGV[3] unread counter to bump by the number of messages ('' for none),
-- ARGV[4..] the encoded envelopes, in order
-- Returns the new stream ids, in order, or nil when the owner has no account.
-- Publishes one payload (SPUBLISH): a line "<stream id> <envelope>" per
-- message, joined by "\n" (an encoded envelope never holds a raw line break).
if redis.call('EXISTS', KEYS[3]) == 0 then
  return false
end
local ids, lines = {}, {}
for i = 4, #ARGV do
  local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'm', ARGV[i])
  ids[#ids + 1] = id
  lines[#lines + 1] = id .. ' ' .. ARGV[i]
end
if ARGV[3] ~= '' then
  redis.call('HINCRBY', KEYS[2], ARGV[3], #ids)
end
redis.call('SPUBLISH', ARGV[1], table.concat(lines, '\n'))
return ids
