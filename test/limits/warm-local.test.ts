/**
 * The limits stage's warm path with nothing per request kept in the store: on
 * a Redis local quota block a reservation is held by the stage's own record
 * (budgetReserveLocal / budgetSettleLocal, no id), and keys of only
 * `{agent}`/`{user}` are found without template variables, per caller.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configSchema, type Config } from '../../src/config/schema.js';
import type { Principal } from '../../src/core/principal.js';
import type { Runtime } from '../../src/core/runtime.js';
import { compileLimits, identityKeyOf, storeKey, type LimitSite } from '../../src/limits/compile.js';
import { createLimitsService, type LimitsService } from '../../src/limits/service.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import type { RequestState } from '../../src/pipeline/context.js';
import { newState } from '../../src/pipeline/state.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { createRedisStore } from '../../src/store/redis.js';
import type { Store } from '../../src/store/store.js';
import { compileTemplate } from '../../src/templates/template.js';
import { startRedis, type TestRedis } from '../support/redis.js';

const logger = createLogger({ level: 'silent' });
const budgetKey = (rendered: string) => storeKey('budget', { policy: 'pay' } as LimitSite, rendered);

function config(limits: Record<string, unknown>): Config {
  return configSchema.parse({
    identity: { dev_issuer: true },
    routes: [{ name: 'pay', match: { path: '/pay/:id' }, upstream: { url: 'http://127.0.0.1:9' }, ...limits }],
  });
}

const principalOf = (agent: string, user: string | null): Principal =>
  ({ agent, user, scopes: [], issuer: 'test', claims: { sub: user ?? agent, azp: agent }, actors: [], expiresAt: 2e9 }) as unknown as Principal;

function request(cfg: Config, principal: Principal): RequestState {
  const state = newState({ method: 'GET', target: { path: '/pay/1', segments: ['pay', '1'], query: '' } as never, headers: {}, clientIp: '127.0.0.1' });
  state.route = cfg.routes[0];
  state.params = { id: '1' };
  state.principal = principal;
  return state;
}

async function run(limits: LimitsService, state: RequestState): Promise<{ sync: boolean; error?: string }> {
  let pending: Promise<void> | void;
  try {
    pending = limits.stage(state);
  } catch (err) {
    return { sync: true, error: (err as { code: string }).code };
  }
  if (!pending) return { sync: true };
  try {
    await pending;
    return { sync: false };
  } catch (err) {
    return { sync: false, error: (err as { code: string }).code };
  }
}

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
    const limits = createLimitsService({ config: cfg, store: createMemoryStore(), logger, metrics: createMetrics() } as unknown as Runtime);
    const alice = principalOf('bot', 'alice');
    const bob = principalOf('bot', 'bob');
    const other = principalOf('other', 'alice');
    const machine = principalOf('bot', null);
    const out = [];
    for (const p of [alice, bob, alice, other, bob, machine, machine, principalOf('bot', 'alice')])
      out.push((await run(limits, request(cfg, p))).error ?? 'ok');
    expect(out).toEqual(['ok', 'ok', 'rate_limited', 'ok', 'rate_limited', 'ok', 'rate_limited', 'rate_limited']);
  });
});

describe('limits warm path on Redis: reservations held by the stage, not by id', () => {
  let redis: TestRedis;
  const stores: Store[] = [];
  beforeAll(async () => {
    redis = await startRedis({ local: true });
  });
  afterAll(async () => {
    for (const s of stores) await s.close().catch(() => undefined);
    await redis?.stop();
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
    const first = request(cfg, alice);
    expect((await run(limits, first)).sync).toBe(false); // the lease: Redis is asked
    first.onSettled?.(true, 200);
    const before = { ...calls };
    const out = [];
    // The first lease's block holds 8 reservations (its smallest): the lease's own and these 6.
    for (let i = 0; i < 6; i++) {
      const state = request(cfg, alice);
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
