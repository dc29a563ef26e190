/**
 * A `when` rule reads what the agent sent; the agent chooses its types and its
 * framing. Through a real Warden and a recording upstream: a value of another
 * kind than the rule compares it with holds the request (fail closed), as a
 * missing one does; a header a rule reads must arrive once, in the spelling
 * the rule reads, or upstreams that take the first of two lines (or fold `_`
 * into `-`) act on a value the rule never saw.
 */

import { request as httpRequest, type OutgoingHttpHeaders } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startWardenWithUpstream, closeAll, type WardenHandle } from '../support/gateway.js';
import type { Upstream } from '../support/upstream.js';
import { devPolicyYaml } from '../support/config.js';

const config = (upstreamUrl: string) => `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/approvals/fixtures', { cache_ttl: 0 })}
approvals:
  ttl: 10m
  hold: 100ms
  max_pending_per_user: 50
  notify:
    - log: true
routes:
  - name: files
    match: { path: "/files/:name", methods: [POST] }
    upstream: { url: "${upstreamUrl}" }
    authorize: []
    approval:
      when: 'has(body.permanent) && body.permanent == true || has(body.action) && body.action == "delete"'
      message: "Change {path.name}"
  - name: wipe
    match: { path: "/wipe/:name", methods: [POST] }
    upstream: { url: "${upstreamUrl}" }
    authorize: []
    approval:
      when: '"x-delete-mode" in request.headers && request.headers["x-delete-mode"] == "purge"'
      message: "Wipe {path.name}"
`;

let warden: WardenHandle;
let upstream: Upstream;
let headers: Record<string, string>;

beforeAll(async () => {
  ({ warden, upstream } = await startWardenWithUpstream(config));
  headers = { authorization: `Bearer ${await warden.token('bot', 'alice')}`, 'content-type': 'application/json' };
});

afterAll(async () => {
  await closeAll(warden, upstream);
});

beforeEach(() => {
  upstream.requests.length = 0;
});

async function post(name: string, body: string): Promise<number> {
  const res = await fetch(`${warden.url}/files/${name}`, { method: 'POST', headers, body });
  await res.arrayBuffer();
  return res.status;
}

describe('a value of another kind than the rule compares it with', () => {
  it.each([
    ['"true" for true', '{"permanent":"true"}'],
    ['1 for true', '{"permanent":1}'],
    ['["delete"] for "delete"', '{"action":["delete"]}'],
    ['{"op":"delete"} for "delete"', '{"action":{"op":"delete"}}'],
  ])('holds the request (%s), as a missing value would', async (_label, body) => {
    expect(await post(`kinds-${upstream.requests.length}-${body.length}`, body)).toBe(202);
    expect(upstream.requests).toHaveLength(0);
  });

  it('still lets through what the rule does not select, and holds what it does', async () => {
    expect(await post('plain-false', '{"permanent":false,"action":"rename"}')).toBe(200);
    expect(await post('plain-null', '{"permanent":null}')).toBe(200);
    expect(upstream.requests).toHaveLength(2);
    expect(await post('plain-true', '{"permanent":true}')).toBe(202);
    expect(await post('plain-delete', '{"action":"delete"}')).toBe(202);
    expect(upstream.requests).toHaveLength(2);
  });
});

/** POST with headers as given: an array value is sent as that many header lines (fetch would join them into one). */
function rawPost(path: string, extra: OutgoingHttpHeaders): Promise<number> {
  const url = new URL(path, warden.url);
  const body = '{}';
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { ...headers, 'content-length': body.length, ...extra } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

describe('a header a rule reads', () => {
  it('is refused (400) when sent twice: a first-line-wins upstream would purge what the rule read as "purge, soft"', async () => {
    expect(await rawPost('/wipe/twice', { 'x-delete-mode': ['purge', 'soft'] })).toBe(400);
    expect(upstream.requests).toHaveLength(0);
  });

  it('is refused (400) under another spelling that CGI-style upstreams fold into the same name', async () => {
    expect(await rawPost('/wipe/underscore', { x_delete_mode: 'purge' })).toBe(400);
    expect(await rawPost('/wipe/both', { 'x-delete-mode': 'soft', x_delete_mode: 'purge' })).toBe(400);
    expect(upstream.requests).toHaveLength(0);
  });

  it('is read as sent once; other headers may repeat', async () => {
    expect(await rawPost('/wipe/once', { 'x-delete-mode': 'purge' })).toBe(202);
    expect(await rawPost('/wipe/soft', { 'x-delete-mode': 'soft', 'x-note': ['a', 'b'] })).toBe(200);
    expect(upstream.requests).toHaveLength(1);
    expect(upstream.requests[0].rawHeaders.filter((h) => h.toLowerCase() === 'x-note')).toHaveLength(2);
  });
});
