/**
 * `identity.assertion` and route `assertion:` are checked at load: every
 * problem is a config error with its YAML path, never a per-request failure.
 */

import { generateKeyPairSync } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/issues.js';
import { parseConfig } from '../../src/gateway/config.js';

const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
const ed = generateKeyPairSync('ed25519').privateKey;
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;

const ENV = {
  EC_PEM: ec.export({ format: 'pem', type: 'pkcs8' }) as string,
  EC_SEC1: ec.export({ format: 'pem', type: 'sec1' }) as string,
  EC_JWK: JSON.stringify(ec.export({ format: 'jwk' })),
  ED_PEM: ed.export({ format: 'pem', type: 'pkcs8' }) as string,
  RSA_PEM: rsa.export({ format: 'pem', type: 'pkcs8' }) as string,
  P384_PEM: p384.export({ format: 'pem', type: 'pkcs8' }) as string,
  EC_PUBLIC: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'pem', type: 'spki' }) as string,
  OCT_JWK: JSON.stringify({ kty: 'oct', k: 'c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA', alg: 'HS256' }),
  BAD_JSON: '{"kty":"EC","d":"sensitive-bytes-here',
};

function load(yaml: string, env: Record<string, string> = {}) {
  return parseConfig(yaml, { env: { ...ENV, ...env }, baseDir: process.cwd() });
}

function issues(yaml: string, env: Record<string, string> = {}): Array<{ path: string; message: string }> {
  try {
    load(yaml, env);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  return [];
}

const ROUTE = `
routes:
  - name: r
    match: { path: "/r/**" }
    upstream: { url: "http://127.0.0.1:9" }
    authorize: []
    assertion: true
`;

describe('identity.assertion keys', () => {
  it('accepts PEM (PKCS#8 and SEC1) and JWK keys, ES256 and EdDSA, with one active and others next or retiring', () => {
    const cfg = load(`
identity:
  dev_issuer: true
  assertion:
    ttl: 30s
    keys:
      - { id: a1, private_key: "\${EC_PEM}" }
      - { id: a2, private_key: "\${EC_SEC1}", status: retiring }
      - { id: a3, private_key: '\${EC_JWK}', status: next }
      - { id: a4, private_key: "\${ED_PEM}", alg: EdDSA, status: next }
${ROUTE}`);
    expect(cfg.config.identity.assertion.keys.map((k) => k.status)).toEqual(['active', 'retiring', 'next', 'next']);
    expect(cfg.config.identity.assertion.ttl).toBe(30_000);
  });

  it('refuses HS*, oct, RSA, P-384, public and malformed keys, each at its path, without echoing key material', () => {
    const found = issues(`
identity:
  dev_issuer: true
  assertion:
    keys:
      - { id: a1, private_key: "\${EC_PEM}", alg: HS256 }
      - { id: a2, private_key: '\${OCT_JWK}', status: next }
      - { id: a3, private_key: "\${RSA_PEM}", status: next }
      - { id: a4, private_key: "\${P384_PEM}", status: next }
      - { id: a5, private_key: "\${EC_PUBLIC}", status: next }
      - { id: a6, private_key: '\${BAD_JSON}', status: next }
      - { id: a7, private_key: "not a key", status: next }
      - { id: a8, private_key: "\${ED_PEM}", alg: ES256, status: next }
${ROUTE}`);
    const at = (i: number) => found.filter((f) => f.path.startsWith(`identity.assertion.keys[${i}]`));
    expect(at(0)[0]).toMatchObject({ path: 'identity.assertion.keys[0].alg', message: expect.stringContaining('shared-secret') });
    expect(at(1)[0].message).toContain('symmetric');
    expect(at(2)[0].message).toContain('rsa keys are not supported');
    expect(at(3)[0].message).toContain('P-256');
    expect(at(4)[0].message).toContain('public key');
    expect(at(5)[0].message).toContain('not valid JSON');
    expect(at(6)[0].message).toContain('PEM private key or a private JWK');
    expect(at(7)[0]).toMatchObject({ path: 'identity.assertion.keys[7].alg', message: expect.stringContaining('EdDSA') });
    expect(JSON.stringify(found)).not.toContain('sensitive-bytes');
  });

  it('needs exactly one active key, unique ids, and ttl of at most 60s', () => {
    const found = issues(`
identity:
  dev_issuer: true
  assertion:
    ttl: 61s
    keys:
      - { id: a1, private_key: "\${EC_PEM}", status: next }
      - { id: a1, private_key: "\${ED_PEM}", status: retiring }
${ROUTE}`);
    expect(found).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'identity.assertion.ttl', message: expect.stringContaining('at most 60s') }),
        expect.objectContaining({ path: 'identity.assertion.keys[1].id', message: expect.stringContaining('duplicate') }),
        expect.objectContaining({ path: 'identity.assertion.keys', message: expect.stringContaining('exactly one key') }),
      ]),
    );
    const two = issues(`
identity:
  dev_issuer: true
  assertion:
    keys: [{ id: a1, private_key: "\${EC_PEM}" }, { id: a2, private_key: "\${ED_PEM}" }]
${ROUTE}`);
    expect(two).toEqual([expect.objectContaining({ path: 'identity.assertion.keys', message: expect.stringContaining('found 2') })]);
  });

  it('in production a route with assertions needs configured keys (no generated key)', () => {
    const yaml = `
identity:
  issuers: [{ issuer: "https://idp.example", audience: warden }]
${ROUTE}`;
    expect(issues(yaml, { NODE_ENV: 'production' })).toEqual([
      expect.objectContaining({ path: 'identity.assertion.keys', message: expect.stringContaining('production') }),
    ]);
    expect(issues(yaml)).toEqual([]);
  });

  it('refuses unknown keys in the block', () => {
    expect(
      issues(`
identity:
  dev_issuer: true
  assertion: { ttl: 10s, lifetime: 5s }
`),
    ).toEqual([expect.objectContaining({ path: 'identity.assertion.lifetime', message: 'unknown key' })]);
  });
});

