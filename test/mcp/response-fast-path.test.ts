/**
 * The MCP response hook's fast path (#17): a whole JSON answer to a request
 * that asked no tools/list, and that no spelling of a `tools` key appears in,
 * reaches the agent as the upstream's bytes (no parse into a message, no
 * re-serialization, no promise). Everything else takes the general path
 * (parse, filter tools lists, re-serialize). The two must agree: same refusal
 * or the same value for the agent, and never a tools list the general path
 * would have filtered.
 */

import { isUtf8 } from 'node:buffer';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { WardenError } from '../../src/core/errors.js';
import type { RequestState } from '../../src/pipeline/context.js';
import type { HookedResponse } from '../../src/proxy/forward.js';
import { createToolsListRewriter } from '../../src/mcp/list-filter.js';
import { createMcpResponseHook, passesUnchanged } from '../../src/mcp/response-hook.js';
import type { SessionBindings } from '../../src/mcp/sessions.js';

/** The tool every filter here hides: if its name reaches the agent where the general path removed it, a list got through. */
const SECRET = 'secret_tool';

/** A hook as the MCP stage builds it; `expectsLists: true` forces the general path for the same answer. */
function hook(expectsLists: boolean, filtered: unknown[][] = []) {
  const rewriter = createToolsListRewriter(new Set(), async (tools) => {
    filtered.push([...tools]);
    return tools.filter((t) => (t as { name?: unknown }).name !== SECRET);
  });
  return createMcpResponseHook({
    routeName: 'files',
    state: { method: 'POST' } as RequestState,
    sessions: {} as SessionBindings,
    rewriter,
    maxBytes: 1 << 20,
    expectsMessages: true,
    expectsLists,
  });
}

function answer(body: Buffer) {
  return { statusCode: 200, headers: { 'content-type': 'application/json', 'content-length': String(body.length), server: 'up' }, body };
}

type Outcome = { error: string } | { status: number; headers: Record<string, string | string[]>; body: Buffer; sync: boolean };

async function run(h: ReturnType<typeof hook>, raw: Buffer): Promise<Outcome> {
  try {
    const out = h(answer(raw));
    const sync = !(out instanceof Promise);
    const res: HookedResponse = await out;
    if (!Buffer.isBuffer(res.body)) throw new Error('a JSON answer must come back whole');
    return { status: res.statusCode, headers: res.headers, body: res.body, sync };
  } catch (err) {
    if (!(err instanceof WardenError)) throw err;
    return { error: `${err.code}/${err.reason}` };
  }
}

const CALL_ANSWER = Buffer.from(
  JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'hello "world"\n\\ é 😀' }], isError: false } }),
);

describe('passesUnchanged', () => {
  it('passes a plain tools/call answer', () => {
    expect(passesUnchanged(CALL_ANSWER)).toBe(true);
    expect(passesUnchanged(Buffer.from('  {"jsonrpc":"2.0","id":"a","result":{}}\n'))).toBe(true);
  });

  it.each([
    ['a tools key', '{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}'],
    ['a tools key spelled with an escape', '{"jsonrpc":"2.0","id":1,"result":{"t\\u006fols":[]}}'],
    ['any \\u escape', '{"jsonrpc":"2.0","id":1,"result":{"text":"\\u00e9"}}'],
    ['a tools list hidden behind a duplicate key', '{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"x"}]},"result":{}}'],
    ['a byte order mark', '\ufeff{"jsonrpc":"2.0","id":1,"result":{}}'],
    ['text that is not JSON', '{"jsonrpc":"2.0","id":1,'],
  ])('sends %s to the general path', (_what, text) => {
    expect(passesUnchanged(Buffer.from(text))).toBe(false);
  });

  it('sends invalid UTF-8 to the general path (it is decoded with replacement characters there)', () => {
    expect(passesUnchanged(Buffer.concat([Buffer.from('{"jsonrpc":"2.0","id":1,"result":{"text":"'), Buffer.from([0xff]), Buffer.from('"}}')]))).toBe(false);
  });
});

