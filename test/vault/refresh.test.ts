/**
 * Refresh across instances against real components: oidc-provider with
 * rotating refresh tokens (through a counting relay) and a real Redis shared by
 * three refresher "instances", each with its own store connection.
 */

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { providerSchema } from '../../src/config/schema.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createRedisStore } from '../../src/store/redis.js';
import type { Store } from '../../src/store/store.js';
import { createVaultCipher, generateVaultKey } from '../../src/vault/crypto.js';
import { createProviders } from '../../src/vault/providers.js';
import { createConnectionRepository, type ConnectionRepository } from '../../src/vault/records.js';
import { connectionId, createRefresher, type Refresher } from '../../src/vault/refresh.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { startVaultProvider, type VaultProvider } from './support.js';
import { captureLogs } from '../support/logs.js';

const CALLBACK = 'http://127.0.0.1:9/.warden/callback/acme';

interface Instance {
  store: Store;
  connections: ConnectionRepository;
  refresher: Refresher;
}

describe('vault refresh across instances (real Redis, real oidc-provider)', () => {
  let redis: TestRedis;
  let vp: VaultProvider;
  const logs = captureLogs();
  const logger = logs.logger;
  const keys = [{ id: 'k1', key: generateVaultKey() }];
  const instances: Instance[] = [];
  let user = '';
  /** Every token seen in these tests, to grep the captured logs for. */
  const secrets = new Set<string>();

  function providerConfig(overrides: Record<string, unknown> = {}) {
    return providerSchema.parse({
      authorization_url: `${vp.op.issuer}/auth`,
      token_url: vp.relay.tokenUrl,
      client_id: vp.clientId,
      client_secret: vp.clientSecret,
      scopes: ['github'],
      timeout: '3s',
      ...overrides,
    });
  }

  async function buildInstances(leaseMs: number, overrides: Record<string, unknown> = {}) {
    for (const i of instances.splice(0)) await i.store.close();
    for (let n = 0; n < 3; n++) {
      const store = await createRedisStore({ url: redis.url, keyPrefix: redis.keyPrefix, timeoutMs: 2000, logger });
      const connections = createConnectionRepository(store, createVaultCipher(keys));
      const providers = createProviders({ acme: providerConfig(overrides) });
      const refresher = createRefresher({ store, connections, providers, logger, metrics: createMetrics(), leaseMs });
      instances.push({ store, connections, refresher });
    }
  }

  /** Link `user` for real (code + PKCE at the provider) and store the tokens expiring at `expiresAt` (default: already expired). */
  async function seedLink(account: string, expiresAt = Date.now() - 1_000) {
    const tokens = await vp.op.userAccessToken({ accountId: account, clientId: vp.clientId, scope: 'github' });
    expect(tokens.refresh_token).toBeTruthy();
    secrets.add(tokens.access_token).add(tokens.refresh_token!);
    const conn = await instances[0].connections.put({
      user,
      provider: 'acme',
      accessToken: tokens.access_token,
      refreshToken: tokens.refresh_token,
      tokenType: 'Bearer',
      scopes: (tokens.scope ?? '').split(' '),
      expiresAt,
    });
    return { conn, tokens };
  }

  beforeAll(async () => {
    redis = await startRedis({ local: true });
    vp = await startVaultProvider({ redirectUris: [CALLBACK] });
  });

  afterAll(async () => {
    for (const i of instances) await i.store.close();
    await vp?.close();
    await redis?.stop();
  });

  beforeEach(() => {
    user = `user-${Math.random().toString(36).slice(2, 10)}`;
    vp.relay.reset();
  });

  it('50 concurrent requests on an expired token over 3 instances: exactly one refresh, all get the new token', async () => {
    await buildInstances(2_000);
    const { conn, tokens } = await seedLink('alice-gh');
    vp.relay.reset();
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => instances[i % 3].refresher.fresh(conn)));
    expect(vp.relay.counts().refresh_token).toBe(1);
    expect(vp.relay.successfulRefreshes()).toBe(1);
    for (const r of results) secrets.add(r.accessToken).add(r.refreshToken!);
    const tokensSeen = new Set(results.map((r) => r.accessToken));
    expect(tokensSeen.size).toBe(1);
    const fresh = results[0];
    expect(fresh.accessToken).not.toBe(tokens.access_token);
    expect(fresh.expiresAt).toBeGreaterThan(Date.now());
    // The rotated refresh token was persisted, so the next refresh works with it...
    const stored = await instances[2].connections.get(user, 'acme');
    expect(stored?.refreshToken).toBeTruthy();
    expect(stored?.refreshToken).not.toBe(tokens.refresh_token);
    expect(stored?.version).toBe(conn.version + 1);
    const next = await vp.op.refresh(vp.clientId, stored!.refreshToken!);
    expect(next.access_token).toBeTruthy();
    // ...and the old one is dead at the provider (rotation).
    await expect(vp.op.refresh(vp.clientId, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('a refresh answer without expires_in: the new token lives as long as the one it replaced (it is refreshed again)', async () => {
    await buildInstances(2_000);
    // A token of a 2 s lifetime: shorter than refresh_before, so it is due at half of it (1 s).
    const { conn, tokens } = await seedLink('erin-gh', Date.now() + 2_000);
    await new Promise((r) => setTimeout(r, 1_200));
    vp.relay.fault({ grant: 'refresh_token', mode: 'no_expiry' });
    const before = Date.now();
    const fresh = await instances[1].refresher.fresh(conn);
    secrets.add(fresh.accessToken).add(fresh.refreshToken!);
    expect(vp.relay.successfulRefreshes()).toBe(1);
    expect(fresh.accessToken).not.toBe(tokens.access_token);
    const stored = await instances[2].connections.get(user, 'acme');
    // About 2 s from the refresh (the lifetime runs from when a record is written).
    expect(stored?.expiresAt).toBeGreaterThanOrEqual(before + 2_000 - 100);
    expect(stored?.expiresAt).toBeLessThanOrEqual(Date.now() + 2_000 + 100);
  });

  it('a lock lease that expires during a slow refresh does not cause a second redeem', async () => {
    // The test removes the lock itself to stand for an expiry; a lease long enough to outlive event-loop stalls
    // of a loaded machine makes sure it is still there to remove (a 200 ms lease could lapse before the del).
    const lease = 2_000;
    await buildInstances(lease);
    const { conn } = await seedLink('bob-gh');
    vp.relay.reset();
    vp.relay.fault({ grant: 'refresh_token', mode: 'delay', delayMs: 1_500 });
    const lockName = `lock:vault-refresh:${connectionId(user, 'acme')}`;
    const first = instances[0].refresher.fresh(conn);
    // Wait until the refresh is at the provider, then make the lease vanish as if it had expired.
    for (let i = 0; i < 100 && (vp.relay.counts().refresh_token ?? 0) === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(vp.relay.counts().refresh_token).toBe(1);
    expect(await instances[0].store.del(lockName)).toBe(true);
    // Other instances now find the lock free while the first redeem is still in flight.
    const others = await Promise.all(Array.from({ length: 20 }, (_, i) => instances[1 + (i % 2)].refresher.fresh(conn)));
    const winner = await first;
    expect(vp.relay.counts().refresh_token).toBe(1);
    expect(new Set([winner.accessToken, ...others.map((o) => o.accessToken)]).size).toBe(1);
    const stored = await instances[1].connections.get(user, 'acme');
    expect(stored?.status).toBe('active');
    expect(stored?.accessToken).toBe(winner.accessToken);
  });

  it('a slow refresh keeps its lease by renewing it (lease shorter than the refresh)', async () => {
    // Renewed every 200 ms: the lease survives event-loop stalls up to ~400 ms on a busy machine.
    await buildInstances(600);
    const { conn } = await seedLink('carol-gh');
    const logStart = logs.text().length;
    vp.relay.reset();
    vp.relay.fault({ grant: 'refresh_token', mode: 'delay', delayMs: 2_000 });
    const all = await Promise.all(Array.from({ length: 30 }, (_, i) => instances[i % 3].refresher.fresh(conn)));
    expect(vp.relay.counts().refresh_token).toBe(1);
    expect(new Set(all.map((c) => c.accessToken)).size).toBe(1);
    const ours = logs.text().slice(logStart);
    expect(ours).toContain('"lease_lost":false');
    expect(ours).not.toContain('lease lost');
  });

  it('invalid_grant marks the connection for re-linking (connection_required)', async () => {
    await buildInstances(2_000);
    const { conn, tokens } = await seedLink('dave-gh');
    // Kill the refresh token at the provider (rotation: using it once, then it is spent).
    await vp.op.refresh(vp.clientId, tokens.refresh_token!);
    vp.relay.reset();
    await expect(instances[1].refresher.fresh(conn)).rejects.toMatchObject({ code: 'connection_required' });
    const stored = await instances[0].connections.get(user, 'acme');
    expect(stored?.status).toBe('relink_required');
    // Later requests do not ask the provider again.
    await expect(instances[2].refresher.fresh(stored!)).rejects.toMatchObject({ code: 'connection_required' });
    expect(vp.relay.counts().refresh_token).toBe(1);
  });

  it('provider 5xx answers 503 with Retry-After and keeps the connection', async () => {
    await buildInstances(2_000);
    const { conn } = await seedLink('erin-gh');
    vp.relay.reset();
    vp.relay.fault({ grant: 'refresh_token', mode: 'error', headers: { 'retry-after': '1' } });
    const err = await instances[0].refresher.fresh(conn).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'upstream_unavailable', status: 503 });
    expect((err as { headers: Record<string, string> }).headers['Retry-After']).toBe('1');
    const kept = await instances[0].connections.get(user, 'acme');
    expect(kept).toMatchObject({ status: 'active', version: conn.version, refreshToken: conn.refreshToken });
    // After the retry window the same refresh token still works.
    await new Promise((r) => setTimeout(r, 1_100));
    const fresh = await instances[1].refresher.fresh(kept!);
    expect(fresh.version).toBe(conn.version + 1);
  });

  it('provider timeout answers 503 with Retry-After and keeps the connection', async () => {
    await buildInstances(500, { timeout: '400ms' });
    const { conn } = await seedLink('frank-gh');
    vp.relay.reset();
    vp.relay.fault({ grant: 'refresh_token', mode: 'hang' });
    const err = await instances[0].refresher.fresh(conn).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'upstream_unavailable', status: 503 });
    expect(Number((err as { headers: Record<string, string> }).headers['Retry-After'])).toBeGreaterThanOrEqual(1);
    const kept = await instances[0].connections.get(user, 'acme');
    expect(kept).toMatchObject({ status: 'active', version: conn.version });
  });

  it('a redeem marker left by a revoked link does not hold up the next link (same version, another generation)', async () => {
    await buildInstances(2_000);
    const { conn: old } = await seedLink('alice-gh');
    // The revoked link's refresh was in flight when it was deleted: its marker outlives it.
    const stale = { version: old.version, generation: old.generation, state: 'in_flight' };
    await instances[0].store.set(`vault:redeem:${connectionId(user, 'acme')}`, JSON.stringify(stale), { ttlMs: 60_000 });
    expect(await instances[0].connections.delete(user, 'acme')).toBe(true);
    const { conn } = await seedLink('alice-gh');
    expect(conn.version).toBe(old.version);
    expect(conn.generation).not.toBe(old.generation);
    vp.relay.reset();
    // Taken for this link's own, the marker would make the refresh wait, then answer 503 (it outlives the wait).
    const fresh = await instances[1].refresher.fresh(conn);
    secrets.add(fresh.accessToken).add(fresh.refreshToken!);
    expect(vp.relay.successfulRefreshes()).toBe(1);
    expect(fresh.expiresAt).toBeGreaterThan(Date.now());
  });

  it('a stale holder cannot overwrite a newer record (version check)', async () => {
    await buildInstances(2_000);
    const { conn } = await seedLink('gina-gh');
    // A re-link happens meanwhile (new version): the refresh result must not replace it.
    const relinked = await instances[1].connections.put({ ...conn, accessToken: 'relinked-token', expiresAt: Date.now() + 3_600_000 });
    const seen = await instances[0].refresher.fresh(conn);
    expect(seen.accessToken).toBe('relinked-token');
    expect(seen.version).toBe(relinked.version);
  });

  it('logs carry no access token, refresh token, key or client secret', async () => {
    const text = logs.text();
    expect(text).toContain('vault token refreshed');
    expect(text).not.toContain(vp.clientSecret);
    expect(text).not.toContain(keys[0].key);
    expect(secrets.size).toBeGreaterThan(10);
    for (const secret of secrets) expect(text).not.toContain(secret);
  });
});
