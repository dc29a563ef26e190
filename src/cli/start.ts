/**
 * `warden start [-c gateway.yaml]`: process-level glue around the gateway:
 * signals (SIGHUP reload, SIGTERM/SIGINT drain), file watching, cluster workers.
 */

import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../gateway/config.js';
import type { LoadedConfig } from '../config/load.js';
import { createLogger, scrubString } from '../observability/logger.js';
import { createBatchedWriter, PIPE_ATOMIC_BYTES } from '../observability/log-writer.js';
import { startGateway, type Gateway } from '../gateway/gateway.js';
import { ConfigError } from '../config/issues.js';
import { configSources, watchConfigFiles, type ConfigWatch } from '../gateway/config-watch.js';
import { servePrimaryMetrics } from '../observability/cluster-metrics.js';
import { configPath } from './common.js';
import { keepTickShape } from '../core/tick-shape.js';
import { catchEarlyHup, handOverHup } from './early-hup.js';

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
  await runServer(configPath(values));
}

/**
 * Serve until SIGTERM/SIGINT. With `server.workers` > 1 this process becomes a
 * cluster primary that forks the workers (sharing one port) and relays signals.
 */
export async function runServer(file: string): Promise<void> {
  // SIGHUP's default action ends the process: one sent while Warden starts (loading its modules, reading a
  // large config, connecting the store) is kept instead, and reloads once the gateway serves. The bin began
  // keeping them before it loaded this module (cli.ts); a direct caller begins here.
  catchEarlyHup();
  if (cluster.isPrimary) {
    const loaded = loadConfigFile(file);
    const wanted = loaded.config.server.workers;
    const workers = wanted === 'auto' ? availableParallelism() : wanted;
    if (workers > 1) return runPrimary(workers, handOverHup);
    // One process: it serves the config it just read (not read and validated twice).
    return runWorker(file, false, handOverHup, loaded);
  }
  return runWorker(file, cluster.isWorker, handOverHup);
}

/** A worker's first restart waits this long; each further exit of its slot within RESTART_WINDOW_MS doubles it, up to RESTART_DELAY_MAX_MS. */
const RESTART_DELAY_MS = 500;
const RESTART_DELAY_MAX_MS = 30_000;
const RESTART_WINDOW_MS = 60_000;
/**
 * A slot whose workers fail to start this often within RESTART_WINDOW_MS (a port taken, a store or key file
 * it cannot reach): the primary stops the cluster and exits 1, so systemd or Kubernetes sees the failure
 * instead of a primary that restarts workers forever. A worker that dies after it served is always started
 * again (with the delay above): a request that crashes one must not stop the cluster.
 */
const START_FAILURE_LIMIT = 4;

/** Messages between a worker and the primary about the worker's start (cluster-metrics.ts has its own tag). */
const WORKER_TAG = 'warden:worker';
type WorkerMessage = { [WORKER_TAG]: 'serving' } | { [WORKER_TAG]: 'failed'; reason: string };
const isWorkerMessage = (m: unknown): m is WorkerMessage => typeof m === 'object' && m !== null && WORKER_TAG in m;

