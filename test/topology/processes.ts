/**
 * The production topology as real processes (no container engine here):
 * PostgreSQL (Debian), OpenFGA migrated onto it, Redis (plain, TLS, Sentinel),
 * nginx, and Warden started from `dist/` on deploy/'s config. Each helper picks
 * free loopback ports, waits until the service answers, and stops it again.
 */

import { spawn, spawnSync, execFile, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { openFgaBinary } from '../support/openfga.js';
import { openFgaRunArgs } from '../../scripts/openfga.mjs';

export const REPO_ROOT = resolve(import.meta.dirname, '../..');
export const CLI = join(REPO_ROOT, 'dist/src/cli.js');
const run = promisify(execFile);

/** A process a test started; `stop` is SIGTERM then SIGKILL after 5 s, `kill` is SIGKILL at once. */
export interface Service {
  readonly name: string;
  readonly pid: number;
  readonly exited: boolean;
  /** The last MiB of what the process printed (stdout and stderr). */
  output(): string;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/** A port the OS considers free right now on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** True once something accepts TCP connections on 127.0.0.1:port. */
export function tcpOpen(port: number): Promise<boolean> {
  return new Promise((resolveOpen) => {
    const socket = connect({ port, host: '127.0.0.1' });
    const done = (open: boolean) => {
      socket.destroy();
      resolveOpen(open);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Spawn `command` and resolve once `ready()` is true; throws with the process output when it exits or times out first. */
export async function spawnService(
  name: string,
  command: string,
  args: string[],
  options: { ready: () => Promise<boolean>; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number },
): Promise<Service> {
  const child: ChildProcess = spawn(command, args, {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const keep = (d: Buffer) => {
    out = (out + d.toString('utf8')).slice(-1_048_576);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  const gone = new Promise<void>((r) => child.once('exit', () => r()));
  let spawnError: Error | undefined;
  child.once('error', (err) => (spawnError = err));
  const hasExited = () => child.exitCode !== null || child.signalCode !== null || spawnError !== undefined;

  const service: Service = {
    name,
    pid: child.pid ?? Number.NaN,
    get exited() {
      return hasExited();
    },
    output: () => out,
    async stop() {
      process.removeListener('exit', killOnExit);
      if (hasExited()) return;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    },
    async kill() {
      process.removeListener('exit', killOnExit);
      if (hasExited()) return;
      child.kill('SIGKILL');
      await gone;
    },
  };

  const deadline = Date.now() + (options.timeoutMs ?? 30_000);
  while (Date.now() < deadline) {
    if (hasExited()) {
      throw new Error(`${name} exited before it was ready (${spawnError?.message ?? child.exitCode ?? child.signalCode}):\n${out.slice(-4_000)}`);
    }
    if (await options.ready().catch(() => false)) return service;
    await new Promise((r) => setTimeout(r, 100));
  }
  await service.stop();
  throw new Error(`${name} was not ready within ${options.timeoutMs ?? 30_000} ms:\n${out.slice(-4_000)}`);
}

/** Where Debian keeps the PostgreSQL server binaries (not on PATH). */
export function postgresBinDir(): string {
  const base = '/usr/lib/postgresql';
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'postgres'))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (versions.length === 0) {
    throw new Error('PostgreSQL is not installed (apt-get install postgresql; npm test runs scripts/test-setup.mjs, which does this)');
  }
  return join(base, versions[0], 'bin');
}

/**
 * PostgreSQL refuses to run as root. When the test runs as root (CI does), the
 * server runs as the `postgres` user Debian's package creates, via setpriv (which
 * execs, so the pid we hold is the server's own).
 */
function asPostgres(bin: string, args: string[]): [string, string[]] {
  if (process.getuid?.() !== 0) return [bin, args];
  return ['setpriv', ['--reuid=postgres', '--regid=postgres', '--init-groups', bin, ...args]];
}

export interface Postgres extends Service {
  port: number;
  /** postgres://… URI of the `openfga` database, with password. */
  uri: string;
}

/** initdb into a temp dir and run `postgres` on a free loopback port, with a password-protected `openfga` database. */
export async function startPostgres(): Promise<Postgres> {
  const bin = postgresBinDir();
  const dir = mkdtempSync(join(tmpdir(), 'warden-pg-'));
  const data = join(dir, 'data');
  const password = 'pg-' + Math.random().toString(36).slice(2);
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(dir, 'pwfile'), password + '\n');
  if (process.getuid?.() === 0) {
    chownSync(dir, uid('postgres'), gid('postgres'));
    chownSync(join(dir, 'pwfile'), uid('postgres'), gid('postgres'));
  }
  chmodSync(dir, 0o700);
  const [initCmd, initArgs] = asPostgres(join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'openfga',
    '--pwfile',
    join(dir, 'pwfile'),
    '--auth=scram-sha-256',
    '-E',
    'UTF8',
    '--locale=C.UTF-8',
    '--no-sync',
  ]);
  const init = spawnSync(initCmd, initArgs, { encoding: 'utf8', timeout: 60_000 });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr || init.error?.message}`);
  const port = await freePort();
  const [cmd, args] = asPostgres(join(bin, 'postgres'), [
    '-D',
    data,
    '-p',
    String(port),
    '-c',
    'listen_addresses=127.0.0.1',
    '-c',
    `unix_socket_directories=${dir}`,
    '-c',
    'fsync=off',
    '-c',
    'shared_buffers=16MB',
    '-c',
    'max_connections=50',
  ]);
  const service = await spawnService('postgres', cmd, args, {
    ready: async () => spawnSync(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-q'], { timeout: 2_000 }).status === 0,
  });
  // The database OpenFGA uses.
  const created = spawnSync(join(bin, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'openfga', 'openfga'], {
    env: { ...process.env, PGPASSWORD: password },
    encoding: 'utf8',
    timeout: 10_000,
  });
  if (created.status !== 0) throw new Error(`createdb failed: ${created.stderr}`);
  return {
    ...service,
    name: service.name,
    pid: service.pid,
    get exited() {
      return service.exited;
    },
    port,
    uri: `postgres://openfga:${password}@127.0.0.1:${port}/openfga?sslmode=disable`,
    async stop() {
      await service.stop();
      rmSync(dir, { recursive: true, force: true });
    },
    async kill() {
      await service.kill();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

function uid(user: string): number {
  return Number(spawnSync('id', ['-u', user], { encoding: 'utf8' }).stdout.trim());
}
function gid(user: string): number {
  return Number(spawnSync('id', ['-g', user], { encoding: 'utf8' }).stdout.trim());
}

export interface OpenFgaOnPostgres extends Service {
  apiUrl: string;
}

/** `openfga migrate` onto the database, then `openfga run` on it (loopback, metrics and playground off, API behind a preshared key). */
export async function startOpenFgaOnPostgres(pg: Postgres, presharedKey: string): Promise<OpenFgaOnPostgres> {
  const bin = openFgaBinary();
  await run(bin, ['migrate', '--datastore-engine', 'postgres', '--datastore-uri', pg.uri], { timeout: 60_000 });
  const [http, grpc] = [await freePort(), await freePort()];
  const apiUrl = `http://127.0.0.1:${http}`;
  const service = await spawnService(
    'openfga',
    bin,
    openFgaRunArgs({
      http,
      grpc,
      datastore: ['--datastore-engine', 'postgres', '--datastore-uri', pg.uri],
      extra: ['--authn-method', 'preshared', '--authn-preshared-keys', presharedKey],
    }),
    {
      ready: async () => (await fetch(`${apiUrl}/healthz`, { signal: AbortSignal.timeout(1_000) })).status === 200,
    },
  );
  return Object.assign(service, { apiUrl });
}

/** Debian nginx in the foreground with `confText`; its pid file and temp paths in a temp prefix. */
export async function startNginx(confText: string, port: number): Promise<Service> {
  if (spawnSync('sh', ['-c', 'command -v nginx'], { stdio: 'ignore' }).status !== 0) {
    throw new Error('nginx is not installed (apt-get install nginx; npm test runs scripts/test-setup.mjs, which does this)');
  }
  const prefix = mkdtempSync(join(tmpdir(), 'warden-nginx-'));
  chmodSync(prefix, 0o755); // workers (nobody when the master is root) create temp files under it
  const { writeFileSync } = await import('node:fs');
  // The pid file and temp paths of the given config are moved into the prefix, so parallel runs never share them.
  const conf = confText
    .replace(/^\s*pid\s+[^;]+;/m, `pid ${join(prefix, 'nginx.pid')};`)
    .replace(/(client_body|proxy|fastcgi|uwsgi|scgi)_temp_path\s+[^;]+;/g, (_m, kind: string) => `${kind}_temp_path ${join(prefix, kind)};`);
  const file = join(prefix, 'nginx.conf');
  writeFileSync(file, conf);
  const test = spawnSync('nginx', ['-t', '-p', prefix, '-c', file, '-e', 'stderr'], { encoding: 'utf8' });
  if (test.status !== 0) throw new Error(`nginx -t failed:\n${test.stderr}`);
  const service = await spawnService('nginx', 'nginx', ['-p', prefix, '-c', file, '-e', 'stderr', '-g', 'daemon off;'], {
    ready: () => tcpOpen(port),
  });
  const stop = service.stop.bind(service);
  return {
    ...service,
    get exited() {
      return service.exited;
    },
    output: service.output,
    async stop() {
      await stop();
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}

/** A Warden process: `node dist/src/cli.js start -c CONFIG` with `env`, ready when /.warden/readyz answers 200. */
export async function startWardenProcess(name: string, configFile: string, env: Record<string, string>, url: string): Promise<Service> {
  return spawnService(name, process.execPath, [CLI, 'start', '-c', configFile], {
    env: { ...process.env, ...env },
    ready: async () => (await fetch(`${url}/.warden/readyz`, { signal: AbortSignal.timeout(1_000) })).status === 200,
    timeoutMs: 30_000,
  });
}

/** `warden fga push -c CONFIG` against a server: returns the store and model ids it printed. */
export async function fgaPush(configFile: string, env: Record<string, string>): Promise<{ storeId: string; modelId: string; stdout: string }> {
  const { stdout } = await run(process.execPath, [CLI, 'fga', 'push', '-c', configFile], { env: { ...process.env, ...env }, timeout: 60_000 });
  const storeId = /FGA_STORE_ID=(\S+)/.exec(stdout)?.[1] ?? /store_id: (\S+)/.exec(stdout)?.[1];
  const modelId = /FGA_MODEL_ID=(\S+)/.exec(stdout)?.[1] ?? /model_id: (\S+)/.exec(stdout)?.[1];
  if (!storeId || !modelId) throw new Error(`warden fga push printed no store/model id:\n${stdout}`);
  return { storeId, modelId, stdout };
}
