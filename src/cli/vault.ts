/** `warden vault rekey`: re-encrypt every vault record with the first key (see vault/rekey.ts). */

import { parseArgs } from 'node:util';
import { createLogger } from '../observability/logger.js';
import { createStore } from '../store/create.js';
import { runRekey } from '../vault/rekey.js';
import { configPath, fail, loadOrExit } from './common.js';

export async function run(argv: string[]): Promise<void> {
  const [sub, ...rest] = argv;
  if (sub !== 'rekey') fail('usage: warden vault rekey [-c gateway.yaml]', 2);
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' } } });
  const { config, baseDir } = loadOrExit(configPath(values));
  // stdout carries the summary only; progress and logs go to stderr.
  const logger = createLogger({ destination: process.stderr });
  const store = await createStore(config.store, logger, baseDir);
  try {
    const result = await runRekey({ config, store, logger }, process.stderr);
    process.stdout.write(`rekey: ${JSON.stringify(result)}\n`);
    if (result.failed > 0) process.exitCode = 1;
  } finally {
    await store.close();
  }
}
