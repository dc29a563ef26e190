/**
 * The limits stage's warm path: where the store decides in-process (the memory
 * store; a Redis local quota block) the stage returns no promise, like the rest
 * of G3's warm chain, and means exactly what the asynchronous path means
 * (same refusals, same counts, reservations settled). A GET without a body on
 * a route with a budget does not wait for a body either. Nothing per request
 * is kept in the store: on a Redis local quota block a reservation is held by
 * the stage's own record (budgetReserveLocal / budgetSettleLocal, no id), and
 * keys of only `{agent}`/`{user}` are found without template variables, per
 * caller.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, type Config } from '../../src/config/schema.js';
import type { Principal } from '../../src/core/principal.js';
import type { Runtime } from '../../src/core/runtime.js';
import { compileLimits, identityKeyOf, storeKey, type LimitSite } from '../../src/limits/compile.js';
import { createLimitsService, type LimitsService } from '../../src/limits/service.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createBodyStage } from '../../src/pipeline/body.js';
import type { RequestState } from '../../src/pipeline/context.js';
import { newState } from '../../src/pipeline/state.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { createRedisStore } from '../../src/store/redis.js';
import type { Store } from '../../src/store/store.js';
import { compileTemplate } from '../../src/templates/template.js';
import { startRedis, type TestRedis } from '../support/redis.js';

const logger = createLogger({ level: 'silent' });

/** The store key of the route's budget key `rendered`. */
const budgetKey = (rendered: string) => storeKey('budget', { policy: 'pay' } as LimitSite, rendered);

function config(limits: Record<string, unknown>): Config {
  return configSchema.parse({
    identity: { dev_issuer: true },
    routes: [{ name: 'pay', match: { path: '/pay/:id' }, upstream: { url: 'http://127.0.0.1:9' }, ...limits }],
  });
}

function service(store: Store, cfg: Config) {
  const metrics = createMetrics();
  const rt = { config: cfg, store, logger, metrics } as unknown as Runtime;
  return { limits: createLimitsService(rt), metrics };
}

const principal: Principal = {
  agent: 'bot',
  user: 'alice',
  scopes: [],
  issuer: 'test',
  claims: { sub: 'alice', azp: 'bot' },
  actors: [],
  expiresAt: Math.floor(Date.now() / 1000) + 3600,
} as unknown as Principal;

const principalOf = (agent: string, user: string | null): Principal =>
  ({ agent, user, scopes: [], issuer: 'test', claims: { sub: user ?? agent, azp: agent }, actors: [], expiresAt: 2e9 }) as unknown as Principal;

function request(cfg: Config, init: { method?: string; headers?: Record<string, string>; principal?: Principal } = {}): RequestState {
  const state = newState({
    method: init.method ?? 'GET',
    target: { path: '/pay/1', segments: ['pay', '1'], query: '' } as never,
    headers: init.headers ?? {},
    clientIp: '127.0.0.1',
  });
  state.route = cfg.routes[0];
  state.params = { id: '1' };
  state.principal = init.principal ?? principal;
  return state;
}

/** Run the stage as the pipeline does: a sync throw or a rejection is the refusal; `sync` says whether a promise was made. */
async function run(limits: LimitsService, state: RequestState): Promise<{ sync: boolean; error?: { code: string } }> {
  let pending: Promise<void> | void;
  try {
    pending = limits.stage(state);
  } catch (err) {
    return { sync: true, error: err as { code: string } };
  }
  if (!pending) return { sync: true };
  try {
    await pending;
    return { sync: false };
  } catch (err) {
    return { sync: false, error: err as { code: string } };
  }
}

