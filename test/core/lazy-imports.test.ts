/**
 * What a serving Warden keeps resident (#17, peak RSS of G3 ≤ 120 MB): modules
 * a configuration never uses are not loaded. The built CLI runs with a module
 * resolve hook that writes every URL it loads to a file; the gateway serves a
 * request through the chain (token, check, forward) first.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { randomBytes } from 'node:crypto';
import { REPO_ROOT } from '../support/gateway.js';
import { CLI, requireBuiltCli, runCli } from '../support/cli.js';
import { freePort } from '../support/net.js';
import { spawnService, type Service } from '../support/processes.js';
import { WARDEN_NODE_FLAGS } from '../../src/cli/node-flags.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

let dir: string;
let upstream: Upstream;
let warden: Service | undefined;
let loaded: string[] = [];

beforeAll(async () => {
  requireBuiltCli();
  dir = mkdtempSync(join(tmpdir(), 'warden-lazy-'));
  upstream = await startUpstream();
  const log = join(dir, 'modules.log');
  writeFileSync(
    join(dir, 'hooks.mjs'),
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(${JSON.stringify(log)}, r.url + '\\n');
  return r;
}
`,
  );
  // CommonJS require() calls (undici, web-push are CommonJS) do not pass the ESM hook: log them too.
  writeFileSync(
    join(dir, 'require-log.cjs'),
    `const Module = require('node:module'); const { appendFileSync } = require('node:fs');
const load = Module._load;
Module._load = function (request, parent) {
  try { appendFileSync(${JSON.stringify(log)}, 'file://' + Module._resolveFilename(request, parent) + '\\n'); } catch {}
  return load.apply(this, arguments);
};
`,
  );
  writeFileSync(
    join(dir, 'register.mjs'),
    `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});\n`,
  );
  const port = await freePort();
  const file = join(dir, 'gateway.yaml');
  // The bench's G3 shape: dev issuer, embedded check, a vault; no approvals, push, mail, OpenFGA server or tracing.
  writeFileSync(
    file,
    `server: { listen: 127.0.0.1:${port}, admin_listen: null }
identity: { dev_issuer: true }
authz: { model: ${join(REPO_ROOT, 'test/core/fixtures/model.fga')}, tuples: ${join(REPO_ROOT, 'test/core/fixtures/tuples.yaml')} }
vault:
  keys: [{ id: k1, key: "${randomBytes(32).toString('base64')}" }]
  providers:
    p: { authorization_url: "http://127.0.0.1:9/authorize", token_url: "http://127.0.0.1:9/token", client_id: c, scopes: [] }
routes:
  - name: docs
    match: { path: /docs/:doc }
    upstream: { url: "${upstream.url}" }
    authorize:
      - { user: "user:{user}", relation: can_read, object: "doc:{path.doc}" }
`,
  );
  const env = { ...process.env, WARDEN_DATA_DIR: join(dir, 'data'), WARDEN_LOG_LEVEL: 'warn' };
  const url = `http://127.0.0.1:${port}`;
  warden = await spawnService(
    'warden',
    process.execPath,
    [...WARDEN_NODE_FLAGS, '--require', join(dir, 'require-log.cjs'), '--import', join(dir, 'register.mjs'), CLI, 'start', '-c', file],
    {
      env,
      ready: async () => (await fetch(`${url}/.warden/readyz`, { signal: AbortSignal.timeout(1_000) })).status === 200,
    },
  );
  const token = (await runCli(['token', '--agent', 'bot', '--user', 'alice', '-c', file], { cwd: dir, env })).stdout.trim();
  const res = await fetch(`${url}/docs/1`, { headers: { authorization: `Bearer ${token}` } });
  await res.arrayBuffer();
  expect(res.status).toBe(200);
  loaded = [...new Set(readFileSync(log, 'utf8').split('\n').filter(Boolean))];
}, 60_000);

afterAll(async () => {
  await warden?.stop();
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

const has = (part: string) => loaded.some((u) => u.includes(part));

describe('modules a gateway does not use stay unloaded (#17)', () => {
  it('forwards with undici Pool alone, not the whole of undici', () => {
    expect(has('/node_modules/undici/lib/dispatcher/pool.js')).toBe(true);
    expect(loaded.filter((u) => /\/node_modules\/undici\/index\.js$/.test(u))).toEqual([]);
  });

  it('loads no web push library without a push notification', () => {
    expect(loaded.filter((u) => u.includes('/node_modules/web-push/'))).toEqual([]);
  });
});
