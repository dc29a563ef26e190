/**
 * Rate limits and budgets on Redis: every decision of one event-loop turn goes
 * to Redis as one script call (EVALSHA), run atomically there in the order the
 * calls were made. Each operation means exactly what it meant on its own
 * (the store contract is unchanged); batching only saves round trips, script
 * start-ups, clock reads, and re-reading a budget's sums for every operation on
 * the same key. See docs/rate-limits.md ("Cost").
 */

import type { BlockRemote } from './redis-blocks.js';
import type { BudgetState, RateLimitResult } from './store.js';

// One batch. KEYS: every key the batch touches (a rate key once, a budget's
// three keys — spends, reservations, sums — once). ARGV: operations, each a
// code followed by its arguments (indexes are into KEYS, 1-based):
//   r kidx intervalUs burst peek                            → allowed remaining retryAfterMs resetAfterMs
//   b kidx windowMs max amount member leaseMs force peek    → reserved spent held nextReleaseMs
//   c kidx windowMs member amount                           → was-held (1|0)
//   x kidx member amount                                    → released (1|0)
//   g kidx windowMs                                         → spent held nextReleaseMs
//   L kidx intervalUs burst want headroom least             → granted allowed remaining retryAfterMs resetAfterMs
//   u kidx intervalUs count                                 → 1
//   B kidx windowMs max amount member leaseMs want headroom least blockId → granted reserved spent held nextReleaseMs
//   f kidx windowMs oldMember newMember keep spent leaseMs spendMember → was-held (1|0)
//   A kidx intervalUs burst want headroom least             → granted remaining resetAfterMs
//   H kidx windowMs max want headroom least leaseMs blockId → granted spent held nextReleaseMs
// L, u, B, f, A and H are the local quota blocks of redis-blocks.ts (A and H lease the
// next block ahead: as L and B when a block fits, else nothing changes and no request
// is decided).
// Replies are strings (Redis truncates Lua numbers to integers), flattened in order.
//
// GCRA on Redis' own clock (TIME), in whole µs, so instances with skewed clocks
// agree. Budgets: spends are a zset (member "id:amount", score = commit ms),
// reservations a zset (score = lease end ms), and a hash holds both running sums
// (s, h), rounded to 15 significant digits after each step (as roundSum in
// guards.ts). A rate key is read once per batch and written once at the end; a
// budget key is read and pruned once per batch, its sums and expiries written
// once at the end (the clock is read once, so this equals running the
// operations one by one).
export const LIMITS_LUA = `
local t = redis.call('TIME')
local nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(nowUs / 1000)
local function round(x)
  if x >= 0 and x < 1e15 and x == math.floor(x) then return x end
  local r = tonumber(string.format('%.15g', x))
  if r > 0 then return r end
  return 0
end
local function fmt(x) return string.format('%.17g', x) end
local function amountOf(member) return tonumber(string.match(member, ':([^:]+)$')) end
local budgets = {}
local order = {}
local function budget(i)
  local b = budgets[i]
  if b then return b end
  local sums = redis.call('HMGET', KEYS[i + 2], 's', 'h')
  b = { i = i, s = tonumber(sums[1] or '0'), h = tonumber(sums[2] or '0'), dirty = false, hChanged = false, exp = 0, prunedS = nil, prunedH = false }
  budgets[i] = b
  order[#order + 1] = b
  return b
end
local function removeUpTo(zkey, upto)
  local gone = redis.call('ZRANGEBYSCORE', zkey, '-inf', upto)
  if #gone == 0 then return nil end
  local sum = 0
  for _, m in ipairs(gone) do sum = sum + amountOf(m) end
  redis.call('ZREMRANGEBYSCORE', zkey, '-inf', upto)
  if redis.call('ZCARD', zkey) == 0 then return -1 end
  return sum
end
local function prune(b, window)
  local upto = now - window
  if b.prunedS ~= upto then
    b.prunedS = upto
    local sum = removeUpTo(KEYS[b.i], upto)
    if sum == -1 then b.s = 0; b.dirty = true elseif sum then b.s = round(b.s - sum); b.dirty = true end
  end
  if not b.prunedH then
    b.prunedH = true
    local sum = removeUpTo(KEYS[b.i + 1], now)
    if sum == -1 then b.h = 0; b.dirty = true elseif sum then b.h = round(b.h - sum); b.dirty = true end
  end
end
local function nextRelease(b, window)
  local oldest = redis.call('ZRANGE', KEYS[b.i], 0, 0, 'WITHSCORES')
  if #oldest == 0 then return 0 end
  local ms = tonumber(oldest[2]) + window - now
  if ms < 0 then return 0 end
  return ms
end
local out = {}
-- Appends a budget's state after an operation: spent held nextReleaseMs.
local function pushState(b, window)
  out[#out + 1] = fmt(b.s)
  out[#out + 1] = fmt(b.h)
  out[#out + 1] = fmt(nextRelease(b, window))
end
local rates = {}
local rateOrder = {}
-- A rate key's TAT, read once per batch (written once at the end when dirty).
local function rateAt(ki)
  local rate = rates[ki]
  if not rate then
    rate = { tat = tonumber(redis.call('GET', KEYS[ki]) or '0'), dirty = false }
    rates[ki] = rate
    rateOrder[#rateOrder + 1] = ki
  end
  return rate
end
-- One exact GCRA decision ('r'): appends allowed remaining retryAfterMs resetAfterMs.
local function decideRate(rate, interval, burst, peek)
  local tat = rate.tat
  if tat < nowUs then tat = nowUs end
  local nextTat = tat + interval
  local allowAt = nextTat - burst * interval
  if nowUs < allowAt then
    out[#out + 1] = '0'
    out[#out + 1] = '0'
    out[#out + 1] = string.format('%.0f', math.ceil((allowAt - nowUs) / 1000))
    out[#out + 1] = string.format('%.0f', math.ceil((tat - nowUs) / 1000))
  else
    if not peek then
      rate.tat = nextTat
      rate.dirty = true
    end
    out[#out + 1] = '1'
    out[#out + 1] = string.format('%.0f', math.floor((nowUs - allowAt) / interval))
    out[#out + 1] = '0'
    out[#out + 1] = string.format('%.0f', math.ceil((nextTat - nowUs) / 1000))
  end
end
-- A rate block for one instance: when the capacity left now is at least
-- (headroom + 1) blocks of n' >= least (n' <= want), the TAT advances n'
-- intervals and n' is returned; otherwise nothing changes and nil is returned.
local function leaseRate(rate, interval, burst, want, headroom, least)
  local tat = rate.tat
  if tat < nowUs then tat = nowUs end
  local cap = math.floor((nowUs + burst * interval - tat) / interval)
  local grant = math.min(want, math.floor(cap / (headroom + 1)))
  if grant < least then return nil end
  rate.tat = tat + grant * interval
  rate.dirty = true
  return grant
end
local n = #ARGV
local p = 1
-- The next k arguments of the operation at p, as numbers (nil where one is not a number).
local function nums(k)
  local t = {}
  for j = 1, k do t[j] = tonumber(ARGV[p + j]) end
  return unpack(t, 1, k)
end
while p <= n do
  local op = ARGV[p]
  if op == 'r' then
    local ki, interval, burst = nums(3)
    decideRate(rateAt(ki), interval, burst, ARGV[p + 4] == '1')
    p = p + 5
  elseif op == 'L' then
    -- A rate decision that may lease a block (leaseRate); otherwise exactly 'r'.
    local ki, interval, burst, want, headroom, least = nums(6)
    local rate = rateAt(ki)
    local grant = leaseRate(rate, interval, burst, want, headroom, least)
    if grant then
      out[#out + 1] = string.format('%.0f', grant)
      out[#out + 1] = '1'
      out[#out + 1] = string.format('%.0f', math.floor((nowUs + burst * interval - rate.tat) / interval))
      out[#out + 1] = '0'
      out[#out + 1] = string.format('%.0f', math.ceil((rate.tat - nowUs) / 1000))
    else
      out[#out + 1] = '0'
      decideRate(rate, interval, burst, false)
    end
    p = p + 7
  elseif op == 'A' then
    -- Lease the next rate block ahead (the instance's current one runs low): as 'L'
    -- when a block fits; otherwise nothing changes (no request is decided).
    local ki, interval, burst, want, headroom, least = nums(6)
    local rate = rateAt(ki)
    local grant = leaseRate(rate, interval, burst, want, headroom, least) or 0
    local tat = rate.tat
    if tat < nowUs then tat = nowUs end
    out[#out + 1] = string.format('%.0f', grant)
    out[#out + 1] = string.format('%.0f', math.floor((nowUs + burst * interval - tat) / interval))
    out[#out + 1] = string.format('%.0f', math.ceil((tat - nowUs) / 1000))
    p = p + 7
  elseif op == 'u' then
    -- Give back the unspent part of a rate block: the TAT goes back that many intervals.
    local ki = tonumber(ARGV[p + 1])
    local rate = rateAt(ki)
    rate.tat = rate.tat - tonumber(ARGV[p + 2]) * tonumber(ARGV[p + 3])
    rate.dirty = true
    out[#out + 1] = '1'
    p = p + 4
  elseif op == 'B' then
    -- A reservation that may lease a budget block: when what remains (max - spent
    -- - held) leaves room for headroom more blocks after it, a block of up to
    -- want (at least least times this amount) is held under blockMember:size with the
    -- lease; it covers this request and the instance spends the rest locally.
    -- Otherwise exactly 'b' (no force, no peek).
    -- (ARGV[p + 5], this request's member, is a string: nums leaves it nil.)
    local bi, window, max, amount, _, lease, want, headroom, least = nums(9)
    local b = budget(bi)
    prune(b, window)
    local free = (max - b.s - b.h) / (headroom + 1)
    if free >= 1 then free = math.floor(free) end
    local grant = round(math.min(want, free))
    local ok
    if grant >= least * amount and grant > 0 then
      ok = true
      if redis.call('ZADD', KEYS[b.i + 1], now + lease, ARGV[p + 10] .. ':' .. fmt(grant)) == 1 then
        b.h = round(b.h + grant)
        b.dirty = true
      end
      out[#out + 1] = fmt(grant)
    else
      grant = 0
      ok = round(b.s + b.h + amount) <= max
      if ok and redis.call('ZADD', KEYS[b.i + 1], now + lease, ARGV[p + 5]) == 1 then
        b.h = round(b.h + amount)
        b.dirty = true
      end
      out[#out + 1] = '0'
    end
    if window + lease > b.exp then b.exp = window + lease end
    out[#out + 1] = ok and '1' or '0'
    pushState(b, window)
    p = p + 11
  elseif op == 'H' then
    -- Lease the next budget block ahead: as 'B' when a block of at least least
    -- (already in amounts) fits with headroom; otherwise nothing is held (no
    -- request is reserved).
    local bi, window, max, want, headroom, least, lease = nums(7)
    local b = budget(bi)
    prune(b, window)
    local free = (max - b.s - b.h) / (headroom + 1)
    if free >= 1 then free = math.floor(free) end
    local grant = round(math.min(want, free))
    if grant >= least and grant > 0 then
      if redis.call('ZADD', KEYS[b.i + 1], now + lease, ARGV[p + 8] .. ':' .. fmt(grant)) == 1 then
        b.h = round(b.h + grant)
        b.dirty = true
      end
      if window + lease > b.exp then b.exp = window + lease end
    else
      grant = 0
    end
    out[#out + 1] = fmt(grant)
    pushState(b, window)
    p = p + 9
  elseif op == 'f' then
    -- Settle a budget block: its committed part becomes one spend dated now, and
    -- what it still holds (in flight and unspent) stays held under a fresh lease,
    -- or nothing (the block is given back). A block whose lease lapsed is not held
    -- again (its room may be gone); its spend is recorded all the same.
    local b = budget(tonumber(ARGV[p + 1]))
    local window = tonumber(ARGV[p + 2])
    local lease = tonumber(ARGV[p + 7])
    prune(b, window)
    local was = redis.call('ZREM', KEYS[b.i + 1], ARGV[p + 3])
    if was == 1 then
      b.h = round(b.h - amountOf(ARGV[p + 3]))
      b.hChanged = true
      b.dirty = true
      local keep = tonumber(ARGV[p + 5])
      if keep > 0 and redis.call('ZADD', KEYS[b.i + 1], now + lease, ARGV[p + 4]) == 1 then
        b.h = round(b.h + keep)
      end
    end
    local spent = tonumber(ARGV[p + 6])
    if spent > 0 and redis.call('ZADD', KEYS[b.i], 'NX', now, ARGV[p + 8]) == 1 then
      b.s = round(b.s + spent)
      b.dirty = true
    end
    local e = window
    if lease > 0 then e = window + lease end
    if e > b.exp then b.exp = e end
    out[#out + 1] = tostring(was)
    p = p + 9
  elseif op == 'b' then
    local b = budget(tonumber(ARGV[p + 1]))
    local window = tonumber(ARGV[p + 2])
    local amount = tonumber(ARGV[p + 4])
    local lease = tonumber(ARGV[p + 6])
    local peek = ARGV[p + 8] == '1'
    prune(b, window)
    local ok = ARGV[p + 7] == '1' or round(b.s + b.h + amount) <= tonumber(ARGV[p + 3])
    if ok and not peek then
      if redis.call('ZADD', KEYS[b.i + 1], now + lease, ARGV[p + 5]) == 1 then
        b.h = round(b.h + amount)
        b.dirty = true
      end
    end
    if not peek and window + lease > b.exp then b.exp = window + lease end
    out[#out + 1] = ok and '1' or '0'
    pushState(b, window)
    p = p + 9
  elseif op == 'c' then
    local b = budget(tonumber(ARGV[p + 1]))
    local window = tonumber(ARGV[p + 2])
    local member = ARGV[p + 3]
    local amount = tonumber(ARGV[p + 4])
    prune(b, window)
    local was = redis.call('ZREM', KEYS[b.i + 1], member)
    if was == 1 then
      b.h = round(b.h - amount)
      b.hChanged = true
      b.dirty = true
    end
    if redis.call('ZADD', KEYS[b.i], 'NX', now, member) == 1 then
      b.s = round(b.s + amount)
      b.dirty = true
    end
    if window > b.exp then b.exp = window end
    out[#out + 1] = tostring(was)
    p = p + 5
  elseif op == 'x' then
    local b = budget(tonumber(ARGV[p + 1]))
    -- Lapsed leases are pruned first: a lapsed reservation is no longer "released".
    if not b.prunedH then
      b.prunedH = true
      local sum = removeUpTo(KEYS[b.i + 1], now)
      if sum == -1 then b.h = 0; b.dirty = true elseif sum then b.h = round(b.h - sum); b.dirty = true end
    end
    local was = redis.call('ZREM', KEYS[b.i + 1], ARGV[p + 2])
    if was == 1 then
      b.h = round(b.h - tonumber(ARGV[p + 3]))
      b.hChanged = true
      b.dirty = true
    end
    out[#out + 1] = tostring(was)
    p = p + 4
  elseif op == 'g' then
    local b = budget(tonumber(ARGV[p + 1]))
    local window = tonumber(ARGV[p + 2])
    prune(b, window)
    if window > b.exp then b.exp = window end
    pushState(b, window)
    p = p + 3
  else
    return redis.error_reply('ERR warden limits: unknown operation ' .. tostring(op))
  end
end
for _, ki in ipairs(rateOrder) do
  local rate = rates[ki]
  if rate.dirty then
    if rate.tat > nowUs then
      redis.call('SET', KEYS[ki], string.format('%.0f', rate.tat), 'PX', string.format('%.0f', math.ceil((rate.tat - nowUs) / 1000)))
    else
      redis.call('DEL', KEYS[ki])
    end
  end
end
for _, b in ipairs(order) do
  -- Sums drift by rounding only: an empty set holds exactly nothing.
  if b.hChanged and b.h ~= 0 and redis.call('ZCARD', KEYS[b.i + 1]) == 0 then b.h = 0 end
  if b.dirty then redis.call('HSET', KEYS[b.i + 2], 's', fmt(b.s), 'h', fmt(b.h)) end
  if b.exp > 0 then
    for j = 0, 2 do
      if redis.call('PTTL', KEYS[b.i + j]) < b.exp then redis.call('PEXPIRE', KEYS[b.i + j], b.exp) end
    end
  end
end
return out`;

