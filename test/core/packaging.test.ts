/**
 * What the container image and deploy/ rely on, checked with the built CLI:
 * listen addresses from the environment, the health probe the Dockerfile's
 * HEALTHCHECK runs, the production config naming every variable it misses,
 * and the repository's packaging files.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { REPO_ROOT } from '../support/gateway.js';
import { parseConfig } from '../../src/config/load.js';
import { WARDEN_NODE_FLAGS } from '../../src/cli/node-flags.js';

const run = promisify(execFile);
const CLI = join(REPO_ROOT, 'dist/src/cli.js');
const HEALTHCHECK = join(REPO_ROOT, 'dist/src/healthcheck.js');
let dir: string;

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as { port: number }).port;
  await new Promise((r) => srv.close(r));
  return port;
}

async function node(args: string[], env: Record<string, string | undefined> = {}) {
  try {
    const { stdout, stderr } = await run(process.execPath, args, {
      cwd: dir,
      env: { ...process.env, WARDEN_DATA_DIR: join(dir, 'data'), ...env },
      timeout: 20_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const minimal = (listen: string) => `
server:
  listen: ${listen}
  admin_listen: null
identity: { dev_issuer: true }
authz: { model: ${join(REPO_ROOT, 'policies/model.fga')} }
routes: []
`;

beforeAll(() => {
  for (const f of [CLI, HEALTHCHECK]) if (!existsSync(f)) throw new Error(`${f} is missing: run \`npm run build\` (npm test does this first)`);
  dir = mkdtempSync(join(tmpdir(), 'warden-packaging-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('listen addresses from the environment', () => {
  it('WARDEN_LISTEN and WARDEN_ADMIN_LISTEN replace server.listen and server.admin_listen', () => {
    const env = { WARDEN_LISTEN: '0.0.0.0:8443', WARDEN_ADMIN_LISTEN: '127.0.0.1:9443' };
    const { config } = parseConfig(minimal('127.0.0.1:8080'), { env, baseDir: REPO_ROOT });
    expect(config.server.listen).toBe('0.0.0.0:8443');
    expect(config.server.admin_listen).toBe('127.0.0.1:9443');
  });

  it('WARDEN_ADMIN_LISTEN=off turns the admin listener off; unset variables change nothing', () => {
    expect(parseConfig(minimal('127.0.0.1:8080'), { env: { WARDEN_ADMIN_LISTEN: 'off' }, baseDir: REPO_ROOT }).config.server.admin_listen).toBeNull();
    const { config } = parseConfig(minimal('127.0.0.1:8080').replace('admin_listen: null', 'admin_listen: 127.0.0.1:9091'), { env: {}, baseDir: REPO_ROOT });
    expect(config.server.listen).toBe('127.0.0.1:8080');
    expect(config.server.admin_listen).toBe('127.0.0.1:9091');
  });

  it('a malformed value is a config error naming the variable, never ignored', () => {
    expect(() => parseConfig(minimal('127.0.0.1:8080'), { env: { WARDEN_LISTEN: '8080' }, baseDir: REPO_ROOT })).toThrow(
      /server\.listen: WARDEN_LISTEN must be host:port \(got "8080"\)/,
    );
  });

  it('a started Warden serves on WARDEN_LISTEN, and the image health probe sees it', async () => {
    const [filePort, envPort] = [await freePort(), await freePort()];
    writeFileSync(join(dir, 'listen.yaml'), minimal(`127.0.0.1:${filePort}`));
    const child: ChildProcess = spawn(process.execPath, [CLI, 'start', '-c', 'listen.yaml'], {
      cwd: dir,
      env: { ...process.env, WARDEN_DATA_DIR: join(dir, 'data'), WARDEN_LISTEN: `127.0.0.1:${envPort}`, WARDEN_LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
    try {
      let up = false;
      for (let i = 0; i < 100 && !up; i++) {
        up = await fetch(`http://127.0.0.1:${envPort}/.warden/healthz`).then(
          (r) => r.ok,
          () => false,
        );
        if (!up) await new Promise((r) => setTimeout(r, 100));
      }
      expect(up).toBe(true);
      await expect(fetch(`http://127.0.0.1:${filePort}/.warden/healthz`)).rejects.toThrow();
      // The Dockerfile's HEALTHCHECK: 0 when healthz answers 200 on WARDEN_LISTEN (0.0.0.0 is probed on loopback) …
      expect((await node([HEALTHCHECK], { WARDEN_LISTEN: `127.0.0.1:${envPort}` })).code).toBe(0);
      // … 1 with the reason when nothing answers.
      const down = await node([HEALTHCHECK], { WARDEN_LISTEN: `0.0.0.0:${filePort}` });
      expect(down.code).toBe(1);
      expect(down.stderr).toContain(`http://127.0.0.1:${filePort}/.warden/healthz`);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    }
  });
});

describe('deploy/gateway.yaml (the image default)', () => {
  it('without its environment, start-up names every missing variable once and exits 1', async () => {
    const env: Record<string, string | undefined> = {};
    for (const k of Object.keys(process.env)) if (/^(WARDEN_|REDIS_|OIDC_|FGA_|VAULT_|APPROVAL_|NOTES_|MCP_)/.test(k)) env[k] = undefined;
    const r = await node([CLI, 'start', '-c', join(REPO_ROOT, 'deploy/gateway.yaml')], { ...env, NODE_ENV: 'production', WARDEN_DATA_DIR: join(dir, 'data') });
    expect(r.code).toBe(1);
    const text = readFileSync(join(REPO_ROOT, 'deploy/gateway.yaml'), 'utf8');
    const required = new Set([...text.matchAll(/\$\{([A-Z0-9_]+)\}/g)].map((m) => m[1]));
    expect(required.size).toBeGreaterThan(10);
    for (const name of required) expect(r.stderr).toContain(`environment variable ${name} is not set`);
  });

  it('compose passes every variable the config needs to both replicas, and points them at deploy/gateway.yaml', () => {
    const compose = parseYaml(readFileSync(join(REPO_ROOT, 'deploy/compose.yaml'), 'utf8'), { merge: true }) as {
      services: Record<string, { environment?: Record<string, string>; image?: string; command?: string[] }>;
    };
    const text = readFileSync(join(REPO_ROOT, 'deploy/gateway.yaml'), 'utf8');
    const needed = [...text.matchAll(/\$\{([A-Z0-9_]+)(?::-[^}]*)?\}/g)].filter((m) => !m[0].includes(':-')).map((m) => m[1]);
    for (const name of ['warden-1', 'warden-2']) {
      const env = compose.services[name].environment ?? {};
      for (const v of needed) expect(Object.keys(env), `${name} lacks ${v}`).toContain(v);
      expect(env.WARDEN_CONFIG).toBe('/app/deploy/gateway.yaml');
    }
    expect(compose.services['openfga-migrate'].command).toEqual(['migrate']);
    expect(compose.services.openfga.command).toEqual(['run']);
    const envExample = readFileSync(join(REPO_ROOT, 'deploy/.env.example'), 'utf8');
    const composeText = readFileSync(join(REPO_ROOT, 'deploy/compose.yaml'), 'utf8');
    for (const m of composeText.matchAll(/\$\{([A-Z0-9_]+)/g)) expect(envExample, `deploy/.env.example lacks ${m[1]}`).toMatch(new RegExp(`^${m[1]}=`, 'm'));
  });

  it('nginx.conf balances over two replicas with upstream keep-alive and no response buffering', () => {
    const conf = readFileSync(join(REPO_ROOT, 'deploy/nginx.conf'), 'utf8');
    expect(conf.match(/^\s*server warden-\d:8080\b/gm)).toHaveLength(2);
    expect(conf).toMatch(/proxy_buffering off;/);
    expect(conf).toMatch(/keepalive \d+;/);
  });
});

describe('repository packaging', () => {
  it('LICENSE is the Apache-2.0 text package.json declares; the Dockerfile runs non-root with a HEALTHCHECK', () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { license: string; engines: { node: string } };
    expect(pkg.license).toBe('Apache-2.0');
    const license = readFileSync(join(REPO_ROOT, 'LICENSE'), 'utf8');
    expect(license).toContain('Apache License');
    expect(license).toContain('Version 2.0, January 2004');
    expect(license).toContain('END OF TERMS AND CONDITIONS');
    const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\n?.*healthcheck\.js/m);
    // The image runs node with Warden's V8 flags itself (#17), the same as the bin's shebang: no relay.
    const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1] ?? '[]') as string[];
    expect(entrypoint).toEqual(['node', ...WARDEN_NODE_FLAGS, 'dist/src/cli.js']);
    const shebang = readFileSync(join(REPO_ROOT, 'src/cli.ts'), 'utf8').split('\n')[0];
    expect(shebang).toBe(`#!/usr/bin/env -S node ${WARDEN_NODE_FLAGS.join(' ')}`);
    // The image's Node major must satisfy the engines range CI also holds Node 20 to.
    const major = Number(/NODE_IMAGE=node:(\d+)-/.exec(dockerfile)?.[1]);
    const floor = Number(/>=(\d+)\./.exec(pkg.engines.node)?.[1]);
    expect(major).toBeGreaterThanOrEqual(floor);
    expect(existsSync(join(REPO_ROOT, 'hpsum.mjs'))).toBe(false);
    expect(readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')).toMatch(/^node_modules$/m);
  });
});
