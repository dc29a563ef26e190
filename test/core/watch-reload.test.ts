/**
 * `server.watch: true` as a user runs it (the built binary): a change to any
 * file the config is built from reloads it — gateway.yaml, the tuples, an
 * `fga.mod` model's module files — also when the file is replaced rather than
 * written in place: an editor's save (a new file renamed over the old one) and
 * a Kubernetes ConfigMap update (a new `..data` symlink renamed over the old
 * one), each time, not only the first.
 */

import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, requireBuiltCli, runCli } from '../support/cli.js';
import { freePort } from '../support/net.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

const config = (port: number, upstream: string, path = '/docs/:doc') => `
server:
  listen: 127.0.0.1:${port}
  admin_listen: null
  watch: true
identity: { dev_issuer: true }
authz: { model: policies/fga.mod, tuples: policies/tuples.yaml }
routes:
  - name: docs
    match: { path: ${path} }
    upstream: { url: "${upstream}" }
    authorize:
      - { user: "user:{user}", relation: can_read, object: "doc:{path.doc}" }
`;
const FGA_MOD = 'schema: "1.2"\ncontents:\n  - core.fga\n  - docs.fga\n';
const CORE = 'module core\n\ntype user\n';
/** `can_read` from `viewer` (alice is one), or only direct (nobody is). */
const docs = (canRead: 'viewer' | '[user]') => `module docs\n\ntype doc\n  relations\n    define viewer: [user]\n    define can_read: ${canRead}\n`;
const tuples = (user: string) => `- { user: "user:${user}", relation: viewer, object: "doc:1" }\n`;

/** Save as editors do: write a new file beside `file`, then rename it over `file` (a new inode). */
function saveByRename(file: string, text: string) {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

let upstream: Upstream;
let child: ChildProcess | undefined;
beforeAll(async () => {
  requireBuiltCli();
  upstream = await startUpstream();
  return () => upstream.close();
});
afterEach(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  child = undefined;
});

/** `warden start -c file` in one process (no re-exec), its output collected. */
async function start(dir: string, file: string) {
  const env = { ...process.env, WARDEN_DATA_DIR: join(dir, 'data'), WARDEN_NODE_FLAGS_APPLIED: 'off' };
  let output = '';
  child = spawn(process.execPath, [CLI, 'start', '-c', file], { cwd: dir, env });
  child.stdout!.on('data', (c) => (output += c));
  child.stderr!.on('data', (c) => (output += c));
  const waitFor = async (pred: () => boolean | Promise<boolean>, what: string) => {
    for (let i = 0; i < 200; i++) {
      if (await pred()) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`timed out waiting for ${what}; output:\n${output}`);
  };
  const reloads = () => output.split('\n').filter((l) => l.includes('"configuration reloaded"')).length;
  await waitFor(() => output.includes('warden listening'), 'listening');
  const token = (await runCli(['token', '--agent', 'bot', '--user', 'alice', '-c', file], { cwd: dir, env })).stdout.trim();
  return { waitFor, reloads, output: () => output, token };
}

