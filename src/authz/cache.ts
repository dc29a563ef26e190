/**
 * The decision cache in front of either engine: a bounded (approximate) LRU with a TTL,
 * keyed by everything that can change an answer. Errors are never cached and
 * `higher_consistency` calls (the re-check before releasing an approved
 * request) always go to the engine.
 */

import { WardenError } from '../core/errors.js';
import type { Metrics } from '../observability/metrics.js';
import type { Authorizer, CheckOptions, CheckRequest, ListObjectsRequest, TupleKey } from './authorizer.js';
import { canonicalJson } from '../core/canonical-json.js';

/** Options of `withDecisionCache`. */
export interface DecisionCacheOptions {
  /** How long an answer is reused; 0 disables the cache (`authz.cache_ttl`). */
  ttlMs: number;
  /** Most answers kept; the least recently used go first (approximately: see read()); 0 disables (`authz.cache_size`). */
  maxEntries: number;
  /**
   * What identifies the policy answers come from; default the engine plus the
   * authorizer's `modelId` when it exposes one. Part of every key.
   */
  scope?: string;
  /** Counts lookups as `warden_authz_cache_total{result="hit|miss|bypass"}`. */
  metrics?: Metrics;
  /** Clock (ms); tests move it instead of sleeping. */
  now?: () => number;
}

/** Counters since the cache was built. */
export interface DecisionCacheStats {
  enabled: boolean;
  hits: number;
  misses: number;
  /** Lookups that skipped the cache on purpose (`higher_consistency`). */
  bypassed: number;
  evictions: number;
  size: number;
}

/** An `Authorizer` with a decision cache in front. */
export interface CachedAuthorizer extends Authorizer {
  /** The wrapped engine's model id, when it exposes one (OpenFGA). */
  readonly modelId?: string;
  /** The wrapped engine itself (e.g. for `warden explain`, which must not read cached answers). */
  readonly inner: Authorizer;
  stats(): DecisionCacheStats;
  /** Drop every entry (e.g. after tuples were written). */
  clear(): void;
}

type Value = boolean | readonly string[];
interface Entry {
  value: Value;
  expiresAt: number;
  /** Value of the insertion counter when the entry last went to the recent end. */
  seq: number;
}

function contextPart(context: Record<string, unknown> | undefined): string {
  // An empty context and no context mean the same thing to both engines.
  return context && Object.keys(context).length > 0 ? canonicalJson(context) : '';
}

function tuplesPart(tuples: TupleKey[] | undefined): string {
  return tuples && tuples.length > 0 ? canonicalJson(tuples) : '';
}

/** `s` with its length in front: fields can't run into each other, whatever they contain. */
const field = (s: string) => `${s.length}:${s}`;

function checkKey(scope: string, r: CheckRequest): string {
  // Length-prefixed fields keep the parts apart (no id can smuggle a separator)
  // at the cost of a few concatenations, not a JSON.stringify per check.
  let key = 'c' + field(scope) + field(r.user) + field(r.relation) + field(r.object);
  if (r.context !== undefined || r.contextualTuples !== undefined) {
    const context = contextPart(r.context);
    const tuples = tuplesPart(r.contextualTuples);
    if (context || tuples) key += field(context) + field(tuples);
  }
  return key;
}

function listKey(scope: string, r: ListObjectsRequest): string {
  return JSON.stringify(['l', scope, r.user, r.relation, r.type, contextPart(r.context), tuplesPart(r.contextualTuples)]);
}

function modelIdOf(authorizer: Authorizer): string | undefined {
  const modelId = (authorizer as { modelId?: unknown }).modelId;
  return typeof modelId === 'string' ? modelId : undefined;
}

function defaultScope(authorizer: Authorizer): string {
  const modelId = modelIdOf(authorizer);
  return modelId ? `${authorizer.engine}:${modelId}` : authorizer.engine;
}

/** What `planBatch` found: the cached answers, and per distinct missing key the request to ask and the positions it answers. */
interface BatchPlan {
  answers: Array<boolean | undefined>;
  asked: CheckRequest[];
  askedKeys: string[];
  at: number[][];
}

/**
 * Wrap `authorizer` in a decision cache. With `ttlMs` or `maxEntries` 0 the
 * result only delegates (and reports `enabled: false`).
 */
