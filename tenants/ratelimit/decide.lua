-- One rate-limit decision (or settlement) over every applicable key, atomically.
--
-- KEYS[i] is the key of check i; all keys of one call share the organisation's hash tag
-- ({org:<uuid>}), so the call is valid on Redis Cluster.
-- ARGV[1] = "admit" | "settle"; then 5 arguments per check: kind, limit, period_ms, member, cost
--   gcra   limit units per period_ms (burst = limit); cost units. Value: the theoretical arrival
--          time (TAT, ms since the epoch, Redis clock).
--   conc   at most `limit` leases in a sorted set, scored by expiry; member = lease id;
--          period_ms = lease TTL. Expired leases (a dead holder) are pruned here.
--   budget a counter of cost units; limit = the budget; period_ms = end of the budget period
--          (ms since the epoch).
-- admit: every check is evaluated first; only when all pass is anything written, so a refused
-- request consumes nothing. settle: cost is the difference (used - reserved), applied without a
-- check; conc removes the lease.
-- Returns {allowed, now_ms, then per check: ok, remaining, reset_ms, retry_ms}.

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local op = ARGV[1]
local EPS = 0.01 -- ms; absorbs float rounding of TAT sums

local function fmt(x)
  return string.format('%.3f', x)
end

if op == 'settle' then
  for i = 1, #KEYS do
    local base = 1 + (i - 1) * 5
    local kind = ARGV[base + 1]
    local limit = tonumber(ARGV[base + 2])
    local period = tonumber(ARGV[base + 3])
    local member = ARGV[base + 4]
    local delta = tonumber(ARGV[base + 5])
    if kind == 'gcra' and delta ~= 0 then
      local interval = period / limit
      local tat = tonumber(redis.call('GET', KEYS[i]) or now)
      local new_tat
      if delta > 0 then
        new_tat = math.max(tat, now) + delta * interval
      else
        -- A refund never gives credit beyond a full bucket.
        new_tat = math.max(tat + delta * interval, now)
      end
      if new_tat > now then
        redis.call('SET', KEYS[i], fmt(new_tat), 'PX', math.ceil(new_tat - now) + 1000)
      else
        redis.call('DEL', KEYS[i])
      end
    elseif kind == 'conc' then
      redis.call('ZREM', KEYS[i], member)
    elseif kind == 'budget' and delta ~= 0 then
      local used = redis.call('INCRBY', KEYS[i], delta)
      if used < 0 then
        redis.call('SET', KEYS[i], 0, 'KEEPTTL')
      end
    end
  end
  return {1, math.floor(now)}
end

local rows = {}
local writes = {}
local all_ok = true

-- Each row: ok, remaining and reset (ms) if admitted, remaining and reset now, retry (ms).
-- A refused decision reports the state it left untouched.
for i = 1, #KEYS do
  local base = 1 + (i - 1) * 5
  local kind = ARGV[base + 1]
  local limit = tonumber(ARGV[base + 2])
  local period = tonumber(ARGV[base + 3])
  local member = ARGV[base + 4]
  local cost = tonumber(ARGV[base + 5])
  local row

  if kind == 'gcra' then
    local interval = period / limit
    local tat = tonumber(redis.call('GET', KEYS[i]) or now)
    if tat < now then
      tat = now
    end
    local rem_now = math.floor((period - (tat - now)) / interval + EPS)
    -- A cost above the whole burst is admitted only on a full bucket (then charged in full):
    -- otherwise it could never pass.
    local allow_at = tat + math.min(cost, limit) * interval - period
    if allow_at > now + EPS then
      row = {0, 0, 0, rem_now, math.ceil(tat - now), math.ceil(allow_at - now)}
    else
      local new_tat = tat + cost * interval
      local rem = math.floor((period - (new_tat - now)) / interval + EPS)
      row = {1, rem, math.ceil(new_tat - now), rem_now, math.ceil(tat - now), 0}
      writes[#writes + 1] = {'gcra', KEYS[i], new_tat}
    end
  elseif kind == 'conc' then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    local held = redis.call('ZCARD', KEYS[i])
    if held >= limit then
      -- A slot may be freed by a settle at any moment; the earliest certain time is the first
      -- lease expiry. Announce at most one second.
      local first = redis.call('ZRANGE', KEYS[i], 0, 0, 'WITHSCORES')
      local retry = math.min(math.ceil(tonumber(first[2]) - now), 1000)
      row = {0, 0, 0, 0, 0, math.max(retry, 1)}
    else
      row = {1, limit - held - 1, 0, limit - held, 0, 0}
      writes[#writes + 1] = {'conc', KEYS[i], now + period, member, period}
    end
  else -- budget
    local used = tonumber(redis.call('GET', KEYS[i]) or '0')
    local reset = math.ceil(period - now)
    local rem_now = math.max(limit - used, 0)
    if used + cost > limit then
      row = {0, 0, 0, rem_now, reset, reset}
    else
      row = {1, limit - used - cost, reset, rem_now, reset, 0}
      writes[#writes + 1] = {'budget', KEYS[i], cost, period}
    end
  end

  if row[1] == 0 then
    all_ok = false
  end
  rows[i] = row
end

local out = {all_ok and 1 or 0, math.floor(now)}
for i = 1, #rows do
  local row = rows[i]
  out[#out + 1] = row[1]
  if all_ok then
    out[#out + 1] = row[2]
    out[#out + 1] = row[3]
  else
    out[#out + 1] = row[4]
    out[#out + 1] = row[5]
  end
  out[#out + 1] = row[6]
end

if all_ok then
  for _, w in ipairs(writes) do
    if w[1] == 'gcra' then
      redis.call('SET', w[2], fmt(w[3]), 'PX', math.ceil(w[3] - now) + 1000)
    elseif w[1] == 'conc' then
      redis.call('ZADD', w[2], fmt(w[3]), w[4])
      -- The newest lease expires last, so the set lives exactly as long as it is needed.
      redis.call('PEXPIRE', w[2], math.ceil(w[5]) + 1000)
    else
      redis.call('INCRBY', w[2], w[3])
      -- Kept for a month after the period for inspection, then dropped.
      redis.call('PEXPIREAT', w[2], math.ceil(w[4]) + 31 * 86400000)
    end
  end
end

return out
