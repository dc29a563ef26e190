/**
 * Redis Sentinel and TLS: Warden reaches Redis only through three sentinels
 * (`store.sentinels`) over rediss:// with a client certificate (`store.tls`).
 * The master is killed mid-run; the sentinels promote the replica and Warden
 * goes on: the approval pending before the failover is decided and released
 * after it (pub/sub on the new master), the vaulted token is still injected,
 * and the request runs exactly once.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { createRedisStore } from '../../src/store/redis.js';
import type { Store } from '../../src/store/store.js';
import { createVaultCipher, generateVaultKey } from '../../src/vault/crypto.js';
import { createConnectionRepository } from '../../src/vault/records.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startWebhookSink, type WebhookSink } from '../approvals/webhook-sink.js';
import { decide } from '../approvals/review-client.js';
import { redisCli, startRedisHa, type RedisHa } from './redis-ha.js';

const VAULT_KEY = generateVaultKey();

const config = (ha: RedisHa) => `
store:
  driver: redis
  url: rediss://:\${REDIS_PASSWORD}@mymaster/0
  sentinels: [${ha.sentinelPorts.map((p) => `"127.0.0.1:${p}"`).join(', ')}]
  sentinel_master: mymaster
  tls: { ca: "${ha.certs.ca}", cert: "${ha.certs.clientCert}", key: "${ha.certs.clientKey}" }
  timeout: 1s
identity: { dev_issuer: true }
authz:
  engine: embedded
  model: policies/model.fga
  tuples: policies/tuples.yaml
vault:
  keys: [{ id: k1, key: "\${VAULT_KEY}" }]
  providers:
    github: { authorization_url: "http://127.0.0.1:9/authorize", token_url: "http://127.0.0.1:9/token", client_id: c, client_secret: s, scopes: [repo] }
approvals:
  ttl: 5m
  hold: 15s
  notify: [{ webhook: { url: "\${HOOK_URL}", secret: "sentinel-webhook-secret-0123456789" } }]
routes:
  - name: notes-delete
    match: { path: /notes/docs/:doc, methods: [DELETE] }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /notes }
    authorize: [{ user: "user:{user}", relation: can_delete, object: "doc:{path.doc}" }]
    approval: { message: "Delete document {path.doc}" }
  - name: github
    match: { path: "/github/**", methods: [GET] }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /github }
    authorize: [{ user: "user:{user}", relation: can_use, object: "connection:github" }]
    credentials: { vault: github }
`;

let ha: RedisHa;
let upstream: Upstream;
let hook: WebhookSink;
let warden: WardenHandle;
let store: Store;

beforeAll(async () => {
  [ha, upstream, hook] = await Promise.all([startRedisHa(), startUpstream(), startWebhookSink()]);
  warden = await startWarden({
    config: config(ha),
    env: { REDIS_PASSWORD: ha.password, VAULT_KEY, HOOK_URL: hook.url, UPSTREAM_URL: upstream.url },
    logLevel: 'info',
  });
  // The test's own client, through the same driver and the same sentinels.
  store = await createRedisStore({
    url: `rediss://:${ha.password}@mymaster/0`,
    keyPrefix: 'warden:',
    timeoutMs: 1_000,
    logger: createLogger({ level: 'silent' }),
    sentinels: ha.sentinelPorts.map((port) => ({ host: '127.0.0.1', port })),
    sentinelMaster: 'mymaster',
    tls: await import('node:fs').then(({ readFileSync }) => ({
      ca: readFileSync(ha.certs.ca, 'utf8'),
      cert: readFileSync(ha.certs.clientCert, 'utf8'),
      key: readFileSync(ha.certs.clientKey, 'utf8'),
    })),
  });
}, 120_000);

afterAll(async () => {
  await warden?.close();
  await store?.close();
  await Promise.all([ha?.stop(), upstream?.close(), hook?.close()]);
}, 60_000);

/** Retry `fn` for up to 20 s while the store reconnects after the failover. */
async function eventually<T>(fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

const call = (method: string, path: string, token: string) =>
  fetch(`${warden.url}${path}`, { method, headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) });

