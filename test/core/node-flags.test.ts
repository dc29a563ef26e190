/**
 * Warden's V8 flags (#17, src/cli/node-flags.ts): the list this Node accepts,
 * the copy the benchmark starts R and F with, and when `warden start` leaves an
 * operator's own heap flags alone instead of re-executing Node with its own.
 */

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { WARDEN_NODE_FLAGS, hasHeapFlags } from '../../src/cli/node-flags.js';
import { WARDEN_NODE_FLAGS as BENCH_NODE_FLAGS } from '../../bench/lib/variants.mjs';

describe("Warden's node flags", () => {
  it('are all accepted by this Node (V8 exits with 9 on a flag it does not know)', () => {
    const run = spawnSync(process.execPath, [...WARDEN_NODE_FLAGS, '-e', 'process.stdout.write(JSON.stringify(process.execArgv))'], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual([...WARDEN_NODE_FLAGS, '-e', expect.any(String)]);
  });

  it('are the flags the benchmark gives R, F and its tuned rows (ratios compare code, not heap settings)', () => {
    expect(BENCH_NODE_FLAGS.split(' ')).toEqual([...WARDEN_NODE_FLAGS]);
  });
});

describe('hasHeapFlags: heap flags of the operator’s own mean no re-exec', () => {
  it('finds a semi-space size or a heap growing percent on the command line, in either spelling', () => {
    expect(hasHeapFlags(['--max-semi-space-size=16'], '')).toBe(true);
    expect(hasHeapFlags(['--min_semi_space_size=4'], '')).toBe(true);
    expect(hasHeapFlags(['--heap-growing-percent=50'], '')).toBe(true);
    expect(hasHeapFlags(['--heap_growing_percent=0'], '')).toBe(true);
    expect(hasHeapFlags(['--max-semi-space-size', '16'], '')).toBe(true);
  });

  it('finds a semi-space size in NODE_OPTIONS (the only one of them Node allows there)', () => {
    expect(hasHeapFlags([], '--enable-source-maps --max-semi-space-size=8')).toBe(true);
  });

  it('ignores other flags, lookalikes and an empty environment', () => {
    expect(hasHeapFlags([], '')).toBe(false);
    expect(hasHeapFlags(['--max-old-space-size=512', '--enable-source-maps'], '--inspect')).toBe(false);
    expect(hasHeapFlags(['--heap-growing-percentage=5', '--semi-space-growth-factor=2'], '')).toBe(false);
  });
});
