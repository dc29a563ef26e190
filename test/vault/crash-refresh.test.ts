/**
 * SECURITY.md's "crash between provider answer and persist", for the vault's
 * refresh: Warden runs as a real process (`dist/src/cli.js start`) on a real
 * Redis, and is SIGKILLed while a rotating provider's token endpoint holds its
 * answer to a refresh. The endpoint then answers (its rotation takes effect,
 * the new tokens go nowhere), Warden is restarted on the same Redis and the
 * agent retries. What the record still holds is the spent refresh token and
 * the dead instance's redeem marker.
 *
 * - Strict rotation: the retry waits the marker out, redeems the old refresh
 *   token once, gets `invalid_grant`, and answers 403 `connection_required`
 *   with a `connect_url`; the connection is `relink_required` and later
 *   requests are refused without asking the provider again.
 * - A provider that accepts a replaced refresh token once more: the retry
 *   refreshes and the upstream gets the user's new token.
 *
 * Either way the upstream never sees a request without the user's token, nor
 * the agent's token.
 */

import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/observability/logger.js';
import { loadDevIssuer } from '../../src/identity/dev-issuer.js';
import { createRedisStore } from '../../src/store/redis.js';
import type { Store } from '../../src/store/store.js';
import { createVaultCipher, generateVaultKey } from '../../src/vault/crypto.js';
import { createConnectionRepository, type Connection, type ConnectionRepository } from '../../src/vault/records.js';
import { connectionId } from '../../src/vault/refresh.js';
import { requireBuiltCli } from '../support/cli.js';
import { devPolicyYaml, REDIS_STORE_YAML } from '../support/config.js';
import { until } from '../support/eventually.js';
import { REPO_ROOT } from '../support/gateway.js';
import { freePort, listenerOwnedBy } from '../support/net.js';
import { startWardenProcess, type Service } from '../support/processes.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const VAULT_KEY = generateVaultKey();
const CLIENT_ID = 'warden-vault';
const CLIENT_SECRET = 'crash-refresh-client-secret-' + randomBytes(8).toString('hex');
/** Provider timeout and refresh lease: the dead instance's redeem marker lives 5 s + 1 s + 1 s. */
const PROVIDER_TIMEOUT = '5s';
const REFRESH_LEASE = '1s';

// ---------------------------------------------------------------- the provider's token endpoint

/** A refresh request the endpoint received, and what it answered. */
interface RefreshGrant {
  refreshToken: string;
  answer?: 'tokens' | 'invalid_grant';
  issued?: { accessToken: string; refreshToken: string };
}

/** The answer to one refresh request, held until the test releases it. */
interface HeldAnswer {
  /** The request reached the endpoint. */
  received: Promise<void>;
  /** The caller's connection to the endpoint closed. */
  callerGone: Promise<void>;
  /** Decide the grant (rotating the refresh token) and write the answer. */
  release(): void;
  /** The grant was decided. */
  answered: Promise<void>;
}

interface RotatingProvider {
  tokenUrl: string;
  /** Tokens of a fresh link (what redeeming an authorization code answers). */
  link(): { accessToken: string; refreshToken: string };
  /** Whether the endpoint would still accept `refreshToken`. */
  accepts(refreshToken: string): boolean;
  /** Every access token the endpoint issued. */
  readonly accessTokens: ReadonlySet<string>;
  readonly grants: readonly RefreshGrant[];
  /** Hold the answer to the next refresh request (see HeldAnswer). */
  holdNext(): HeldAnswer;
  close(): Promise<void>;
}

/**
 * A token endpoint that rotates refresh tokens: redeeming one issues a new
 * one, and the redeemed one then works `graceReuses` more times (0: never
 * again, the strict rotation of e.g. oidc-provider; 1: once more, like
 * providers with a reuse grace). The grant is decided when the endpoint
 * answers, whether or not the caller is still there to read the answer.
 */
