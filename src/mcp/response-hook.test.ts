/**
 * The response hook's fast path for a tools/call answer (#17): the upstream's
 * headers are handed on as they are only when they already describe the
 * bytes sent; and the tools/list rewriter is not built for an answer that
 * has nothing to filter (the MCP stage builds it on first use).
 */

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { RequestState } from '../pipeline/context.js';
import type { HookedResponse } from '../proxy/forward.js';
import { createToolsListRewriter, type ToolsListRewriter } from './list-filter.js';
import { createMcpResponseHook, essenceOf, mediaTypeEssence } from './response-hook.js';
import type { SessionBindings } from './sessions.js';

const BODY = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'hi' }] } }));

function hook(rewriter: () => ToolsListRewriter) {
  let built = 0;
  const h = createMcpResponseHook({
    routeName: 'files',
    state: { method: 'POST' } as RequestState,
    sessions: {} as SessionBindings,
    buildRewriter: () => {
      built++;
      return rewriter();
    },
    maxBytes: 1 << 20,
    expectsMessages: true,
    expectsLists: false,
  });
  return { h, built: () => built };
}

const plain = () => createToolsListRewriter(new Set(), async (tools) => [...tools]);

function run(h: ReturnType<typeof hook>['h'], headers: Record<string, string | string[]>, body: Buffer): HookedResponse {
  const out = h({ statusCode: 200, headers, body });
  if (out instanceof Promise) throw new Error('a tools/call answer is handed on without a promise');
  return out;
}

describe('MCP response hook: a tools/call answer', () => {
  it('keeps the upstream headers object when it already says what is sent', () => {
    const headers = { 'content-type': 'application/json', 'content-length': String(BODY.length) };
    const { h, built } = hook(plain);
    const out = run(h, headers, BODY);
    expect(out.body).toBe(BODY);
    expect(out.headers).toBe(headers);
    expect(built()).toBe(0);
  });

  it.each([
    ['no Content-Length (a chunked upstream)', { 'content-type': 'application/json' }],
    ['a wrong Content-Length', { 'content-type': 'application/json', 'content-length': '3' }],
    ['two Content-Lengths', { 'content-type': 'application/json', 'content-length': [String(BODY.length), String(BODY.length)] }],
    ['Content-Encoding: identity', { 'content-type': 'application/json', 'content-length': String(BODY.length), 'content-encoding': 'identity' }],
  ])('sets Content-Length (and drops Content-Encoding) with %s', (_what, headers: Record<string, string | string[]>) => {
    const { h } = hook(plain);
    const out = run(h, headers, BODY);
    expect(out.body).toBe(BODY);
    expect(out.headers).toEqual({ 'content-type': 'application/json', 'content-length': String(BODY.length) });
  });

  it('builds the tools/list rewriter only for an answer it must read as messages', async () => {
    const { h, built } = hook(plain);
    run(h, { 'content-type': 'application/json' }, BODY);
    expect(built()).toBe(0);
    // A tools list in a tools/call answer is still filtered: the rewriter is built then.
    const smuggled = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { tools: [] } }));
    await h({ statusCode: 200, headers: { 'content-type': 'application/json' }, body: smuggled });
    expect(built()).toBe(1);
    // Built once per request, however many answers read it.
    await h({ statusCode: 200, headers: { 'content-type': 'application/json' }, body: smuggled });
    expect(built()).toBe(1);
  });
});

describe('mediaTypeEssence (remembers the last Content-Type it read)', () => {
  it('answers as it would fresh, for any sequence of values, repeats included', () => {
    const value = fc.constantFrom(
      'application/json',
      'Application/JSON; charset=utf-8',
      'text/event-stream',
      'application/json, text/html',
      'application/json; a=b, c',
      'text/html',
      '',
      ' application/json ',
      'application/',
    );
    fc.assert(
      fc.property(fc.array(value, { minLength: 1, maxLength: 12 }), (values) => {
        for (const v of values) expect(mediaTypeEssence(v), v).toBe(essenceOf(v));
      }),
      { numRuns: 500 },
    );
    expect(mediaTypeEssence(undefined)).toBeUndefined();
    expect(mediaTypeEssence('Application/JSON; charset=utf-8')).toBe('application/json');
  });
});
