/**
 * `connection_required` must not cost a store key per refused request: an
 * agent (or a retry loop) calling a vault route for a user who has not linked
 * gets the same connect link back while it is fresh, on every instance, so
 * what it can make the store hold is bounded per (user, agent, provider).
 * Two Warden instances share a real Redis.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { createRedisStore } from '../../src/store/redis.js';
import type { Store } from '../../src/store/store.js';
import { generateVaultKey } from '../../src/vault/crypto.js';
import { createLinkSecrets } from '../../src/vault/tickets.js';
import { devPolicyYaml, REDIS_STORE_YAML } from '../support/config.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startRedis, type TestRedis } from '../support/redis.js';

const KEY = generateVaultKey();

const CONFIG = `
server: { public_url: "http://warden.test" }
${REDIS_STORE_YAML}
${devPolicyYaml('test/vault/fixtures')}
vault:
  keys: [{ id: k1, key: "\${VAULT_KEY}" }]
  connect_ttl: 10m
  providers:
    github:
      authorization_url: https://github.example/login/oauth/authorize
      token_url: https://github.example/login/oauth/access_token
      client_id: warden-vault
      scopes: [repo]
routes:
  - name: github
    match: { path: "/github/**" }
    upstream: { url: "http://127.0.0.1:9", strip_prefix: /github }
    authorize: [{ user: "agent:{agent}", relation: can_call, object: "api:github" }]
    credentials: { vault: github }
`;

describe('connect tickets handed out with connection_required', () => {
  let redis: TestRedis;
  let store: Store;
  let dataDir: string;
  const wardens: WardenHandle[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    dataDir = mkdtempSync(join(tmpdir(), 'warden-connect-tickets-'));
    const env = { REDIS_URL: redis.url, REDIS_PREFIX: redis.keyPrefix, VAULT_KEY: KEY };
    for (let i = 0; i < 2; i++) wardens.push(await startWarden({ config: CONFIG, env, dataDir }));
    store = await createRedisStore({ url: redis.url, keyPrefix: redis.keyPrefix, timeoutMs: 2000, logger: createLogger({ level: 'silent' }) });
  });

  afterAll(async () => {
    for (const w of wardens) await w.close();
    await store?.close();
    await redis?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  async function ticketKeys(): Promise<string[]> {
    const keys: string[] = [];
    for await (const key of store.keys('vault:ticket:')) keys.push(key);
    return keys;
  }

  /** The ticket of the `connect_url` one request to `/github/user` is refused with. */
  async function refusedTicket(warden: WardenHandle, token: string): Promise<string> {
    const res = await fetch(`${warden.url}/github/user`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(403);
    const problem = (await res.json()) as { code: string; connect_url: string };
    expect(problem.code).toBe('connection_required');
    return new URL(problem.connect_url).searchParams.get('ticket')!;
  }

  it('an agent hammering an unlinked route gets one link back, not a store key per request', async () => {
    const before = (await ticketKeys()).length;
    const token = await wardens[0].token('mail-bot', 'erin');
    const tickets = await Promise.all(Array.from({ length: 120 }, (_, i) => refusedTicket(wardens[i % 2], token)));
    for (let i = 0; i < 30; i++) tickets.push(await refusedTicket(wardens[i % 2], token));
    expect(new Set(tickets).size).toBe(1);
    expect((await ticketKeys()).length - before).toBe(1);

    // The link still works as before: bound to erin, the agent and the provider's scopes, single use.
    const secrets = createLinkSecrets(store, 600_000);
    expect(await secrets.peekTicket(tickets[0])).toMatchObject({ user: 'erin', agent: 'mail-bot', provider: 'github', scopes: ['repo'] });
    expect(await secrets.takeTicket(tickets[0])).not.toBeNull();

    // Once used, the next refusal hands out a new link (and only one).
    const next = await refusedTicket(wardens[1], token);
    expect(next).not.toBe(tickets[0]);
    expect(await refusedTicket(wardens[0], token)).toBe(next);
    expect(await secrets.peekTicket(next)).toMatchObject({ user: 'erin', agent: 'mail-bot', provider: 'github' });
  });

  it('another user or another agent never gets that link', async () => {
    const erinBot = await refusedTicket(wardens[0], await wardens[0].token('mail-bot', 'erin'));
    const erinOther = await refusedTicket(wardens[0], await wardens[0].token('other-bot', 'erin'));
    const frank = await refusedTicket(wardens[1], await wardens[1].token('mail-bot', 'frank'));
    expect(new Set([erinBot, erinOther, frank]).size).toBe(3);
    const secrets = createLinkSecrets(store, 600_000);
    expect(await secrets.peekTicket(erinOther)).toMatchObject({ user: 'erin', agent: 'other-bot' });
    expect(await secrets.peekTicket(frank)).toMatchObject({ user: 'frank', agent: 'mail-bot' });
  });
});
