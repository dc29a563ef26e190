/**
 * Key rotation with overlap, through config reloads of a real Warden: a key is
 * published as `next` before it signs, the old one stays published as
 * `retiring` while its assertions can still be valid, and once removed its
 * assertions no longer verify. Also: the JWKS is served with the dev issuer
 * off, and the development key survives a restart.
 */

import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeJwt, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { startOidcProvider, type OidcTestProvider } from '../support/oidc.js';
import { DEV_ASSERTION_KEY_FILE } from '../../src/identity/assertion/keys.js';

const K1 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
const K2 = JSON.stringify(generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' }));
const ISSUER = 'https://warden.example/identity';

let idp: OidcTestProvider;
let upstream: Upstream;
let warden: WardenHandle;

function config(keys: string): string {
  return `
server:
  listen: 127.0.0.1:0
identity:
  issuers:
    - issuer: "${idp.issuer}"
      audience: https://warden.test
      algorithms: [RS256]
  assertion:
    issuer: ${ISSUER}
    keys:
${keys}
authz:
  model: test/assertion/fixtures/model.fga
routes:
  - name: r
    match: { path: "/**" }
    upstream: { url: "${upstream.url}" }
    authorize: []
    assertion: true
`;
}

beforeAll(async () => {
  idp = await startOidcProvider({ audience: 'https://warden.test' });
  upstream = await startUpstream();
  warden = await startWarden({
    env: { K1, K2 },
    config: config(`      - { id: k1, private_key: "\${K1}" }
      - { id: k2, private_key: '\${K2}', status: next }`),
  });
});

afterAll(async () => {
  await warden?.close();
  await upstream?.close();
  await idp?.stop();
});

const jwks = async () => (await (await fetch(`${warden.url}/.warden/jwks.json`)).json()) as { keys: JWK[] };

async function assertionFor(token: string): Promise<string> {
  const res = await fetch(`${warden.url}/x`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return String(upstream.requests.at(-1)!.headers['warden-identity']);
}

/** What an upstream does: verify against the key set Warden publishes now. */
async function verifiesNow(assertion: string): Promise<boolean> {
  try {
    await jwtVerify(assertion, createLocalJWKSet(await jwks()), {
      issuer: ISSUER,
      audience: upstream.url,
      typ: 'warden-identity+jwt',
      algorithms: ['ES256', 'EdDSA'],
    });
    return true;
  } catch {
    return false;
  }
}

describe('assertion key rotation', () => {
  it('next → active → retiring → removed, with every published key in the JWKS (dev issuer off)', async () => {
    const token = await idp.clientCredentialsToken(idp.clients.machine.client_id, 'read');

    // 1. k1 signs; k2 is published before it signs.
    expect((await jwks()).keys.map((k) => [k.kid, k.alg])).toEqual([
      ['k1', 'ES256'],
      ['k2', 'EdDSA'],
    ]);
    for (const k of (await jwks()).keys) expect(k).not.toHaveProperty('d');
    const old = await assertionFor(token);
    expect(decodeProtectedHeader(old)).toMatchObject({ kid: 'k1', alg: 'ES256' });
    expect(decodeJwt(old).iss).toBe(ISSUER);
    expect(await verifiesNow(old)).toBe(true);

    // 2. k2 takes over; k1 stays published while its assertions may be valid.
    expect(
      await warden.reload(
        config(`      - { id: k2, private_key: '\${K2}' }
      - { id: k1, private_key: "\${K1}", status: retiring }`),
      ),
    ).toBe(true);
    const fresh = await assertionFor(token);
    expect(decodeProtectedHeader(fresh)).toMatchObject({ kid: 'k2', alg: 'EdDSA' });
    expect((await jwks()).keys.map((k) => k.kid).sort()).toEqual(['k1', 'k2']);
    expect(await verifiesNow(old)).toBe(true);
    expect(await verifiesNow(fresh)).toBe(true);

    // 3. After the ttl, k1 goes: its assertions no longer verify, k2's do.
    expect(await warden.reload(config(`      - { id: k2, private_key: '\${K2}' }`))).toBe(true);
    expect((await jwks()).keys.map((k) => k.kid)).toEqual(['k2']);
    expect(await verifiesNow(old)).toBe(false);
    expect(await verifiesNow(fresh)).toBe(true);
  });

  it('a reload with a bad key is refused and the running keys stay', async () => {
    const before = (await jwks()).keys.map((k) => k.kid);
    expect(await warden.reload(config(`      - { id: k3, private_key: "not a key" }`))).toBe(false);
    expect((await jwks()).keys.map((k) => k.kid)).toEqual(before);
  });
});

describe('the development key', () => {
  it('is generated once in the data dir (0600) and reused after a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'warden-assertion-'));
    const yaml = `
server:
  listen: 127.0.0.1:0
identity:
  dev_issuer: true
authz:
  model: test/assertion/fixtures/model.fga
routes:
  - name: r
    match: { path: "/**" }
    upstream: { url: "${upstream.url}" }
    authorize: []
    assertion: true
`;
    try {
      const kids: string[][] = [];
      for (let i = 0; i < 2; i++) {
        const w = await startWarden({ config: yaml, dataDir });
        try {
          kids.push(((await (await fetch(`${w.url}/.warden/jwks.json`)).json()) as { keys: JWK[] }).keys.map((k) => String(k.kid)));
        } finally {
          await w.close();
        }
      }
      // The dev issuer's key and the assertion key: two different keys, both kept.
      expect(kids[0]).toHaveLength(2);
      expect(new Set(kids[0]).size).toBe(2);
      expect(kids[1]).toEqual(kids[0]);
      expect(statSync(join(dataDir, DEV_ASSERTION_KEY_FILE)).mode & 0o777).toBe(0o600);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
