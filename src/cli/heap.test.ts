/**
 * cli/heap.ts: the full collection after start really collects (garbage the
 * old generation holds is gone), and it leaves no `gc` behind for other code.
 */

import { describe, expect, it } from 'vitest';
import { getHeapSpaceStatistics } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { collectStartupGarbage } from './heap.js';

const oldSpaceUsed = () => getHeapSpaceStatistics().find((s) => s.space_name === 'old_space')?.space_used_size ?? 0;

describe('collectStartupGarbage (#17)', () => {
  it('frees what start-up left in the old generation', () => {
    // Held across many scavenges, so promoted to the old generation, then dropped.
    let kept: Array<{ i: number; s: string }> | null = [];
    for (let i = 0; i < 300_000; i++) kept.push({ i, s: `start-up ${i}` });
    expect(kept.length).toBe(300_000);
    const before = oldSpaceUsed();
    kept = null;
    expect(collectStartupGarbage()).toBe(true);
    expect(before - oldSpaceUsed()).toBeGreaterThan(8 * 2 ** 20);
  });

  it('leaves no gc function to the gateway or to contexts made later', () => {
    collectStartupGarbage();
    expect(typeof (globalThis as { gc?: unknown }).gc).toBe('undefined');
    expect(runInNewContext('typeof gc')).toBe('undefined');
  });
});
