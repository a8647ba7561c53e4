-- Put messages in a stream, then announce them: persist, then notify.
-- KEYS[1] the stream; KEYS[2] the unread hash and KEYS[3] the account hash of
-- its owner when it is a mailbox (all in one slot), or neither when it is a
-- secured hub's from-stream (NS:{recipient}:from:{sender})
-- ARGV[1] the channel to announce on, ARGV[2] approximate stream length to keep,
-- ARGV[3] unread counter to bump by the number of messages ('' for none),
-- ARGV[4] retry window: 0 on a first try; on a retry, how many of the newest
-- entries to look through for envelopes an earlier try already stored,
-- ARGV[5] what to announce: '' for the entries themselves, else this payload
-- (a secured hub's bell: the sender's name),
-- ARGV[6..] the encoded envelopes, in order
-- Returns the stream ids, in order (an envelope stored by an earlier try keeps
-- its id and is neither stored, counted nor announced again), or nil when a
-- mailbox's owner has no account.
-- Announces once (SPUBLISH), if anything was stored: a line "<stream id>
-- <envelope>" per message stored now, joined by "\n" (an encoded envelope
-- never holds a raw line break), or ARGV[5].
if KEYS[3] and redis.call('EXISTS', KEYS[3]) == 0 then
  return false
end
-- On a retry: the ids an earlier try stored (the first "id" of each entry).
local stored = nil
if ARGV[4] ~= '0' then
  stored = {}
  for _, entry in ipairs(redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', ARGV[4])) do
    local fields = entry[2]
    for j = 1, #fields, 2 do
      local id = fields[j] == 'm' and string.match(fields[j + 1], '"id":"(%x+)"')
      if id then stored[id] = entry[1] end
    end
  end
end
local ids, lines = {}, {}
for i = 6, #ARGV do
  local id = stored and stored[string.match(ARGV[i], '"id":"(%x+)"') or '']
  if not id then
    id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'm', ARGV[i])
    lines[#lines + 1] = id .. ' ' .. ARGV[i]
  end
  ids[#ids + 1] = id
end
if ARGV[3] ~= '' and #lines > 0 then
  redis.call('HINCRBY', KEYS[2], ARGV[3], #lines)
end
if #lines > 0 then
  local payload = ARGV[5]
  if payload == '' then payload = table.concat(lines, '\n') end
  redis.call('SPUBLISH', ARGV[1], payload)
end
return ids