describe('limits warm path (no promise where the store decides now)', () => {
  it('memory store: every decision synchronous; a rate limit of 3 lets exactly 3 through, then 429 with the IETF fields', async () => {
    const cfg = config({ rate_limit: { requests: 3, per: '1m' } });
    const { limits } = service(createMemoryStore(), cfg);
    const out = [];
    const states = [];
    for (let i = 0; i < 5; i++) {
      const state = request(cfg);
      states.push(state);
      out.push(await run(limits, state));
    }
    expect(out.map((o) => o.sync)).toEqual([true, true, true, true, true]);
    expect(out.map((o) => o.error?.code ?? 'ok')).toEqual(['ok', 'ok', 'ok', 'rate_limited', 'rate_limited']);
    expect(states[0].responseHeaders).toEqual(['RateLimit-Policy', '"pay";q=3;w=60', 'RateLimit', '"pay";r=2;t=20']);
    expect(states[2].responseHeaders?.[3]).toBe('"pay";r=0;t=60');
  });

  it('memory store: budget reservations synchronous, over budget denied synchronously, settled without a promise (commit counts, release frees)', async () => {
    const cfg = config({ budget: { key: '{user}', amount: 2, max: 5, per: '1m', over: 'deny' } });
    const store = createMemoryStore();
    const { limits, metrics } = service(store, cfg);
    const a = request(cfg);
    const b = request(cfg);
    const c = request(cfg);
    expect(await run(limits, a)).toEqual({ sync: true });
    expect(await run(limits, b)).toEqual({ sync: true });
    expect(await run(limits, c)).toEqual({ sync: true, error: expect.objectContaining({ code: 'budget_exceeded' }) });
    // a forwarded and answered 200: committed; b's upstream failed: released. Both at once, no promise to wait for.
    a.onSettled?.(true, 200);
    b.onSettled?.(true, 502);
    c.onSettled?.(false, 403);
    // Counted at once (no promise was waited for).
    expect(metrics.render()).toMatch(/warden_budget_spent_total\{route="pay",tool=""\} 2/);
    expect(metrics.render()).toMatch(/warden_budget_released_total\{route="pay",tool=""\} 1/);
    expect(await store.budgetRead(budgetKey('alice'), 60_000)).toMatchObject({ spent: 2, held: 0 });
    // What b released is free again: 2 more fit (2 + 2 <= 5), a third does not.
    expect(await run(limits, request(cfg))).toEqual({ sync: true });
    expect((await run(limits, request(cfg))).error?.code).toBe('budget_exceeded');
  });

  it('a key that cannot be rendered refuses synchronously (400) and reserves nothing', async () => {
    const cfg = config({ budget: { key: '{body.account}', amount: 1, max: 5, per: '1m', over: 'deny' } });
    const store = createMemoryStore();
    const { limits } = service(store, cfg);
    const state = request(cfg);
    state.json = {};
    expect((await run(limits, state)).error?.code).toBe('bad_request');
    expect(await store.budgetRead(budgetKey(''), 60_000)).toMatchObject({ spent: 0, held: 0 });
  });

  it('body stage: a request without Content-Length or Transfer-Encoding has no body to wait for; one with a body is read', async () => {
    const stage = createBodyStage(1_000);
    const get = request(config({}));
    expect(stage.run(get, { headers: {} } as never)).toBeUndefined();
    expect(get.body?.length).toBe(0);
    const zero = request(config({}), { method: 'POST', headers: { 'content-length': '0' } });
    expect(stage.run(zero, { headers: { 'content-length': '0' } } as never)).toBeUndefined();
    expect(zero.body?.length).toBe(0);
    for (const headers of [{ 'content-length': '2' }, { 'transfer-encoding': 'chunked' }] as Array<Record<string, string>>) {
      const { Readable } = await import('node:stream');
      const req = Object.assign(Readable.from([Buffer.from('{}')]), { headers });
      const post = request(config({}), { method: 'POST', headers });
      const pending = stage.run(post, req as never);
      expect(pending).toBeInstanceOf(Promise);
      await pending;
      expect(post.body?.toString()).toBe('{}');
    }
  });
});

describe('limit keys of {agent} and {user} only', () => {
  it('identityKeyOf: only for keys made of {agent}, {user} and text; the same store key as rendering, per pair', () => {
    const cfg = config({ rate_limit: { key: '{agent}:{user}', requests: 5, per: '1m' }, budget: { key: '{claims.sub}', amount: 1, max: 5, per: '1m' } });
    const compiled = compileLimits(cfg).route('pay');
    expect(compiled?.rate?.identityKey).toBeDefined();
    expect(compiled?.budget?.identityKey).toBeUndefined();
    expect(compiled?.needsVars).toBe(true);
    for (const source of ['{user}:{path.id}', '{body.account}', '{claims.org}:{user}']) {
      expect(
        identityKeyOf(
          compileTemplate(source),
          () => 'x',
          (r) => r,
        ),
      ).toBeUndefined();
    }
    const t = compileTemplate('acct-{agent}/{user}');
    const key = identityKeyOf(
      t,
      (v) => `acct-${v.agent ?? ''}/${v.user ?? ''}`,
      (r) => `store:${r}`,
    );
    expect(key?.('bot', 'alice')).toBe('store:acct-bot/alice');
    expect(key?.('bot', 'bob')).toBe('store:acct-bot/bob');
    expect(key?.('bot', 'alice')).toBe('store:acct-bot/alice');
    expect(key?.('other', 'alice')).toBe('store:acct-other/alice');
    expect(key?.('bot', null)).toBe('store:acct-bot/');
    // A fresh key's first caller is rendered, whatever it holds (nothing is "the last pair" yet).
    const fresh = identityKeyOf(
      t,
      (v) => `acct-${v.agent ?? ''}/${v.user ?? ''}`,
      (r) => `store:${r}`,
    );
    expect(fresh?.(undefined as never, undefined as never)).toBe('store:acct-/');
  });

  it('callers interleaved keep their own limits (a rate limit of 1 per {agent}:{user}): each pair counted apart', async () => {
    const cfg = config({ rate_limit: { requests: 1, per: '1m' } });
    const { limits } = service(createMemoryStore(), cfg);
    const alice = principalOf('bot', 'alice');
    const bob = principalOf('bot', 'bob');
    const other = principalOf('other', 'alice');
    const machine = principalOf('bot', null);
    const out = [];
    for (const p of [alice, bob, alice, other, bob, machine, machine, principalOf('bot', 'alice')])
      out.push((await run(limits, request(cfg, { principal: p }))).error?.code ?? 'ok');
    expect(out).toEqual(['ok', 'ok', 'rate_limited', 'ok', 'rate_limited', 'ok', 'rate_limited', 'rate_limited']);
  });
});

