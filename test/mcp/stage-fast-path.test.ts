/**
 * The MCP stage's fast paths (#17): a POST body the body stage already parsed
 * strictly (`state.json`) is checked as parsed, not decoded and parsed again;
 * a tools/call whose tool is pinned and remembered is decided without a
 * promise. Each must decide exactly as the general path does: same refusals,
 * same forwarded body, same policy, same MCP details.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createAuthorizer } from '../../src/authz/create.js';
import type { CachedAuthorizer } from '../../src/authz/cache.js';
import { parseConfig } from '../../src/config/load.js';
import { WardenError } from '../../src/core/errors.js';
import type { Runtime } from '../../src/core/runtime.js';
import { parseStrictJson, StrictJsonError } from '../../src/http/strict-json.js';
import { createToolPins } from '../../src/mcp/pinning.js';
import { createMcpStage } from '../../src/mcp/stage.js';
import { canonicalize } from '../../src/pipeline/canonical.js';
import type { RequestState } from '../../src/pipeline/context.js';
import type { Stage } from '../../src/pipeline/stage.js';
import { newState } from '../../src/pipeline/state.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createMemoryStore } from '../../src/store/memory.js';
import type { Store } from '../../src/store/store.js';
import { devPolicyYaml } from '../support/config.js';

const CONFIG = `
server: { listen: "127.0.0.1:0" }
${devPolicyYaml('test/mcp/fixtures')}
routes:
  - name: files
    match: { path: /mcp }
    upstream: { url: "http://127.0.0.1:9/mcp" }
    authorize: []
    mcp:
      tools:
        read_file:
          authorize: [{ user: "user:{user}", relation: can_read, object: "file:{args.path}" }]
        write_file:
          approval: { message: "Write {args.path}" }
`;

let store: Store;
let authorizer: CachedAuthorizer;
let stage: Stage;
let rt: Runtime;

beforeAll(async () => {
  const { config } = parseConfig(CONFIG, { baseDir: process.cwd() });
  const logger = createLogger({ level: 'silent' });
  const metrics = createMetrics();
  store = createMemoryStore();
  authorizer = await createAuthorizer(config.authz, { baseDir: process.cwd(), logger, metrics });
  rt = { config, store, authorizer, logger, metrics, publicUrl: 'http://127.0.0.1:0', dataDir: '.', authenticator: null as never, sessions: null as never };
  // Both tools listed once (as a tools/list through Warden would pin them).
  await createToolPins(store).observe('files', [{ name: 'read_file', description: 'Read a file' }, { name: 'write_file' }]);
  stage = await createMcpStage(rt);
});

afterAll(async () => {
  await stage?.close?.();
  await authorizer?.close();
  await store?.close();
});

function post(body: Buffer, headers: Record<string, string> = {}): RequestState {
  const state = newState({ method: 'POST', target: canonicalize('/mcp'), headers: { 'content-type': 'application/json', ...headers }, clientIp: '127.0.0.1' });
  state.route = rt.config.routes[0];
  // What matching gives this route's request (match.ts): fresh policy arrays the stage adds the tool's rule to.
  state.policy = { authorize: [], approval: [] };
  state.principal = { issuer: 'https://issuer.test', agent: 'assistant', user: 'alice', claims: {} } as never;
  state.body = body;
  return state;
}

/** What the stage decided: the error it refused with, or what it left on the request. */
interface Outcome {
  error?: string;
  sync?: boolean;
  body?: string;
  json?: unknown;
  mcp?: unknown;
  policy?: unknown;
  hooks?: [boolean, boolean];
}

async function outcome(state: RequestState): Promise<Outcome> {
  let pending: Promise<void> | void;
  let sync = true;
  try {
    pending = stage.run(state);
    if (pending) {
      sync = false;
      await pending;
    }
  } catch (err) {
    if (!(err instanceof WardenError)) throw err;
    return { error: `${err.code}/${err.reason}: ${err.message}` };
  }
  return {
    sync,
    body: state.body?.toString('utf8'),
    json: state.json,
    mcp: state.mcp,
    policy: state.policy,
    hooks: [typeof state.responseHead === 'function', typeof state.responseHook === 'function'],
  };
}

/** The fast path: the body as the body stage leaves it (parsed strictly into state.json). */
function fast(body: Buffer, headers?: Record<string, string>): RequestState {
  const state = post(body, headers);
  state.json = parseStrictJson(body);
  return state;
}

const CALL = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'read_file', arguments: { path: 'a.txt' } } }));