describe('server.watch', () => {
  it('reloads on every save by rename of gateway.yaml, on a module file of fga.mod, and on the tuples written in place', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-watch-'));
    try {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      mkdirSync(join(dir, 'policies'));
      writeFileSync(join(dir, 'policies/fga.mod'), FGA_MOD);
      writeFileSync(join(dir, 'policies/core.fga'), CORE);
      writeFileSync(join(dir, 'policies/docs.fga'), docs('viewer'));
      writeFileSync(join(dir, 'policies/tuples.yaml'), tuples('alice'));
      const file = join(dir, 'gateway.yaml');
      writeFileSync(file, config(port, upstream.url));
      const w = await start(dir, file);
      const status = async (path: string) => (await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${w.token}` } })).status;
      expect(await status('/docs/1')).toBe(200);

      // Saved by rename, twice in a row: both reloads happen.
      saveByRename(file, config(port, upstream.url, '/papers/:doc'));
      await w.waitFor(() => w.reloads() === 1, 'first reload');
      expect(await status('/papers/1')).toBe(200);
      expect(await status('/docs/1')).toBe(404);
      saveByRename(file, config(port, upstream.url, '/notes/:doc'));
      await w.waitFor(() => w.reloads() === 2, 'second reload');
      expect(await status('/notes/1')).toBe(200);
      expect(await status('/papers/1')).toBe(404);

      // A module file of the fga.mod model, saved by rename, then written in place.
      saveByRename(join(dir, 'policies/docs.fga'), docs('[user]'));
      await w.waitFor(() => w.reloads() === 3, 'reload on a module file');
      expect(await status('/notes/1')).toBe(403);
      writeFileSync(join(dir, 'policies/docs.fga'), docs('viewer'));
      await w.waitFor(() => w.reloads() === 4, 'reload on a module file written in place');
      expect(await status('/notes/1')).toBe(200);

      // The tuples, written in place (what was watched before).
      writeFileSync(join(dir, 'policies/tuples.yaml'), tuples('bob'));
      await w.waitFor(() => w.reloads() === 5, 'reload on the tuples');
      expect(await status('/notes/1')).toBe(403);

      // Other files in the same directories do not reload.
      writeFileSync(join(dir, 'notes.txt'), 'unrelated');
      writeFileSync(join(dir, 'policies/README'), 'unrelated');
      await new Promise((r) => setTimeout(r, 600));
      expect(w.reloads()).toBe(5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('reloads on every update of a Kubernetes ConfigMap volume (a new ..data symlink renamed over the old)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-watch-k8s-'));
    try {
      const port = await freePort();
      const url = `http://127.0.0.1:${port}`;
      // The policies beside the volume (their own files); the volume holds gateway.yaml as kubelet lays it out.
      const volume = join(dir, 'config');
      mkdirSync(join(volume, '..v1'), { recursive: true });
      mkdirSync(join(dir, 'policies'));
      writeFileSync(join(dir, 'policies/fga.mod'), FGA_MOD);
      writeFileSync(join(dir, 'policies/core.fga'), CORE);
      writeFileSync(join(dir, 'policies/docs.fga'), docs('viewer'));
      writeFileSync(join(dir, 'policies/tuples.yaml'), tuples('alice'));
      symlinkSync(join(dir, 'policies'), join(volume, 'policies'));
      writeFileSync(join(volume, '..v1/gateway.yaml'), config(port, upstream.url));
      symlinkSync('..v1', join(volume, '..data'));
      symlinkSync('..data/gateway.yaml', join(volume, 'gateway.yaml'));
      /** kubelet's atomic update: a new timestamped directory, `..data_tmp` pointing at it renamed over `..data`, the old one removed. */
      const publish = (version: string, text: string, old: string) => {
        mkdirSync(join(volume, version));
        writeFileSync(join(volume, version, 'gateway.yaml'), text);
        symlinkSync(version, join(volume, '..data_tmp'));
        renameSync(join(volume, '..data_tmp'), join(volume, '..data'));
        rmSync(join(volume, old), { recursive: true });
      };
      const file = join(volume, 'gateway.yaml');
      const w = await start(dir, file);
      const status = async (path: string) => (await fetch(`${url}${path}`, { headers: { authorization: `Bearer ${w.token}` } })).status;
      expect(await status('/docs/1')).toBe(200);

      publish('..v2', config(port, upstream.url, '/papers/:doc'), '..v1');
      await w.waitFor(() => w.reloads() >= 1, 'first reload');
      await w.waitFor(async () => (await status('/papers/1')) === 200, 'first update served');
      const afterFirst = w.reloads();
      publish('..v3', config(port, upstream.url, '/notes/:doc'), '..v2');
      await w.waitFor(() => w.reloads() > afterFirst, 'second reload');
      await w.waitFor(async () => (await status('/notes/1')) === 200, 'second update served');
      expect(await status('/papers/1')).toBe(404);
      expect(w.output()).not.toContain('reload failed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
