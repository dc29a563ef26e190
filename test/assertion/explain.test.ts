/** `warden explain` says which identity assertion the upstream would get (and signs nothing). */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { explain, formatTrace } from '../../src/cli/explain.js';
import { loadDevIssuer } from '../../src/identity/dev-issuer.js';
import { REPO_ROOT } from '../support/gateway.js';

let dir: string;
let priorDataDir: string | undefined;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-explain-'));
  priorDataDir = process.env.WARDEN_DATA_DIR;
  process.env.WARDEN_DATA_DIR = dir;
  writeFileSync(
    join(dir, 'gateway.yaml'),
    `
server: { listen: "127.0.0.1:8080" }
identity: { dev_issuer: true }
authz: { model: ${join(REPO_ROOT, 'test/assertion/fixtures/model.fga')} }
routes:
  - name: signed
    match: { path: "/signed/**" }
    upstream: { url: "http://127.0.0.1:9" }
    authorize: []
    assertion: { header: X-Who, audience: "https://who.internal", claims: [email], authz: true }
  - name: plain
    match: { path: "/plain/**" }
    upstream: { url: "http://127.0.0.1:9" }
    authorize: []
`,
  );
});
afterAll(() => {
  if (priorDataDir === undefined) delete process.env.WARDEN_DATA_DIR;
  else process.env.WARDEN_DATA_DIR = priorDataDir;
  rmSync(dir, { recursive: true, force: true });
});

describe('explain and assertions', () => {
  it('names the header, audience and extra claims on a route with assertion:, nothing elsewhere', async () => {
    const issuer = await loadDevIssuer({ dataDir: dir, publicUrl: 'http://127.0.0.1:8080' });
    const token = await issuer.issue({ agent: 'bot', user: 'alice' });
    const signed = await explain({ configFile: join(dir, 'gateway.yaml'), token, method: 'GET', target: '/signed/x', headers: [] });
    expect(signed.decision).toBe('allow');
    expect(signed.assertion).toEqual({ header: 'X-Who', audience: 'https://who.internal', claims: ['email', 'authz'] });
    expect(formatTrace(signed)).toContain('assertion   X-Who: signed identity for aud=https://who.internal (+ email authz)');
    const plain = await explain({ configFile: join(dir, 'gateway.yaml'), token, method: 'GET', target: '/plain/x', headers: [] });
    expect(plain.assertion).toBeUndefined();
    expect(formatTrace(plain)).not.toContain('assertion');
  });
});