describe('MCP stage warm path', () => {
  it('decides a tools/call of a pinned, remembered tool without a promise, as the first call did with one', async () => {
    // A fresh stage remembers nothing: the first call reads the pin from the store.
    const fresh = await createMcpStage(rt);
    try {
      const first = fresh.run(fast(CALL));
      expect(first).toBeInstanceOf(Promise);
      await first;
      const state = fast(CALL);
      expect(fresh.run(state)).toBeUndefined();
      expect(state.mcp).toMatchObject({ method: 'tools/call', id: 7, tool: 'read_file', args: { path: 'a.txt' }, batch: false, requestIds: [7] });
      expect(state.policy.authorize).toEqual([{ mode: 'all', checks: [{ user: 'user:{user}', relation: 'can_read', object: 'file:{args.path}' }] }]);
      expect(typeof state.responseHook).toBe('function');
    } finally {
      await fresh.close?.();
    }
  });

  it('still waits for the store when a session is presented or the tool is not pinned', async () => {
    await outcome(fast(CALL)); // read_file remembered
    const withSession = stage.run(fast(CALL, { 'mcp-session-id': 'abc' }));
    expect(withSession).toBeInstanceOf(Promise);
    await expect(withSession).rejects.toMatchObject({ code: 'not_found', reason: 'unknown_session' });
    const unpinned = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'never_listed' } }));
    // never_listed has no rule: refused synchronously, before any pin lookup.
    expect(await outcome(fast(unpinned))).toMatchObject({ error: expect.stringMatching(/^forbidden\/tool_not_allowed/) });
  });

  it('refuses a changed definition on the warm path too (a blocked tool is never remembered)', async () => {
    const pins = createToolPins(store);
    await pins.observe('files', [{ name: 'write_file', description: 'now deletes files too' }]);
    const call = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'write_file', arguments: {} } }));
    for (let i = 0; i < 2; i++) expect(await outcome(fast(call))).toMatchObject({ error: expect.stringMatching(/^forbidden\/tool_definition_changed/) });
    await pins.accept('files', 'write_file');
  });
});

// Random JSON-RPC bodies: valid and invalid messages, single or batched, in varied spellings.
const id = fc.oneof(fc.integer({ min: -5, max: 5 }), fc.constantFrom('a', '1', '02', '', 'x'.repeat(257)), fc.constantFrom(1.5, null, true, {}, [1], 2 ** 60));
const method = fc.oneof(
  fc.constantFrom('tools/call', 'tools/list', 'ping', 'initialize', 'notifications/initialized', 'notifications/cancelled', ''),
  fc.constant(5),
);
const args = fc.oneof(
  fc.dictionary(fc.constantFrom('path', 'id', '__proto__', 'x'), fc.oneof(fc.string(), fc.integer(), fc.constant(null))),
  fc.constant([1]),
  fc.constant('a'),
);
const params = fc.oneof(
  fc.record({ name: fc.constantFrom('read_file', 'write_file', 'other', '', 3), arguments: args }, { requiredKeys: ['name'] }),
  fc.constantFrom([], 3, 'p', null),
);
const message = fc.record(
  {
    jsonrpc: fc.constantFrom('2.0', '2.0', '2.0', '1.0', 2),
    id,
    method,
    params,
    result: fc.constantFrom({}, { tools: [] }, 1),
    error: fc.constant({ code: -1, message: 'e' }),
  },
  { requiredKeys: [] },
);
const json = fc.oneof(
  { weight: 4, arbitrary: message },
  { weight: 3, arbitrary: fc.array(message, { minLength: 0, maxLength: 4 }) },
  {
    weight: 1,
    arbitrary: fc.constantFrom(
      42,
      'x',
      null,
      [3],
      Array.from({ length: 65 }, (_, i) => ({ jsonrpc: '2.0', id: i, method: 'ping' })),
    ),
  },
);
const spelling = fc.constantFrom(
  (v: unknown) => JSON.stringify(v),
  (v: unknown) => JSON.stringify(v, null, 2),
  // Escaped spellings (the same value, other bytes): what is forwarded is the parse, re-serialized.
  (v: unknown) =>
    JSON.stringify(v).replace(/"(tools\/call|read_file|jsonrpc)"/g, (s) => s.replace(/[a-z]/, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)),
);

describe('MCP stage fast path (state.json) agrees with the general path (parse the bytes)', () => {
  it('on random JSON-RPC bodies: same refusal, or the same forwarded body, JSON, MCP details, policy and hooks', async () => {
    await outcome(fast(CALL)); // the warm path is exercised too
    await fc.assert(
      fc.asyncProperty(json, spelling, async (value, spell) => {
        const body = Buffer.from(spell(value));
        const general = await outcome(post(body));
        let strict: RequestState;
        try {
          strict = fast(body);
        } catch (err) {
          // The body stage refuses it (a 64-bit integer id, say): the MCP stage never sees it. Parsing the bytes refuses it too.
          expect(err).toBeInstanceOf(StrictJsonError);
          expect(general.error).toMatch(/^bad_request\//);
          return;
        }
        const quick = await outcome(strict);
        delete general.sync;
        delete quick.sync;
        expect(quick).toEqual(general);
      }),
      { numRuns: 500 },
    );
  });
});
