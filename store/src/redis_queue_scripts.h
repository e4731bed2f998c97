// Private to store/src/redis_queue.cc: the Lua scripts of the Redis queue. Each script is the
// prelude below followed by its body; ARGV[1] is the key prefix. Redis runs a script atomically,
// and since 7.0 replicates its effects, so TIME and XADD * may precede writes. Times are the
// Redis server's clock (one clock for every gateway's leases); ids and milliseconds stay below
// 2^53, exact in Lua's doubles.
#pragma once

namespace faas::store::redis_scripts {

// Helpers shared by every script. Message hash fields: q (queue), body, hdr (headers JSON), att,
// enq (enqueued ms), err (last error), st (r: in the stream, not leased; l: leased; d: delayed;
// x: dead), eid (stream entry id while r or l), until (lease deadline), and for dead letters oq
// (origin queue), derr, dms.
constexpr const char* kPrelude = R"lua(
local P = ARGV[1]
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function stream(q)
  local s = P .. 's:' .. q
  if redis.call('EXISTS', s) == 0 then
    redis.call('XGROUP', 'CREATE', s, 'g', '$', 'MKSTREAM')
  end
  return s
end
local function enqueue(id, q)
  local eid = redis.call('XADD', stream(q), '*', 'id', id)
  redis.call('HSET', P .. 'm:' .. id, 'st', 'r', 'eid', eid, 'q', q)
end
local function publish(q, body, hdr, visible_at, now)
  local id = redis.call('INCR', P .. 'seq')
  redis.call('HSET', P .. 'm:' .. id, 'q', q, 'body', body, 'hdr', hdr, 'att', 0, 'enq', now,
             'err', '')
  if visible_at > now then
    redis.call('HSET', P .. 'm:' .. id, 'st', 'd', 'eid', '')
    redis.call('ZADD', P .. 'd:' .. q, visible_at, id)
  else
    enqueue(id, q)
  end
  redis.call('HINCRBY', P .. 'c:' .. q, 'pub', 1)
  redis.call('HINCRBY', P .. 'c:' .. q, 'ack', 0)
  redis.call('SADD', P .. 'queues', q)
  return id
end
-- The queue and entry of the open lease (id, att), or nil when that lease is not open.
local function open_lease(id, att)
  local f = redis.call('HMGET', P .. 'm:' .. id, 'st', 'att', 'q', 'eid')
  if f[1] ~= 'l' or tonumber(f[2]) ~= tonumber(att) then
    return nil
  end
  return f[3], f[4]
end
-- Ends a lease's pending entry: acked and deleted from the stream, its deadline forgotten.
local function end_lease(id, q, eid)
  local s = P .. 's:' .. q
  redis.call('XACK', s, 'g', eid)
  redis.call('XDEL', s, eid)
  redis.call('ZREM', P .. 'l:' .. q, id)
end
-- Delayed messages of q that are due go (back) to the stream.
local function promote(q, now)
  local d = P .. 'd:' .. q
  local due = redis.call('ZRANGEBYSCORE', d, '-inf', now, 'LIMIT', 0, 1000)
  for _, id in ipairs(due) do
    redis.call('ZREM', d, id)
    enqueue(id, q)
  end
end
-- Writes an async record from ARGV[i..i+15]: id, function, tenant, status, http status, headers,
-- body, truncated, error code, error message, attempts, callback url, callback status, created
-- ms (0 keeps), updated ms (0 = now), ttl ms.
local function put_record(i, now)
  local k = P .. 'a:' .. ARGV[i]
  local created = tonumber(ARGV[i + 13])
  if created == 0 then
    local old = redis.call('HGET', k, 'cr')
    if old then created = tonumber(old) else created = now end
  end
  local updated = tonumber(ARGV[i + 14])
  if updated == 0 then updated = now end
  redis.call('HSET', k, 'fn', ARGV[i + 1], 'tn', ARGV[i + 2], 'st', ARGV[i + 3],
             'hs', ARGV[i + 4], 'hdr', ARGV[i + 5], 'body', ARGV[i + 6], 'bt', ARGV[i + 7],
             'ec', ARGV[i + 8], 'em', ARGV[i + 9], 'at', ARGV[i + 10], 'cu', ARGV[i + 11],
             'cs', ARGV[i + 12], 'cr', created, 'up', updated)
  redis.call('PEXPIRE', k, ARGV[i + 15])
end
)lua";

// ARGV: P, queue, body, headers, visible_at. Returns the id.
constexpr const char* kPublish = R"lua(
return publish(ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5]), now_ms())
)lua";

// The publishes of async records stamp the record with "token:message id" (field pw), so a
// caller whose connection broke can ask whether its write ran (RedisQueue::EvalStamped).

// ARGV: P, queue, body, headers, record (16), token. Returns the id.
constexpr const char* kPublishAsync = R"lua(
local now = now_ms()
put_record(5, now)
local id = publish(ARGV[2], ARGV[3], ARGV[4], 0, now)
redis.call('HSET', P .. 'a:' .. ARGV[5], 'pw', ARGV[21] .. ':' .. id)
return id
)lua";

