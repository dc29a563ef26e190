/**
 * `warden start` under a supervisor. With `server.workers: 2`, as an operator runs it (the built CLI, through its
 * re-exec relay): the cluster primary is what systemd or Kubernetes
 * supervises, so it must say when the cluster cannot serve. A worker that
 * keeps failing to start is restarted with a growing delay, and after a few
 * failed starts within a minute the primary stops and exits 1 with the
 * reason; a worker that dies after serving is restarted, however often (a
 * request that crashes one must not stop the cluster); SIGTERM stops the
 * primary also while it waits to restart a worker.
 */

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { CLI, requireBuiltCli } from '../support/cli.js';
import { REPO_ROOT } from '../support/gateway.js';
import { freePort } from '../support/net.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { until } from '../support/eventually.js';

let dir: string;
let redis: TestRedis;
let cli: ChildProcess | undefined;

const config = (port: number) => `
server: { listen: "127.0.0.1:${port}", admin_listen: null, workers: 2, shutdown_timeout: 5s }
store: { driver: redis, url: "${redis.url}", key_prefix: "${redis.keyPrefix}" }
authz: { model: ${join(REPO_ROOT, 'policies/model.fga')} }
routes:
  - name: status
    match: { path: /status }
    upstream: { url: "http://127.0.0.1:9" }
    public: true
`;

