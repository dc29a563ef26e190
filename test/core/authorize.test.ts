/**
 * The authorize stage through the whole pipeline: object ids come from the
 * canonical request only, refused template values never build a check, and a
 * denied request never reaches the upstream (BOLA).
 */

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { type WardenHandle, startWardenWithUpstream, closeAll } from '../support/gateway.js';
import type { Upstream } from '../support/upstream.js';
import { rawRequest } from '../support/raw-http.js';
import { devPolicyYaml } from '../support/config.js';

let upstream: Upstream;
let warden: WardenHandle;
let alice: string;

const config = (up: string) => `
server:
  limits: { body_bytes: 1048576 }
${devPolicyYaml('test/core/fixtures')}
routes:
  - name: docs
    match: { path: /docs/:doc, methods: [GET, PUT] }
    upstream: { url: "${up}" }
    authorize:
      - { user: "user:{user}", relation: can_read, object: "doc:{path.doc}" }
  - name: docs-any
    match: { path: /either/:doc }
    upstream: { url: "${up}" }
    authorize:
      any:
        - { user: "user:{user}", relation: can_write, object: "doc:{path.doc}" }
        - { user: "user:{user}", relation: can_read, object: "doc:public" }
  - name: by-body
    match: { path: /move, methods: [POST] }
    upstream: { url: "${up}" }
    authorize:
      - { user: "user:{user}", relation: can_write, object: "doc:{body.doc}" }
  - name: by-query
    match: { path: /search }
    upstream: { url: "${up}" }
    authorize:
      - { user: "user:{user}", relation: can_read, object: "doc:{query.doc}" }
  - name: contextual
    match: { path: /ctx/:doc }
    upstream: { url: "${up}" }
    authorize:
      - user: "user:{user}"
        relation: can_read
        object: "doc:{path.doc}"
        contextual_tuples:
          - { user: "user:{user}", relation: viewer, object: "doc:{path.doc}" }
`;

beforeAll(async () => {
  ({ warden, upstream } = await startWardenWithUpstream(config));
  alice = await warden.token('demo-agent', 'alice');
});
afterAll(() => closeAll(warden, upstream));
beforeEach(() => {
  upstream.requests.length = 0;
});

const get = (path: string, token = alice, init: RequestInit = {}) =>
  fetch(`${warden.url}${path}`, { ...init, headers: { authorization: `Bearer ${token}`, ...(init.headers ?? {}) } });

describe('object-level authorization (BOLA)', () => {
  it('allows the object the user has and forwards exactly that path', async () => {
    const res = await get('/docs/1');
    expect(res.status).toBe(200);
    expect(upstream.requests.map((r) => r.url)).toEqual(['/docs/1']);
  });

  it('refuses another user’s object, naming the failed check', async () => {
    const res = await get('/docs/2');
    expect(res.status).toBe(403);
    const body = (await res.json()) as { code: string; detail: string };
    expect(body.code).toBe('forbidden');
    expect(body.detail).toBe('denied: user:alice is not can_read of doc:2');
    expect(upstream.requests).toHaveLength(0);
  });

  it.each([
    ['/docs/1/../2', 'dot segments'],
    ['/docs/%32', 'percent-encoded id'],
    ['/docs//2', 'repeated slash'],
    ['/docs/./2', 'single dot'],
  ])('refuses the other object reached through %s (%s)', async (path) => {
    const res = await get(path);
    expect(res.status).toBe(403);
    expect(upstream.requests).toHaveLength(0);
  });

  it('refuses encodings that could make the upstream see a different object', async () => {
    for (const path of ['/docs/1%2f..%2f2', '/docs/1%252f2', '/docs/1;2', '/docs/1%5c2']) {
      const r = await rawRequest(warden.url, `GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${alice}\r\n\r\n`);
      expect(r.status, path).toBe(400);
    }
    expect(upstream.requests).toHaveLength(0);
  });

  it('does not match a differently-cased route (no case folding into another object)', async () => {
    expect((await get('/DOCS/1')).status).toBe(404);
    expect(upstream.requests).toHaveLength(0);
  });

  it.each([
    ['/docs/1:x', 'colon'],
    ['/docs/1%23owner', 'hash'],
    ['/docs/a%20b', 'whitespace'],
  ])('refuses a template value that would change the OpenFGA id (%s)', async (path) => {
    const res = await get(path);
    expect(res.status).toBe(403);
    const body = (await res.json()) as { detail: string };
    expect(body.detail).toMatch(/template value \{path\.doc\}/);
    expect(upstream.requests).toHaveLength(0);
    const last = warden.audits().at(-1)!;
    expect(last.reason).toBe('template_refused');
  });
});

describe('check composition and inputs', () => {
  it('any: one allowing alternative is enough', async () => {
    const bob = await warden.token('demo-agent', 'bob');
    expect((await get('/either/2', bob)).status).toBe(200); // bob owns doc:2
    expect((await get('/either/1', bob)).status).toBe(200); // via doc:public wildcard viewer
  });

  it('takes ids from the JSON body, and refuses bodies that would alter the id', async () => {
    const post = (body: unknown) => get('/move', alice, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    expect((await post({ doc: '1' })).status).toBe(200);
    expect((await post({ doc: '2' })).status).toBe(403);
    expect((await post({ doc: '1#viewer' })).status).toBe(403);
    expect((await post({ doc: ['1', '2'] })).status).toBe(403);
    expect((await post({})).status).toBe(403);
    const res = await get('/move', alice, { method: 'POST', body: '{not json', headers: { 'content-type': 'application/json' } });
    expect(res.status).toBe(400);
    expect(upstream.requests).toHaveLength(1);
    expect(JSON.parse(upstream.requests[0].body.toString())).toEqual({ doc: '1' });
  });

  it('a body a rule must read is bounded: declared or chunked, over the limit is 413 and never forwarded', async () => {
    const before = upstream.requests.length;
    const big = JSON.stringify({ doc: '1', pad: 'x'.repeat(2 * 1024 * 1024) }); // over the default 1 MiB
    const declared = await get('/move', alice, { method: 'POST', body: big, headers: { 'content-type': 'application/json' } });
    expect(declared.status).toBe(413);
    // Chunked: no length up front, so the limit is found while reading.
    const host = new URL(warden.url).host;
    const head = `POST /move HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${alice}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`;
    const chunk = 'x'.repeat(256 * 1024);
    let body = '';
    for (let i = 0; i < 6; i++) body += `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
    const chunked = await rawRequest(warden.url, head + body + '0\r\n\r\n', 5_000);
    expect(chunked.status).toBe(413);
    expect(chunked.text).toMatch(/\r\nconnection: close\r\n/i);
    expect(upstream.requests.length).toBe(before);
  });

  it('takes ids from the query, refusing repeated parameters', async () => {
    expect((await get('/search?doc=1')).status).toBe(200);
    expect((await get('/search?doc=2')).status).toBe(403);
    expect((await get('/search?doc=1&doc=2')).status).toBe(400); // ambiguous query: refused before authorization (#12 A.5)
    expect(upstream.requests.map((r) => r.url)).toEqual(['/search?doc=1']);
  });

  it('sends contextual tuples with the check', async () => {
    const carol = await warden.token('demo-agent', 'carol');
    expect((await get('/ctx/2', carol)).status).toBe(200);
    expect((await get('/docs/2', carol)).status).toBe(403);
  });

  it('a machine token (no user) cannot satisfy a user check', async () => {
    const machine = await warden.token('demo-agent', null);
    const res = await get('/docs/1', machine);
    expect(res.status).toBe(403);
    expect(upstream.requests).toHaveLength(0);
  });
});
