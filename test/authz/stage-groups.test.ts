/**
 * How the authorize stage combines its checks' answers: every `all` group must
 * allow every check (the denial names the first denying one), an `any` group
 * needs one allowing check, and groups are read in order. Every combination of
 * answers of an `all` pair and an `any` pair, through the in-process (sync)
 * path and the asynchronous one, with the same outcome and message.
 */

import { describe, expect, it } from 'vitest';
import type { Authorizer, CheckRequest } from '../../src/authz/authorizer.js';
import { createAuthorizeStage } from '../../src/authz/stage.js';
import type { CheckConfig } from '../../src/config/schema.js';
import type { Runtime } from '../../src/core/runtime.js';
import type { RequestState } from '../../src/pipeline/context.js';

const check = (object: string): CheckConfig => ({ user: 'user:{user}', relation: 'can_read', object }) as CheckConfig;
const GROUPS = [
  { mode: 'all' as const, checks: [check('doc:a1'), check('doc:a2')] },
  { mode: 'any' as const, checks: [check('doc:y1'), check('doc:y2')] },
];

function authorizer(allowed: Set<string>, sync: boolean): Authorizer {
  const answer = (rs: CheckRequest[]) => rs.map((r) => allowed.has(r.object));
  const engine = {
    engine: 'embedded',
    check: async (r: CheckRequest) => allowed.has(r.object),
    batchCheck: async (rs: CheckRequest[]) => answer(rs),
    listObjects: async () => [],
    relations: () => new Map(),
    ready: async () => {},
    close: async () => {},
  } as Authorizer;
  return sync ? { ...engine, batchCheckSync: answer } : engine;
}

function state(): RequestState {
  return {
    method: 'GET',
    path: '/x',
    query: '',
    params: {},
    principal: { agent: 'bot', user: 'alice', claims: {} },
    policy: { authorize: GROUPS },
    checks: [],
  } as unknown as RequestState;
}

/** What the stage decided: `allow`, or the denial's message. */
async function outcome(allowed: Set<string>, sync: boolean): Promise<string> {
  const rt = { authorizer: authorizer(allowed, sync), logger: { isLevelEnabled: () => false } } as unknown as Runtime;
  try {
    await createAuthorizeStage(rt).run(state());
    return 'allow';
  } catch (err) {
    return `${(err as { code?: string }).code}: ${(err as Error).message}`;
  }
}

describe('authorize stage: all and any groups', () => {
  it('every combination of answers, sync and async alike', async () => {
    const objects = ['doc:a1', 'doc:a2', 'doc:y1', 'doc:y2'];
    for (let bits = 0; bits < 16; bits++) {
      const allowed = new Set(objects.filter((_, i) => bits & (1 << i)));
      const [a1, a2, y1, y2] = objects.map((o) => allowed.has(o));
      const expected = !a1
        ? 'forbidden: denied: user:alice is not can_read of doc:a1'
        : !a2
          ? 'forbidden: denied: user:alice is not can_read of doc:a2'
          : !(y1 || y2)
            ? 'forbidden: denied: none of 2 alternative checks allowed'
            : 'allow';
      expect(await outcome(allowed, true), [...allowed].join(',')).toBe(expected);
      expect(await outcome(allowed, false), [...allowed].join(',')).toBe(expected);
    }
  });
});
