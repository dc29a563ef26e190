/**
 * The production road through the CLI, as a user runs the built binary:
 * help and version, `warden schema`, `warden fga push` creating the store on a
 * real OpenFGA server (with preshared-key auth) and printing shell exports,
 * `warden fga pull` bringing it back, and the dev issuer's data dir and
 * key-mismatch answer.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, requireBuiltCli, runCli } from '../support/cli.js';
import { freePort } from '../support/net.js';
import { REPO_ROOT } from '../support/gateway.js';
import { startOpenFga, type OpenFgaServer } from '../support/openfga.js';
import { loadModel, loadTuples, parseTuples } from '../../src/authz/model.js';

const FGA_KEY = 'cli-bootstrap-preshared-key-0123456789';
let dir: string;
let fga: OpenFgaServer;
const baseEnv = () => {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (/^(FGA_|OPENFGA_API|WARDEN_)/.test(k)) delete env[k];
  return env;
};
const warden = (args: string[], env: NodeJS.ProcessEnv = {}, cwd = dir) => runCli(args, { cwd, env: { ...baseEnv(), ...env } });

beforeAll(async () => {
  requireBuiltCli();
  dir = mkdtempSync(join(tmpdir(), 'warden-cli-bootstrap-'));
  fga = await startOpenFga({ private: true, args: ['--authn-method', 'preshared', '--authn-preshared-keys', FGA_KEY] });
}, 90_000);
afterAll(async () => {
  await fga?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe('usage, help and version', () => {
  it('bare `warden` prints the usage on stderr and exits 2', async () => {
    const r = await warden([]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('Usage: warden <command>');
  });

  it('`--version` and `-V` print the package version', async () => {
    const { version } = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-V']) {
      const r = await warden([flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toBe(`warden ${version}\n`);
    }
  });

  it('every command answers --help and -h with its own usage, exit 0, nothing else done', async () => {
    const commands = [
      ['start'],
      ['validate'],
      ['token'],
      ['explain'],
      ['fga', 'push'],
      ['fga', 'pull'],
      ['schema'],
      ['keygen'],
      ['vault', 'rekey'],
      ['mcp', 'accept'],
    ];
    const runs = commands.flatMap((c) => ['--help', '-h'].map((flag) => ({ c, flag })));
    const results = await Promise.all(runs.map(({ c, flag }) => warden([...c, flag])));
    results.forEach((r, i) => {
      const { c, flag } = runs[i];
      expect(r.code, `${c.join(' ')} ${flag}`).toBe(0);
      expect(r.stdout, `${c.join(' ')} ${flag}`).toContain(`Usage: warden ${c[0]}`);
    });
  }, 120_000);

  it('an unknown option is a usage error (exit 2) naming the option', async () => {
    const r = await warden(['validate', '--bogus']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("Unknown option '--bogus'");
    expect(r.stderr).toContain('Usage: warden validate');
  });

  it('`warden schema` prints exactly the committed gateway.schema.json', async () => {
    const r = await warden(['schema']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(readFileSync(join(REPO_ROOT, 'gateway.schema.json'), 'utf8'));
    expect(JSON.parse(r.stdout).properties.routes.type).toBe('array');
  });

  it('`warden schema` takes no options or arguments: either is a usage error (exit 2), nothing printed', async () => {
    const option = await warden(['schema', '--bogus']);
    expect(option.code).toBe(2);
    expect(option.stdout).toBe('');
    expect(option.stderr).toContain("warden schema: Unknown option '--bogus'");
    expect(option.stderr).toContain('Usage: warden schema');
    const argument = await warden(['schema', 'gateway.yaml']);
    expect(argument.code).toBe(2);
    expect(argument.stdout).toBe('');
    expect(argument.stderr).toContain("warden schema: Unexpected argument 'gateway.yaml'");
    expect(argument.stderr).toContain('Usage: warden schema');
  });
});

describe('warden fga push and pull against OpenFGA', () => {
  // deploy/gateway.yaml as shipped, with only what push needs in the environment:
  // no store or model id yet, nothing outside authz.
  const deployConfig = join(REPO_ROOT, 'deploy/gateway.yaml');

  it('push creates the store when none is configured and prints the ids as shell exports', async () => {
    const r = await warden(['fga', 'push', '-c', deployConfig, '--api-url', fga.apiUrl], { FGA_API_TOKEN: FGA_KEY });
    expect(r.stderr).toMatch(/store \w+ \(created\), model \w+ \(written\), \d+ tuples written/);
    expect(r.code).toBe(0);
    const m = /^export FGA_STORE_ID=(\w+) FGA_MODEL_ID=(\w+)\n$/.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();

    // Again, with FGA_API_URL instead of the flag: the same store and model, nothing new.
    const again = await warden(['fga', 'push', '-c', deployConfig], { FGA_API_TOKEN: FGA_KEY, FGA_API_URL: fga.apiUrl });
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(r.stdout);
    expect(again.stderr).toMatch(/\(existing\), model \w+ \(unchanged\)/);

    // With the printed ids, the whole production config validates against the server.
    const [, storeId, modelId] = m as RegExpExecArray;
    const list = await fetch(`${fga.apiUrl}/stores/${storeId}/authorization-models/${modelId}`, { headers: { authorization: `Bearer ${FGA_KEY}` } });
    expect(list.status).toBe(200);
  });

  it('push without a URL, or with the wrong key, says what is wrong', async () => {
    const none = await warden(['fga', 'push', '-c', deployConfig], { FGA_API_TOKEN: FGA_KEY });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('pass --api-url, set authz.openfga.api_url, or FGA_API_URL');
    const wrongKey = await warden(['fga', 'push', '-c', deployConfig, '--api-url', fga.apiUrl], { FGA_API_TOKEN: 'not-the-key-0123456789' });
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stdout).toBe('');
    expect(wrongKey.stderr).not.toContain('not-the-key');
  });

  it('pull writes the store’s model and tuples into a policies directory the embedded engine loads', async () => {
    const out = join(dir, 'pulled');
    const r = await warden(['fga', 'pull', '-c', deployConfig, '--api-url', fga.apiUrl, '--out', out], { FGA_API_TOKEN: FGA_KEY });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/wrote .*model\.fga \(model \w+\) and .*tuples\.yaml \(\d+ tuples\)/);
    const pulled = await loadModel(join(out, 'model.fga'));
    const original = await loadModel(join(REPO_ROOT, 'policies/model.fga'));
    expect(pulled.type_definitions.map((t) => t.type).sort()).toEqual(original.type_definitions.map((t) => t.type).sort());
    const key = (t: { user: string; relation: string; object: string; condition?: unknown }) =>
      JSON.stringify([t.user, t.relation, t.object, t.condition ?? null]);
    const pulledTuples = parseTuples(readFileSync(join(out, 'tuples.yaml'), 'utf8'), 'tuples.yaml')
      .map(key)
      .sort();
    const pushed = [...new Set((await loadTuples(join(REPO_ROOT, 'policies/tuples.yaml'))).map(key))].sort();
    expect(pulledTuples).toEqual(pushed);

    // The pulled directory serves as an embedded-engine config.
    writeFileSync(join(out, 'gateway.yaml'), 'identity: { dev_issuer: true }\nauthz: { model: model.fga, tuples: tuples.yaml }\n');
    expect((await warden(['validate', '-c', join(out, 'gateway.yaml')])).code).toBe(0);
  });
});

describe('dev issuer data dir and key', () => {
  const config = (port: number) => `
server: { listen: "127.0.0.1:${port}", admin_listen: null }
identity: { dev_issuer: true }
authz: { model: ${join(REPO_ROOT, 'policies/model.fga')}, tuples: ${join(REPO_ROOT, 'policies/tuples.yaml')} }
routes:
  - name: status
    match: { path: /status }
    upstream: { url: "http://127.0.0.1:9/" }
    authorize: []
`;

  it('`warden token` finds the server’s key next to the config from any directory; a token of another key gets a 401 that says so', async () => {
    const port = await freePort();
    const project = join(dir, 'project');
    mkdirSync(project, { recursive: true });
    writeFileSync(join(project, 'gateway.yaml'), config(port));
    const server: ChildProcess = spawn(process.execPath, [CLI, 'start', '-c', 'gateway.yaml'], {
      cwd: project,
      env: { ...baseEnv(), WARDEN_LOG_LEVEL: 'warn' },
      stdio: 'ignore',
    });
    try {
      let up = false;
      for (let i = 0; i < 100 && !up; i++) {
        up = await fetch(`http://127.0.0.1:${port}/.warden/healthz`).then(
          (r) => r.ok,
          () => false,
        );
        if (!up) await new Promise((r) => setTimeout(r, 100));
      }
      expect(up).toBe(true);
      // From another working directory, pointing at the same config.
      const elsewhere = join(dir, 'elsewhere');
      mkdirSync(elsewhere, { recursive: true });
      const t = await warden(['token', '--agent', 'demo-agent', '--user', 'alice', '-c', join(project, 'gateway.yaml')], {}, elsewhere);
      expect(t.code).toBe(0);
      const ok = await fetch(`http://127.0.0.1:${port}/status`, { headers: { authorization: `Bearer ${t.stdout.trim()}` } });
      expect(ok.status).not.toBe(401);

      // A token from another data dir (another key, same issuer and audience).
      const other = await warden(
        ['token', '--agent', 'demo-agent', '--user', 'alice', '-c', join(project, 'gateway.yaml')],
        { WARDEN_DATA_DIR: join(dir, 'other-key') },
        elsewhere,
      );
      expect(other.code).toBe(0);
      const refused = await fetch(`http://127.0.0.1:${port}/status`, { headers: { authorization: `Bearer ${other.stdout.trim()}` } });
      expect(refused.status).toBe(401);
      expect(refused.headers.get('www-authenticate')).toContain('token signed by another dev issuer key');
      const problem = (await refused.json()) as { code: string; detail: string };
      expect(problem.code).toBe('unauthenticated');
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
    }
  });
});