/** How a batch is sent: numkeys, keys, then argv (one EVALSHA). */
export type SendBatch = (keys: string[], argv: string[]) => Promise<string[]>;

interface Pending {
  arity: number;
  resolve: (reply: string[]) => void;
  reject: (err: unknown) => void;
}

/** Upper bound of operations per script call (a long batch would hold Redis up). */
const MAX_OPS = 256;

/**
 * How long a commit or release may wait for a decision to ride along with.
 * Until it reaches Redis the reservation stays held there, so waiting can
 * only make a budget stricter for a moment, never let more through.
 */
export const SETTLE_DELAY_MS = 5;

/**
 * Collect limit operations made during one event-loop turn and send them as
 * one script call. Decisions and reads go out at the end of the turn
 * (setImmediate); commits and releases wait up to SETTLE_DELAY_MS for the
 * next decision's call, so under load they cost no round trip of their own.
 * `send` is bounded by the store's timeout; a failed batch fails every
 * operation in it (each caller sees the store's error).
 */
export function createLimitsBatcher(send: SendBatch) {
  let keys: string[] = [];
  let keyIndex = new Map<string, number>();
  let argv: string[] = [];
  let pending: Pending[] = [];
  let immediate: NodeJS.Immediate | undefined;
  let timer: NodeJS.Timeout | undefined;
  const inFlight = new Set<Promise<unknown>>();

  function flush(): void {
    if (immediate !== undefined) clearImmediate(immediate);
    if (timer !== undefined) clearTimeout(timer);
    immediate = undefined;
    timer = undefined;
    if (pending.length === 0) return;
    const batch = { keys, argv, pending };
    keys = [];
    keyIndex = new Map();
    argv = [];
    pending = [];
    const sent = send(batch.keys, batch.argv).then(
      (reply) => {
        let at = 0;
        for (const p of batch.pending) {
          p.resolve(reply.slice(at, at + p.arity));
          at += p.arity;
        }
      },
      (err: unknown) => {
        for (const p of batch.pending) p.reject(err);
      },
    );
    inFlight.add(sent);
    void sent.finally(() => inFlight.delete(sent));
  }

  /** The 1-based KEYS index of `key` (its first key, for a budget's three). */
  function indexOf(key: string, count: 1 | 3): string {
    let i = keyIndex.get(key);
    if (i === undefined) {
      i = keys.length + 1;
      keyIndex.set(key, i);
      if (count === 1) keys.push(key);
      else keys.push(`${key}:s`, `${key}:h`, `${key}:t`);
    }
    return String(i);
  }

  /** Called before an operation takes its key indexes: a full batch goes first. */
  function room(): void {
    if (pending.length >= MAX_OPS) flush();
  }

  /** Queue one operation; `eager` ones are sent at the end of this turn, the others within SETTLE_DELAY_MS. */
  function enqueue(arity: number, args: string[], eager: boolean): Promise<string[]> {
    return new Promise<string[]>((resolve, reject) => {
      for (const a of args) argv.push(a);
      pending.push({ arity, resolve, reject });
      if (immediate !== undefined) return;
      if (eager) immediate = setImmediate(flush);
      else if (timer === undefined) timer = setTimeout(flush, SETTLE_DELAY_MS);
    });
  }

  /**
   * Queue operation `code` on `key` (a rate key: 1 KEYS entry, a budget: 3) with
   * its arguments in the script's order (numbers and flags as Redis reads them);
   * `arity` replies come back.
   */
  function op(code: string, key: string, keyCount: 1 | 3, args: ReadonlyArray<string | number | boolean>, arity: number, eager: boolean): Promise<string[]> {
    room();
    const argv = [code, indexOf(key, keyCount)];
    for (const a of args) argv.push(typeof a === 'boolean' ? (a ? '1' : '0') : String(a));
    return enqueue(arity, argv, eager);
  }

  const rateOf = (r: string[], from: number): RateLimitResult => ({
    allowed: r[from] === '1',
    remaining: Number(r[from + 1]),
    retryAfterMs: Number(r[from + 2]),
    resetAfterMs: Number(r[from + 3]),
  });

  // The operations of the script above (its comment gives each one's arguments and replies).
  const remote: BlockRemote = {
    rate: (key, intervalUs, burst, peek) => op('r', key, 1, [intervalUs, burst, peek], 4, true).then((r) => rateOf(r, 0)),
    /** A rate decision that may lease a block of up to `want` (see 'L'): `granted` 0 means an exact decision. */
    rateLease: (key, intervalUs, burst, want, headroom, least) =>
      op('L', key, 1, [intervalUs, burst, want, headroom, least], 5, true).then((r) => ({ granted: Number(r[0]), ...rateOf(r, 1) })),
    /** Lease the next rate block ahead (see 'A'): `granted` 0 means none (and nothing decided). */
    rateLeaseAhead: (key, intervalUs, burst, want, headroom, least) =>
      op('A', key, 1, [intervalUs, burst, want, headroom, least], 3, true).then((r) => ({
        granted: Number(r[0]),
        remaining: Number(r[1]),
        resetAfterMs: Number(r[2]),
      })),
    /** Lease the next budget block ahead, held as `blockId:size` (see 'H'): `granted` 0 means none (nothing held). */
    reserveBlockAhead: (key, windowMs, max, want, headroom, least, leaseMs, blockId) =>
      op('H', key, 3, [windowMs, max, want, headroom, least, leaseMs, blockId], 4, true).then((r) => ({
        granted: Number(r[0]),
        grantedText: r[0],
        ...stateOf(r, 1),
      })),
    /** Give back `count` unspent requests of a rate block (rides along with the next decision). */
    rateReturn: (key, intervalUs, count) => op('u', key, 1, [intervalUs, count], 1, false).then(() => undefined),
    /** A reservation that may lease a budget block of up to `want` held as `blockId:size` (see 'B'). */
    reserveBlock: (key, windowMs, max, amount, member, leaseMs, want, headroom, least, blockId) =>
      op('B', key, 3, [windowMs, max, amount, member, leaseMs, want, headroom, least, blockId], 5, true).then((r) => ({
        granted: Number(r[0]),
        grantedText: r[0],
        reserved: r[1] === '1',
        ...stateOf(r, 2),
      })),
    /**
     * Settle a budget block (see 'f'): `spent` becomes a spend `spendMember`, the
     * block is held again as `newMember` (`keep` > 0) or given back. True while
     * the block's lease held.
     */
    flushBlock: (key, windowMs, oldMember, newMember, keep, spent, leaseMs, spendMember) =>
      op('f', key, 3, [windowMs, oldMember, newMember, keep, spent, leaseMs, spendMember], 1, false).then((r) => r[0] === '1'),
    reserve: (key, windowMs, max, amount, member, leaseMs, force, peek) =>
      op('b', key, 3, [windowMs, max, amount, member, leaseMs, force, peek], 4, true).then((r) => ({ reserved: r[0] === '1', ...stateOf(r, 1) })),
    commit: (key, windowMs, member, amount) => op('c', key, 3, [windowMs, member, amount], 1, false).then((r) => r[0] === '1'),
    release: (key, member, amount) => op('x', key, 3, [member, amount], 1, false).then((r) => r[0] === '1'),
  };

  return {
    ...remote,
    /** Send what is queued now and wait for every call in flight (before closing the connection). */
    async drain(): Promise<void> {
      flush();
      await Promise.allSettled([...inFlight]);
    },
    read: (key: string, windowMs: number): Promise<BudgetState> => op('g', key, 3, [windowMs], 3, true).then((r) => stateOf(r, 0)),
  };
}

function stateOf(reply: string[], from: number): BudgetState {
  return { spent: Number(reply[from]), held: Number(reply[from + 1]), nextReleaseMs: Math.ceil(Number(reply[from + 2])) };
}