// ARGV: P, queue, body, headers, key, ttl ms, record (16), token. Returns {id, invocation id};
// id 0 when the key was held (by the invocation returned; nothing is written, no stamp).
constexpr const char* kPublishAsyncOnce = R"lua(
local k = P .. 'k:' .. ARGV[5]
if not redis.call('SET', k, ARGV[7], 'NX', 'PX', ARGV[6]) then
  return {0, redis.call('GET', k)}
end
local now = now_ms()
put_record(7, now)
local id = publish(ARGV[2], ARGV[3], ARGV[4], 0, now)
redis.call('HSET', P .. 'a:' .. ARGV[7], 'pw', ARGV[23] .. ':' .. id)
return {id, ARGV[7]}
)lua";

// ARGV: P, queue, max, visibility ms, consumer. Returns 6 values per leased message: id, body,
// headers, attempt, enqueued ms, last error. Expired leases first (taken over with XCLAIM), then
// new entries (XREADGROUP), each group in stream order.
constexpr const char* kLease = R"lua(
local q, max, vis, consumer = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local now = now_ms()
promote(q, now)
local s = P .. 's:' .. q
local out = {}
if redis.call('EXISTS', s) == 0 then return out end
local taken = {}
local expired = redis.call('ZRANGEBYSCORE', P .. 'l:' .. q, '-inf', now, 'LIMIT', 0, max)
for _, id in ipairs(expired) do
  local eid = redis.call('HGET', P .. 'm:' .. id, 'eid')
  redis.call('XCLAIM', s, 'g', consumer, 0, eid)
  table.insert(taken, id)
end
if #taken < max then
  local r = redis.call('XREADGROUP', 'GROUP', 'g', consumer, 'COUNT', max - #taken,
                       'STREAMS', s, '>')
  if r then
    for _, e in ipairs(r[1][2]) do
      local id = e[2][2]
      if redis.call('EXISTS', P .. 'm:' .. id) == 1 then
        table.insert(taken, id)
      else  -- a message deleted by hand: drop its entry
        redis.call('XACK', s, 'g', e[1])
        redis.call('XDEL', s, e[1])
      end
    end
  end
end
local deadline = now + vis
for _, id in ipairs(taken) do
  local m = P .. 'm:' .. id
  local att = redis.call('HINCRBY', m, 'att', 1)
  redis.call('HSET', m, 'st', 'l', 'until', deadline)
  redis.call('ZADD', P .. 'l:' .. q, deadline, id)
  local f = redis.call('HMGET', m, 'body', 'hdr', 'enq', 'err')
  table.insert(out, tonumber(id))
  table.insert(out, f[1])
  table.insert(out, f[2])
  table.insert(out, att)
  table.insert(out, tonumber(f[3]))
  table.insert(out, f[4])
end
return out
)lua";

// ARGV: P, queue. Returns {ready now (0/1), ms until the next lease expiry or retry (-1: none),
// the stream's last entry id}: what WaitForReady needs to block on XREAD without missing a write.
constexpr const char* kProbe = R"lua(
local q = ARGV[2]
local now = now_ms()
local s = P .. 's:' .. q
local ready, due, last = 0, -1, '0-0'
if redis.call('EXISTS', s) == 1 then
  local tail = redis.call('XREVRANGE', s, '+', '-', 'COUNT', 1)
  if #tail > 0 then last = tail[1][1] end
  if redis.call('XLEN', s) > redis.call('ZCARD', P .. 'l:' .. q) then ready = 1 end
end
for _, k in ipairs({P .. 'l:' .. q, P .. 'd:' .. q}) do
  local z = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
  if #z > 0 then
    local d = tonumber(z[2]) - now
    if d <= 0 then ready = 1 end
    if due < 0 or d < due then due = math.max(d, 0) end
  end
end
return {ready, due, last}
)lua";

// ARGV: P, id, attempt, visibility ms. 1 = the lease's deadline is now + visibility, 0 = lease
// lost.
constexpr const char* kExtend = R"lua(
local id = ARGV[2]
local q = open_lease(id, ARGV[3])
if not q then return 0 end
local deadline = now_ms() + tonumber(ARGV[4])
redis.call('HSET', P .. 'm:' .. id, 'until', deadline)
redis.call('ZADD', P .. 'l:' .. q, deadline, id)
return 1
)lua";

// ARGV: P, id, attempt. 1 = acked, 0 = lease lost.
constexpr const char* kAck = R"lua(
local q, eid = open_lease(ARGV[2], ARGV[3])
if not q then return 0 end
end_lease(ARGV[2], q, eid)
redis.call('DEL', P .. 'm:' .. ARGV[2])
redis.call('HINCRBY', P .. 'c:' .. q, 'ack', 1)
return 1
)lua";

// ARGV: P, id, attempt, record (16). 1 = acked and written, 0 = lease lost (nothing written).
constexpr const char* kAckWithResult = R"lua(
local q, eid = open_lease(ARGV[2], ARGV[3])
if not q then return 0 end
end_lease(ARGV[2], q, eid)
redis.call('DEL', P .. 'm:' .. ARGV[2])
redis.call('HINCRBY', P .. 'c:' .. q, 'ack', 1)
put_record(4, now_ms())
return 1
)lua";

