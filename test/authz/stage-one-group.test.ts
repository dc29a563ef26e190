/**
 * The authorize stage's path for a policy of one group (the usual case: no
 * spans) against its general path: the same policy followed by an empty `any`
 * group (which decides nothing) goes the general way. For every combination of
 * answers, through the in-process engine, the decision-cache peek and the
 * asynchronous check, both must give the same outcome, the same message and
 * the same trace; so must a refused template value and a failing engine.
 */

import { describe, expect, it } from 'vitest';
import type { Authorizer, CheckRequest } from '../../src/authz/authorizer.js';
import { createAuthorizeStage } from '../../src/authz/stage.js';
import type { AuthorizeConfig, CheckConfig } from '../../src/config/schema.js';
import type { Runtime } from '../../src/core/runtime.js';
import type { RequestState } from '../../src/pipeline/context.js';

const check = (object: string): CheckConfig => ({ user: 'user:{user}', relation: 'can_read', object }) as CheckConfig;
const EMPTY_ANY = { mode: 'any', checks: [] } as unknown as AuthorizeConfig;

type Path = 'sync' | 'peek' | 'async';

function authorizer(allowed: Set<string>, path: Path, fail = false): Authorizer {
  const answer = (rs: CheckRequest[]) => {
    if (fail) throw new Error('engine down');
    return rs.map((r) => allowed.has(r.object));
  };
  const engine = {
    engine: 'embedded',
    modelId: 'model-1',
    check: async (r: CheckRequest) => allowed.has(r.object),
    batchCheck: async (rs: CheckRequest[]) => answer(rs),
    listObjects: async () => [],
    relations: () => new Map(),
    ready: async () => {},
    close: async () => {},
  } as unknown as Authorizer;
  if (path === 'sync') return { ...engine, batchCheckSync: answer } as Authorizer;
  if (path === 'peek') return { ...engine, peekBatch: (rs: CheckRequest[]) => answer(rs) } as Authorizer;
  return engine;
}

function state(groups: AuthorizeConfig[], params: Record<string, string> = { id: '7' }): RequestState {
  return {
    method: 'GET',
    path: '/x',
    query: '',
    params,
    principal: { agent: 'bot', user: 'alice', claims: {} },
    policy: { authorize: groups },
    checks: [],
  } as unknown as RequestState;
}

/** What the stage decided (`allow`, or the error's code, reason and message) and the trace it left. */
async function outcome(groups: AuthorizeConfig[], allowed: Set<string>, path: Path, opts: { fail?: boolean; params?: Record<string, string> } = {}) {
  const rt = { authorizer: authorizer(allowed, path, opts.fail), logger: { isLevelEnabled: () => true } } as unknown as Runtime;
  const s = state(groups, opts.params);
  let result: string;
  try {
    const pending = createAuthorizeStage(rt).run(s);
    // The sync engine and a cache peek answer without a promise; only the engine call waits.
    expect(pending instanceof Promise).toBe(path === 'async');
    await pending;
    result = 'allow';
  } catch (err) {
    const e = err as { code?: string; reason?: string; message: string };
    result = `${e.code}/${e.reason}: ${e.message}`;
  }
  return { result, checks: s.checks };
}

const POLICIES: AuthorizeConfig[] = [
  { mode: 'all', checks: [check('doc:{path.id}'), check('doc:b')] } as unknown as AuthorizeConfig,
  { mode: 'any', checks: [check('doc:{path.id}'), check('doc:b')] } as unknown as AuthorizeConfig,
  { mode: 'all', checks: [check('doc:{path.id}')] } as unknown as AuthorizeConfig,
];
const ANSWERS = [new Set<string>(), new Set(['doc:7']), new Set(['doc:b']), new Set(['doc:7', 'doc:b'])];

describe('authorize stage: one group', () => {
  it('decides and traces as the general path does, for every answer, on every engine path', async () => {
    const seen = new Set<string>();
    for (const path of ['sync', 'peek', 'async'] as const)
      for (const group of POLICIES)
        for (const allowed of ANSWERS) {
          const one = await outcome([group], allowed, path);
          const general = await outcome([group, EMPTY_ANY], allowed, path);
          expect(one).toEqual(general);
          expect(one.checks).toHaveLength(group.checks.length);
          expect(one.checks[0]).toEqual({
            user: 'user:alice',
            relation: 'can_read',
            object: 'doc:7',
            allowed: allowed.has('doc:7'),
            engine: 'embedded',
            model: 'model-1',
          });
          seen.add(one.result.split(':')[0]);
        }
    // Both outcomes were exercised.
    expect(seen).toEqual(new Set(['allow', 'forbidden/check_denied']));
  });

  it('a refused template value and a failing engine: the same error and trace as the general path', async () => {
    for (const path of ['sync', 'peek', 'async'] as const) {
      const group = POLICIES[0];
      const refused = await outcome([group], ANSWERS[3], path, { params: { id: 'a:b' } });
      expect(refused).toEqual(await outcome([group, EMPTY_ANY], ANSWERS[3], path, { params: { id: 'a:b' } }));
      expect(refused.result).toMatch(/^forbidden\/template_refused/);
      expect(refused.checks).toEqual([
        { user: 'user:{user}', relation: 'can_read', object: 'doc:{path.id}', allowed: null, engine: 'embedded', error: expect.any(String) },
      ]);
    }
    for (const path of ['sync', 'async'] as const) {
      const failed = await outcome([POLICIES[0]], ANSWERS[3], path, { fail: true });
      expect(failed).toEqual(await outcome([POLICIES[0], EMPTY_ANY], ANSWERS[3], path, { fail: true }));
      expect(failed.result).toMatch(/^authz_unavailable\/authz_error/);
    }
  });

  it('keeps the records earlier stages left in the trace', async () => {
    const earlier = { user: 'agent:bot', relation: 'can_call', object: 'tool:x', allowed: true, engine: 'embedded' };
    for (const group of POLICIES) {
      const rt = { authorizer: authorizer(ANSWERS[3], 'sync'), logger: { isLevelEnabled: () => true } } as unknown as Runtime;
      const s = state([group]);
      s.checks.push(earlier);
      await createAuthorizeStage(rt).run(s);
      expect(s.checks).toHaveLength(1 + group.checks.length);
      expect(s.checks[0]).toBe(earlier);
    }
  });

  it('renders each request from its own values (the compiled renderers keep nothing of the request before)', async () => {
    const group = POLICIES[2];
    for (const id of ['1', '2', '1', 'x-9']) {
      const { result, checks } = await outcome([group], new Set([`doc:${id}`]), 'sync', { params: { id } });
      expect(result).toBe('allow');
      expect(checks[0].object).toBe(`doc:${id}`);
    }
  });
});
