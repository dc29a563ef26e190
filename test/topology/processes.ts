/**
 * The production topology as real processes (no container engine here):
 * PostgreSQL (Debian), OpenFGA migrated onto it, Redis (plain, TLS, Sentinel),
 * nginx, and Warden started from `dist/` on deploy/'s config. Each helper picks
 * free loopback ports, waits until the service answers, and stops it again.
 */

import { spawnSync, execFile } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { openFgaBinary } from '../support/openfga.js';
import { CLI } from '../support/cli.js';
import { freePort } from '../support/net.js';
import { spawnService, tcpOpen, type Service } from '../support/processes.js';
import { openFgaRunArgs } from '../../scripts/openfga.mjs';

const run = promisify(execFile);

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

/** `warden fga push -c CONFIG` against a server: returns the store and model ids it printed. */
export async function fgaPush(configFile: string, env: Record<string, string>): Promise<{ storeId: string; modelId: string; stdout: string }> {
  const { stdout } = await run(process.execPath, [CLI, 'fga', 'push', '-c', configFile], { env: { ...process.env, ...env }, timeout: 60_000 });
  const storeId = /FGA_STORE_ID=(\S+)/.exec(stdout)?.[1] ?? /store_id: (\S+)/.exec(stdout)?.[1];
  const modelId = /FGA_MODEL_ID=(\S+)/.exec(stdout)?.[1] ?? /model_id: (\S+)/.exec(stdout)?.[1];
  if (!storeId || !modelId) throw new Error(`warden fga push printed no store/model id:\n${stdout}`);
  return { storeId, modelId, stdout };
}