describe('MCP response hook fast path', () => {
  it('hands a tools/call answer on as the upstream bytes, without a promise', async () => {
    const out = await run(hook(false), CALL_ANSWER);
    expect(out).toMatchObject({ status: 200, sync: true });
    if ('error' in out) throw new Error(out.error);
    expect(out.body).toBe(CALL_ANSWER); // the very Buffer the proxy read
    expect(out.headers).toEqual({ 'content-type': 'application/json', 'content-length': String(CALL_ANSWER.length), server: 'up' });
  });

  it('still filters a tools list in an answer to a tools/call (a hostile upstream), and still refuses non-JSON', async () => {
    const filtered: unknown[][] = [];
    const smuggled = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { tools: [{ name: SECRET }, { name: 'ok' }] } }));
    const out = await run(hook(false, filtered), smuggled);
    if ('error' in out) throw new Error(out.error);
    expect(JSON.parse(out.body.toString('utf8'))).toEqual({ jsonrpc: '2.0', id: 1, result: { tools: [{ name: 'ok' }] } });
    expect(filtered).toHaveLength(1);
    expect(await run(hook(false), Buffer.from('not json'))).toEqual({ error: 'upstream_unavailable/upstream_bad_json' });
  });

  it('takes the general path when the request asked a tools/list', async () => {
    const out = await run(hook(true), CALL_ANSWER);
    if ('error' in out) throw new Error(out.error);
    expect(out.body).not.toBe(CALL_ANSWER);
    expect(out.body.equals(Buffer.from(JSON.stringify(JSON.parse(CALL_ANSWER.toString('utf8')))))).toBe(true);
  });
});

// Random answers: JSON-RPC responses with and without tools lists, in spellings a hostile upstream could use.
const tool = fc.oneof(fc.constant({ name: SECRET }), fc.record({ name: fc.constantFrom('read_file', 'ok'), description: fc.string() }));
const result = fc.oneof(
  fc.record({ content: fc.array(fc.record({ type: fc.constant('text'), text: fc.string({ unit: 'binary' }) }), { maxLength: 2 }), isError: fc.boolean() }),
  fc.record({ tools: fc.array(tool, { maxLength: 3 }) }),
  fc.record({ nested: fc.record({ tools: fc.array(tool, { maxLength: 2 }) }) }),
  fc.constantFrom({}, [], 'tools', { text: `mentions ${SECRET}` }),
);
const message = fc.record(
  { jsonrpc: fc.constant('2.0'), id: fc.oneof(fc.integer(), fc.constantFrom('1', 'x', null)), result, error: fc.constant({ code: -1, message: 'e' }) },
  { requiredKeys: ['jsonrpc'] },
);
const value = fc.oneof({ weight: 4, arbitrary: message }, { weight: 1, arbitrary: fc.array(message, { maxLength: 3 }) });
const spelling = fc.constantFrom<(v: unknown) => string>(
  (v) => JSON.stringify(v),
  (v) => JSON.stringify(v, null, 1),
  // The tools key (or any key) with an escaped letter.
  (v) => JSON.stringify(v).replace(/"(tools|result|name)":/g, (_s, k: string) => `"\\u${k.charCodeAt(0).toString(16).padStart(4, '0')}${k.slice(1)}":`),
  // A duplicate result before the real one: JSON.parse keeps the last, a first-wins client the first.
  (v) => JSON.stringify(v).replace(/^\{/, `{"result":{"tools":[{"name":"${SECRET}"}]},`),
  (v) => '\ufeff' + JSON.stringify(v),
  (v) => JSON.stringify(v).slice(0, -1),
);
const bytes = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(value, spelling).map(([v, spell]) => Buffer.from(spell(v), 'utf8')) },
  // Invalid UTF-8 somewhere.
  {
    weight: 1,
    arbitrary: fc.tuple(value, fc.nat()).map(([v, at]) => {
      const b = Buffer.from(JSON.stringify(v), 'utf8');
      const i = at % b.length;
      return Buffer.concat([b.subarray(0, i), Buffer.from([0xc3]), b.subarray(i)]);
    }),
  },
);

describe('MCP response hook fast path agrees with the general path', () => {
  it('on random answers: the same refusal, or the same value for the agent, and never a list the general path filtered', async () => {
    await fc.assert(
      fc.asyncProperty(bytes, async (raw) => {
        const general = await run(hook(true), raw);
        const quick = await run(hook(false), raw);
        if ('error' in general || 'error' in quick) {
          expect(quick).toEqual(general);
          return;
        }
        expect(quick.status).toBe(general.status);
        expect({ ...quick.headers, 'content-length': '' }).toEqual({ ...general.headers, 'content-length': '' });
        expect(quick.headers['content-length']).toBe(String(quick.body.length));
        // What a strict UTF-8 client reads, too (the general path always sends valid UTF-8).
        expect(isUtf8(quick.body)).toBe(isUtf8(general.body));
        const quickText = quick.body.toString('utf8');
        const generalText = general.body.toString('utf8');
        expect(JSON.parse(quickText)).toEqual(JSON.parse(generalText));
        // A tools list the general path filtered (or dropped as a duplicate) must not reach the agent by any reading.
        expect(quickText.includes(SECRET)).toBe(generalText.includes(SECRET));
        // Off the fast path the bytes are the general path's, exactly.
        if (quick.body !== raw) expect(quickText).toBe(generalText);
      }),
      { numRuns: 1000 },
    );
  });
});

