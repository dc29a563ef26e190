/**
 * A provider whose access tokens live shorter than `refresh_before` (here 30 s
 * against 60 s): Warden refreshes at half the lifetime instead of on every
 * request. The provider is a real HTTP token endpoint that counts redeems.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { captureLogs } from '../support/logs.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { createVaultCipher, generateVaultKey } from '../../src/vault/crypto.js';
import { createConnectionRepository } from '../../src/vault/records.js';
import { createProviders } from '../../src/vault/providers.js';
import { createRefresher } from '../../src/vault/refresh.js';
import { providerSchema } from '../../src/config/schema.js';
import { createMetrics } from '../../src/observability/metrics.js';

let provider: Upstream;
let redeemed = 0;

beforeAll(async () => {
  provider = await startUpstream((_req, res) => {
    redeemed++;
    const body = JSON.stringify({
      access_token: `short-lived-${redeemed}`,
      token_type: 'Bearer',
      expires_in: 30,
      refresh_token: `refresh-${redeemed}`,
      scope: 'repo',
    });
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(body);
  });
});

afterAll(async () => {
  await provider?.close();
});

describe('token lifetime shorter than refresh_before', () => {
  it('refreshes at half the lifetime, not on every request', async () => {
    let clock = Date.now();
    const now = () => clock;
    const store = createMemoryStore();
    const connections = createConnectionRepository(store, createVaultCipher([{ id: 'k1', key: generateVaultKey() }]), now);
    const providers = createProviders({
      acme: providerSchema.parse({
        authorization_url: 'http://127.0.0.1:9/auth',
        token_url: provider.url,
        client_id: 'warden',
        client_secret: 'secret',
        scopes: ['repo'],
        refresh_before: '60s',
      }),
    });
    const refresher = createRefresher({ store, connections, providers, logger: captureLogs().logger, metrics: createMetrics(), leaseMs: 2000, now });

    const linked = await connections.put({
      user: 'alice',
      provider: 'acme',
      accessToken: 'linked',
      refreshToken: 'refresh-0',
      scopes: ['repo'],
      expiresAt: clock + 30_000,
    });
    // 1 s and 14 s into a 30 s token: still fresh (on every request before, a refresh).
    for (const t of [1_000, 14_000]) {
      clock = linked.updatedAt + t;
      const conn = (await connections.get('alice', 'acme'))!;
      expect(refresher.needsRefresh(conn)).toBe(false);
      expect((await refresher.fresh(conn)).accessToken).toBe('linked');
    }
    expect(redeemed).toBe(0);
    // Past half the lifetime: one refresh.
    clock = linked.updatedAt + 16_000;
    const refreshed = await refresher.fresh((await connections.get('alice', 'acme'))!);
    expect(refreshed.accessToken).toBe('short-lived-1');
    expect(redeemed).toBe(1);
    // The new token is fresh again right away.
    expect((await refresher.fresh((await connections.get('alice', 'acme'))!)).accessToken).toBe('short-lived-1');
    expect(redeemed).toBe(1);
    await store.close();
  });
});