/** Direct children of a process (Linux /proc). */
function childPids(pid: number): number[] {
  const file = `/proc/${pid}/task/${pid}/children`;
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number) : [];
}
const alive = (pid: number) => {
  try {
    return !/^\d+ \(.*\) [ZX]/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
};

/** `warden start -c file` (relay, primary, workers), its output collected. */
function start(file: string, env: Record<string, string> = {}, nodeArgs: string[] = []) {
  let output = '';
  const child = spawn(process.execPath, [...nodeArgs, CLI, 'start', '-c', file], {
    cwd: dir,
    env: { ...process.env, WARDEN_DATA_DIR: join(dir, 'data'), ...env },
  });
  cli = child;
  child.stdout!.on('data', (c) => (output += c));
  child.stderr!.on('data', (c) => (output += c));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  /** The exit code, or null when the process is still running after `ms`. */
  const exitWithin = (ms: number) => Promise.race([exited, new Promise<null>((r) => setTimeout(() => r(null), ms))]);
  return { child, output: () => output, exitWithin };
}

/** Whether `pid` has a handler for SIGHUP (signal 1: the lowest bit of SigCgt in /proc). */
const catchesHup = (pid: number) => {
  const m = /^SigCgt:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m !== null && (BigInt(`0x${m[1]}`) & 1n) === 1n;
};

const listening = (output: string) => (output.match(/"msg":"warden listening"/g) ?? []).length;

/** `until(ready)` on a run's output; a timeout says what the run printed last. */
async function untilOutput(run: { output(): string }, ready: (output: string) => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  await until(() => ready(run.output()), { timeoutMs, what }).catch((err: Error) => {
    throw new Error(`${err.message}; output:\n${run.output().slice(-3_000)}`);
  });
}

/** A SIGHUP kept while starting was applied once the gateway served. */
const reloadedOnceServing = (output: string) => output.includes('"why":"SIGHUP while starting"') && output.includes('"msg":"configuration reloaded"');

/** The two-worker cluster serving `config(port)` from `name`, with its primary's pid. */
async function servingCluster(name: string) {
  const port = await freePort();
  const file = join(dir, name);
  writeFileSync(file, config(port));
  const run = start(file);
  await until(() => listening(run.output()) === 2, { timeoutMs: 30_000, what: 'two workers listening' });
  const [primary] = childPids(run.child.pid!);
  return { run, port, primary };
}

beforeAll(async () => {
  requireBuiltCli();
  dir = mkdtempSync(join(tmpdir(), 'warden-cluster-supervision-'));
  redis = await startRedis({ local: true });
});
afterEach(() => {
  if (cli && cli.exitCode === null && cli.signalCode === null) {
    // The whole tree: the relay, the primary and its workers.
    const primary = childPids(cli.pid!);
    for (const pid of [...primary.flatMap(childPids), ...primary]) process.kill(pid, 'SIGKILL');
    cli.kill('SIGKILL');
  }
  cli = undefined;
});
afterAll(async () => {
  await redis?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('cluster primary supervision (server.workers)', () => {
  it('workers that cannot start (their port taken) are retried with a growing delay, then the primary exits 1 with the reason', async () => {
    const taken: Server = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    try {
      const file = join(dir, 'taken.yaml');
      writeFileSync(file, config(port));
      const run = start(file);
      const code = await run.exitWithin(45_000);
      expect(code, `still running after 45 s; output:\n${run.output().slice(-3_000)}`).toBe(1);
      // The reason is the worker's own error, said by the primary as it gives up.
      expect(run.output()).toMatch(/workers keep failing to start[^\n]*EADDRINUSE/);
      // Restarts backed off: a handful, not one every 500 ms.
      const restarts = (run.output().match(/"msg":"worker exited; starting a new one"/g) ?? []).length;
      expect(restarts).toBeGreaterThan(0);
      expect(restarts).toBeLessThanOrEqual(8);
    } finally {
      await new Promise((r) => taken.close(r));
    }
  }, 60_000);

  it('workers killed after serving are restarted every time, and the primary keeps serving', async () => {
    const { run, port, primary } = await servingCluster('restart.yaml');
    // More deaths within a minute than a slot may fail to start: these workers had served.
    for (let round = 1; round <= 4; round++) {
      const killed = childPids(primary);
      for (const pid of killed) process.kill(pid, 'SIGKILL');
      await until(() => listening(run.output()) === 2 + 2 * round, { timeoutMs: 30_000, what: `round ${round}: two new workers listening` });
      expect(childPids(primary).filter((pid) => killed.includes(pid))).toEqual([]);
    }
    expect(childPids(primary)).toHaveLength(2);
    expect((await fetch(`http://127.0.0.1:${port}/.warden/healthz`)).status).toBe(200);
    run.child.kill('SIGTERM');
    expect(await run.exitWithin(15_000)).toBe(0);
  }, 60_000);

  it('SIGTERM while workers wait to be restarted stops the primary (exit 0) and starts no new worker', async () => {
    const { run, primary } = await servingCluster('stop-in-backoff.yaml');
    for (const pid of childPids(primary)) process.kill(pid, 'SIGKILL');
    await until(() => (run.output().match(/"msg":"worker exited; starting a new one"/g) ?? []).length === 2, {
      timeoutMs: 10_000,
      what: 'both exits seen by the primary',
    });
    run.child.kill('SIGTERM');
    const code = await run.exitWithin(15_000);
    expect(code, `still running 15 s after SIGTERM; output:\n${run.output().slice(-3_000)}`).toBe(0);
    expect(alive(primary)).toBe(false);
    expect(listening(run.output())).toBe(2);
  }, 60_000);

  it('a SIGHUP while the workers start ends none of them: each reloads once it serves', async () => {
    const port = await freePort();
    const file = join(dir, 'hup-at-start.yaml');
    writeFileSync(file, config(port));
    const run = start(file);
    // Sent to the relay, which passes it to the primary, which has just forked its workers.
    await until(() => run.output().includes('"msg":"cluster primary started"'), { timeoutMs: 30_000, what: 'the primary' });
    run.child.kill('SIGHUP');
    await untilOutput(run, (output) => (output.match(/"msg":"configuration reloaded"/g) ?? []).length === 2, 'both workers reloaded');
    expect(run.output()).not.toContain('worker exited');
    expect(listening(run.output())).toBe(2);
    run.child.kill('SIGTERM');
    expect(await run.exitWithin(15_000)).toBe(0);
  }, 60_000);
});

describe('warden start in one process', () => {
  it('a SIGHUP while its modules load does not end it: it reloads once serving', async () => {
    const port = await freePort();
    const file = join(dir, 'hup-while-loading.yaml');
    writeFileSync(file, config(port).replace('workers: 2', 'workers: 1'));
    // A module hook holds the server's modules (cli/start.js and all it imports) until the test releases them.
    const gate = join(dir, 'release-start-module');
    const hooks = join(dir, 'hold-start-hooks.mjs');
    writeFileSync(
      hooks,
      `import { existsSync, writeFileSync } from 'node:fs';
export async function load(url, context, nextLoad) {
  if (url.endsWith('/cli/start.js')) {
    writeFileSync(${JSON.stringify(`${gate}.held`)}, '');
    while (!existsSync(${JSON.stringify(gate)})) await new Promise((r) => setTimeout(r, 20));
  }
  return nextLoad(url, context);
}
`,
    );
    const register = join(dir, 'hold-start.mjs');
    writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`);
    const run = start(file, { WARDEN_NODE_FLAGS_APPLIED: 'off' }, ['--import', pathToFileURL(register).href]);
    await until(() => existsSync(`${gate}.held`), { timeoutMs: 15_000, what: 'the server module held' });
    await until(() => catchesHup(run.child.pid!), { timeoutMs: 5_000, what: 'a SIGHUP handler while the modules load' });
    run.child.kill('SIGHUP');
    await new Promise((r) => setTimeout(r, 200));
    expect(run.child.exitCode, run.output()).toBeNull();
    expect(run.child.signalCode).toBeNull();
    writeFileSync(gate, '');
    await untilOutput(run, reloadedOnceServing, 'the reload once serving');
    expect((await fetch(`http://127.0.0.1:${port}/.warden/healthz`)).status).toBe(200);
    run.child.kill('SIGTERM');
    expect(await run.exitWithin(15_000)).toBe(0);
  }, 60_000);

  it('a SIGHUP while the gateway starts (its store slow to answer) does not end it: it reloads once serving', async () => {
    const port = await freePort();
    const file = join(dir, 'one-hup-at-start.yaml');
    writeFileSync(
      file,
      config(port).replace('workers: 2', 'workers: 1').replace(`key_prefix: "${redis.keyPrefix}"`, `key_prefix: "${redis.keyPrefix}", timeout: 20s`),
    );
    // Connecting to a frozen Redis holds the start until it is thawed.
    redis.pause();
    let thawed = false;
    try {
      const run = start(file, { WARDEN_NODE_FLAGS_APPLIED: 'off' });
      // The handler is in place once the process reads its config, long before the store answers.
      await until(() => catchesHup(run.child.pid!), { timeoutMs: 15_000, what: 'a SIGHUP handler while starting' });
      expect(run.output()).not.toContain('warden listening');
      run.child.kill('SIGHUP');
      await new Promise((r) => setTimeout(r, 200));
      redis.resume();
      thawed = true;
      await untilOutput(run, reloadedOnceServing, 'the reload once serving');
      expect(run.child.exitCode).toBeNull();
      expect((await fetch(`http://127.0.0.1:${port}/.warden/healthz`)).status).toBe(200);
      run.child.kill('SIGTERM');
      expect(await run.exitWithin(15_000)).toBe(0);
    } finally {
      if (!thawed) redis.resume();
    }
  }, 60_000);
});
