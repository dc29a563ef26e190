/**
 * Process-level glue for `warden start` and friends: signals (SIGHUP reload,
 * SIGTERM/SIGINT drain), file watching, and helpers shared by CLI commands.
 */

import { watch, type FSWatcher } from 'node:fs';
import { resolve, dirname } from 'node:path';
export { publicUrlOf, dataDirOf } from './config/public-url.js';
import type { LoadedConfig } from './config/load.js';
import { createLogger } from './observability/logger.js';
import { startGateway } from './gateway.js';

/** Serve until SIGTERM/SIGINT. */
export async function runServer(file: string): Promise<void> {
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
  } finally {
    await store.close();
  }
}

/** `warden mcp accept`: accept a changed tool definition so the tool is shown and callable again. */
export async function runMcpAccept(loaded: LoadedConfig, route: string, tool: string): Promise<void> {
  const { createStore } = await import('./store/create.js');
  const { acceptToolDefinition } = await import('./mcp/pinning.js');
  const logger = createLogger();
  const store = await createStore(loaded.config.store, logger);
  try {
    const accepted = await acceptToolDefinition(store, route, tool);
    if (!accepted) {
      process.stderr.write(`no pending change for tool ${tool} on route ${route}\n`);
      process.exitCode = 1;
    } else process.stdout.write(`accepted the current definition of ${tool} on ${route}\n`);
  } finally {
    await store.close();
  }
}
