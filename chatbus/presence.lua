-- Presence: who is online, kept by leases that expire in server time.
--
-- KEYS[1] online       zset  display name -> latest expiry of its leases (ms)
-- KEYS[2] leases       zset  "Name:lease" -> expiry of that lease (ms)
-- KEYS[3] lease-index  zset  "Name:lease", score 0 (prefix look-up of a name's leases)
-- KEYS[4] seq          string, number of the last presence event
-- ARGV[1] operation: "join" (also the heartbeat), "leave" or "snapshot"
-- ARGV[2] the users channel, where events are published (SPUBLISH)
-- ARGV[3] name, ARGV[4] lease id, ARGV[5] lease TTL in ms   (join and leave)
--
-- Every operation first reaps up to REAP_LIMIT expired leases, so the set, the
-- leases and the events never disagree, whoever notices the expiry first.
-- Events: {"type": "join"|"leave", "name": NAME, "seq": N, "online": COUNT}.
-- join returns 1 if the name came online, 0 if it already was; leave returns
-- 1 if the name went offline; snapshot returns {seq, {names...}}.

local online, leases, index, seq_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local operation, channel = ARGV[1], ARGV[2]
local REAP_LIMIT = 100

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local function emit(kind, name)
  local seq = redis.call('INCR', seq_key)
  local count = redis.call('ZCARD', online)
  redis.call('SPUBLISH', channel,
    cjson.encode({type = kind, name = name, seq = seq, online = count}))
end

-- Make the online score of name the latest expiry of its leases, or take the
-- name offline (with a leave event) when it has none left.
local function settle(name)
  local members = redis.call('ZRANGEBYLEX', index, '[' .. name .. ':', '(' .. name .. ';')
  local latest = nil
  for _, member in ipairs(members) do
    local score = tonumber(redis.call('ZSCORE', leases, member))
    if score and (latest == nil or score > latest) then latest = score end
  end
  if latest then
    redis.call('ZADD', online, latest, name)
    return 0
  end
  if redis.call('ZREM', online, name) == 1 then
    emit('leave', name)
    return 1
  end
  return 0
end

local function drop_lease(member)
  redis.call('ZREM', leases, member)
  redis.call('ZREM', index, member)
end

local function reap()
  local expired = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, REAP_LIMIT)
  local seen, names = {}, {}
  for _, member in ipairs(expired) do
    drop_lease(member)
    local name = string.match(member, '^(.*):')
    if not seen[name] then
      seen[name] = true
      names[#names + 1] = name
    end
  end
  for _, name in ipairs(names) do settle(name) end
end

reap()

if operation == 'join' then
  local name, lease, ttl = ARGV[3], ARGV[4], tonumber(ARGV[5])
  local member = name .. ':' .. lease
  local expiry = now + ttl
  redis.call('ZADD', leases, expiry, member)
  redis.call('ZADD', index, 0, member)
  -- Without CH, ZADD counts only new members: 1 means the name came online.
  local added = redis.call('ZADD', online, 'GT', expiry, name)
  if added == 1 then emit('join', name) end
  return added
elseif operation == 'leave' then
  drop_lease(ARGV[3] .. ':' .. ARGV[4])
  return settle(ARGV[3])
elseif operation == 'snapshot' then
  -- Names with a live lease only: more expired leases than one reap takes
  -- are reaped (with their leave events) by the calls that follow.
  local seq = tonumber(redis.call('GET', seq_key) or '0')
  return {seq, redis.call('ZRANGEBYSCORE', online, '(' .. now, '+inf')}
end
return redis.error_reply('unknown presence operation ' .. tostring(operation))
