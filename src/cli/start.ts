/**
 * `warden start [-c gateway.yaml]`: process-level glue around the gateway:
 * signals (SIGHUP reload, SIGTERM/SIGINT drain), file watching, cluster workers.
 */

import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import { loadConfigFile } from '../gateway/config.js';
import type { LoadedConfig } from '../config/load.js';
import { createLogger } from '../observability/logger.js';
import { createBatchedWriter, PIPE_ATOMIC_BYTES } from '../observability/log-writer.js';
import { startGateway } from '../gateway/gateway.js';
import { configSources, watchConfigFiles, type ConfigWatch } from '../gateway/config-watch.js';
import { servePrimaryMetrics } from '../observability/cluster-metrics.js';
import { configPath } from './common.js';
import { keepTickShape } from '../core/tick-shape.js';

export async function run(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } } });
  await runServer(configPath(values));
}

/**
 * Serve until SIGTERM/SIGINT. With `server.workers` > 1 this process becomes a
 * cluster primary that forks the workers (sharing one port) and relays signals.
 */
export async function runServer(file: string): Promise<void> {
  if (cluster.isPrimary) {
    const loaded = loadConfigFile(file);
    const wanted = loaded.config.server.workers;
    const workers = wanted === 'auto' ? availableParallelism() : wanted;
    if (workers > 1) return runPrimary(workers);
    // One process: it serves the config it just read (not read and validated twice).
    return runWorker(file, false, loaded);
  }
  return runWorker(file, cluster.isWorker);
}

function runPrimary(count: number): void {
  const logger = createLogger();
  servePrimaryMetrics();
  let stopping = false;
  const fork = () => cluster.fork();
  for (let i = 0; i < count; i++) fork();
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    logger.error({ worker: worker.process.pid, code, signal }, 'worker exited; starting a new one');
    setTimeout(fork, 500);
  });
  const each = (signal: NodeJS.Signals) => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
  };
  process.on('SIGHUP', () => each('SIGHUP'));
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, workers: count }, 'stopping workers');
    each('SIGTERM');
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  logger.info({ workers: count }, 'cluster primary started');
}

async function runWorker(file: string, clusterMetrics: boolean, loaded?: LoadedConfig): Promise<void> {
  // Workers of one cluster share stdout: each line says which one wrote it, and
  // their batched writes stay within what a pipe writes without interleaving.
  const worker = cluster.isWorker && cluster.worker ? cluster.worker.id : undefined;
  const destination = createBatchedWriter({ maxWriteBytes: worker === undefined ? undefined : PIPE_ATOMIC_BYTES });
  const logger = createLogger(worker === undefined ? { destination } : { destination, base: { worker } });
  // Before the policies load (a million tuples run full collections with no tick queued): see core/tick-shape.ts.
  await keepTickShape();
  const gateway = await startGateway({ configFile: file, logger, clusterMetrics, loaded });
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
}