export function withDecisionCache(authorizer: Authorizer, options: DecisionCacheOptions): CachedAuthorizer {
  const enabled = options.ttlMs > 0 && options.maxEntries > 0;
  const scope = options.scope ?? defaultScope(authorizer);
  const now = options.now ?? Date.now;
  const entries = new Map<string, Entry>();
  // Concurrent identical checks share one engine call; removed when it settles,
  // so a failure reaches every waiter and is never remembered.
  const inflight = new Map<string, Promise<boolean>>();
  const counters = { hits: 0, misses: 0, bypassed: 0, evictions: 0 };
  let inserted = 0;

  // Series bound once: counting a lookup is one addition.
  const series = (result: string) => options.metrics?.counter('warden_authz_cache_total', { result });
  const bound = { hit: series('hit'), miss: series('miss'), bypass: series('bypass') };
  const count = (result: 'hit' | 'miss' | 'bypass', by = 1) => {
    if (by === 0) return;
    if (result === 'hit') counters.hits += by;
    else if (result === 'miss') counters.misses += by;
    else counters.bypassed += by;
    bound[result]?.inc(by);
  };

  // Eviction order: a queue of (key, seq) records, oldest first. An entry moved to
  // the recent end (or replaced, or expired) leaves its older record behind; that
  // record is stale (its seq no longer matches the entry's) and is skipped when it
  // reaches the front. Evicting through `entries.keys().next()` instead costs a
  // scan over every deleted slot V8's Map keeps at its front until it rehashes:
  // thousands of slots, ~10 µs per eviction once the cache is full of misses.
  let queueKeys: string[] = [];
  let queueSeqs: number[] = [];
  let head = 0;

  const enqueue = (key: string, seq: number) => {
    queueKeys.push(key);
    queueSeqs.push(seq);
    // Stale records pile up only as fast as entries move; rebuild from the live
    // entries once the queue is twice the bound (amortized O(1)).
    if (queueKeys.length - head > 2 * options.maxEntries + 64) compact();
    else if (head > 1024 && head * 2 > queueKeys.length) {
      queueKeys = queueKeys.slice(head);
      queueSeqs = queueSeqs.slice(head);
      head = 0;
    }
  };

  const resetQueue = () => {
    queueKeys = [];
    queueSeqs = [];
    head = 0;
  };

  const compact = () => {
    const live = [...entries].sort((a, b) => a[1].seq - b[1].seq);
    queueKeys = live.map(([k]) => k);
    queueSeqs = live.map(([, e]) => e.seq);
    head = 0;
  };

  /** Drops the least recently used entry. */
  const evictOne = () => {
    while (head < queueKeys.length) {
      const key = queueKeys[head];
      const seq = queueSeqs[head];
      head++;
      const entry = entries.get(key);
      if (entry !== undefined && entry.seq === seq) {
        entries.delete(key);
        counters.evictions++;
        return;
      }
    }
    // Unreachable while every live entry has its record; never loop on a broken queue.
    const oldest = entries.keys().next();
    if (!oldest.done) {
      entries.delete(oldest.value);
      counters.evictions++;
    }
  };

  const read = (key: string): Value | undefined => {
    const entry = entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= now()) {
      entries.delete(key);
      return undefined;
    }
    // Mark it most recently used, but only once it has drifted into the older
    // half: a hot entry is not moved on every hit, and nothing in the newer half
    // is near eviction anyway.
    if (inserted - entry.seq > options.maxEntries >> 1) {
      entry.seq = ++inserted;
      enqueue(key, entry.seq);
    }
    return entry.value;
  };

  const write = (key: string, value: Value) => {
    const known = entries.get(key);
    if (known !== undefined) {
      known.value = value;
      known.expiresAt = now() + options.ttlMs;
      known.seq = ++inserted;
      enqueue(key, known.seq);
      return;
    }
    while (entries.size >= options.maxEntries) evictOne();
    const entry: Entry = { value, expiresAt: now() + options.ttlMs, seq: ++inserted };
    entries.set(key, entry);
    enqueue(key, entry.seq);
  };

  const fresh = (opts?: CheckOptions) => opts?.consistency === 'higher_consistency';

  const stats = (): DecisionCacheStats => ({ enabled, ...counters, size: entries.size });

  if (!enabled) {
    return {
      engine: authorizer.engine,
      get modelId() {
        return modelIdOf(authorizer);
      },
      inner: authorizer,
      check: (r, o) => authorizer.check(r, o),
      batchCheck: (r, o) => authorizer.batchCheck(r, o),
      listObjects: (r, o) => authorizer.listObjects(r, o),
      relations: () => authorizer.relations(),
      ready: () => authorizer.ready(),
      close: () => authorizer.close(),
      stats,
      clear() {},
    };
  }

  /** Answers asked past the cache (higher consistency): counted as bypasses, stored as the freshest there are. */
  const bypassBatch = (requests: CheckRequest[], answers: boolean[]): boolean[] => {
    count('bypass', requests.length);
    for (let i = 0; i < requests.length; i++) write(checkKey(scope, requests[i]), answers[i]);
    return answers;
  };

  /** A batch's cached answers, and one request to ask the engine per distinct missing key (hits and misses counted). */
  const planBatch = (requests: CheckRequest[]): BatchPlan => {
    const answers: Array<boolean | undefined> = new Array(requests.length);
    const asked: CheckRequest[] = [];
    const askedKeys: string[] = [];
    const at: number[][] = [];
    let byKey: Map<string, number> | undefined;
    let misses = 0;
    for (let i = 0; i < requests.length; i++) {
      const key = checkKey(scope, requests[i]);
      const cached = read(key) as boolean | undefined;
      if (cached !== undefined) {
        answers[i] = cached;
        continue;
      }
      misses++;
      const j = (byKey ??= new Map()).get(key);
      if (j !== undefined) at[j].push(i);
      else {
        byKey.set(key, asked.length);
        asked.push(requests[i]);
        askedKeys.push(key);
        at.push([i]);
      }
    }
    count('hit', requests.length - misses);
    count('miss', misses);
    return { answers, asked, askedKeys, at };
  };

  /** Fills a plan's missing answers from the engine's (in the order asked) and stores them. */
  const settleBatch = (batch: BatchPlan, got: boolean[]): boolean[] => {
    if (got.length !== batch.asked.length) {
      throw new WardenError('authz_unavailable', 'The authorization service is unavailable', { reason: 'batch_length_mismatch' });
    }
    for (let j = 0; j < got.length; j++) {
      write(batch.askedKeys[j], got[j]);
      for (const i of batch.at[j]) batch.answers[i] = got[j];
    }
    return batch.answers as boolean[];
  };

  const front: CachedAuthorizer = {
    engine: authorizer.engine,
    get modelId() {
      return modelIdOf(authorizer);
    },
    inner: authorizer,

    async check(request, opts) {
      const key = checkKey(scope, request);
      if (fresh(opts)) {
        count('bypass');
        const allowed = await authorizer.check(request, opts);
        write(key, allowed); // the freshest answer there is
        return allowed;
      }
      const cached = read(key);
      if (cached !== undefined) {
        count('hit');
        return cached as boolean;
      }
      count('miss');
      let pending = inflight.get(key);
      if (!pending) {
        pending = authorizer.check(request, opts).then(
          (allowed) => {
            inflight.delete(key);
            write(key, allowed);
            return allowed;
          },
          (err: unknown) => {
            inflight.delete(key);
            throw err;
          },
        );
        inflight.set(key, pending);
      }
      return pending;
    },

    peekBatch(requests, opts) {
      if (fresh(opts)) return undefined;
      const answers: boolean[] = new Array(requests.length);
      for (let i = 0; i < requests.length; i++) {
        const cached = read(checkKey(scope, requests[i]));
        if (cached === undefined) return undefined;
        answers[i] = cached as boolean;
      }
      count('hit', requests.length);
      return answers;
    },

    async batchCheck(requests, opts) {
      if (fresh(opts)) return bypassBatch(requests, await authorizer.batchCheck(requests, opts));
      const batch = planBatch(requests);
      if (batch.asked.length === 0) return batch.answers as boolean[];
      return settleBatch(batch, await authorizer.batchCheck(batch.asked, opts));
    },

    async listObjects(request, opts) {
      const key = listKey(scope, request);
      if (fresh(opts)) {
        count('bypass');
        const objects = await authorizer.listObjects(request, opts);
        write(key, [...objects]);
        return objects;
      }
      const cached = read(key);
      if (cached !== undefined) {
        count('hit');
        return [...(cached as readonly string[])];
      }
      count('miss');
      const objects = await authorizer.listObjects(request, opts);
      write(key, [...objects]);
      return objects;
    },

    relations: () => authorizer.relations(),
    ready: () => authorizer.ready(),
    async close() {
      entries.clear();
      resetQueue();
      await authorizer.close();
    },
    stats,
    clear() {
      entries.clear();
      resetQueue();
    },
  };

  const sync = authorizer.batchCheckSync?.bind(authorizer);
  if (sync) {
    // An in-process engine: hits and misses are answered in this call, no promise.
    const cheap = authorizer.checkIfCheap?.bind(authorizer);
    const known = authorizer.checkIfKnown?.bind(authorizer);
    const throughCache = (requests: CheckRequest[], opts: CheckOptions | undefined): boolean[] => {
      if (fresh(opts)) return bypassBatch(requests, sync(requests, opts));
      const batch = planBatch(requests);
      if (batch.asked.length === 0) return batch.answers as boolean[];
      return settleBatch(batch, sync(batch.asked, opts));
    };
    front.batchCheckSync = (requests, opts) => {
      if (!cheap) return throughCache(requests, opts);
      // Checks the engine answers in a few steps skip the cache (no key, no entry): cheaper than a hit.
      // A repeated one is answered from what the engine remembers, without evaluating it again.
      const n = requests.length;
      const answers: boolean[] = new Array(n);
      let rest: number[] | undefined;
      for (let i = 0; i < n; i++) {
        const request = requests[i];
        const answer = known?.(request) ?? cheap(request);
        if (answer === undefined) (rest ??= []).push(i);
        else answers[i] = answer;
      }
      if (rest === undefined) return answers;
      const costly = throughCache(
        rest.map((i) => requests[i]),
        opts,
      );
      for (let j = 0; j < rest.length; j++) answers[rest[j]] = costly[j];
      return answers;
    };
  }
  return front;
}