async function startRotatingProvider(graceReuses: number): Promise<RotatingProvider> {
  const redeemsLeft = new Map<string, number>();
  const accessTokens = new Set<string>();
  const grants: RefreshGrant[] = [];
  let hold: { received: () => void; callerGone: () => void; released: Promise<void>; answered: () => void } | null = null;

  const issue = () => {
    const tokens = { accessToken: `at-${randomBytes(12).toString('hex')}`, refreshToken: `rt-${randomBytes(12).toString('hex')}` };
    accessTokens.add(tokens.accessToken);
    redeemsLeft.set(tokens.refreshToken, 1 + graceReuses);
    return tokens;
  };

  async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
  }

  const server: Server = createServer((req, res) => {
    void (async () => {
      const form = await readForm(req);
      const basic = `Basic ${Buffer.from(`${CLIENT_ID}:${CLIENT_SECRET}`).toString('base64')}`;
      if (req.method !== 'POST' || req.headers.authorization !== basic || form.get('grant_type') !== 'refresh_token') {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_request"}');
        return;
      }
      const grant: RefreshGrant = { refreshToken: form.get('refresh_token') ?? '' };
      grants.push(grant);
      const held = hold;
      hold = null;
      if (held) {
        req.socket.once('close', held.callerGone);
        held.received();
        await held.released;
      }
      const left = redeemsLeft.get(grant.refreshToken) ?? 0;
      if (left > 0) {
        redeemsLeft.set(grant.refreshToken, left - 1);
        grant.answer = 'tokens';
        grant.issued = issue();
      } else {
        grant.answer = 'invalid_grant';
      }
      held?.answered();
      const body = grant.issued
        ? { access_token: grant.issued.accessToken, token_type: 'Bearer', expires_in: 3600, refresh_token: grant.issued.refreshToken, scope: 'repo' }
        : { error: 'invalid_grant', error_description: 'refresh token is invalid, expired or revoked' };
      // After a crash the caller is gone: the grant is decided all the same, the answer reaches no one.
      if (res.destroyed) return;
      res.writeHead(grant.issued ? 200 : 400, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
    })().catch((err: Error) => res.destroy(err));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    tokenUrl: `http://127.0.0.1:${port}/token`,
    link: issue,
    accepts: (refreshToken) => (redeemsLeft.get(refreshToken) ?? 0) > 0,
    accessTokens,
    grants,
    holdNext() {
      let release!: () => void;
      const released = new Promise<void>((r) => (release = r));
      const promises = {} as { received: () => void; callerGone: () => void; answered: () => void };
      const received = new Promise<void>((r) => (promises.received = r));
      const callerGone = new Promise<void>((r) => (promises.callerGone = r));
      const answered = new Promise<void>((r) => (promises.answered = r));
      hold = { ...promises, released };
      return { received, callerGone, release, answered };
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

// ---------------------------------------------------------------- Warden as a process

/** Direct children of a process (Linux /proc). */
function childPids(pid: number): number[] {
  const file = `/proc/${pid}/task/${pid}/children`;
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number) : [];
}

/** Running (a reaped or zombie process is not). */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The process and all its descendants, parents first. */
function processTree(pid: number): number[] {
  return [pid, ...childPids(pid).flatMap(processTree)];
}

function gatewayYaml(port: number, adminPort: number): string {
  return `
server:
  listen: 127.0.0.1:${port}
  admin_listen: 127.0.0.1:${adminPort}
  public_url: http://127.0.0.1:${port}
${REDIS_STORE_YAML}
${devPolicyYaml(join(REPO_ROOT, 'test/vault/fixtures'), { cache_ttl: 0 })}
vault:
  keys: [{ id: k1, key: "\${VAULT_KEY}" }]
  # The test writes records behind Warden's back: read the store on every request.
  cache_ttl: 0s
  refresh_lease: ${REFRESH_LEASE}
  providers:
    strict:
      authorization_url: http://127.0.0.1:9/authorize
      token_url: \${STRICT_TOKEN_URL}
      client_id: ${CLIENT_ID}
      client_secret: \${VAULT_CLIENT_SECRET}
      scopes: [repo]
      timeout: ${PROVIDER_TIMEOUT}
    lenient:
      authorization_url: http://127.0.0.1:9/authorize
      token_url: \${LENIENT_TOKEN_URL}
      client_id: ${CLIENT_ID}
      client_secret: \${VAULT_CLIENT_SECRET}
      scopes: [repo]
      timeout: ${PROVIDER_TIMEOUT}
routes:
  - name: strict
    match: { path: "/strict/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /strict }
    authorize: [{ user: "agent:{agent}", relation: can_call, object: "api:github" }]
    credentials: { vault: strict }
  - name: lenient
    match: { path: "/lenient/**" }
    upstream: { url: "\${UPSTREAM_URL}", strip_prefix: /lenient }
    authorize: [{ user: "agent:{agent}", relation: can_call, object: "api:github" }]
    credentials: { vault: lenient }
`;
}

// ---------------------------------------------------------------- the scenario

let redis: TestRedis;
let upstream: Upstream;
let strict: RotatingProvider;
let lenient: RotatingProvider;
let store: Store;
let repo: ConnectionRepository;
let dir: string;
let configFile: string;
let url: string;
let port: number;
let env: Record<string, string>;
let warden: Service | undefined;

async function startGateway(name: string): Promise<Service> {
  const service = await startWardenProcess(name, configFile, env, url);
  // The listener must be this Warden's (freePort's pick can be taken by another process before Warden binds it).
  expect(processTree(service.pid).some((pid) => listenerOwnedBy(pid, port) !== false)).toBe(true);
  return service;
}

/** SIGKILL every process of `service` (the bin re-executes node: its child serves), the serving one first. */
async function killGateway(service: Service): Promise<void> {
  const tree = processTree(service.pid);
  const serving = tree.filter((pid) => listenerOwnedBy(pid, port) !== false);
  expect(serving.length).toBeGreaterThan(0);
  for (const pid of [...serving, ...tree.filter((pid) => !serving.includes(pid))]) process.kill(pid, 'SIGKILL');
  await service.kill();
  await until(() => tree.every((pid) => !alive(pid)), { what: 'every Warden process gone' });
}

async function agentToken(user: string): Promise<string> {
  const issuer = await loadDevIssuer({ dataDir: join(dir, 'data'), publicUrl: url });
  return issuer.issue({ agent: 'mail-bot', user });
}

/** The audit lines (`"audit":true`) a Warden process printed. */
function auditLines(service: Service): Array<Record<string, unknown>> {
  return service
    .output()
    .split('\n')
    .filter((line) => line.includes('"audit":true') && line.endsWith('}'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/**
 * Link `user` at `provider`, use it once, make the access token expire, then
 * crash Warden while the provider holds its answer to the refresh. Returns the
 * record as the crash left it and the agent's token.
 */
async function crashDuringRefresh(provider: RotatingProvider, route: string, user: string): Promise<{ stale: Connection; token: string }> {
  const linked = provider.link();
  const conn = await repo.put({
    user,
    provider: route,
    accessToken: linked.accessToken,
    refreshToken: linked.refreshToken,
    tokenType: 'Bearer',
    scopes: ['repo'],
    expiresAt: Date.now() + 3_600_000,
  });
  warden = await startGateway(`warden-${route}-1`);
  const token = await agentToken(user);

  // The linked token works.
  const first = await fetch(`${url}/${route}/me`, { headers: { authorization: `Bearer ${token}` } });
  expect(first.status).toBe(200);
  expect(upstream.requests.at(-1)!.headers.authorization).toBe(`Bearer ${linked.accessToken}`);

  // Expired: the next request refreshes, and Warden dies while the provider holds its answer.
  const stale = (await repo.replace({ ...conn, expiresAt: Date.now() - 1_000 }, conn.version))!;
  const held = provider.holdNext();
  const forwarded = upstream.requests.length;
  const during = fetch(`${url}/${route}/me`, { headers: { authorization: `Bearer ${token}` } }).then(
    (res) => res.status,
    () => 'connection lost' as const,
  );
  await held.received;
  await killGateway(warden);
  warden = undefined;
  expect(await during).toBe('connection lost');
  // Only once the caller's connection is gone does the provider answer: the rotation happens, the tokens reach no one.
  await held.callerGone;
  held.release();
  await held.answered;
  expect(provider.grants).toHaveLength(1);
  expect(provider.grants[0]).toMatchObject({ refreshToken: linked.refreshToken, answer: 'tokens' });
  expect(upstream.requests.length).toBe(forwarded);

  // What the crash left in Redis: the old record, and the dead instance's claim on its version.
  const left = (await repo.get(user, route))!;
  expect(left).toMatchObject({ version: stale.version, status: 'active', refreshToken: linked.refreshToken, accessToken: linked.accessToken });
  const marker = JSON.parse((await store.get(`vault:redeem:${connectionId(user, route)}`)) ?? 'null') as unknown;
  expect(marker).toEqual({ version: stale.version, generation: left.generation, state: 'in_flight' });
  return { stale, token };
}

/** Every request the upstream received carried a token the provider issued, never the agent's. */
function expectOnlyUserTokensUpstream(agentTokens: string[]): void {
  const issued = new Set([...strict.accessTokens, ...lenient.accessTokens]);
  for (const seen of upstream.requests) {
    expect(seen.headers.authorization?.startsWith('Bearer ')).toBe(true);
    expect(issued.has(seen.headers.authorization!.slice('Bearer '.length))).toBe(true);
    for (const token of agentTokens) expect(JSON.stringify(seen.rawHeaders)).not.toContain(token);
  }
}

beforeAll(async () => {
  requireBuiltCli();
  dir = mkdtempSync(join(tmpdir(), 'warden-crash-refresh-'));
  [redis, upstream, strict, lenient] = await Promise.all([startRedis(), startUpstream(), startRotatingProvider(0), startRotatingProvider(1)]);
  store = await createRedisStore({ url: redis.url, keyPrefix: redis.keyPrefix, timeoutMs: 2_000, logger: createLogger({ level: 'silent' }) });
  repo = createConnectionRepository(store, createVaultCipher([{ id: 'k1', key: VAULT_KEY }]));
  port = await freePort();
  url = `http://127.0.0.1:${port}`;
  configFile = join(dir, 'gateway.yaml');
  writeFileSync(configFile, gatewayYaml(port, await freePort()));
  env = {
    WARDEN_DATA_DIR: join(dir, 'data'),
    REDIS_URL: redis.url,
    REDIS_PREFIX: redis.keyPrefix,
    VAULT_KEY,
    VAULT_CLIENT_SECRET: CLIENT_SECRET,
    STRICT_TOKEN_URL: strict.tokenUrl,
    LENIENT_TOKEN_URL: lenient.tokenUrl,
    UPSTREAM_URL: upstream.url,
    WARDEN_LOG_LEVEL: 'info',
  };
});

afterEach(async () => {
  await warden?.kill();
  warden = undefined;
});

afterAll(async () => {
  await warden?.kill();
  await store?.close();
  await strict?.close();
  await lenient?.close();
  await upstream?.close();
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('Warden killed between the provider’s refresh answer and persisting it', () => {
  it('strict rotation: after the restart the user is asked to re-link (403 connection_required), no 5xx, no loop', async () => {
    const { stale, token } = await crashDuringRefresh(strict, 'strict', 'alice');
    const spent = stale.refreshToken!;
    expect(strict.accepts(spent)).toBe(false);

    warden = await startGateway('warden-strict-2');
    const forwarded = upstream.requests.length;
    // The dead instance's marker is still there: the retry waits it out (bounded), then redeems once.
    const retry = await fetch(`${url}/strict/me`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(20_000) });
    expect(retry.status).toBe(403);
    const problem = (await retry.json()) as { code: string; provider: string; connect_url: string };
    expect(problem.code).toBe('connection_required');
    expect(problem.provider).toBe('strict');
    expect(problem.connect_url.startsWith(`${url}/.warden/connect/strict?ticket=`)).toBe(true);
    // One more redeem of the spent refresh token, refused; nothing else was sent.
    expect(strict.grants.map((g) => [g.refreshToken, g.answer])).toEqual([
      [spent, 'tokens'],
      [spent, 'invalid_grant'],
    ]);
    expect(await repo.get('alice', 'strict')).toMatchObject({ status: 'relink_required', version: stale.version + 1, refreshToken: spent });
    await until(() => auditLines(warden!).some((l) => l.path === '/strict/me'), { what: 'the audit line' });
    expect(auditLines(warden!).find((l) => l.path === '/strict/me')).toMatchObject({ status: 403, reason: 'vault_invalid_grant' });

    // Later requests are refused at once, without asking the provider again.
    const again = await fetch(`${url}/strict/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(again.status).toBe(403);
    expect(((await again.json()) as { code: string; connect_url: string }).connect_url).toContain('/.warden/connect/strict?ticket=');
    expect(strict.grants).toHaveLength(2);
    expect(upstream.requests.length).toBe(forwarded);
    expectOnlyUserTokensUpstream([token]);
  }, 60_000);

  it('a provider that accepts the replaced refresh token once more: the retry after the restart succeeds', async () => {
    const { stale, token } = await crashDuringRefresh(lenient, 'lenient', 'bob');
    const lost = lenient.grants[0].issued!;

    warden = await startGateway('warden-lenient-2');
    const retry = await fetch(`${url}/lenient/me`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(20_000) });
    expect(retry.status).toBe(200);
    expect(lenient.grants.map((g) => [g.refreshToken, g.answer])).toEqual([
      [stale.refreshToken, 'tokens'],
      [stale.refreshToken, 'tokens'],
    ]);
    const fresh = lenient.grants[1].issued!;
    expect(upstream.requests.at(-1)!.headers.authorization).toBe(`Bearer ${fresh.accessToken}`);
    expect(await repo.get('bob', 'lenient')).toMatchObject({
      status: 'active',
      version: stale.version + 1,
      accessToken: fresh.accessToken,
      refreshToken: fresh.refreshToken,
    });
    // The answer lost in the crash never reached the upstream; the stored refresh token still works.
    expect(upstream.requests.some((r) => r.headers.authorization === `Bearer ${lost.accessToken}`)).toBe(false);
    expect(lenient.accepts(fresh.refreshToken)).toBe(true);

    // Warm again: no further refresh.
    const again = await fetch(`${url}/lenient/me`, { headers: { authorization: `Bearer ${token}` } });
    expect(again.status).toBe(200);
    expect(lenient.grants).toHaveLength(2);
    expectOnlyUserTokensUpstream([token]);
  }, 60_000);
});