// SSE answers (a GET stream, or a POST answered as a stream): each message event's data goes through the
// rewriter unless no tools/list was asked and no spelling of a `tools` key is in it (then unparsed, as is).

/** A hook as the MCP stage builds it for a GET stream: its rewriter built on first use (`built` counts it). */
function sseHook(expectsLists: boolean, filtered: unknown[][] = [], built = { count: 0 }) {
  const buildRewriter = () => {
    built.count++;
    return createToolsListRewriter(new Set(), async (tools) => {
      filtered.push([...tools]);
      return tools.filter((t) => (t as { name?: unknown }).name !== SECRET);
    });
  };
  return createMcpResponseHook({
    routeName: 'files',
    state: { method: 'GET' } as RequestState,
    sessions: {} as SessionBindings,
    buildRewriter,
    maxBytes: 1 << 20,
    expectsMessages: true,
    expectsLists,
  });
}

/** The text the agent gets for an SSE answer `text`, or the refusal. */
async function runSse(h: ReturnType<typeof sseHook>, text: string): Promise<string> {
  const res = await h({ statusCode: 200, headers: { 'content-type': 'text/event-stream' }, body: Readable.from([Buffer.from(text, 'utf8')]) });
  if (Buffer.isBuffer(res.body)) throw new Error('an SSE answer must stream');
  const chunks: Buffer[] = [];
  for await (const c of res.body) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks).toString('utf8');
}

/** One event carrying `data` (its lines each a data line), with an id. */
const event = (id: number, data: string) =>
  `id: ${id}\n${data
    .split('\n')
    .map((l) => `data: ${l}\n`)
    .join('')}\n`;

describe('MCP SSE fast path', () => {
  it('passes notifications on as parsed, without reading them as messages', async () => {
    const built = { count: 0 };
    // A quoted "tools" inside a string value is escaped (\"tools\"): not the spelling of a key.
    const note = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'the "tools" word' } });
    const progress = JSON.stringify({ jsonrpc: '2.0', method: 'notifications/progress', params: { progress: 1 } });
    const out = await runSse(sseHook(false, [], built), ':\n\n' + event(1, progress) + event(2, note) + event(3, 'not json'));
    expect(out).toBe(':\n' + event(1, progress) + event(2, note) + event(3, 'not json'));
    // No message was read: the rewriter was never built.
    expect(built.count).toBe(0);
    // The general path (a tools/list asked) reads them and finds nothing to change: the same text.
    const general = { count: 0 };
    expect(await runSse(sseHook(true, [], general), ':\n\n' + event(1, progress) + event(2, note) + event(3, 'not json'))).toBe(out);
    expect(general.count).toBe(1);
  });

  it('still filters a tools list on a stream that asked none, spelled plainly or with an escape', async () => {
    const filtered: unknown[][] = [];
    const plainList = JSON.stringify({ jsonrpc: '2.0', id: 7, result: { tools: [{ name: SECRET }, { name: 'ok' }] } });
    const escaped = plainList.replace('"tools"', '"t\\u006fols"');
    const out = await runSse(sseHook(false, filtered), event(1, plainList) + event(2, escaped));
    expect(out).not.toContain(SECRET);
    expect(filtered).toHaveLength(2);
  });
});

describe('MCP SSE fast path agrees with the general path', () => {
  it('on random streams of random messages: the very same text for the agent, never a list the general path filtered', async () => {
    const events = fc.array(fc.tuple(value, spelling), { minLength: 1, maxLength: 3 });
    await fc.assert(
      fc.asyncProperty(events, async (list) => {
        const text = list.map(([v, spell], i) => event(i + 1, spell(v).replace(/^\ufeff/, ''))).join('');
        const general = await runSse(sseHook(true), text);
        const quick = await runSse(sseHook(false), text);
        expect(quick).toBe(general);
      }),
      { numRuns: 500 },
    );
  });
});