describe('route and tool assertion settings', () => {
  it('refuses Authorization beside another credential, headers Warden owns, public routes and reserved mapped claims', () => {
    const found = issues(`
identity:
  dev_issuer: true
vault:
  keys: [{ id: k1, key: "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=" }]
  providers:
    gh: { authorization_url: "https://gh.example/a", token_url: "https://gh.example/t", client_id: c }
routes:
  - name: vaulted
    match: { path: "/v/**" }
    upstream: { url: "http://127.0.0.1:9" }
    authorize: []
    credentials: { vault: gh }
    assertion: { header: Authorization }
  - name: owned
    match: { path: "/o/**" }
    upstream: { url: "http://127.0.0.1:9" }
    authorize: []
    assertion: { header: X-Forwarded-For }
  - name: open
    match: { path: "/p/**" }
    upstream: { url: "http://127.0.0.1:9" }
    public: true
    assertion: true
  - name: mapped
    match: { path: "/m/**" }
    upstream: { url: "http://127.0.0.1:9" }
    authorize: []
    assertion: { claims: { sub: email, tenant: org } }
  - name: keyed
    match: { path: "/k/**" }
    upstream: { url: "http://127.0.0.1:9" }
    authorize: []
    credentials: { header: { name: X-Identity, value: v } }
    assertion: { header: x-identity }
  - name: tools
    match: { path: "/mcp" }
    upstream: { url: "http://127.0.0.1:9" }
    authorize: []
    credentials: { header: { name: X-Api-Key, value: v } }
    mcp:
      tools:
        read: { assertion: { header: Authorization } }
`);
    expect(found).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'routes[0].assertion.header', message: expect.stringContaining('vault credential') }),
        expect.objectContaining({ path: 'routes[1].assertion.header', message: expect.stringContaining('Warden manages') }),
        expect.objectContaining({ path: 'routes[2].assertion', message: expect.stringContaining('public route') }),
        expect.objectContaining({ path: 'routes[3].assertion.claims.sub', message: expect.stringContaining('set by Warden') }),
        expect.objectContaining({ path: 'routes[4].assertion.header', message: expect.stringContaining('X-Identity') }),
        expect.objectContaining({ path: 'routes[5].mcp.tools.read.assertion.header', message: expect.stringContaining('header credential') }),
      ]),
    );
    expect(found).toHaveLength(6);
  });

  it('refuses a static header or header credential named like an assertion header', () => {
    const found = issues(`
identity:
  dev_issuer: true
routes:
  - name: a
    match: { path: "/a/**" }
    upstream: { url: "http://127.0.0.1:9", headers: { warden-identity: "static", X-Who: "static" } }
    authorize: []
    assertion: { header: X-Who }
  - name: b
    match: { path: "/b/**" }
    upstream: { url: "http://127.0.0.1:9" }
    authorize: []
    credentials: { header: { name: Warden-Identity, value: "static" } }
`);
    expect(found).toEqual([
      expect.objectContaining({ path: 'routes[0].upstream.headers.warden-identity', message: expect.stringContaining('identity assertion') }),
      expect.objectContaining({ path: 'routes[0].upstream.headers.X-Who', message: expect.stringContaining('identity assertion') }),
      expect.objectContaining({ path: 'routes[1].credentials.header.name', message: expect.stringContaining('identity assertion') }),
    ]);
  });

  it('accepts true, false and the object form on routes and tools', () => {
    const cfg = load(`
identity:
  dev_issuer: true
routes:
  - name: a
    match: { path: "/a/**" }
    upstream: { url: "http://127.0.0.1:9" }
    authorize: []
    assertion: { header: X-Who, audience: "https://a.internal", claims: [email], authz: true }
  - name: m
    match: { path: "/mcp" }
    upstream: { url: "http://127.0.0.1:9" }
    authorize: []
    assertion: true
    mcp: { tools: { quiet: { assertion: false }, loud: { assertion: { header: Authorization } } } }
`);
    expect(cfg.config.routes[0].assertion).toEqual({ header: 'X-Who', audience: 'https://a.internal', claims: ['email'], authz: true });
    expect(cfg.config.routes[1].mcp?.tools.quiet.assertion).toBe(false);
  });
});
