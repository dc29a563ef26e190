/**
 * Local quota blocks for rate limits and budgets on Redis. Far from a limit an
 * instance leases a block of capacity in one script call (a rate block is a
 * TAT advance of n emission intervals, a budget block a reservation of an
 * amount under a lease) and decides the next requests locally, without a
 * round trip. Near the limit there is no block: every decision is made by
 * Redis exactly as without blocks.
 *
 * Why this never lets more through than the limit: a block is taken from Redis
 * atomically before anything is spent from it, so Redis' count always includes
 * every block (spent or not). Why it does not refuse what the limit allows: a
 * block is granted only while, after it, at least `headroom` more blocks of the
 * same size fit in what is left, so up to `headroom` instances can hold one
 * each before Redis refuses anything on their account; as what is left shrinks
 * blocks shrink, and below `minRequests` requests (a budget: that many times
 * the request's amount) there are none. Unspent capacity goes back when a block retires (`useMs` after its
 * lease, or at close); the budget block's lease bounds what a killed instance
 * keeps held. See docs/rate-limits.md ("Local quota blocks").
 */

import type { BudgetState, RateLimitResult, SettleWatcher } from './store.js';
import { sliceSweeper } from './sweep.js';

/** What both reservations (exact, or one that may lease a block) start with. */
type ReserveArgs = [key: string, windowMs: number, max: number, amount: number, member: string, leaseMs: number];

/** What the blocks need from the batcher (redis-limits.ts); injected for tests. */
export interface BlockRemote {
  rate(key: string, intervalUs: number, burst: number, peek: boolean): Promise<RateLimitResult>;
  rateLease(key: string, intervalUs: number, burst: number, want: number, headroom: number, least: number): Promise<RateLimitResult & { granted: number }>;
  rateReturn(key: string, intervalUs: number, count: number): Promise<void>;
  reserve(...args: [...ReserveArgs, force: boolean, peek: boolean]): Promise<BudgetState & { reserved: boolean }>;
  reserveBlock(
    ...args: [...ReserveArgs, want: number, headroom: number, least: number, blockId: string]
  ): Promise<BudgetState & { reserved: boolean; granted: number; grantedText?: string }>;
  flushBlock(
    key: string,
    windowMs: number,
    oldMember: string,
    newMember: string,
    keep: number,
    spent: number,
    leaseMs: number,
    spendMember: string,
  ): Promise<boolean>;
  commit(key: string, windowMs: number, member: string, amount: number): Promise<boolean>;
  release(key: string, member: string, amount: number): Promise<boolean>;
  /**
   * Lease the next rate block ahead, before the current one runs out (optional:
   * without it the next block is leased by the request that finds none): as
   * rateLease when a block fits, else `granted` 0 and nothing changes (no request
   * is decided).
   */
  rateLeaseAhead?(
    key: string,
    intervalUs: number,
    burst: number,
    want: number,
    headroom: number,
    least: number,
  ): Promise<{ granted: number; remaining: number; resetAfterMs: number }>;
  /** The same for a budget block (`least` in amounts): held as `blockId:grantedText`, or `granted` 0 and nothing held. */
  reserveBlockAhead?(
    key: string,
    windowMs: number,
    max: number,
    want: number,
    headroom: number,
    least: number,
    leaseMs: number,
    blockId: string,
  ): Promise<BudgetState & { granted: number; grantedText?: string }>;
}

export interface BlockOptions {
  /** How many more blocks of the same size must fit after a grant (instances that may hold one at once). */
  headroom: number;
  /** How long after its lease a block is spent from; then its unspent part goes back. */
  useMs: number;
  /** A block aims at this much of the key's recent local demand. */
  targetMs: number;
  /**
   * A budget block's commits wait up to this long to go to Redis together (0
   * or absent: at once). Redis counts the whole block as held meanwhile, so
   * waiting never lets more through; it bounds what a killed instance's commits
   * leave unrecorded (they lapse with the block's lease), and saves a round trip
   * (its timer and socket wake-ups) per flush. A retiring block flushes at once.
   */
  flushMs?: number;
  /** After Redis granted no block (near the limit), decisions on the key stay exact this long. */
  exactMs: number;
  /** Largest rate block (requests). */
  maxRequests: number;
  /** Smallest block, in requests (a budget block: times the request's amount); smaller means no block. */
  minRequests: number;
  now?: () => number;
  /** Block ids: unique per process and block, URL-safe, no ':'. */
  newId: () => string;
}

