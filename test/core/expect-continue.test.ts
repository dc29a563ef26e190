/**
 * `Expect: 100-continue`, end to end. curl sends it with every body over
 * 1 MiB (and other clients with uploads): Warden used to forward the header,
 * which undici refuses, so each such upload got a 502. Warden now meets the
 * expectation itself and asks for the body only once the checks that need
 * just the head have passed (src/http/continue.ts).
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { request, type IncomingMessage } from 'node:http';
import { startWardenWithUpstream, closeAll, type WardenHandle } from '../support/gateway.js';
import type { Upstream } from '../support/upstream.js';
import { devPolicyYaml, publicRouteYaml } from '../support/config.js';

const config = (up: string) => `
server:
  listen: 127.0.0.1:0
  limits: { body_bytes: 4MiB }
${devPolicyYaml('test/core/fixtures')}
routes:
${publicRouteYaml(up)}
  # Authorized on the path: refused or allowed before the body is read; the body streams upstream.
  - name: by-path
    match: { path: /files/:doc, methods: [POST] }
    upstream: { url: "${up}" }
    authorize: [{ user: "user:{user}", relation: can_write, object: "doc:{path.doc}" }]
  # Authorized on the body: the body stage reads it first.
  - name: by-body
    match: { path: /docs, methods: [POST] }
    upstream: { url: "${up}" }
    authorize: [{ user: "user:{user}", relation: can_write, object: "doc:{body.doc}" }]
`;

let warden: WardenHandle;
let upstream: Upstream;

beforeAll(async () => {
  ({ warden, upstream } = await startWardenWithUpstream(config));
});
afterAll(() => closeAll(warden, upstream));

interface Answer {
  status: number;
  text: string;
  /** Whether Warden sent `100 Continue` (and so the body was sent). */
  continued: boolean;
}

/** A request that sends `Expect: 100-continue` and its body only after `100 Continue`, as curl does. */
function expecting(path: string, body: Buffer, headers: Record<string, string> = {}, method = 'POST'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    let continued = false;
    const req = request(`${warden.url}${path}`, {
      method,
      agent: false,
      headers: { expect: '100-continue', 'content-length': String(body.length), ...headers },
    });
    req.on('continue', () => {
      continued = true;
      req.end(body);
    });
    req.on('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8'), continued });
        req.destroy();
      });
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

/** Raw bytes to Warden; everything it sends back until it closes the connection. */
function raw(bytes: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const url = new URL(warden.url);
    const socket = connect(Number(url.port), url.hostname);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
    socket.write(bytes);
  });
}

/** A body with every byte value, so a lost or changed byte shows. */
function bodyOf(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}

describe('Expect: 100-continue', () => {
  it('streams a 3 MB upload on a public route after 100 Continue, and never forwards the expectation', async () => {
    const body = bodyOf(3 * 1024 * 1024);
    const before = upstream.requests.length;
    const res = await expecting('/public/upload', body, { 'content-type': 'application/octet-stream' });
    expect(res.status).toBe(200);
    expect(res.continued).toBe(true);
    const got = upstream.requests.slice(before);
    expect(got).toHaveLength(1);
    expect(got[0].body.equals(body)).toBe(true);
    expect(got[0].headers.expect).toBeUndefined();
  });

  it('sends 100 Continue once the head passed its checks: a body authorized on the path, and one the body stage reads', async () => {
    const alice = await warden.token('agent-a', 'alice');
    const before = upstream.requests.length;
    const streamed = await expecting('/files/1', bodyOf(100_000), { authorization: `Bearer ${alice}`, 'content-type': 'application/octet-stream' });
    expect(streamed).toMatchObject({ status: 200, continued: true });
    const json = Buffer.from(JSON.stringify({ doc: '1', text: 'x'.repeat(50_000) }));
    const read = await expecting('/docs', json, { authorization: `Bearer ${alice}`, 'content-type': 'application/json' });
    expect(read).toMatchObject({ status: 200, continued: true });
    const got = upstream.requests.slice(before);
    expect(got.map((r) => r.body.length)).toEqual([100_000, json.length]);
    expect(got[1].body.equals(json)).toBe(true);
    expect(got.map((r) => r.headers.expect)).toEqual([undefined, undefined]);
    // A body that names a document alice may not write is refused after it was read (it is what the check reads).
    const bob = await expecting('/docs', Buffer.from('{"doc":"2"}'), { authorization: `Bearer ${alice}`, 'content-type': 'application/json' });
    expect(bob).toMatchObject({ status: 403, continued: true });
  });

  it('answers a request refused by its head without asking for the body', async () => {
    const bob = await warden.token('agent-a', 'bob');
    const before = upstream.requests.length;
    const body = bodyOf(64 * 1024);
    const cases: Array<[string, Record<string, string>, number, string]> = [
      ['/files/1', {}, 401, 'unauthenticated'],
      ['/files/1', { authorization: 'Bearer not-a-token' }, 401, 'unauthenticated'],
      ['/files/1', { authorization: `Bearer ${bob}` }, 403, 'forbidden'],
      ['/nowhere', { authorization: `Bearer ${bob}` }, 404, 'not_found'],
    ];
    for (const [path, headers, status, code] of cases) {
      const res = await expecting(path, body, headers);
      expect({ path, status: res.status, continued: res.continued }).toEqual({ path, status, continued: false });
      expect(JSON.parse(res.text).code).toBe(code);
    }
    // Larger than server.limits.body_bytes by its Content-Length: 413 before the body, on either kind of route.
    for (const path of ['/public/upload', '/docs']) {
      const big = await expecting(path, Buffer.alloc(0), { 'content-length': String(5 * 1024 * 1024), authorization: `Bearer ${bob}` });
      expect({ path, status: big.status, continued: big.continued }).toEqual({ path, status: 413, continued: false });
    }
    expect(upstream.requests.length).toBe(before);
  });

  it("sends 100 Continue at once for Warden's own endpoints (their bodies are read by Hono)", async () => {
    // The dev sign-in reads its form (then refuses it: no sign-in transaction in this client).
    const form = Buffer.from('user=alice&csrf=nothing');
    const res = await expecting('/.warden/login/dev', form, { origin: warden.url, 'content-type': 'application/x-www-form-urlencoded' });
    expect(res.continued).toBe(true);
    expect(res.status).toBe(403);
    expect(res.text).toContain('expired');
  });

  it('ignores the expectation of an HTTP/1.0 request (RFC 9110 §10.1.1) and forwards its body without it', async () => {
    const before = upstream.requests.length;
    const text = await raw(`POST /public/old HTTP/1.0\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello`);
    expect(text).toMatch(/^HTTP\/1\.1 200 /);
    expect(text).not.toContain('100 Continue');
    const got = upstream.requests.slice(before);
    expect(got.map((r) => [r.body.toString(), r.headers.expect])).toEqual([['hello', undefined]]);
  });

  it('refuses any other expectation with 417 in the problem format, audited, and forwards nothing', async () => {
    const before = upstream.requests.length;
    const text = await raw(`POST /public/x HTTP/1.1\r\nHost: x\r\nExpect: something-else\r\nContent-Length: 5\r\n\r\nhello`);
    expect(text).toMatch(/^HTTP\/1\.1 417 /);
    const problem = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { code: string; request_id: string };
    expect(problem.code).toBe('bad_request');
    expect(warden.audits().some((a) => a.request_id === problem.request_id && a.status === 417)).toBe(true);
    expect(upstream.requests.length).toBe(before);
  });
});
