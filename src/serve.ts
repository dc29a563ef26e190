/**
 * Process-level glue for `warden start` and friends: signals (SIGHUP reload,
 * SIGTERM/SIGINT drain), file watching, and helpers shared by CLI commands.
 */

import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import { watch, type FSWatcher } from 'node:fs';
import { resolve, dirname } from 'node:path';
export { publicUrlOf, dataDirOf } from './config/public-url.js';
import type { LoadedConfig } from './config/load.js';
import { createLogger } from './observability/logger.js';
import { startGateway } from './gateway.js';

/**
 * Serve until SIGTERM/SIGINT. With `server.workers` > 1 this process becomes a
 * cluster primary that forks the workers (sharing one port) and relays signals.
 */
export async function runServer(file: string): Promise<void> {
  if (cluster.isPrimary) {
    const { loadConfigFile } = await import('./config/load.js');
    const wanted = loadConfigFile(file).config.server.workers;
    const workers = wanted === 'auto' ? availableParallelism() : wanted;
    if (workers > 1) return runPrimary(workers);
  }
  return runWorker(file);
}

function runPrimary(count: number): void {
  const logger = createLogger();
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

async function runWorker(file: string): Promise<void> {
  const logger = createLogger();
  const gateway = await startGateway({ configFile: file, logger });
  const config = gateway.runtime().config;

  let watcher: FSWatcher[] = [];
  let timer: NodeJS.Timeout | undefined;
  const scheduleReload = (why: string) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      logger.info({ why }, 'reloading configuration');
      void gateway.reload();
    }, 200);
  };
  if (config.server.watch) {
    const base = dirname(resolve(file));
    const paths = [resolve(file), resolve(base, config.authz.model), ...(config.authz.tuples ? [resolve(base, config.authz.tuples)] : [])];
    watcher = paths.map((p) => watch(p, () => scheduleReload(`changed: ${p}`)));
  }
  process.on('SIGHUP', () => scheduleReload('SIGHUP'));

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining in-flight requests');
    watcher.forEach((w) => w.close());
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

/** `warden vault rekey`: re-encrypt every vault record with the first key. */
export async function runVaultRekey(loaded: LoadedConfig): Promise<void> {
  const { createStore } = await import('./store/create.js');
  const { createVaultCipher } = await import('./vault/crypto.js');
  const { createConnectionRepository } = await import('./vault/records.js');
  const logger = createLogger();
  const store = await createStore(loaded.config.store, logger);
  try {
    const repo = createConnectionRepository(store, createVaultCipher(loaded.config.vault.keys));
    const result = await repo.rekey((p) => {
      process.stderr.write(`rekey: ${JSON.stringify(p)}\n`);
    });
    process.stdout.write(`rekey: ${JSON.stringify(result)}\n`);
    if (result.failed > 0) process.exitCode = 1;
  } finally {
    await store.close();
  }
}

/** `warden mcp accept`: accept a changed tool definition so the tool is shown and callable again. */
export async function runMcpAccept(loaded: LoadedConfig, route: string, tool: string): Promise<void> {
  const { createStore } = await import('./store/create.js');
  const { acceptToolChange } = await import('./mcp/admin.js');
  const logger = createLogger();
  const store = await createStore(loaded.config.store, logger);
  try {
    const outcome = await acceptToolChange(store, route, tool, logger);
    if (outcome.status === 'accepted') process.stdout.write(`accepted the current definition of ${tool} on route ${route}\n`);
    else {
      process.stderr.write(outcome.status === 'unknown_tool' ? `no tool ${tool} has been seen on route ${route}\n` : `the definition of ${tool} on route ${route} has not changed; nothing to accept\n`);
      process.exitCode = 1;
    }
  } finally {
    await store.close();
  }
}