export const DEFAULT_BLOCK_OPTIONS = { headroom: 32, useMs: 1000, targetMs: 250, exactMs: 1000, maxRequests: 100_000, minRequests: 8 } as const;

/** Sums rounded to 15 significant digits like Redis' side (roundSum); whole amounts skip the (slow) toPrecision. */
const round = (x: number) => {
  const r = Number.isInteger(x) ? x : Number(x.toPrecision(15));
  return r > 0 ? r : 0;
};

/** Demand since the last lease: how much a block should hold to last about `targetMs`. */
interface Demand {
  used: number;
  since: number;
}

function want(d: Demand, now: number, targetMs: number, least: number, floorMs = targetMs): number {
  const elapsed = Math.max(now - d.since, floorMs);
  // Twice the recent pace: demand that grows is met in a few leases, one that stops leaves little unspent.
  return Math.max(least, Math.ceil(((2 * d.used) / elapsed) * targetMs));
}

/**
 * A lease ahead is asked for once half a block is spent, so the pace it sees
 * is measured over half the time: over at least a quarter of `targetMs`
 * (not the whole), or blocks spent faster than that would never grow (the
 * next would be as large as the last) and a busy key would lease every few
 * requests. Measured so, a block spent in under a quarter target is followed
 * by one up to four times larger; at a steady pace the size settles where it
 * does without leasing ahead (twice the pace over `targetMs`).
 */
const aheadWant = (d: Demand, now: number, targetMs: number, least: number) => want(d, now, targetMs, least, targetMs / 4);

interface RateBlock {
  key: string;
  left: number;
  /** Requests granted, and when: half of either spent, the next block is leased ahead. */
  size: number;
  leasedAt: number;
  burst: number;
  until: number;
  /** Redis' remaining right after the grant (the block excluded) and when the burst is whole again. */
  remaining: number;
  resetAt: number;
  intervalUs: number;
  timer: NodeJS.Timeout;
}

/** What leasing ahead keeps per key, rate and budget alike. */
interface AheadState {
  pending?: Promise<unknown>;
  exactUntil: number;
  /** No lease ahead before this (one failed). */
  aheadAfter: number;
  demand: Demand;
}

interface RateKey extends AheadState {
  block?: RateBlock;
}

interface BudgetBlock {
  key: string;
  id: string;
  windowMs: number;
  leaseMs: number;
  max: number;
  /** Granted, and when: half of either spent, the next block is leased ahead. */
  granted: number;
  leasedAt: number;
  /** The member it is held under in Redis now (`id:size`). */
  member: string;
  /** free + inFlight + committed (not yet flushed) while active; inFlight + committed once retired. */
  size: number;
  free: number;
  inFlight: number;
  committed: number;
  retired: boolean;
  /** Its lease lapsed in Redis: nothing is held for it any more. */
  lost: boolean;
  /** A flush failed: no more flushes of its own accord. */
  failed: boolean;
  until: number;
  seq: number;
  /** What a reservation from the block answers (Redis' figures at the grant), one frozen object for all of them. */
  state: Readonly<BudgetState & { reserved: true }>;
  /** Reservation ids served from this block and not settled yet: their amounts. */
  ids: Map<string, number>;
  /**
   * Ids settled already, so that settling one again does nothing (until the
   * block is done). No object per request: the caller's id strings only.
   */
  settled: Set<string>;
  /** The key's state, whose `live` list this block is on. */
  owner: BudgetKey;
  flushing: boolean;
  /** The flush its commits wait for (flushMs). */
  flushTimer?: NodeJS.Timeout;
  /** Told how the next flush went (the commits it carries): each watcher once per commit, `counts[i]` times in a row. */
  waiters: SettleWatcher[];
  counts: number[];
  timer?: NodeJS.Timeout;
}

interface BudgetKey extends AheadState {
  block?: BudgetBlock;
  /** This key's blocks still holding something (the active one and retired ones not done): where settlements look. */
  live: BudgetBlock[];
}