function runPrimary(count: number, handOver: () => boolean): void {
  const logger = createLogger();
  servePrimaryMetrics();
  let stopping = false;
  let exitCode = 0;
  /** Live workers (forked, not yet exited) by id, with their slot and whether they serve yet. */
  const live = new Map<number, { worker: Worker; slot: number; serving: boolean; hup: boolean }>();
  /** Per slot: when its workers exited lately (and whether they had served), and the last start failure one reported. */
  const exits: Array<Array<{ at: number; served: boolean }>> = Array.from({ length: count }, () => []);
  const lastFailure: Array<string | undefined> = new Array(count).fill(undefined);
  const restarts = new Set<NodeJS.Timeout>();
  const fork = (slot: number) => {
    const worker = cluster.fork();
    live.set(worker.id, { worker, slot, serving: false, hup: false });
  };
  const exitOnceStopped = () => {
    if (live.size === 0) process.exit(exitCode);
  };
  const stop = (signal: string, code: number) => {
    if (stopping) return;
    stopping = true;
    exitCode = code;
    // A restart still waiting would start a worker nobody stops.
    for (const t of restarts) clearTimeout(t);
    restarts.clear();
    logger.info({ signal, workers: live.size }, 'stopping workers');
    for (const { worker } of live.values()) worker.process.kill('SIGTERM');
    exitOnceStopped();
  };

  cluster.on('message', (worker, message: unknown) => {
    const entry = live.get(worker.id);
    if (!entry || !isWorkerMessage(message)) return;
    if (message[WORKER_TAG] === 'failed') lastFailure[entry.slot] = message.reason;
    else {
      entry.serving = true;
      lastFailure[entry.slot] = undefined;
      // A SIGHUP that came while it started: it may have read the config before the change.
      if (entry.hup) worker.process.kill('SIGHUP');
    }
  });
  cluster.on('exit', (worker, code, signal) => {
    const entry = live.get(worker.id);
    live.delete(worker.id);
    if (stopping || !entry) return exitOnceStopped();
    const now = Date.now();
    const recent = [...exits[entry.slot].filter((e) => now - e.at < RESTART_WINDOW_MS), { at: now, served: entry.serving }];
    exits[entry.slot] = recent;
    const reason = (entry.serving ? undefined : lastFailure[entry.slot]) ?? (signal ? `killed by ${signal}` : `exit code ${code}`);
    const about = { worker: worker.id, pid: worker.process.pid, code, signal, reason, served: entry.serving };
    const failedStarts = recent.filter((e) => !e.served).length;
    if (failedStarts >= START_FAILURE_LIMIT) {
      const window = RESTART_WINDOW_MS / 1000;
      logger.error({ ...about, failed_starts: failedStarts, window_s: window }, 'workers keep failing to start; stopping the cluster');
      process.stderr.write(`warden: workers keep failing to start (${failedStarts} times within ${window} s); last: ${scrubString(reason)}\n`);
      return stop('workers keep failing to start', 1);
    }
    const delay = Math.min(RESTART_DELAY_MS * 2 ** (recent.length - 1), RESTART_DELAY_MAX_MS);
    logger.error({ ...about, restart_in_ms: delay }, 'worker exited; starting a new one');
    const timer = setTimeout(() => {
      restarts.delete(timer);
      fork(entry.slot);
    }, delay);
    restarts.add(timer);
  });

  for (let i = 0; i < count; i++) fork(i);
  process.on('SIGHUP', () => {
    // A worker still starting gets the signal once it serves (one reload, after its start read the config).
    for (const entry of live.values()) {
      if (entry.serving) entry.worker.process.kill('SIGHUP');
      else entry.hup = true;
    }
  });
  // Workers fork after this process read the config: a SIGHUP before now changes nothing they read.
  handOver();
  process.on('SIGTERM', () => stop('SIGTERM', 0));
  process.on('SIGINT', () => stop('SIGINT', 0));
  logger.info({ workers: count }, 'cluster primary started');
}

/** Tell the primary (in a cluster worker), and wait until the message is written: the worker may exit next. */
function tellPrimary(message: WorkerMessage): Promise<void> {
  if (!cluster.isWorker || !process.send) return Promise.resolve();
  return new Promise((resolve) => process.send!(message, undefined, {}, () => resolve()));
}

/** What a start failure says, as `warden start` prints it (cli.ts). */
function describeFailure(err: unknown): string {
  if (err instanceof ConfigError) return err.message;
  const code = (err as { code?: unknown }).code;
  return `${typeof code === 'string' ? `${code}: ` : ''}${err instanceof Error ? err.message : String(err)}`;
}

async function runWorker(file: string, clusterMetrics: boolean, handOver: () => boolean, loaded?: LoadedConfig): Promise<void> {
  // Workers of one cluster share stdout: each line says which one wrote it, and
  // their batched writes stay within what a pipe writes without interleaving.
  const worker = cluster.isWorker && cluster.worker ? cluster.worker.id : undefined;
  const destination = createBatchedWriter({ maxWriteBytes: worker === undefined ? undefined : PIPE_ATOMIC_BYTES });
  const logger = createLogger(worker === undefined ? { destination } : { destination, base: { worker } });
  // Before the policies load (a million tuples run full collections with no tick queued): see core/tick-shape.ts.
  await keepTickShape();
  let gateway: Gateway;
  try {
    gateway = await startGateway({ configFile: file, logger, clusterMetrics, loaded });
  } catch (err) {
    // The primary names the reason when it gives up on a worker that cannot start.
    await tellPrimary({ [WORKER_TAG]: 'failed', reason: describeFailure(err) });
    throw err;
  }
  const config = gateway.runtime().config;

  let stopping = false;
  let watching: ConfigWatch | undefined;
  // After each reload: the running config's files (a reload may name others, a symlink point elsewhere).
  const watchRunningFiles = async () => {
    if (!watching || stopping) return;
    const files = await configSources(file, gateway.runtime().config);
    if (!stopping) watching.update(files);
  };
  let timer: NodeJS.Timeout | undefined;
  const scheduleReload = (why: string) => {
    if (stopping) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      logger.info({ why }, 'reloading configuration');
      gateway
        .reload()
        .then(watchRunningFiles)
        .catch((err: unknown) => logger.error({ err }, 'server.watch: cannot watch the reloaded configuration files'));
    }, 200);
  };
  if (config.server.watch) {
    watching = watchConfigFiles(await configSources(file, config), (path) => scheduleReload(`changed: ${path}`), logger);
  }
  process.on('SIGHUP', () => scheduleReload('SIGHUP'));
  if (handOver()) scheduleReload('SIGHUP while starting');

  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining in-flight requests');
    clearTimeout(timer);
    watching?.close();
    try {
      await gateway.close();
      logger.info('stopped');
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
  await tellPrimary({ [WORKER_TAG]: 'serving' });
}
