-- Post messages to a room: append them to its log, then announce them.
-- KEYS[1] the room hash, KEYS[2] its members, KEYS[3] its log, KEYS[4] its
-- read positions, KEYS[5] its mention counts (all in the room's slot)
-- ARGV[1] the room's channel, ARGV[2] approximate log length to keep,
-- ARGV[3] the poster (lower-case), ARGV[4] retry window: 0 on a first try; on
-- a retry, how many of the newest entries to look through for envelopes an
-- earlier try already stored (the poster's, by envelope id),
-- ARGV[5..] the encoded envelopes, in order
-- Returns the stream ids, in order, or nil when the poster is not a member.
-- Each message gets the next number of the room (field "n"; the room hash's
-- "seq" is the last one given) and, in field "at", the members its body
-- mentions (",ann,bob,"; "@name", any case, as a whole word; not the poster),
-- whose mention counts go up by one. The poster has read the room up to
-- their last message. Announces once (SPUBLISH): a line
-- "<stream id> <n> <envelope>" per message stored now, joined by "\n".
if redis.call('HEXISTS', KEYS[2], ARGV[3]) == 0 then
  return false
end
local poster = ARGV[3]
local function key_of(payload)
  local id = string.match(payload, '"id":"(%x+)"')
  local from = string.match(payload, '"from":"([^"]*)"')
  return id and from and (string.lower(from) .. ':' .. id)
end
local stored = nil
if ARGV[4] ~= '0' then
  stored = {}
  for _, entry in ipairs(redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', ARGV[4])) do
    local fields = entry[2]
    for j = 1, #fields, 2 do
      local key = fields[j] == 'm' and key_of(fields[j + 1])
      if key then stored[key] = entry[1] end
    end
  end
end
-- The members a payload mentions. Only the body can hold '@' (names, ids,
-- kinds and numbers cannot), so the whole payload is searched; a JSON escape
-- such as "\n" before the '@' is a boundary, not a letter.
local function mentioned(payload)
  local text = string.lower(payload)
  local found, seen = {}, {}
  for pos, name in string.gmatch(text, '()@([%w_%-]+)') do
    local before = pos > 1 and string.sub(text, pos - 1, pos - 1) or ''
    local escaped = pos > 2 and string.sub(text, pos - 2, pos - 2) == '\\'
    local boundary = before == '' or escaped or not string.match(before, '[%w_%-]')
    if boundary and name ~= poster and not seen[name] and #name <= 32
        and redis.call('HEXISTS', KEYS[2], name) == 1 then
      seen[name] = true
      found[#found + 1] = name
    end
  end
  return found
end
local ids, lines = {}, {}
local seq, last = nil, nil
for i = 5, #ARGV do
  local id = stored and stored[key_of(ARGV[i]) or '']
  if not id then
    seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
    local names = mentioned(ARGV[i])
    local at = #names > 0 and (',' .. table.concat(names, ',') .. ',') or ''
    id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], '*',
      'm', ARGV[i], 'n', seq, 'at', at)
    for _, name in ipairs(names) do
      redis.call('HINCRBY', KEYS[5], name, 1)
    end
    lines[#lines + 1] = id .. ' ' .. seq .. ' ' .. ARGV[i]
    last = id
  end
  ids[#ids + 1] = id
end
if last then
  redis.call('HSET', KEYS[4], poster, seq .. ' ' .. last)
  redis.call('HDEL', KEYS[5], poster)
  redis.call('SPUBLISH', ARGV[1], table.concat(lines, '\n'))
end
return ids
