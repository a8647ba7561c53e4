-- A room's membership and topic: create or join, leave, invite, set the topic.
-- KEYS[1] the room hash, KEYS[2] its members, KEYS[3] its invited, KEYS[4]
-- its log, KEYS[5] its read positions, KEYS[6] its mention counts (one slot)
-- ARGV[1] the room's channel, ARGV[2] approximate log length to keep,
-- ARGV[3] kind: join, leave, invite or topic, ARGV[4] who acts (lower-case),
-- ARGV[5] how they spell their name, ARGV[6] the event's encoded envelope,
-- ARGV[7] for join: the room's name as typed, for invite: who is invited
-- (lower-case), for topic: the new topic, ARGV[8] for join: '1' to create
-- the room private (a private room is joined by invitation, and by its owner
-- once it is empty)
-- Returns {outcome, room name as created, private '0' or '1'}, outcome one of
-- created, joined, left, invited, topic (the event was logged and announced as
-- "<stream id> <n> <envelope>", n the room's last message number), or
-- member (already one: nothing done), invited-already (nothing done),
-- not-member, private (not invited), no-room.
local kind, actor = ARGV[3], ARGV[4]
local created = false
if redis.call('EXISTS', KEYS[1]) == 0 then
  if kind ~= 'join' then
    return {'no-room', '', '0'}
  end
  local now = redis.call('TIME')
  redis.call('HSET', KEYS[1], 'name', ARGV[7], 'owner', ARGV[5], 'private', ARGV[8],
    'topic', '', 'seq', 0, 'created', string.format('%d', now[1] * 1000 + math.floor(now[2] / 1000)))
  created = true
end
local room = redis.call('HMGET', KEYS[1], 'name', 'private', 'seq', 'owner')
local member = redis.call('HEXISTS', KEYS[2], actor) == 1
local outcome
if kind == 'join' then
  if member then
    return {'member', room[1], room[2]}
  end
  -- A private room takes the invited, and its owner back once it is empty.
  local owner_back = string.lower(room[4] or '') == actor and redis.call('HLEN', KEYS[2]) == 0
  if not created and room[2] == '1' and not owner_back
      and redis.call('HEXISTS', KEYS[3], actor) == 0 then
    return {'private', room[1], room[2]}
  end
  outcome = created and 'created' or 'joined'
  redis.call('HSET', KEYS[2], actor, ARGV[5])
  redis.call('HDEL', KEYS[3], actor)
elseif not member then
  return {'not-member', room[1], room[2]}
elseif kind == 'leave' then
  redis.call('HDEL', KEYS[2], actor)
  redis.call('HDEL', KEYS[5], actor)
  redis.call('HDEL', KEYS[6], actor)
  outcome = 'left'
elseif kind == 'invite' then
  if redis.call('HEXISTS', KEYS[2], ARGV[7]) == 1 then
    return {'member', room[1], room[2]}
  end
  if redis.call('HEXISTS', KEYS[3], ARGV[7]) == 1 then
    return {'invited-already', room[1], room[2]}
  end
  redis.call('HSET', KEYS[3], ARGV[7], ARGV[5])
  outcome = 'invited'
elseif kind == 'topic' then
  redis.call('HSET', KEYS[1], 'topic', ARGV[7])
  outcome = 'topic'
else
  return redis.error_reply('unknown room event ' .. kind)
end
local id = redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[2], '*',
  'm', ARGV[6], 'n', room[3], 'at', '')
if kind == 'join' then
  -- A new member has read what came before they joined.
  redis.call('HSET', KEYS[5], actor, room[3] .. ' ' .. id)
end
redis.call('SPUBLISH', ARGV[1], id .. ' ' .. room[3] .. ' ' .. ARGV[6])
return {outcome, room[1], room[2]}