describe('limits warm path on a real Redis (local quota blocks)', () => {
  let redis: TestRedis;
  const stores: Store[] = [];
  beforeAll(async () => {
    redis = await startRedis({ local: true });
  });
  afterAll(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    await redis?.stop();
  });

  it('after the first lease, rate and budget decisions and settlements are made from the blocks without a promise; Redis counts exactly what was spent', async () => {
    const store = await createRedisStore({ url: redis.url, keyPrefix: `${redis.keyPrefix}warm:`, timeoutMs: 2_000, logger });
    stores.push(store);
    const cfg = config({ rate_limit: { requests: 1_000_000, per: '1h' }, budget: { key: '{user}', amount: 1, max: 1_000_000, per: '1m' } });
    const { limits } = service(store, cfg);
    const first = request(cfg);
    expect((await run(limits, first)).sync).toBe(false); // the lease: Redis is asked
    first.onSettled?.(true, 200);
    const out = [];
    for (let i = 0; i < 5; i++) {
      const state = request(cfg);
      out.push(await run(limits, state));
      expect(state.responseHeaders?.[0]).toBe('RateLimit-Policy');
      state.onSettled?.(true, 200);
    }
    expect(out).toEqual(Array.from({ length: 5 }, () => ({ sync: true })));
    await store.close();
    const check = await createRedisStore({ url: redis.url, keyPrefix: `${redis.keyPrefix}warm:`, timeoutMs: 2_000, logger, limitBlocks: 0 });
    stores.push(check);
    expect(await check.budgetRead(budgetKey('alice'), 60_000)).toMatchObject({ spent: 6, held: 0 });
  });

  it('after the first lease, budget reservations go through budgetReserveLocal/budgetSettleLocal (no id made or kept); settling twice counts once; Redis counts exactly', async () => {
    const real = await createRedisStore({ url: redis.url, keyPrefix: `${redis.keyPrefix}local:`, timeoutMs: 2_000, logger });
    stores.push(real);
    const calls: Record<string, number> = {};
    const ids: string[] = [];
    // The real store, its calls counted (and the ids of the reservations it was asked about by id).
    const store = new Proxy(real, {
      get(target, name, receiver) {
        const value = Reflect.get(target, name, receiver) as unknown;
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          calls[String(name)] = (calls[String(name)] ?? 0) + 1;
          if (name === 'budgetSettleNow' || name === 'budgetCommit' || name === 'budgetRelease') ids.push(String(args[2]));
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const cfg = config({ budget: { key: '{user}', amount: 2, max: 1_000_000, per: '1m' } });
    const limits = createLimitsService({ config: cfg, store, logger, metrics: createMetrics() } as unknown as Runtime);
    const alice = principalOf('bot', 'alice');
    const first = request(cfg, { principal: alice });
    expect((await run(limits, first)).sync).toBe(false); // the lease: Redis is asked
    first.onSettled?.(true, 200);
    const before = { ...calls };
    const out = [];
    // The first lease's block holds 8 reservations (its smallest): the lease's own and these 6.
    for (let i = 0; i < 6; i++) {
      const state = request(cfg, { principal: alice });
      out.push(await run(limits, state));
      state.onSettled?.(i % 3 !== 2, i % 3 === 2 ? undefined : 200);
      state.onSettled?.(true, 200); // a second call settles nothing
    }
    expect(out).toEqual(Array.from({ length: 6 }, () => ({ sync: true })));
    expect((calls.budgetReserveLocal ?? 0) - (before.budgetReserveLocal ?? 0)).toBe(6);
    expect((calls.budgetSettleLocal ?? 0) - (before.budgetSettleLocal ?? 0)).toBe(6);
    // Only the lease's own reservation was settled by id.
    expect(ids).toHaveLength(1);
    expect(calls.budgetReserveNow ?? 0).toBe(0);
    await real.close();
    const check = await createRedisStore({ url: redis.url, keyPrefix: `${redis.keyPrefix}local:`, timeoutMs: 2_000, logger, limitBlocks: 0 });
    stores.push(check);
    // 1 + 4 committed (two released) of 2 each; nothing left held.
    expect(await check.budgetRead(budgetKey('alice'), 60_000)).toMatchObject({ spent: 10, held: 0 });
  });
});
