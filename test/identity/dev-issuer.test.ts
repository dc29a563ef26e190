/**
 * The dev issuer: key persistence and permissions, token contents, and the
 * authenticator accepting dev tokens only when `identity.dev_issuer` is on
 * (never in production). Also the cache's expiry with an injected clock.
 */

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, stat, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEV_ISSUER_KEY_FILE, devIssuerIdentity, loadDevIssuer } from '../../src/identity/dev-issuer.js';
import { createAuthenticator } from '../../src/identity/verifier.js';
import { WardenError } from '../../src/core/errors.js';
import { expectRefused, identityConfig } from './helpers.js';
import { captureLogs } from '../support/logs.js';

const PUBLIC_URL = 'http://127.0.0.1:8080';
let dataDir: string;

beforeEach(async () => {
  dataDir = join(await mkdtemp(join(tmpdir(), 'warden-dev-issuer-')), 'data');
});
afterEach(async () => {
  await rm(join(dataDir, '..'), { recursive: true, force: true });
});

function decode(token: string) {
  const [h, p] = token.split('.');
  return { header: JSON.parse(Buffer.from(h, 'base64url').toString()), payload: JSON.parse(Buffer.from(p, 'base64url').toString()) };
}

async function devAuth(identity: Record<string, unknown> = {}, now?: () => number) {
  const dev = await loadDevIssuer({ dataDir, publicUrl: PUBLIC_URL });
  const auth = await createAuthenticator(identityConfig({ dev_issuer: true, ...identity }), { devIssuer: dev, logger: captureLogs().logger, now });
  return { dev, auth };
}

describe('dev issuer key', () => {
  it('is created on first use with mode 0600 in a 0700 data dir, and reused afterwards', async () => {
    const a = await loadDevIssuer({ dataDir, publicUrl: PUBLIC_URL });
    const file = join(dataDir, DEV_ISSUER_KEY_FILE);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(dataDir)).mode & 0o777).toBe(0o700);
    const b = await loadDevIssuer({ dataDir, publicUrl: PUBLIC_URL });
    expect(b.kid).toBe(a.kid);
    const stored = JSON.parse(await readFile(file, 'utf8'));
    expect(stored).toMatchObject({ kty: 'EC', crv: 'P-256', kid: a.kid });
    expect(typeof stored.d).toBe('string');
  });

  it('concurrent first loads (cluster workers) agree on one key', async () => {
    const loaded = await Promise.all(Array.from({ length: 8 }, () => loadDevIssuer({ dataDir, publicUrl: PUBLIC_URL })));
    expect(new Set(loaded.map((d) => d.kid)).size).toBe(1);
  });

  it('tightens a key file that became group/world readable', async () => {
    await loadDevIssuer({ dataDir, publicUrl: PUBLIC_URL });
    const file = join(dataDir, DEV_ISSUER_KEY_FILE);
    await chmod(file, 0o644);
    await loadDevIssuer({ dataDir, publicUrl: PUBLIC_URL });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  it('publishes only the public key', async () => {
    const dev = await loadDevIssuer({ dataDir, publicUrl: PUBLIC_URL });
    const { keys } = dev.jwks();
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: dev.kid });
    expect(keys[0]).not.toHaveProperty('d');
  });

  it('refuses a corrupt key file with config_invalid', async () => {
    await loadDevIssuer({ dataDir, publicUrl: PUBLIC_URL });
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dataDir, DEV_ISSUER_KEY_FILE), '{"kty":"oct","k":"AAAA"}');
    await expect(loadDevIssuer({ dataDir, publicUrl: PUBLIC_URL })).rejects.toMatchObject({ code: 'config_invalid' });
  });
});