describe('Redis Sentinel over TLS', () => {
  it('refuses a plain connection: the servers only speak TLS with a client certificate', async () => {
    // The same config with redis:// is refused by `warden validate` (store.tls needs rediss://)…
    await expect(
      startWarden({
        config: config(ha).replace('rediss://', 'redis://'),
        env: { REDIS_PASSWORD: ha.password, VAULT_KEY, HOOK_URL: hook.url, UPSTREAM_URL: upstream.url },
      }),
    ).rejects.toThrow(/store\.tls \(line \d+\): needs a rediss:\/\/ url/);
    // …and without the client certificate the handshake fails and Warden does not start.
    await expect(
      startWarden({
        config: config(ha).replace(/, cert: "[^"]+", key: "[^"]+"/, ''),
        env: { REDIS_PASSWORD: ha.password, VAULT_KEY, HOOK_URL: hook.url, UPSTREAM_URL: upstream.url },
      }),
    ).rejects.toThrow(/store_unavailable|cannot connect to redis/);
  });

  it('keeps a pending approval and a vaulted token through a failover, and runs the request exactly once', async () => {
    const alice = await warden.token('demo-agent', 'alice');
    const repo = createConnectionRepository(store, createVaultCipher([{ id: 'k1', key: VAULT_KEY }]));
    const vaulted = 'gho_vaulted_' + Math.random().toString(36).slice(2);
    await repo.put({ user: 'alice', provider: 'github', accessToken: vaulted, scopes: ['repo'], expiresAt: Date.now() + 3_600_000 });
    expect((await call('GET', '/github/user', alice)).status).toBe(200);
    expect(upstream.requests.at(-1)!.headers.authorization).toBe(`Bearer ${vaulted}`);

    // An approval is requested; the agent stops waiting before anyone decides.
    const gaveUp = new AbortController();
    const first = fetch(`${warden.url}/notes/docs/1`, { method: 'DELETE', headers: { authorization: `Bearer ${alice}` }, signal: gaveUp.signal });
    const notice = (await hook.next((d) => d.notice.url.includes('/notes/docs/1'), 20_000)).notice;
    gaveUp.abort();
    await expect(first).rejects.toThrow();

    // Everything written so far has reached the replica before the master dies.
    expect(Number(redisCli(ha.certs, ha.master.port, ha.password, 'WAIT', '1', '5000'))).toBe(1);
    const before = ha.currentMasterPort();
    expect(before).toBe(ha.master.port);
    await ha.master.service.kill();

    // Sentinel promotes the replica. Meanwhile Warden answers or fails closed (503), nothing else.
    const deadline = Date.now() + 30_000;
    while (ha.currentMasterPort() !== ha.replica.port) {
      const res = await call('GET', '/github/user', alice);
      expect([200, 503]).toContain(res.status);
      await res.body?.cancel();
      if (Date.now() > deadline) throw new Error('the sentinels did not promote the replica within 30 s');
      await new Promise((r) => setTimeout(r, 200));
    }
    // The vaulted token survived on the new master, and Warden injects it.
    expect((await eventually(() => repo.get('alice', 'github')))?.accessToken).toBe(vaulted);
    let ok = await call('GET', '/github/user', alice);
    while (ok.status !== 200 && Date.now() < deadline) {
      await ok.body?.cancel();
      await new Promise((r) => setTimeout(r, 200));
      ok = await call('GET', '/github/user', alice);
    }
    expect(ok.status).toBe(200);
    expect(upstream.requests.at(-1)!.headers.authorization).toBe(`Bearer ${vaulted}`);

    // The approval survived: the agent's retry is held again, and the decision releases it (pub/sub on the new master).
    const retried = call('DELETE', '/notes/docs/1', alice);
    await new Promise((r) => setTimeout(r, 300));
    expect((await decide(fetch, notice.review_url.replace(/^https?:\/\/[^/]+/, warden.url), 'approve')).status).toBe(200);
    expect((await retried).status).toBe(200);
    expect(upstream.requests.filter((r) => r.method === 'DELETE' && r.url === '/docs/1')).toHaveLength(1);
    // Used once: a replay does not run it again.
    const replay = await fetch(`${warden.url}/notes/docs/1`, { method: 'DELETE', headers: { authorization: `Bearer ${alice}`, 'warden-approval': notice.id } });
    expect(replay.status).toBe(403);
    await replay.body?.cancel();
    expect(upstream.requests.filter((r) => r.method === 'DELETE' && r.url === '/docs/1')).toHaveLength(1);
    // The old master's death was logged without the password.
    expect(warden.logs()).not.toContain(ha.password);
  });
});
