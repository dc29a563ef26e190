/**
 * The `warden` CLI as a user runs it: the built binary in a child process.
 * (`npm test` builds first.)
 */

import { vapidKeyIssue } from '../../src/approvals/push/vapid.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { REPO_ROOT } from '../support/gateway.js';
import { CLI, requireBuiltCli, runCli } from '../support/cli.js';
import { freePort } from '../support/net.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { WARDEN_NODE_FLAGS } from '../../src/cli/node-flags.js';

let dir: string;
let upstream: Upstream;

function warden(args: string[], env: Record<string, string> = {}) {
  return runCli(args, { cwd: dir, env: { ...process.env, WARDEN_DATA_DIR: join(dir, 'data'), ...env } });
}

const model = join(REPO_ROOT, 'test/core/fixtures/model.fga');
const tuples = join(REPO_ROOT, 'test/core/fixtures/tuples.yaml');
const goodConfig = (port: number, up: string) => `
server:
  listen: 127.0.0.1:${port}
  admin_listen: null
  shutdown_timeout: 10s
identity: { dev_issuer: true }
authz: { model: ${model}, tuples: ${tuples} }
routes:
  - name: docs
    match: { path: /docs/:doc }
    upstream: { url: "${up}" }
    authorize:
      - { user: "user:{user}", relation: can_read, object: "doc:{path.doc}" }
`;

