/**
 * A real Redis for tests: a Debian `redis-server` on a free loopback port with
 * persistence off and its own temp dir, or the server named by REDIS_URL (then
 * every call gets its own key prefix so concurrent test files never collide).
 */

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/observability/logger.js';
import { createRedisStore } from '../../src/store/redis.js';
import { freePort, listenerOwnedBy } from './net.js';

/** A running Redis a test can use, and (when local) stop, restart and freeze. */
export interface TestRedis {
  /** Connection URL (password included when one was asked for). */
  url: string;
  port: number;
  /** Key prefix to give the store: unique per call, so tests sharing a server stay apart. */
  keyPrefix: string;
  /** True when this is the REDIS_URL server (not ours to stop, restart or freeze). */
  external: boolean;
  /** Current redis-server pid (changes on restart); NaN when external, so it can never be signalled. */
  readonly pid: number;
  /** Stop the server (SIGTERM, wait for exit); when external, delete the keys under `keyPrefix`. Safe to call twice. */
  stop(): Promise<void>;
  /** Stop (if running) and start again on the same port, with empty data. */
  restart(): Promise<void>;
  /** Freeze the server (SIGSTOP): connections stay open but nothing answers. */
  pause(): void;
  /** Unfreeze after `pause()` (SIGCONT). */
  resume(): void;
}

/** Options of `startRedis`. */
export interface StartRedisOptions {
  /** Always spawn a local server even when REDIS_URL is set (fault tests need control). */
  local?: boolean;
  /** Start the local server with `requirepass` (implies local). */
  password?: string;
}

const READY_TIMEOUT_MS = 10_000;

/** Start (or attach to) a Redis server; see the module comment. */
export async function startRedis(options: StartRedisOptions = {}): Promise<TestRedis> {
  const keyPrefix = `test:${randomBytes(6).toString('hex')}:`;
  const external = process.env.REDIS_URL;
  if (external && !options.local && options.password === undefined) {
    const port = Number(new URL(external).port || 6379);
    const refusal = 'REDIS_URL is set: this test needs a redis-server it controls; use startRedis({ local: true })';
    const refuse = async () => {
      throw new Error(refusal);
    };
    return {
      url: external,
      port,
      keyPrefix,
      external: true,
      pid: Number.NaN,
      // Leave a shared server as we found it: drop this caller's keys (its prefix only).
      stop: () => dropKeys(external, keyPrefix),
      restart: refuse,
      pause: () => {
        throw new Error(refusal);
      },
      resume: () => {},
    };
  }

  assertRedisInstalled();
  let port = await freePort();
  const password = options.password;

  let child: ChildProcess | null = null;
  let dir: string | null = null;
  const killOnExit = () => child?.kill('SIGKILL');

  async function launch(): Promise<void> {
    dir = mkdtempSync(join(tmpdir(), 'warden-redis-'));
    const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'];
    if (password !== undefined) args.push('--requirepass', password);
    const proc = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    process.once('exit', killOnExit);
    let output = '';
    proc.stdout?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
    proc.stderr?.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
    const exited = new Promise<never>((_, reject) =>
      proc.once('exit', (code, signal) =>
        reject(/address already in use/i.test(output) ? new PortTaken(port) : new Error(`redis-server exited early (${code ?? signal}): ${output.trim()}`)),
      ),
    );
    exited.catch(() => {});
    await Promise.race([waitForPong(port, password), exited]);
    // The PONG may have come from another server that took the port first.
    if (listenerOwnedBy(proc.pid as number, port) === false) {
      await halt();
      throw new PortTaken(port);
    }
  }

  async function halt(): Promise<void> {
    const proc = child;
    child = null;
    process.removeListener('exit', killOnExit);
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const gone = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
      proc.kill('SIGCONT');
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      await gone;
      clearTimeout(timer);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = null;
  }

  // A port picked by freePort() can be taken by another process before
  // redis-server binds it: the first launch retries on a new port.
  for (let attempt = 1; ; attempt++) {
    try {
      await launch();
      break;
    } catch (err) {
      if (!(err instanceof PortTaken) || attempt === 3) throw err;
      await halt();
      port = await freePort();
    }
  }
  const url = password === undefined ? `redis://127.0.0.1:${port}` : `redis://:${encodeURIComponent(password)}@127.0.0.1:${port}`;
  return {
    url,
    port,
    keyPrefix,
    external: false,
    get pid() {
      return child?.pid ?? Number.NaN;
    },
    stop: halt,
    async restart() {
      await halt();
      await launch();
    },
    pause() {
      child?.kill('SIGSTOP');
    },
    resume() {
      child?.kill('SIGCONT');
    },
  };
}

/** Another process listens on the port picked for redis-server. */
class PortTaken extends Error {
  constructor(port: number) {
    super(`port ${port} was taken by another process before redis-server could bind it`);
  }
}

function assertRedisInstalled(): void {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error('redis-server is not installed (apt-get install redis-server), and REDIS_URL is not set; the store tests need a real Redis');
  }
}

/** Poll with a raw RESP PING until the server answers +PONG. */
async function waitForPong(port: number, password: string | undefined): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastError = 'no answer';
  while (Date.now() < deadline) {
    try {
      if (await pingOnce(port, password)) return;
      lastError = 'unexpected reply';
    } catch (err) {
      lastError = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`redis-server on port ${port} did not answer PING within ${READY_TIMEOUT_MS}ms: ${lastError}`);
}

function pingOnce(port: number, password: string | undefined): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let reply = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('ping timed out'));
    }, 1_000);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.on('connect', () => {
      const auth = password === undefined ? '' : `AUTH ${JSON.stringify(password)}\r\n`;
      socket.write(`${auth}PING\r\n`);
    });
    socket.on('data', (d) => {
      reply += d.toString();
      if (reply.includes('+PONG') || reply.includes('-')) {
        clearTimeout(timer);
        socket.destroy();
        resolve(reply.includes('+PONG'));
      }
    });
  });
}

/** Delete every key under `keyPrefix` on an external server, through Warden's own driver. */
async function dropKeys(url: string, keyPrefix: string): Promise<void> {
  const logger = createLogger({ destination: { write: () => {} } });
  const store = await createRedisStore({ url, keyPrefix, timeoutMs: 5_000, logger });
  try {
    const keys: string[] = [];
    for await (const key of store.keys('')) keys.push(key);
    await Promise.all(keys.map((key) => store.del(key)));
  } finally {
    await store.close();
  }
}

/** How many times each command ran on this server so far (INFO commandstats), by lower-case name; 0 for one that never ran. */
export async function commandCalls(client: { info(section: 'commandstats'): Promise<string> }): Promise<(cmd: string) => number> {
  const info = await client.info('commandstats');
  return (cmd) => Number(new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(info)?.[1] ?? 0);
}
