"""The pacing decisions of ``clore._pacing`` ported to Lua, for Redis to run atomically.

One script, one operation per call (``ARGV[1]``), on three keys of one API key (named by
a hash of it, in one hash slot):

* ``KEYS[1]`` a hash: ``last_request``, ``last_create``, ``penalty``, ``penalty_at``,
  ``version`` (incremented by every change, for ``RedisStore``'s compare-and-set) and
  ``spot_seq`` (insertion numbers of spot entries);
* ``KEYS[2]`` the in-flight hold: ``until \\n kind \\n holder``, with a lease (``PX``) a
  second past ``until``, so the hold of a machine that died ends by itself;
* ``KEYS[3]`` a hash of spot entries: order id -> ``bid \\n lowered_at \\n seen_at \\n seq``.

``ARGV[2]`` is "now": empty for Redis's own clock (``TIME``, one clock for the whole
fleet, immune to the machines' skew), else the caller's (tests with a ManualClock, and
the spot rule, whose times are the API server's). Numbers travel as ``%.17g`` strings,
which round-trip a double exactly (Redis truncates a Lua number reply to an integer, and
cjson keeps only 14 digits).

Every operation mirrors the Python function named beside it, line for line, including
``max(x or now, now)`` treating 0 as unset and Python's ``min``/``max`` keeping the first
of equal values; ``tests/fleet/test_fleet_pacing_equivalence.py`` checks with hypothesis
that both give the same delays and states for the same operations.
"""

from __future__ import annotations

from typing import Final

from clore._pacing import INFLIGHT_POLL, MAX_HOLD, MAX_SPOT_ENTRIES, PENALTY_HALF_LIFE

__all__ = ["PACING_LUA"]

_CONSTANTS: Final = f"""
local HALF_LIFE = {PENALTY_HALF_LIFE!r}
local POLL = {INFLIGHT_POLL!r}
local MAX_HOLD = {MAX_HOLD!r}
local MAX_SPOT = {MAX_SPOT_ENTRIES!r}
"""

