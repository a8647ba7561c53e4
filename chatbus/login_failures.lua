-- Slow down password guessing: the wrong passwords tried for one user in a row.
-- KEYS[1] failure record (hash: count = failures in a row, next = hub ms
-- before which no try is allowed)
-- ARGV[1] 'attempt' or 'clear'
-- attempt, before checking a password: ARGV[2] failures that cost nothing,
-- ARGV[3] base delay (ms), ARGV[4] longest delay (ms), ARGV[5] how long the
-- record lasts after the last failure (ms).
--   Replies {0, ms}: refused, ms to wait; nothing changes.
--   Replies {1, ms}: allowed. The try is counted as a failure in advance
--   (count + 1, next = now + its delay, kept ARGV[5] ms), ms being that delay,
--   so tries made at the same time cannot get round it. The delay for count
--   failures is 0 below ARGV[2], else ARGV[3] * 2^(count - ARGV[2]), at most ARGV[4].
-- clear, after a right password: deletes the record; replies 1 if there was one.
if ARGV[1] == 'clear' then
  return redis.call('DEL', KEYS[1])
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local record = redis.call('HMGET', KEYS[1], 'count', 'next')
local count = tonumber(record[1]) or 0
local next_try = tonumber(record[2]) or 0
if now < next_try then
  return {0, next_try - now}
end
count = count + 1
local free, base, longest = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local delay = 0
if count >= free then
  delay = math.min(base * 2 ^ (count - free), longest)
end
delay = math.floor(delay)
redis.call('HSET', KEYS[1], 'count', count, 'next', string.format('%d', now + delay))
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {1, delay}
