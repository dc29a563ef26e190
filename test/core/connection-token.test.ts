/**
 * A keep-alive connection remembers the last token it presented and verified,
 * so a repeat skips the token parse and hash. These tests pin what that memo
 * must never do: answer for a different token, outlive the token's exp, or
 * survive a reload that changes who may sign tokens.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from 'undici';
import { type WardenHandle, startWardenWithUpstream, closeAll } from '../support/gateway.js';
import type { Upstream } from '../support/upstream.js';

let upstream: Upstream;
let warden: WardenHandle;

const DEV_IDENTITY = 'identity: { dev_issuer: true, clock_tolerance: 0s }';
const config = (up: string, identity = DEV_IDENTITY) => `
${identity}
authz:
  model: test/core/fixtures/model.fga
  tuples: test/core/fixtures/tuples.yaml
routes:
  - name: docs
    match: { path: /docs/:doc }
    upstream: { url: "${up}" }
    authorize:
      - { user: "user:{user}", relation: can_read, object: "doc:{path.doc}" }
`;

beforeAll(async () => {
  ({ warden, upstream } = await startWardenWithUpstream(config));
});

afterAll(() => closeAll(warden, upstream));

/** One TCP connection for every request made through it. */
function oneConnection() {
  const client = new Client(warden.url, { pipelining: 1 });
  let connects = 0;
  client.on('connect', () => connects++);
  return {
    async get(path: string, token: string): Promise<number> {
      const res = await client.request({ method: 'GET', path, headers: { authorization: `Bearer ${token}` } });
      await res.body.text();
      return res.statusCode;
    },
    connects: () => connects,
    close: () => client.close(),
  };
}

describe('the per-connection token memo', () => {
  it('answers only for the exact token it verified: a different token on the same connection is judged on its own', async () => {
    const alice = await warden.token('agent-1', 'alice');
    const bob = await warden.token('agent-1', 'bob');
    const conn = oneConnection();
    try {
      // alice owns doc:1; bob does not. Three alice requests warm the memo.
      for (let i = 0; i < 3; i++) expect(await conn.get('/docs/1', alice)).toBe(200);
      expect(await conn.get('/docs/1', bob)).toBe(403);
      expect(await conn.get('/docs/1', alice.slice(0, -2) + 'xx')).toBe(401);
      expect(await conn.get('/docs/1', `${alice} `)).toBe(200); // same token, different header text: full path
      expect(await conn.get('/docs/1', alice)).toBe(200);
      expect(await conn.get('/docs/2', alice)).toBe(403); // the memo is identity only; every check still runs
      expect(conn.connects()).toBe(1);
    } finally {
      await conn.close();
    }
  });

  it('never outlives the token: after exp the same connection gets 401', async () => {
    const short = await warden.token('agent-1', 'alice', [], undefined, 2);
    const conn = oneConnection();
    try {
      for (let i = 0; i < 3; i++) expect(await conn.get('/docs/1', short)).toBe(200);
      const exp = JSON.parse(Buffer.from(short.split('.')[1], 'base64url').toString()).exp as number;
      await new Promise((r) => setTimeout(r, Math.max(0, exp * 1000 - Date.now()) + 50));
      expect(await conn.get('/docs/1', short)).toBe(401);
      expect(conn.connects()).toBe(1);
    } finally {
      await conn.close();
    }
  });

  it('does not survive a reload: a token the new identity config refuses is refused on the old connection', async () => {
    const alice = await warden.token('agent-1', 'alice');
    const conn = oneConnection();
    try {
      for (let i = 0; i < 3; i++) expect(await conn.get('/docs/1', alice)).toBe(200);
      // The new generation trusts another issuer only: the dev token's issuer is unknown to it.
      const otherIssuer =
        'identity: { dev_issuer: false, issuers: [{ issuer: "https://idp.example", audience: [warden], jwks_uri: "http://127.0.0.1:9/jwks" }] }';
      expect(await warden.reload(config(upstream.url, otherIssuer))).toBe(true);
      expect(await conn.get('/docs/1', alice)).toBe(401);
      expect(conn.connects()).toBe(1);
    } finally {
      await conn.close();
      await warden.reload(config(upstream.url));
    }
  });
});