beforeAll(async () => {
  requireBuiltCli();
  dir = mkdtempSync(join(tmpdir(), 'warden-cli-'));
  upstream = await startUpstream();
});
afterAll(async () => {
  await upstream?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('warden validate', () => {
  it('exits 0 for a valid config', async () => {
    writeFileSync(join(dir, 'ok.yaml'), goodConfig(18080, upstream.url));
    const r = await warden(['validate', '-c', 'ok.yaml']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('OK');
  });

  it('reports every problem at once, each with its YAML path and line, and exits 1', async () => {
    writeFileSync(
      join(dir, 'bad.yaml'),
      [
        'server:',
        '  listen: 127.0.0.1:8080',
        '  colour: blue', // line 3: unknown key
        'identity: { dev_issuer: true }',
        `authz: { model: ${model} }`,
        'routes:',
        '  - name: a',
        '    match: { path: /a/** }',
        '    upstream: { url: "${UNSET_WARDEN_TEST_VAR}" }', // line 9: missing variable
        '    authorize: []',
        '  - name: b',
        '    match: { path: /b }',
        '    upstream: { url: "http://127.0.0.1:1" }', // route b says neither authorize nor public
        '  - name: c',
        '    match: { path: /c/:id }',
        '    upstream: { url: "http://127.0.0.1:1" }',
        '    authorize:',
        '      - { user: "user:{user}", relation: can_fly, object: "doc:{path.id}" }', // unknown relation
      ].join('\n'),
    );
    const r = await warden(['validate', '-c', 'bad.yaml']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('server.colour (line 3): unknown key');
    expect(r.stderr).toContain('routes[0].upstream.url (line 9): environment variable UNSET_WARDEN_TEST_VAR is not set');
    // Substitution problems are reported first; fix them and the rest shows up.
    writeFileSync(
      join(dir, 'bad2.yaml'),
      (await import('node:fs'))
        .readFileSync(join(dir, 'bad.yaml'), 'utf8')
        .replace('${UNSET_WARDEN_TEST_VAR}', 'http://127.0.0.1:1')
        .replace('  colour: blue\n', ''),
    );
    const r2 = await warden(['validate', '-c', 'bad2.yaml']);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(/routes\[1\] \(line \d+\): must say authorize: \(a list, possibly \[\]\) or public: true/);
    writeFileSync(
      join(dir, 'bad3.yaml'),
      (await import('node:fs'))
        .readFileSync(join(dir, 'bad2.yaml'), 'utf8')
        .replace('    upstream: { url: "http://127.0.0.1:1" }\n  - name: c', '    upstream: { url: "http://127.0.0.1:1" }\n    public: true\n  - name: c'),
    );
    const r3 = await warden(['validate', '-c', 'bad3.yaml']);
    expect(r3.code).toBe(1);
    expect(r3.stderr).toMatch(/routes\[2\]\.authorize\[0\]\.relation \(line 18\): type doc has no relation can_fly/);
  });

  it('fails clearly for a missing file', async () => {
    const r = await warden(['validate', '-c', 'nope.yaml']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('cannot read');
  });
});

describe('warden token / keygen / explain', () => {
  it('token prints the JWT alone on stdout', async () => {
    writeFileSync(join(dir, 'ok.yaml'), goodConfig(18080, upstream.url));
    const r = await warden(['token', '--agent', 'bot', '--user', 'alice', '--scope', 'a b', '--ttl', '10m', '-c', 'ok.yaml']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^eyJ[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const payload = JSON.parse(Buffer.from(r.stdout.split('.')[1], 'base64url').toString());
    expect(payload).toMatchObject({ sub: 'alice', azp: 'bot', client_id: 'bot', scope: 'a b', aud: 'http://127.0.0.1:18080' });
    expect(payload.exp - payload.iat).toBe(600);
  });

  it('keygen prints a 32-byte base64 key', async () => {
    const r = await warden(['keygen']);
    expect(r.code).toBe(0);
    expect(Buffer.from(r.stdout.trim(), 'base64')).toHaveLength(32);
  });

  it('keygen --vapid prints a VAPID pair (P-256, base64url) as environment lines', async () => {
    const r = await warden(['keygen', '--vapid']);
    expect(r.code).toBe(0);
    const m = /^WARDEN_VAPID_PUBLIC_KEY=([\w-]+)\nWARDEN_VAPID_PRIVATE_KEY=([\w-]+)\n$/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(Buffer.from(m![1], 'base64url')).toHaveLength(65);
    expect(Buffer.from(m![2], 'base64url')).toHaveLength(32);
    expect(vapidKeyIssue(m![1], m![2])).toBeNull();
  });

  it('explain shows route, identity, each check and the decision, without forwarding', async () => {
    writeFileSync(join(dir, 'ok.yaml'), goodConfig(18080, upstream.url));
    const token = (await warden(['token', '--agent', 'bot', '--user', 'alice', '-c', 'ok.yaml'])).stdout.trim();
    upstream.requests.length = 0;
    const allow = await warden(['explain', '-c', 'ok.yaml', '--token', token, '/docs/1']);
    expect(allow.code).toBe(0);
    expect(allow.stdout).toMatch(/route\s+docs/);
    expect(allow.stdout).toMatch(/identity\s+agent=bot user=alice/);
    expect(allow.stdout).toContain('ALLOW user:alice can_read doc:1');
    expect(allow.stdout).toMatch(/decision\s+ALLOW/);
    const deny = await warden(['explain', '-c', 'ok.yaml', '--token', token, '/docs/2']);
    expect(deny.code).toBe(1);
    expect(deny.stdout).toContain('DENY  user:alice can_read doc:2');
    expect(deny.stdout).toMatch(/decision\s+DENY — forbidden/);
    expect(upstream.requests).toHaveLength(0);
  });
});

/** Direct children of a process (Linux /proc). */
function childPids(pid: number): number[] {
  const file = `/proc/${pid}/task/${pid}/children`;
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number) : [];
}
const cmdline = (pid: number) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
/** Running (a reaped or zombie process is not). */
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

describe('warden start: the bin run as users run it gets the node flags from its shebang (#17)', () => {
  it('serves in one process with the flags, no relay, and exits 0 on SIGTERM', async () => {
    const port = await freePort();
    const file = join(dir, 'bin.yaml');
    writeFileSync(file, goodConfig(port, upstream.url));
    // What `warden start` / `npx warden start` execute: the file itself (executable after `npm run build`),
    // its `#!/usr/bin/env -S node …` line naming the interpreter; `env` finds this test's node first.
    let output = '';
    const bin = spawn(CLI, ['start', '-c', file], {
      cwd: dir,
      env: { ...process.env, WARDEN_DATA_DIR: join(dir, 'data'), PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}` },
    });
    bin.stdout!.on('data', (c) => (output += c));
    bin.stderr!.on('data', (c) => (output += c));
    bin.once('error', (err) => (output += String(err)));
    const exited = new Promise<number | null>((r) => bin.once('exit', (code) => r(code)));
    try {
      for (let i = 0; i < 200 && !output.includes('warden listening'); i++) await new Promise((r) => setTimeout(r, 50));
      expect(output).toContain('warden listening');
      // env exec'd node: the spawned pid is the serving process itself, with the flags, and it has no child.
      expect(cmdline(bin.pid!)).toEqual(expect.arrayContaining([...WARDEN_NODE_FLAGS, CLI, 'start']));
      expect(childPids(bin.pid!)).toEqual([]);
      expect((await fetch(`http://127.0.0.1:${port}/.warden/healthz`)).status).toBe(200);
      bin.kill('SIGTERM');
      expect(await exited).toBe(0);
    } finally {
      if (bin.exitCode === null) bin.kill('SIGKILL');
    }
  });
});

describe('warden start: node flags applied by re-executing node (#17)', () => {
  it('passes the exit code through and serves in one process when the flags are already set', async () => {
    const bad = join(dir, 'bad-start.yaml');
    writeFileSync(bad, 'bogus_key: 1\n');
    const relayed = await warden(['start', '-c', bad]);
    const direct = await warden(['start', '-c', bad], { WARDEN_NODE_FLAGS_APPLIED: '1' });
    expect(direct.code).not.toBe(0);
    expect(relayed.code).toBe(direct.code);
  });

  it('a parent killed outright (SIGKILL) takes the serving child with it', async () => {
    const port = await freePort();
    const file = join(dir, 'kill.yaml');
    writeFileSync(file, goodConfig(port, upstream.url));
    const parent = spawn(process.execPath, [CLI, 'start', '-c', file], {
      cwd: dir,
      env: { ...process.env, WARDEN_DATA_DIR: join(dir, 'data') },
      stdio: 'ignore',
    });
    try {
      let server: number | undefined;
      for (let i = 0; i < 200 && server === undefined; i++) {
        [server] = childPids(parent.pid!);
        if (server === undefined) await new Promise((r) => setTimeout(r, 50));
      }
      expect(server).toBeDefined();
      // Found right after the fork, the child may not have exec'd yet (its cmdline is still the parent's).
      for (let i = 0; i < 100 && !cmdline(server!).includes(WARDEN_NODE_FLAGS[1]); i++) await new Promise((r) => setTimeout(r, 20));
      expect(cmdline(server!)).toContain(WARDEN_NODE_FLAGS[1]);
      for (let i = 0; i < 200; i++) {
        if (
          await fetch(`http://127.0.0.1:${port}/.warden/healthz`).then(
            (r) => r.ok,
            () => false,
          )
        )
          break;
        await new Promise((r) => setTimeout(r, 50));
      }
      parent.kill('SIGKILL');
      for (let i = 0; i < 100 && alive(server!); i++) await new Promise((r) => setTimeout(r, 50));
      expect(alive(server!)).toBe(false);
    } finally {
      if (parent.exitCode === null) parent.kill('SIGKILL');
    }
  });
});

describe('warden start: SIGHUP reload and SIGTERM drain', () => {
  let child: ChildProcess | undefined;
  afterAll(() => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
  });

  it('reloads on SIGHUP, keeps the old config when the new one is invalid, and drains on SIGTERM', async () => {
    const port = await freePort();
    const file = join(dir, 'live.yaml');
    writeFileSync(file, goodConfig(port, upstream.url));
    let output = '';
    child = spawn(process.execPath, [CLI, 'start', '-c', file], { cwd: dir, env: { ...process.env, WARDEN_DATA_DIR: join(dir, 'data') } });
    child.stdout!.on('data', (c) => (output += c));
    child.stderr!.on('data', (c) => (output += c));
    const url = `http://127.0.0.1:${port}`;
    const waitFor = async (pred: () => boolean | Promise<boolean>, what: string) => {
      for (let i = 0; i < 200; i++) {
        if (await pred()) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`timed out waiting for ${what}; output:\n${output}`);
    };
    await waitFor(() => output.includes('warden listening'), 'listening');
    // `warden start` re-executed node with Warden's V8 flags (#17): the serving process has them.
    const [server] = childPids(child.pid!);
    expect(server).toBeDefined();
    expect(cmdline(server)).toEqual(expect.arrayContaining([...WARDEN_NODE_FLAGS, 'start']));
    expect(cmdline(child.pid!)).not.toContain(WARDEN_NODE_FLAGS[0]);
    const token = (await warden(['token', '--agent', 'bot', '--user', 'alice', '-c', file])).stdout.trim();
    const get = (p: string) => fetch(`${url}${p}`, { headers: { authorization: `Bearer ${token}` } });
    expect((await get('/docs/1')).status).toBe(200);

    // An invalid config: logged, old config kept.
    writeFileSync(file, goodConfig(port, upstream.url) + '\nbogus_key: 1\n');
    child.kill('SIGHUP');
    await waitFor(() => output.includes('reload failed'), 'reload failure log');
    expect((await get('/docs/1')).status).toBe(200);

    // A valid new config: the route moves.
    writeFileSync(file, goodConfig(port, upstream.url).replace('/docs/:doc', '/papers/:doc'));
    child.kill('SIGHUP');
    await waitFor(() => output.includes('configuration reloaded'), 'reload');
    expect((await get('/docs/1')).status).toBe(404);
    expect((await get('/papers/1')).status).toBe(200);

    // SIGTERM while a request is in flight: it completes, then the process exits 0.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    upstream.setHandler(async (_req, res) => {
      await gate;
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '4' });
      res.end('done');
    });
    const inflight = get('/papers/1');
    await waitFor(() => upstream.requests.some((r) => r.url === '/papers/1' && r.method === 'GET') && upstream.requests.length > 2, 'request at upstream');
    const exited = new Promise<number | null>((r) => child!.once('exit', (code) => r(code)));
    child.kill('SIGTERM');
    await waitFor(() => output.includes('draining'), 'drain log');
    // New connections are refused while draining.
    await expect(fetch(`${url}/papers/1`, { headers: { authorization: `Bearer ${token}`, connection: 'close' } })).rejects.toThrow();
    release();
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('done');
    expect(await exited).toBe(0);
  });
});
