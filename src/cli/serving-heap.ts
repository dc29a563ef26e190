/**
 * The heap settings Warden serves with once it is loaded (#17): the other half
 * of the node flags (node-flags.ts), which V8 takes only at start-up. Its own
 * module so that the relay (node-flags.ts) loads nothing it does not use.
 */

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { REEXEC_CHILD, REEXEC_MARKER } from './node-flags.js';

/**
 * V8's old-generation growing factor while Warden serves, as a percentage
 * (`--heap-growing-percent`): after each mark-compact the next one comes when
 * the old generation reaches its live size × 1.3 (at least live + 8 MiB) plus
 * the new space's size. Left to itself V8 picks the factor from its measured
 * marking speed against the old generation's allocation rate: its maximum, 4,
 * at start-up (no speed measured yet: 14 MB live gave a 64 MB limit, which a
 * long run under load fills, G3 peaking at 140 MB after 75 s) and whenever
 * promotion is fast (the chain of Set tables fixed in src/proxy/deadlines.ts
 * had ~25 MB live grow to a ~110 MB limit: the 180–200 MB rounds of G3). 1.3
 * is the factor V8 itself uses when it saves memory (its "conservative" mode).
 */
export const SERVING_HEAP_GROWING_PERCENT = 30;

/**
 * Once the gateway is loaded (src/cli/start.ts): set the growing factor and
 * collect the start-up garbage with one full GC, so that the limit in force
 * when traffic comes is live × 1.3 and not the one V8 set at start-up (there
 * it has no speeds measured yet, and takes the maximum factor, 4). Set after
 * loading, not as a flag: while a large policy loads (1M tuples, ~550 MB) a
 * small factor would mean a mark-compact every 30 % of growth. No limit is
 * capped: a heap that needs 2 GB still gets it, only later mark-compacts
 * come sooner. Skipped when the node flags are opted out
 * (WARDEN_NODE_FLAGS_APPLIED other than the relay's own marker: V8's defaults)
 * or the growing factor is already chosen on node's command line.
 * Returns whether it applied the setting.
 */
export function settleHeapForServing(execArgv: readonly string[] = process.execArgv, marker: string | undefined = process.env[REEXEC_MARKER]): boolean {
  if (marker !== undefined && marker !== REEXEC_CHILD) return false;
  if (execArgv.some((a) => /^--heap[-_]growing[-_]percent(=|$)/.test(a))) return false;
  setFlagsFromString(`--heap-growing-percent=${SERVING_HEAP_GROWING_PERCENT}`);
  collectGarbage();
  return true;
}

/**
 * One full, synchronous GC. Node offers it only with --expose-gc; the flag is
 * turned on just long enough for a fresh vm context to get its `gc` (this
 * realm's globals are not touched), then off again.
 */
function collectGarbage(): void {
  const own = (globalThis as { gc?: () => void }).gc;
  if (typeof own === 'function') return own();
  setFlagsFromString('--expose-gc');
  try {
    (runInNewContext('gc') as () => void)();
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}
