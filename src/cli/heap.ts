/**
 * One full garbage collection once the gateway serves (#17, peak RSS of G3 ≤
 * 120 MB). Start-up (reading gateway.yaml, building the schema's result, the
 * model, the stages) leaves ~5 MB of garbage in V8's old generation, and with
 * the fixed 8 MiB semi-space (cli/node-flags.ts) a serving gateway runs no
 * mark-compact for a long time: that garbage would stay resident, and under
 * load the requests promoted on top of it add to it. Collecting it right after
 * start (and after a reload, which parses everything again) gives the pages
 * back before the first request: ~4–8 MB less resident under load, measured
 * in docs/performance.md ("Memory").
 *
 * Node exposes no collection call without `--expose-gc`; the flag is turned on
 * just long enough to take `gc` from a fresh context (it is off again for any
 * context made later, and the gateway's own global has no `gc`).
 */

import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

function fullCollection(): (() => void) | undefined {
  const own = (globalThis as { gc?: unknown }).gc;
  if (typeof own === 'function') return own as () => void;
  setFlagsFromString('--expose-gc');
  try {
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } finally {
    setFlagsFromString('--no-expose-gc');
  }
}

/**
 * Run `rounds` full collections: the first frees start-up's garbage, the ones
 * after it compact the pages it left sparse, so V8 can give them back (one
 * alone freed ~6 MB of the old generation but returned few of its pages).
 * Returns whether a collection ran; false leaves the process as it was
 * (nothing to fail on).
 */
export function collectStartupGarbage(rounds = 4): boolean {
  let gc: (() => void) | undefined;
  try {
    gc = fullCollection();
  } catch {
    gc = undefined;
  }
  if (!gc) return false;
  for (let i = 0; i < rounds; i++) gc();
  return true;
}
