/**
 * Processes a test starts and stops: a spawned service that is ready when a
 * probe says so (its output kept for failure messages, killed if the test
 * process exits), a Warden started from `dist/`, and a loop of agent
 * requests that runs until the gateway stops answering.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { CLI } from './cli.js';
import { REPO_ROOT } from './gateway.js';

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

/** A Warden process: `node dist/src/cli.js start -c CONFIG` with `env`, ready when /.warden/readyz answers 200. */
export async function startWardenProcess(name: string, configFile: string, env: Record<string, string>, url: string): Promise<Service> {
  return spawnService(name, process.execPath, [CLI, 'start', '-c', configFile], {
    env: { ...process.env, ...env },
    ready: async () => (await fetch(`${url}/.warden/readyz`, { signal: AbortSignal.timeout(1_000) })).status === 200,
    timeoutMs: 30_000,
  });
}

/** A request a process answered with 200: its request id and when. */
export interface Answered {
  id: string;
  at: number;
}

/**
 * `workers` loops of GETs (`path(worker, i)` under `url`, with `token`) until the
 * gateway stops answering; every 200 is kept with its request id and time.
 */
export function loadUntilGone(url: string, token: string, path: (worker: number, i: number) => string, workers = 8) {
  const answered: Answered[] = [];
  let stop = false;
  const loop = async (w: number) => {
    for (let i = 0; !stop; i++) {
      try {
        const res = await fetch(`${url}${path(w, i)}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5_000) });
        await res.arrayBuffer();
        if (res.status === 200) answered.push({ id: res.headers.get('x-request-id')!, at: Date.now() });
      } catch {
        return; // the gateway is gone (or closing its listener)
      }
    }
  };
  const done = Promise.all(Array.from({ length: workers }, (_, w) => loop(w)));
  return {
    answered,
    finish: async () => {
      stop = true;
      await done;
    },
  };
}
