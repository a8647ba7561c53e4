-- Put one message in a mailbox, then announce it: persist, then notify.
-- KEYS[1] mailbox stream, KEYS[2] unread hash, KEYS[3] account hash (all of the
-- mailbox's owner, so all in one slot)
-- ARGV[1] the owner's inbox channel, ARGV[2] approximate mailbox length to keep,
-- ARGV[3] the encoded envelope, ARGV[4] unread counter to bump ('' for none)
-- Returns the new stream id, or nil when the owner has no account.
-- Publishes "<stream id> <envelope>" on the channel (SPUBLISH).
if redis.call('EXISTS', KEYS[3]) == 0 then
  return false
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'm', ARGV[3])
if ARGV[4] ~= '' then
  redis.call('HINCRBY', KEYS[2], ARGV[4], 1)
end
redis.call('SPUBLISH', ARGV[1], id .. ' ' .. ARGV[3])
return id