describe('dev tokens', () => {
  it('carry the RFC 9068 shape: typ at+jwt, iss, aud, sub, client_id, azp, scope, iat, exp, jti', async () => {
    const dev = await loadDevIssuer({ dataDir, publicUrl: `${PUBLIC_URL}/` });
    const token = await dev.issue({ agent: 'billing-bot', user: 'alice', scopes: ['read', 'github'], ttlSeconds: 120 });
    const { header, payload } = decode(token);
    expect(header).toEqual({ alg: 'ES256', typ: 'at+jwt', kid: dev.kid });
    expect(payload).toMatchObject({
      iss: `${PUBLIC_URL}/.warden/dev`,
      aud: PUBLIC_URL,
      sub: 'alice',
      client_id: 'billing-bot',
      azp: 'billing-bot',
      scope: 'read github',
    });
    expect(payload.exp - payload.iat).toBe(120);
    expect(typeof payload.jti).toBe('string');
    expect(devIssuerIdentity(`${PUBLIC_URL}/`)).toEqual({ issuer: `${PUBLIC_URL}/.warden/dev`, audience: PUBLIC_URL });
  });

  it('cannot override registered claims through extra claims', async () => {
    const dev = await loadDevIssuer({ dataDir, publicUrl: PUBLIC_URL });
    const token = await dev.issue({ agent: 'a', user: 'u', claims: { iss: 'https://evil', aud: 'x', exp: 1, sub: 'root', email: 'u@example.test' } });
    const { payload } = decode(token);
    expect(payload).toMatchObject({ iss: `${PUBLIC_URL}/.warden/dev`, aud: PUBLIC_URL, sub: 'u', email: 'u@example.test' });
    expect(payload.exp).toBeGreaterThan(Date.now() / 1000);
  });

  it('refuses bad input', async () => {
    const dev = await loadDevIssuer({ dataDir, publicUrl: PUBLIC_URL });
    await expect(dev.issue({ agent: '' })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(dev.issue({ agent: 'a', ttlSeconds: 0 })).rejects.toMatchObject({ code: 'bad_request' });
    await expect(dev.issue({ agent: 'a', ttlSeconds: 10 ** 9 })).rejects.toMatchObject({ code: 'bad_request' });
  });
});

describe('authenticator with the dev issuer', () => {
  it('accepts a user token and a machine token (user null)', async () => {
    const { dev, auth } = await devAuth();
    const p = await auth.authenticate(await dev.issue({ agent: 'billing-bot', user: 'alice', scopes: ['read'] }));
    expect(p).toMatchObject({ agent: 'billing-bot', user: 'alice', scopes: ['read'], issuer: dev.issuer, actors: [] });
    const m = await auth.authenticate(await dev.issue({ agent: 'billing-bot' }));
    expect(m.user).toBeNull();
    expect(m.scopes).toEqual([]);
  });

  it('maps an act delegation chain and scp', async () => {
    const { dev, auth } = await devAuth();
    const token = await dev.issue({ agent: 'a', user: 'u', claims: { scp: ['files', 'read'], act: { sub: 'planner', act: { sub: 'root-agent' } } } });
    const p = await auth.authenticate(token);
    expect(p.actors).toEqual(['planner', 'root-agent']);
    expect(p.scopes).toEqual(['files', 'read']);
    await expectRefused(auth.authenticate(await dev.issue({ agent: 'a', user: 'u', claims: { act: 'planner' } })), 'bad_claim');
  });

  it('does not trust dev tokens when dev_issuer is false, even if a dev issuer is passed', async () => {
    const dev = await loadDevIssuer({ dataDir, publicUrl: PUBLIC_URL });
    const auth = await createAuthenticator(identityConfig({ dev_issuer: false }), { devIssuer: dev, logger: captureLogs().logger });
    await expectRefused(auth.authenticate(await dev.issue({ agent: 'a', user: 'u' })), 'unknown_issuer');
  });

  it('refuses tokens of another dev key (a different data dir)', async () => {
    const { auth } = await devAuth();
    const other = await loadDevIssuer({ dataDir: join(dataDir, 'other'), publicUrl: PUBLIC_URL });
    await expectRefused(auth.authenticate(await other.issue({ agent: 'a', user: 'u' })), 'dev_key_mismatch');
  });

  it('is a config error when dev_issuer is on but no dev issuer was loaded', async () => {
    await expect(createAuthenticator(identityConfig({ dev_issuer: true }), { logger: captureLogs().logger })).rejects.toMatchObject({ code: 'config_invalid' });
  });

  it('refuses to build with NODE_ENV=production (authenticator and loader)', async () => {
    const dev = await loadDevIssuer({ dataDir, publicUrl: PUBLIC_URL });
    const saved = process.env.NODE_ENV;
    process.env.NODE_ENV = 'production';
    try {
      const err = await createAuthenticator(identityConfig({ dev_issuer: true }), { devIssuer: dev, logger: captureLogs().logger }).catch((e) => e);
      expect(err).toBeInstanceOf(WardenError);
      expect(err.code).toBe('config_invalid');
      await expect(loadDevIssuer({ dataDir, publicUrl: PUBLIC_URL })).rejects.toMatchObject({ code: 'config_invalid' });
      // Production without the dev issuer builds fine.
      await expect(createAuthenticator(identityConfig({ dev_issuer: false }), { logger: captureLogs().logger })).resolves.toBeTruthy();
    } finally {
      if (saved === undefined) delete process.env.NODE_ENV;
      else process.env.NODE_ENV = saved;
    }
  });

  it('refuses duplicate issuers, and a non-URL issuer without jwks_uri', async () => {
    const logger = captureLogs().logger;
    const twice = identityConfig({
      issuers: [
        { issuer: 'https://a.example', audience: 'x' },
        { issuer: 'https://a.example', audience: 'y' },
      ],
    });
    await expect(createAuthenticator(twice, { logger })).rejects.toMatchObject({ code: 'config_invalid' });
    await expect(createAuthenticator(identityConfig({ issuers: [{ issuer: 'urn:example:idp', audience: 'x' }] }), { logger })).rejects.toMatchObject({
      code: 'config_invalid',
    });
    await expect(
      createAuthenticator(identityConfig({ issuers: [{ issuer: 'urn:example:idp', audience: 'x', jwks_uri: 'http://127.0.0.1:1/jwks' }] }), { logger }),
    ).resolves.toBeTruthy();
  });

  it('refuses a configured issuer that collides with the dev issuer', async () => {
    const dev = await loadDevIssuer({ dataDir, publicUrl: PUBLIC_URL });
    const identity = identityConfig({ dev_issuer: true, issuers: [{ issuer: dev.issuer, audience: 'x', jwks_uri: 'http://127.0.0.1:1/jwks' }] });
    await expect(createAuthenticator(identity, { devIssuer: dev, logger: captureLogs().logger })).rejects.toMatchObject({ code: 'config_invalid' });
  });
});

describe('verified-token cache with an injected clock', () => {
  it('serves hits until exp and never at exp (tolerance 0)', async () => {
    let clock = Date.now();
    const { dev, auth } = await devAuth({ clock_tolerance: '0s' }, () => clock);
    const token = await dev.issue({ agent: 'a', user: 'u', ttlSeconds: 60 });
    // The issuer stamps iat from the real clock: read it again after issuing, or a second
    // boundary crossed in between makes the token "issued in the future" at tolerance 0.
    clock = Date.now();
    const first = await auth.authenticate(token);
    clock += 30_000;
    expect(await auth.authenticate(token)).toBe(first);
    expect(auth.stats()).toMatchObject({ cacheHits: 1, cacheMisses: 1, cacheSize: 1 });
    clock = first.expiresAt * 1000;
    await expectRefused(auth.authenticate(token), 'expired');
    expect(auth.stats()).toMatchObject({ cacheHits: 1, cacheMisses: 2, cacheSize: 0 });
  });

  it('with tolerance, a token just past exp is re-verified each time, never cached', async () => {
    let clock = Date.now();
    const { dev, auth } = await devAuth({ clock_tolerance: '30s' }, () => clock);
    const token = await dev.issue({ agent: 'a', user: 'u', ttlSeconds: 60 });
    const first = await auth.authenticate(token);
    clock = first.expiresAt * 1000 + 5_000;
    const again = await auth.authenticate(token);
    expect(again).not.toBe(first);
    await auth.authenticate(token);
    expect(auth.stats()).toMatchObject({ cacheHits: 0, cacheMisses: 3, cacheSize: 0 });
    clock = first.expiresAt * 1000 + 31_000;
    await expectRefused(auth.authenticate(token), 'expired');
  });

  it('is bounded by token_cache_size', async () => {
    const { dev, auth } = await devAuth({ token_cache_size: 2 });
    for (let i = 0; i < 5; i++) await auth.authenticate(await dev.issue({ agent: 'a', user: `u${i}` }));
    expect(auth.stats().cacheSize).toBe(2);
  });
});
