/**
 * Sessions across instances: two Warden processes' worth of gateways on one
 * real Redis and one data dir (the development login's key). A session made
 * on A is honoured on B, and a logout on A kills every copy of the cookie on B.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { devPolicyYaml, REDIS_STORE_YAML } from '../support/config.js';

const CONFIG = `
server:
  public_url: http://127.0.0.1:9/
${REDIS_STORE_YAML}
${devPolicyYaml('test/login/fixtures')}
`;

/** Sign in as `user` through `w`'s development login with plain HTTP; returns the session cookie value. */
async function devSignIn(w: WardenHandle, user: string): Promise<string> {
  const page = await fetch(`${w.url}/.warden/login`);
  const tx = /warden_signin=([^;]+)/.exec(page.headers.get('set-cookie') ?? '')![1];
  const csrf = /name="csrf" value="([^"]+)"/.exec(await page.text())![1];
  const res = await fetch(`${w.url}/.warden/login/dev`, {
    method: 'POST',
    redirect: 'manual',
    headers: { cookie: `warden_signin=${tx}`, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ csrf, user }),
  });
  expect(res.status).toBe(303);
  return /warden_session=([^;]+)/.exec(res.headers.get('set-cookie') ?? '')![1];
}

const whoOn = async (w: WardenHandle, cookie: string) => (await fetch(`${w.url}/.warden/session`, { headers: { cookie: `warden_session=${cookie}` } })).text();

describe('sessions across instances (Redis)', () => {
  let redis: TestRedis;
  let dataDir: string;
  let a: WardenHandle;
  let b: WardenHandle;

  beforeAll(async () => {
    redis = await startRedis({ local: true });
    dataDir = mkdtempSync(join(tmpdir(), 'warden-login-scale-'));
    const env = { REDIS_URL: redis.url, REDIS_PREFIX: redis.keyPrefix };
    a = await startWarden({ config: CONFIG, env, dataDir });
    b = await startWarden({ config: CONFIG, env, dataDir });
  });

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await redis?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('a session from A works on B; logout on A ends it on B too', async () => {
    const cookie = await devSignIn(a, 'alice');
    expect(await whoOn(b, cookie)).toContain('signed in to Warden as alice');

    const logoutPage = await (await fetch(`${a.url}/.warden/logout`, { headers: { cookie: `warden_session=${cookie}` } })).text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(logoutPage)![1];
    const out = await fetch(`${a.url}/.warden/logout`, {
      method: 'POST',
      headers: { cookie: `warden_session=${cookie}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf }),
    });
    expect(out.status).toBe(200);
    expect(await whoOn(b, cookie)).toContain('Nobody is signed in');
    expect(await whoOn(a, cookie)).toContain('Nobody is signed in');
  });

  it('while Redis cannot say whether a session was revoked, no page trusts the cookie', async () => {
    const cookie = await devSignIn(a, 'bob');
    redis.pause();
    try {
      const res = await fetch(`${b.url}/.warden/session`, { headers: { cookie: `warden_session=${cookie}` } });
      expect(res.status).toBe(503);
      expect(await res.text()).not.toContain('as bob');
    } finally {
      redis.resume();
    }
  });
});
