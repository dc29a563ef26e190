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

  const read = (key: string): Value | undefined => {
    const entry = entries.get(key);
    if (!entry) return undefined;
    if (entry.expiresAt <= now()) {
      entries.delete(key);
      return undefined;
    }
    // Re-insert to mark it most recently used (Map keeps insertion order), but
    // only once it has drifted into the older half: a hot entry is not moved on
    // every hit, and nothing in the newer half is near eviction anyway.
    if (inserted - entry.seq > options.maxEntries >> 1) {
      entries.delete(key);
      entry.seq = ++inserted;
      entries.set(key, entry);
    }
    return entry.value;
  };

  const write = (key: string, value: Value) => {
    entries.delete(key);
    while (entries.size >= options.maxEntries) {
      const oldest = entries.keys().next().value as string;
      entries.delete(oldest);
      counters.evictions++;
    }
    entries.set(key, { value, expiresAt: now() + options.ttlMs, seq: ++inserted });
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

  return {
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
      const keys = requests.map((r) => checkKey(scope, r));
      if (fresh(opts)) {
        count('bypass', requests.length);
        const answers = await authorizer.batchCheck(requests, opts);
        answers.forEach((a, i) => write(keys[i], a));
        return answers;
      }
      const answers: Array<boolean | undefined> = keys.map((k) => read(k) as boolean | undefined);
      // Ask the engine once per distinct missing key.
      const missing = new Map<string, number[]>();
      answers.forEach((a, i) => {
        if (a !== undefined) return;
        const at = missing.get(keys[i]);
        if (at) at.push(i);
        else missing.set(keys[i], [i]);
      });
      count('hit', requests.length - [...missing.values()].reduce((n, at) => n + at.length, 0));
      count(
        'miss',
        [...missing.values()].reduce((n, at) => n + at.length, 0),
      );
      if (missing.size > 0) {
        const asked = [...missing.entries()];
        const got = await authorizer.batchCheck(
          asked.map(([, at]) => requests[at[0]]),
          opts,
        );
        if (got.length !== asked.length) {
          throw new WardenError('authz_unavailable', 'The authorization service is unavailable', { reason: 'batch_length_mismatch' });
        }
        asked.forEach(([key, at], j) => {
          write(key, got[j]);
          for (const i of at) answers[i] = got[j];
        });
      }
      return answers as boolean[];
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
      await authorizer.close();
    },
    stats,
    clear() {
      entries.clear();
    },
  };
}