/** A caller's record of one reservation made by `reserveLot`: `lot` names its block (opaque), then that it was settled. */
export interface LotHolder {
  lot: unknown;
}

/** `lot` of a reservation settled already. */
const SETTLED: unknown = Object.freeze({ settled: true });

export function createQuotaBlocks(remote: BlockRemote, opts: BlockOptions) {
  const now = opts.now ?? Date.now;
  const rates = new Map<string, RateKey>();
  const budgets = new Map<string, BudgetKey>();
  /** Every budget block still holding something in Redis (for close). */
  const live = new Set<BudgetBlock>();
  /** Closing: a lease ahead answered now goes straight back. */
  let closing = false;
  const background = new Set<Promise<unknown>>();
  const track = (p: Promise<unknown>) => {
    const q = p.catch(() => undefined).finally(() => background.delete(q));
    background.add(q);
  };

  /**
   * One lease ahead in flight per key: none granted (near the limit) means exact
   * decisions once the current block is spent; a failure means no lease ahead for
   * a while; a grant starts a fresh demand measure and goes to `granted`.
   */
  function leaseAhead<R extends { granted: number }>(st: AheadState, leasing: Promise<R>, granted: (r: R, at: number) => void): void {
    st.pending = leasing;
    track(
      leasing
        .then(
          (r) => {
            const at = now();
            if (r.granted <= 0) {
              st.exactUntil = at + opts.exactMs;
              return;
            }
            st.demand = { used: 0, since: at };
            granted(r, at);
          },
          () => {
            st.aheadAfter = now() + opts.exactMs;
          },
        )
        .finally(() => {
          if (st.pending === leasing) st.pending = undefined;
        }),
    );
  }

  // Keys idle for a while are forgotten (their demand too), so per-user keys do not pile up;
  // a slice of the keys per tick (sweep.ts), so no tick's cost grows with their number.
  const idle = (st: AheadState & { block?: unknown }, t: number) => !st.block && !st.pending && t >= st.exactUntil && t - st.demand.since > 5 * opts.useMs;
  const sweepRates = sliceSweeper(rates, idle);
  const sweepBudgets = sliceSweeper(budgets, (st: BudgetKey, t) => st.live.length === 0 && idle(st, t));
  const sweep = setInterval(() => {
    const t = now();
    sweepRates(t);
    sweepBudgets(t);
  }, opts.useMs);
  sweep.unref?.();

  // ------------------------------------------------------------ rate limits

  function retireRate(key: string, st: RateKey, b: RateBlock): void {
    clearTimeout(b.timer);
    if (st.block === b) st.block = undefined;
    if (b.left > 0) track(remote.rateReturn(key, b.intervalUs, b.left));
    b.left = 0;
  }

  function fromRateBlock(st: RateKey, t: number): RateLimitResult | null {
    const b = st.block;
    if (!b || b.left <= 0 || t >= b.until) return null;
    b.left--;
    st.demand.used++;
    if (b.left * 2 <= b.size || 2 * (t - b.leasedAt) >= opts.useMs) rateAhead(st, b, t);
    return { allowed: true, remaining: b.remaining + b.left, retryAfterMs: 0, resetAfterMs: Math.max(0, b.resetAt - t) };
  }

  function newRateBlock(
    key: string,
    st: RateKey,
    granted: number,
    left: number,
    at: number,
    r: { remaining: number; resetAfterMs: number },
    intervalUs: number,
    burst: number,
  ): RateBlock {
    const b: RateBlock = {
      key,
      left,
      size: granted,
      leasedAt: at,
      burst,
      until: at + opts.useMs,
      remaining: r.remaining,
      resetAt: at + r.resetAfterMs,
      intervalUs,
      timer: setTimeout(() => retireRate(key, st, b), opts.useMs),
    };
    b.timer.unref?.();
    return b;
  }

  /**
   * Half of the key's block is spent (or half its time gone): lease the next one
   * now, in the background, so that no request waits for a lease. Redis grants it
   * by the same rule as any block (none near the limit: then decisions turn exact
   * once this block is spent, as they would); once granted, the current block
   * retires at once (its unspent part goes back), so an instance never holds more
   * than one block of a key.
   */
  function rateAhead(st: RateKey, b: RateBlock, t: number): void {
    const lease = remote.rateLeaseAhead;
    if (lease === undefined || st.pending !== undefined || closing || t < st.exactUntil || t < st.aheadAfter) return;
    const key = b.key;
    const n = Math.min(opts.maxRequests, aheadWant(st.demand, t, opts.targetMs, opts.minRequests));
    leaseAhead(st, lease(key, b.intervalUs, b.burst, n, opts.headroom, opts.minRequests), (r, at) => {
      if (closing) {
        track(remote.rateReturn(key, b.intervalUs, r.granted));
        return;
      }
      const next = newRateBlock(key, st, r.granted, r.granted, at, r, b.intervalUs, b.burst);
      if (st.block) retireRate(key, st, st.block);
      st.block = next;
    });
  }

  async function rate(key: string, intervalUs: number, burst: number): Promise<RateLimitResult> {
    let st = rates.get(key);
    if (!st) rates.set(key, (st = { exactUntil: 0, aheadAfter: 0, demand: { used: 0, since: now() } }));
    const t = now();
    const local = fromRateBlock(st, t);
    if (local) return local;
    if (st.block && (st.block.left <= 0 || t >= st.block.until)) retireRate(key, st, st.block);
    if (t < st.exactUntil) return remote.rate(key, intervalUs, burst, false);
    if (st.pending) {
      // A lease is on its way: this request is decided by Redis exactly, in the same
      // script call, in the order it was made (no waiting for the lease's answer).
      st.demand.used++;
      return remote.rate(key, intervalUs, burst, false);
    }
    const n = Math.min(opts.maxRequests, want(st.demand, t, opts.targetMs, opts.minRequests));
    const leasing = remote.rateLease(key, intervalUs, burst, n, opts.headroom, opts.minRequests);
    const mine = st;
    st.pending = leasing;
    try {
      const r = await leasing;
      const at = now();
      mine.demand = { used: 1, since: at };
      if (r.granted > 0) {
        const b = newRateBlock(key, mine, r.granted, r.granted - 1, at, r, intervalUs, burst);
        if (mine.block) retireRate(key, mine, mine.block);
        mine.block = b;
        return { allowed: true, remaining: r.remaining + b.left, retryAfterMs: 0, resetAfterMs: r.resetAfterMs };
      }
      // Near the limit (or over it): exact decisions for a while.
      mine.exactUntil = at + opts.exactMs;
      return { allowed: r.allowed, remaining: r.remaining, retryAfterMs: r.retryAfterMs, resetAfterMs: r.resetAfterMs };
    } finally {
      if (mine.pending === leasing) mine.pending = undefined;
    }
  }

  // ------------------------------------------------------------ budgets

  /** Send what the block has to say: committed spends, and what it still holds (everything, or nothing once retired and idle). */
  function flush(b: BudgetBlock): void {
    if (b.flushTimer !== undefined) {
      clearTimeout(b.flushTimer);
      b.flushTimer = undefined;
    }
    if (b.flushing) return;
    const spent = b.committed;
    const keep = b.lost ? 0 : b.retired ? b.inFlight : round(b.free + b.inFlight);
    if (spent === 0 && keep === b.size) {
      if (b.retired && b.inFlight === 0) finish(b);
      return;
    }
    const waiters = b.waiters;
    const counts = b.counts;
    b.waiters = [];
    b.counts = [];
    b.flushing = true;
    b.committed = 0;
    const oldMember = b.member;
    const oldSize = b.size;
    const newMember = `${b.id}:${String(keep)}`;
    const spendMember = `${b.id}_${(b.seq++).toString(36)}:${String(spent)}`;
    b.member = newMember;
    b.size = keep;
    const sent = remote.flushBlock(b.key, b.windowMs, oldMember, newMember, keep, spent, b.leaseMs, spendMember);
    track(sent);
    sent.then(
      (held) => {
        b.flushing = false;
        if (!held && !b.lost) {
          // The lease lapsed (Redis no longer counts the block): nothing more is spent from it.
          b.lost = true;
          b.size = 0;
          retireBudget(b);
        }
        for (let i = 0; i < waiters.length; i++) for (let n = counts[i]; n > 0; n--) waiters[i].done(held);
        if (b.committed > 0) flushSoon(b);
        else if (b.retired && b.inFlight === 0) {
          if (b.size > 0) flush(b);
          else finish(b);
        }
      },
      (err: unknown) => {
        // Not recorded: the block stays held in Redis as it was until its lease lapses
        // (like a commit that failed); the spend is carried by the next commit, if any.
        b.flushing = false;
        b.committed = round(b.committed + spent);
        b.member = oldMember;
        b.size = oldSize;
        b.failed = true;
        for (let i = 0; i < waiters.length; i++) for (let n = counts[i]; n > 0; n--) waiters[i].failed(err);
        retireBudget(b);
      },
    );
  }

  /** Commits to send: within flushMs (one flush carries every commit made meanwhile), at once when the block retired. */
  function flushSoon(b: BudgetBlock): void {
    const delay = opts.flushMs ?? 0;
    if (delay <= 0 || b.retired) return flush(b);
    if (b.flushTimer !== undefined || b.flushing) return; // the flush in flight sends the rest when it is answered
    b.flushTimer = setTimeout(() => flush(b), delay);
    b.flushTimer.unref?.();
  }

  function finish(b: BudgetBlock): void {
    if (b.inFlight > 0) return;
    live.delete(b);
    const list = b.owner.live;
    const i = list.indexOf(b);
    if (i >= 0) list.splice(i, 1);
    b.ids.clear();
    b.settled.clear();
  }

  function retireBudget(b: BudgetBlock): void {
    if (b.timer) clearTimeout(b.timer);
    if (!b.retired) {
      b.retired = true;
      b.free = 0;
    }
    if (b.owner.block === b) b.owner.block = undefined;
    if (b.flushing) return;
    // A failed block sends nothing more on its own (no retry loop against an unreachable Redis).
    if (b.failed) {
      if (b.inFlight === 0) finish(b);
      return;
    }
    flush(b);
  }

  function fromBudgetBlock(st: BudgetKey, key: string, id: string, amount: number, t: number): (BudgetState & { reserved: boolean }) | null {
    const b = st.block;
    if (!b || b.retired || t >= b.until || b.free < amount) return null;
    b.free = round(b.free - amount);
    b.inFlight = round(b.inFlight + amount);
    b.ids.set(id, amount);
    st.demand.used = round(st.demand.used + amount);
    if (b.free * 2 <= b.granted || 2 * (t - b.leasedAt) >= opts.useMs) budgetAhead(st, b, amount, t);
    return b.state;
  }

  function newBudgetBlock(
    st: BudgetKey,
    key: string,
    blockId: string,
    windowMs: number,
    max: number,
    leaseMs: number,
    r: BudgetState & { granted: number; grantedText?: string },
    amount: number,
    at: number,
  ): BudgetBlock {
    const b: BudgetBlock = {
      key,
      id: blockId,
      windowMs,
      leaseMs,
      max,
      granted: r.granted,
      leasedAt: at,
      member: `${blockId}:${r.grantedText ?? String(r.granted)}`,
      size: r.granted,
      free: round(r.granted - amount),
      inFlight: amount,
      committed: 0,
      retired: false,
      lost: false,
      failed: false,
      until: at + opts.useMs,
      seq: 0,
      state: Object.freeze({ reserved: true, spent: r.spent, held: r.held, nextReleaseMs: r.nextReleaseMs }),
      ids: new Map(),
      settled: new Set(),
      owner: st,
      flushing: false,
      waiters: [],
      counts: [],
    };
    b.timer = setTimeout(() => retireBudget(b), opts.useMs);
    b.timer.unref?.();
    live.add(b);
    st.live.push(b);
    if (st.block) retireBudget(st.block);
    st.block = b;
    return b;
  }

  /**
   * Half of the key's block is spent (or half its time gone): lease the next one
   * now, in the background (as rateAhead). Redis grants it only by the rule of
   * every block (headroom for as many more; none near the max); once granted the
   * current block retires at once, giving back its unspent part with its next
   * flush, so an instance never holds more than one block of a key unspent.
   */
  function budgetAhead(st: BudgetKey, b: BudgetBlock, amount: number, t: number): void {
    const lease = remote.reserveBlockAhead;
    if (lease === undefined || st.pending !== undefined || closing || t < st.exactUntil || t < st.aheadAfter) return;
    const least = opts.minRequests * amount;
    const wanted = aheadWant(st.demand, t, opts.targetMs, least);
    const blockId = opts.newId();
    const key = b.key;
    leaseAhead(st, lease(key, b.windowMs, b.max, wanted, opts.headroom, least, b.leaseMs, blockId), (r, at) => {
      const next = newBudgetBlock(st, key, blockId, b.windowMs, b.max, b.leaseMs, r, 0, at);
      // Closing: it goes back at once (close() retired the others already).
      if (closing) retireBudget(next);
    });
  }

  async function reserve(
    key: string,
    windowMs: number,
    max: number,
    amount: number,
    id: string,
    member: string,
    leaseMs: number,
  ): Promise<BudgetState & { reserved: boolean }> {
    let st = budgets.get(key);
    if (!st) budgets.set(key, (st = { live: [], exactUntil: 0, aheadAfter: 0, demand: { used: 0, since: now() } }));
    const t = now();
    const local = fromBudgetBlock(st, key, id, amount, t);
    if (local) return local;
    // A block that cannot cover this request retires (its unspent part goes back with the next flush).
    if (st.block) retireBudget(st.block);
    if (t < st.exactUntil) return remote.reserve(key, windowMs, max, amount, member, leaseMs, false, false);
    if (st.pending) {
      st.demand.used = round(st.demand.used + amount);
      return remote.reserve(key, windowMs, max, amount, member, leaseMs, false, false);
    }
    const wanted = want(st.demand, t, opts.targetMs, opts.minRequests * amount);
    const blockId = opts.newId();
    const leasing = remote.reserveBlock(key, windowMs, max, amount, member, leaseMs, wanted, opts.headroom, opts.minRequests, blockId);
    const mine = st;
    st.pending = leasing;
    try {
      const r = await leasing;
      const at = now();
      mine.demand = { used: amount, since: at };
      if (r.granted > 0) {
        newBudgetBlock(mine, key, blockId, windowMs, max, leaseMs, r, amount, at).ids.set(id, amount);
      } else {
        mine.exactUntil = at + opts.exactMs;
      }
      return { reserved: r.reserved, spent: r.spent, held: r.held, nextReleaseMs: r.nextReleaseMs };
    } finally {
      if (mine.pending === leasing) mine.pending = undefined;
    }
  }

  /**
   * Settle a reservation served from a block: null when it was not (the caller
   * asks Redis), false when it was settled already, true when settled now. A
   * commit's flush is told to `watcher`.
   */
  function settleHere(key: string, id: string, commit: boolean, watcher: SettleWatcher | undefined): boolean | null {
    const st = budgets.get(key);
    if (!st) return null;
    let b: BudgetBlock | undefined;
    let amount: number | undefined;
    // Newest first: a request is usually settled soon after it reserved, from the key's newest block.
    for (let i = st.live.length - 1; i >= 0; i--) {
      const x = st.live[i];
      amount = x.ids.get(id);
      if (amount !== undefined) {
        b = x;
        break;
      }
      if (x.settled.has(id)) return false;
    }
    if (!b || amount === undefined) return null;
    b.ids.delete(id);
    b.settled.add(id);
    settleIn(b, amount, commit, watcher);
    return true;
  }

  /** `amount` of block `b`, reserved and not settled, settled now: a commit is flushed (told to `watcher`), a release frees it. */
  function settleIn(b: BudgetBlock, amount: number, commit: boolean, watcher: SettleWatcher | undefined): void {
    b.inFlight = round(b.inFlight - amount);
    if (commit) {
      b.committed = round(b.committed + amount);
      if (watcher) {
        // One entry per run of commits told to the same watcher (a site's, shared by its requests): no array entry per request.
        const last = b.waiters.length - 1;
        if (last >= 0 && b.waiters[last] === watcher) b.counts[last]++;
        else {
          b.waiters.push(watcher);
          b.counts.push(1);
        }
      }
      flushSoon(b);
      return;
    }
    // Released (the upstream failed): the amount goes back to the block, or to Redis once the block is retired.
    if (!b.retired) b.free = round(b.free + amount);
    else if (b.inFlight === 0) {
      if (b.failed) finish(b);
      else flush(b);
    }
  }

  /** Settle a reservation served from a block; undefined when it was not (the caller asks Redis). */
  function settle(key: string, id: string, commit: boolean): Promise<boolean> | undefined {
    let watcher: SettleWatcher | undefined;
    const p = commit ? new Promise<boolean>((done, failed) => (watcher = { done, failed })) : undefined;
    const here = settleHere(key, id, commit, watcher);
    if (here === null) return undefined;
    // A commit settled before was not flushed again: its promise is not the answer.
    return here && p ? p : Promise.resolve(here);
  }

  return {
    rate,
    reserve,
    /** A rate decision from the key's block, now; undefined when Redis must be asked (use `rate`). */
    rateNow(key: string): RateLimitResult | undefined {
      const st = rates.get(key);
      return (st && fromRateBlock(st, now())) ?? undefined;
    },
    /** A reservation from the key's block, now; undefined when Redis must be asked (use `reserve`). */
    reserveNow(key: string, amount: number, id: string): (BudgetState & { reserved: boolean }) | undefined {
      const st = budgets.get(key);
      return (st && fromBudgetBlock(st, key, id, amount, now())) ?? undefined;
    },
    /**
     * A reservation from the key's block, now, held by `holder` (the caller's own
     * record of it) rather than by an id: nothing is kept per reservation here,
     * `holder.lot` names the block. Settle it with `settleLot`, once. Undefined
     * when Redis must be asked (`holder` untouched).
     */
    reserveLot(key: string, amount: number, holder: LotHolder): (BudgetState & { reserved: boolean }) | undefined {
      const st = budgets.get(key);
      if (st === undefined) return undefined;
      const b = st.block;
      const t = now();
      if (b === undefined || b.retired || b.free < amount || t >= b.until) return undefined;
      b.free = round(b.free - amount);
      b.inFlight = round(b.inFlight + amount);
      st.demand.used = round(st.demand.used + amount);
      holder.lot = b;
      if (b.free * 2 <= b.granted || 2 * (t - b.leasedAt) >= opts.useMs) budgetAhead(st, b, amount, t);
      return b.state;
    },
    /**
     * Settle what `reserveLot` reserved for `holder` (`amount` as reserved): true;
     * settling it again does nothing (true); undefined when `holder` was not served by a block.
     */
    settleLot(holder: LotHolder, amount: number, commit: boolean, watcher: SettleWatcher): true | undefined {
      const b = holder.lot;
      if (b === undefined || b === null) return undefined;
      if (b === SETTLED) return true;
      holder.lot = SETTLED;
      settleIn(b as BudgetBlock, amount, commit, watcher);
      return true;
    },
    /** Settle a reservation served from a block, now: true, or undefined when it was not (use `commit`/`release`). */
    settleNow(key: string, id: string, commit: boolean, watcher: SettleWatcher): true | undefined {
      return settleHere(key, id, commit, watcher) === null ? undefined : true;
    },
    /** The key's reservation `id` committed: true (or the flush's answer) when served by a block, else undefined. */
    commit: (key: string, id: string) => settle(key, id, true),
    release: (key: string, id: string) => settle(key, id, false),
    /** Give back every block (before the connection closes) and wait for the calls. */
    async close(): Promise<void> {
      closing = true;
      clearInterval(sweep);
      for (const [key, st] of rates) if (st.block) retireRate(key, st, st.block);
      for (const b of [...live]) if (!b.retired) retireBudget(b);
      await Promise.allSettled([...background]);
    },
    /** For tests: blocks held now. */
    stats: () => ({
      rateBlocks: [...rates.values()].filter((s) => s.block).length,
      budgetBlocks: live.size,
      /** Reservation ids the blocks remember (unsettled and settled): none for those held by `reserveLot`. */
      trackedIds: [...live].reduce((n, b) => n + b.ids.size + b.settled.size, 0),
    }),
  };
}

export type QuotaBlocks = ReturnType<typeof createQuotaBlocks>;
