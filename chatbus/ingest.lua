-- A secured hub: take what one sender wrote to this user into the user's
-- mailbox. The sender is the one the stream's key names (only they can write
-- it); an envelope claiming anyone else, or not to this user, is dropped.
-- KEYS[1] the user's mailbox, KEYS[2] the user's unread hash,
-- KEYS[3] NS:{user}:from:sender, KEYS[4] the user's senders set,
-- KEYS[5] the user's taken set (zset: "sender:envelope id" -> ms taken)
-- ARGV[1] the user's inbox channel, ARGV[2] approximate mailbox length to keep,
-- ARGV[3] the sender's name in key form (lower case), ARGV[4] the user's name
-- in key form, ARGV[5] the largest encoded envelope taken (bytes),
-- ARGV[6] how many entries to take at most, ARGV[7] the sender's display
-- name (from the directory): the unread field to bump, ARGV[8] how many
-- taken ids to remember
-- Moves the entries in order (XADD to the mailbox, XDEL from the stream),
-- bumps the unread count of the sender (ARGV[7], not as the envelopes spell
-- the name: one field per sender, whatever the case they write it in) and
-- announces the new mailbox entries on the inbox channel, at most 100 a
-- payload, as deliver.lua does. An envelope whose id this sender's stream
-- brought before (a send retried after its first try was taken in) is not
-- taken twice: the taken set remembers the newest ARGV[8] of them.
-- A stream left empty is deleted and its sender taken out of the set, so
-- names nobody writes under do not pile up there (a sender's next message
-- adds its name again; its bell names it meanwhile).
-- Returns {moved, dropped, read}: read = ARGV[6] means more may wait (an
-- id taken before is neither moved nor dropped).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local entries = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', ARGV[6])
local lines, taken, dropped = {}, {}, 0
for _, entry in ipairs(entries) do
  taken[#taken + 1] = entry[1]
  local encoded = nil
  for j = 1, #entry[2], 2 do
    if entry[2][j] == 'm' then encoded = entry[2][j + 1] end
  end
  local ok, envelope = false, nil
  if encoded and #encoded <= tonumber(ARGV[5]) then
    ok, envelope = pcall(cjson.decode, encoded)
  end
  if ok and type(envelope) == 'table' and type(envelope['from']) == 'string'
      and type(envelope['to']) == 'string' and type(envelope['id']) == 'string'
      and string.lower(envelope['from']) == ARGV[3]
      and string.lower(envelope['to']) == ARGV[4] then
    local seen = ARGV[3] .. ':' .. envelope['id']
    if not redis.call('ZSCORE', KEYS[5], seen) then
      redis.call('ZADD', KEYS[5], now, seen)
      local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'm', encoded)
      lines[#lines + 1] = id .. ' ' .. encoded
    end
  else
    dropped = dropped + 1
  end
end
if #taken > 0 then
  redis.call('XDEL', KEYS[3], unpack(taken))
end
if redis.call('XLEN', KEYS[3]) == 0 then
  redis.call('DEL', KEYS[3])
  redis.call('SREM', KEYS[4], ARGV[3])
end
if #lines > 0 then
  redis.call('HINCRBY', KEYS[2], ARGV[7], #lines)
  redis.call('ZREMRANGEBYRANK', KEYS[5], 0, -1 - tonumber(ARGV[8]))
  for first = 1, #lines, 100 do
    local last = math.min(first + 99, #lines)
    redis.call('SPUBLISH', ARGV[1], table.concat(lines, '\n', first, last))
  end
end
return {#lines, dropped, #taken}