// ARGV: P, id, attempt, visible_at ms, error. 1 = retried, 0 = lease lost.
constexpr const char* kRetry = R"lua(
local id = ARGV[2]
local q, eid = open_lease(id, ARGV[3])
if not q then return 0 end
end_lease(id, q, eid)
local m = P .. 'm:' .. id
redis.call('HSET', m, 'err', ARGV[5])
local at = tonumber(ARGV[4])
if at > now_ms() then
  redis.call('HSET', m, 'st', 'd', 'eid', '')
  redis.call('ZADD', P .. 'd:' .. q, at, id)
else
  enqueue(id, q)
end
return 1
)lua";

// ARGV: P, id, attempt, dlq, error. 1 = dead-lettered, 0 = lease lost.
constexpr const char* kDeadLetter = R"lua(
local id, dlq = ARGV[2], ARGV[4]
local q, eid = open_lease(id, ARGV[3])
if not q then return 0 end
end_lease(id, q, eid)
redis.call('HSET', P .. 'm:' .. id, 'st', 'x', 'eid', '', 'oq', q, 'q', dlq, 'derr', ARGV[5],
           'dms', now_ms())
redis.call('XADD', P .. 'x:' .. dlq, '*', 'id', id)
redis.call('HINCRBY', P .. 'c:' .. dlq, 'pub', 0)
redis.call('SADD', P .. 'queues', dlq)
return 1
)lua";

// ARGV: P, dlq, limit. 9 values per dead letter: id, origin queue, body, headers, attempt,
// enqueued ms, last error, dead-letter error, dead ms.
constexpr const char* kListDead = R"lua(
local out = {}
local entries = redis.call('XRANGE', P .. 'x:' .. ARGV[2], '-', '+', 'COUNT', ARGV[3])
for _, e in ipairs(entries) do
  local id = e[2][2]
  local f = redis.call('HMGET', P .. 'm:' .. id, 'oq', 'body', 'hdr', 'att', 'enq', 'err', 'derr',
                       'dms')
  if f[1] then
    table.insert(out, tonumber(id))
    for i = 1, 8 do table.insert(out, f[i]) end
  end
end
return out
)lua";

// ARGV: P, dlq. Returns how many moved back to their origin queue.
constexpr const char* kReplayDead = R"lua(
local x = P .. 'x:' .. ARGV[2]
local n = 0
for _, e in ipairs(redis.call('XRANGE', x, '-', '+')) do
  local id = e[2][2]
  local m = P .. 'm:' .. id
  local f = redis.call('HMGET', m, 'oq', 'derr')
  if f[1] then
    redis.call('HSET', m, 'att', 0, 'err', f[2])
    redis.call('HDEL', m, 'oq', 'derr', 'dms')
    enqueue(id, f[1])
    n = n + 1
  end
end
redis.call('DEL', x)
return n
)lua";

// ARGV: P, queue. Returns {ready, delayed, in flight, dead, published, acked, oldest ready ms}.
constexpr const char* kStats = R"lua(
local q = ARGV[2]
local now = now_ms()
local s, l, d = P .. 's:' .. q, P .. 'l:' .. q, P .. 'd:' .. q
local leased = redis.call('ZCARD', l)
local expired = redis.call('ZCOUNT', l, '-inf', now)
local due = redis.call('ZCOUNT', d, '-inf', now)
local delayed = redis.call('ZCARD', d) - due
local undelivered = 0
local oldest = 0
local function consider(id)
  local e = tonumber(redis.call('HGET', P .. 'm:' .. id, 'enq') or '0')
  if e > 0 and (oldest == 0 or e < oldest) then oldest = e end
end
if redis.call('EXISTS', s) == 1 then
  undelivered = redis.call('XLEN', s) - leased
  if undelivered > 0 then
    -- Entries after the group's last-delivered-id were never delivered; the first is the oldest.
    local last = '0-0'
    for _, g in ipairs(redis.call('XINFO', 'GROUPS', s)) do
      for i = 1, #g, 2 do
        if g[i] == 'last-delivered-id' then last = g[i + 1] end
      end
    end
    local first = redis.call('XRANGE', s, '(' .. last, '+', 'COUNT', 1)
    if #first > 0 then consider(first[1][2][2]) end
  end
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', l, '-inf', now, 'LIMIT', 0, 100)) do
  consider(id)
end
for _, id in ipairs(redis.call('ZRANGEBYSCORE', d, '-inf', now, 'LIMIT', 0, 100)) do
  consider(id)
end
local c = redis.call('HMGET', P .. 'c:' .. q, 'pub', 'ack')
return {undelivered + expired + due, delayed, leased - expired, redis.call('XLEN', P .. 'x:' .. q),
        tonumber(c[1] or '0'), tonumber(c[2] or '0'), oldest}
)lua";

}  // namespace faas::store::redis_scripts