_BODY: Final = r"""
local state_key, hold_key, spot_key = KEYS[1], KEYS[2], KEYS[3]
local op = ARGV[1]
local now
if ARGV[2] == '' then
  if redis.replicate_commands then redis.replicate_commands() end
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[2])
end

local function fmt(x)
  if x == nil then return '' end
  return string.format('%.17g', x)
end

local function num(s)
  if s == false or s == nil or s == '' then return nil end
  return tonumber(s)
end

local function split3(v)
  local a = string.find(v, '\n', 1, true)
  local b = string.find(v, '\n', a + 1, true)
  return string.sub(v, 1, a - 1), string.sub(v, a + 1, b - 1), string.sub(v, b + 1)
end

-- max(x or now, now): 0 and nil count as unset, as in Python
local function later(x)
  if x == nil or x == 0 then return now end
  if now > x then return now end
  return x
end

local function read_state()
  local raw = redis.call('HMGET', state_key, 'last_request', 'last_create', 'penalty', 'penalty_at')
  local s = {
    last_request = num(raw[1]), last_create = num(raw[2]),
    penalty = num(raw[3]) or 0.0, penalty_at = num(raw[4]) or 0.0,
  }
  -- ``num(...) or 0.0`` in from_json: a stored 0 stays 0
  return s
end

local function write_state(s)
  redis.call('HSET', state_key,
    'last_request', fmt(s.last_request), 'last_create', fmt(s.last_create),
    'penalty', fmt(s.penalty), 'penalty_at', fmt(s.penalty_at))
  redis.call('HINCRBY', state_key, 'version', 1)
end

local function read_hold()
  local v = redis.call('GET', hold_key)
  if not v then return nil end
  local until_s, kind, who = split3(v)
  return {until_at = tonumber(until_s), kind = kind, who = who, raw = v}
end

-- current_penalty
local function penalty_now(s)
  local age = now - s.penalty_at
  if 0.0 > age then age = 0.0 end
  local p = s.penalty
  if 0.0 > p then p = 0.0 end
  return p * 0.5 ^ (age / HALF_LIFE)
end

-- delay (config.enabled is checked by the caller)
local function delay(s, hold, kind, min_i, create_i, margin)
  local extra = margin + penalty_now(s)
  local wait = 0.0
  if hold ~= nil then
    local h = hold.until_at - now
    if h > 0 and h <= MAX_HOLD then
      local w = POLL
      if POLL > h then w = h end
      if w > wait then wait = w end
    end
  end
  if s.last_request ~= nil then
    local interval = min_i + extra
    local w = s.last_request + interval - now
    if w > interval then w = interval end
    if w > wait then wait = w end
  end
  if kind == 'create' and s.last_create ~= nil then
    local interval = create_i + extra
    local w = s.last_create + interval - now
    if w > interval then w = interval end
    if w > wait then wait = w end
  end
  return wait
end

-- Pacer._penalize
local function penalize(s, min_i)
  local unit = min_i
  if 0.1 > unit then unit = 0.1 end
  local p = penalty_now(s) + 0.1 * unit
  if p > unit then p = unit end
  s.penalty = p
  s.penalty_at = now
end

local function lease_ms(hold_s)
  local ms = math.ceil(hold_s * 1000) + 1000
  if ms > 864000000 then ms = 864000000 end
  return ms
end

-- spot entries
local function read_spot(order)
  local v = redis.call('HGET', spot_key, order)
  if not v then return nil end
  local parts = {}
  for piece in string.gmatch(v .. '\n', '([^\n]*)\n') do parts[#parts + 1] = piece end
  return {bid = num(parts[1]), lowered_at = num(parts[2]), seen_at = num(parts[3]) or 0.0,
          seq = tonumber(parts[4]) or 0}
end

local function write_spot(order, e)
  if e.seq == nil then e.seq = redis.call('HINCRBY', state_key, 'spot_seq', 1) end
  redis.call('HSET', spot_key, order,
    fmt(e.bid) .. '\n' .. fmt(e.lowered_at) .. '\n' .. fmt(e.seen_at) .. '\n' .. e.seq)
end

-- the oldest by seen_at, ties in insertion order (Python's stable sort of a dict)
local function evict()
  local n = redis.call('HLEN', spot_key)
  if n <= MAX_SPOT then return end
  local all = redis.call('HGETALL', spot_key)
  local entries = {}
  for i = 1, #all, 2 do
    local e = read_spot(all[i])
    entries[#entries + 1] = {order = all[i], seen_at = e.seen_at, seq = e.seq}
  end
  table.sort(entries, function(a, b)
    if a.seen_at ~= b.seen_at then return a.seen_at < b.seen_at end
    return a.seq < b.seq
  end)
  for i = 1, n - MAX_SPOT do redis.call('HDEL', spot_key, entries[i].order) end
end

local function bump() redis.call('HINCRBY', state_key, 'version', 1) end

if op == 'reserve' then
  -- Pacer.reserve: ARGV kind, hold, min_interval, create_interval, margin, holder
  local kind, hold_s = ARGV[3], tonumber(ARGV[4])
  local s, hold = read_state(), read_hold()
  local wait = delay(s, hold, kind, tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7]))
  if wait <= 0 then
    if 0.0 > hold_s then hold_s = 0.0 end
    redis.call('SET', hold_key, fmt(now + hold_s) .. '\n' .. kind .. '\n' .. ARGV[8],
      'PX', lease_ms(hold_s))
    s.last_request = later(s.last_request)
    if kind == 'create' then s.last_create = later(s.last_create) end
    write_state(s)
    return {fmt(wait), false, fmt(now)}
  end
  local blocking = false
  if hold ~= nil and hold.who ~= ARGV[8] then blocking = hold.raw end
  return {fmt(wait), blocking, fmt(now)}

elseif op == 'complete' then
  -- Pacer.complete: ARGV kind, rate_limited (1/0), min_interval, holder
  local kind = ARGV[3]
  local hold = read_hold()
  if hold ~= nil and hold.who == ARGV[6] then redis.call('DEL', hold_key) end
  local s = read_state()
  s.last_request = later(s.last_request)
  if kind == 'create' then s.last_create = later(s.last_create) end
  if ARGV[4] == '1' then penalize(s, tonumber(ARGV[5])) end
  write_state(s)
  return fmt(now)

elseif op == 'penalize' then
  -- Pacer.penalize: ARGV min_interval
  local s = read_state()
  penalize(s, tonumber(ARGV[3]))
  write_state(s)
  return fmt(now)

elseif op == 'release' then
  -- release_dead_hold, once the caller found the holder gone: ARGV the hold as read
  local v = redis.call('GET', hold_key)
  if v ~= ARGV[3] then return 0 end
  local until_s, kind = split3(v)
  if tonumber(until_s) <= now then return 0 end
  redis.call('DEL', hold_key)
  local s = read_state()
  s.last_request = later(s.last_request)
  if kind == 'create' then s.last_create = later(s.last_create) end
  write_state(s)
  return 1

elseif op == 'spot_wait' then
  -- spot_lowering_wait: ARGV order, price, spot_lower_interval
  local interval = tonumber(ARGV[5])
  if interval <= 0 then return fmt(0.0) end
  local e = read_spot(ARGV[3])
  local price = tonumber(ARGV[4])
  if e == nil or e.bid == nil or e.lowered_at == nil or price >= e.bid then return fmt(0.0) end
  local w = e.lowered_at + interval - now
  if 0.0 > w then w = 0.0 end
  return fmt(w)

elseif op == 'note_bid' then
  -- Pacer.note_bid: ARGV order, price ('' = keep), lowered_at ('' = none)
  local order, price, lowered_at = ARGV[3], num(ARGV[4]), num(ARGV[5])
  local e = read_spot(order) or {bid = nil, lowered_at = nil, seen_at = 0.0, seq = nil}
  if lowered_at ~= nil then
    e.lowered_at = lowered_at
  elseif e.bid ~= nil and price ~= nil and price < e.bid then
    e.lowered_at = now
  end
  if price ~= nil then e.bid = price end
  e.seen_at = now
  write_spot(order, e)
  evict()
  bump()
  return 1

elseif op == 'observe' then
  -- Pacer.observe_bids: ARGV order, bid, order, bid, ... in the caller's order
  for i = 3, #ARGV, 2 do
    local order, bid = ARGV[i], tonumber(ARGV[i + 1])
    local e = read_spot(order)
    if e ~= nil then
      e.bid = bid
      e.seen_at = now
      write_spot(order, e)
    elseif redis.call('HLEN', spot_key) < MAX_SPOT then
      write_spot(order, {bid = bid, lowered_at = nil, seen_at = now, seq = nil})
    end
  end
  bump()
  return 1

elseif op == 'snapshot' then
  -- everything, for RedisStore.transact: state fields, hold, spot entries in order
  local raw = redis.call('HMGET', state_key,
    'last_request', 'last_create', 'penalty', 'penalty_at', 'version')
  local out = {raw[1] or '', raw[2] or '', raw[3] or '', raw[4] or '', raw[5] or '0',
               redis.call('GET', hold_key) or ''}
  local all = redis.call('HGETALL', spot_key)
  local entries = {}
  for i = 1, #all, 2 do
    local e = read_spot(all[i])
    entries[#entries + 1] = {order = all[i], v = all[i + 1], seq = e.seq}
  end
  table.sort(entries, function(a, b) return a.seq < b.seq end)
  for _, e in ipairs(entries) do
    out[#out + 1] = e.order
    out[#out + 1] = e.v
  end
  return out

elseif op == 'put' then
  -- compare-and-set of a whole state (RedisStore.transact): ARGV version, last_request,
  -- last_create, penalty, penalty_at, hold ('' = none; unchanged keeps its lease), hold
  -- lease ms, then order, bid, lowered_at, seen_at per spot entry
  local version = redis.call('HGET', state_key, 'version') or '0'
  if version ~= ARGV[3] then return 0 end
  redis.call('HSET', state_key, 'last_request', ARGV[4], 'last_create', ARGV[5],
    'penalty', ARGV[6], 'penalty_at', ARGV[7])
  if ARGV[8] == '' then
    redis.call('DEL', hold_key)
  elseif ARGV[8] ~= redis.call('GET', hold_key) then
    redis.call('SET', hold_key, ARGV[8], 'PX', tonumber(ARGV[9]))
  end
  redis.call('DEL', spot_key)
  for i = 10, #ARGV, 4 do
    local seq = redis.call('HINCRBY', state_key, 'spot_seq', 1)
    redis.call('HSET', spot_key, ARGV[i],
      ARGV[i + 1] .. '\n' .. ARGV[i + 2] .. '\n' .. ARGV[i + 3] .. '\n' .. seq)
  end
  bump()
  return 1
end
return redis.error_reply('clore pacing: unknown operation ' .. tostring(op))
"""

#: The pacing script (``clore._redis.Script`` runs it).
PACING_LUA: Final = _CONSTANTS + _BODY
