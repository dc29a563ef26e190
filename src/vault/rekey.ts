/**
 * `warden vault rekey`: re-seal every connection record with the current
 * (first) vault key, so older keys can be removed from `vault.keys`. Safe to
 * interrupt and run again: records already on the current key are skipped.
 */

import type { Runtime } from '../core/runtime.js';
import { createVaultCipher } from './crypto.js';
import { createConnectionRepository, type RekeySummary } from './records.js';

/** Where the command writes its report (process.stdout, or a test buffer). */
export interface LineSink {
  write(text: string): unknown;
}

/**
 * Run the rekey over `rt.store` and print a summary (and each record that
 * failed to open, by store key — never contents). Returns the summary; the
 * CLI exits 1 when `failed > 0`.
 */
export async function runRekey(rt: Pick<Runtime, 'config' | 'store' | 'logger'>, out: LineSink): Promise<RekeySummary> {
  const cipher = createVaultCipher(rt.config.vault.keys);
  const connections = createConnectionRepository(rt.store, cipher);
  out.write(`rekeying vault records to key ${cipher.currentKeyId}\n`);
  const summary = await connections.rekey((progress) => {
    if (progress.outcome === 'failed') out.write(`cannot open ${progress.key} (tampered, or sealed with a key no longer configured)\n`);
    if (progress.scanned % 1000 === 0) out.write(`… ${progress.scanned} scanned\n`);
  });
  out.write(`scanned ${summary.scanned}, rekeyed ${summary.rekeyed}, already current ${summary.current}, gone ${summary.gone}, failed ${summary.failed}\n`);
  rt.logger.info({ ...summary, failures: summary.failures.length, key_id: cipher.currentKeyId }, 'vault rekey finished');
  return summary;
}
