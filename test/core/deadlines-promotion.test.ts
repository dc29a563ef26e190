/**
 * #17, G3's peak RSS: the upstream deadlines of relayed requests
 * (src/proxy/deadlines.ts) must not carry one request's data into the old
 * generation through another's. A Set did: once a mark-compact had moved its
 * table to the old generation, every replaced table kept the next one (and the
 * exchanges in it) alive through each scavenge, and ~15 % of all allocation
 * was promoted under load. Measured in a child node process (built module,
 * V8's own GC trace): after one full GC with exchanges in flight, a churn of
 * 300,000 exchanges (32 in flight) promotes almost nothing.
 */

import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/gateway.js';
import { promotedInChild } from '../support/promotion.js';
import { Deadlines, type Deadline } from '../../src/proxy/deadlines.js';

const MODULE = join(REPO_ROOT, 'dist/src/proxy/deadlines.js');

// The exchanges carry a little data each, as a relay carries its request and response.
const CHURN = `
const { Deadlines } = await import(process.argv[1]);
const deadlines = new Deadlines(50);
const inflight = [];
const exchange = () => ({ armedAt: deadlines.tick, timeoutMs: 1e9, data: Array.from({ length: 32 }, (_, i) => ({ i })), timeOut() {} });
for (let i = 0; i < 32; i++) { const e = exchange(); deadlines.add(e); inflight.push(e); }
// What a mark-compact under load does: everything live, the deadlines' own structure included, is old now.
globalThis.gc();
process.stdout.write('--- churn\\n');
for (let n = 0; n < 300000; n++) { const e = exchange(); deadlines.add(e); inflight.push(e); deadlines.delete(inflight.shift()); }
deadlines.stop();
`;

describe('upstream deadlines and the young generation (#17)', () => {
  it('a churn of exchanges after a full GC promotes (almost) none of their data', async () => {
    const { bytes, scavenges } = await promotedInChild(CHURN, { modules: [MODULE] });
    // The churn allocates ~500 MB: enough scavenges that a chain of tables would show.
    expect(scavenges).toBeGreaterThan(50);
    // With a Set: ~70 MB promoted here. With slots: ~0.1 MB (the harness's own).
    expect(bytes).toBeLessThan(8 * 2 ** 20);
  }, 60_000);
});

describe('Deadlines slots', () => {
  const exchange = (fired: string[], name: string, deadlines: Deadlines): Deadline => ({
    armedAt: -1,
    timeoutMs: 0,
    timeOut() {
      fired.push(name);
      deadlines.delete(this);
    },
  });

  it('adds once, deletes once, reuses freed slots, and a deleted exchange is never swept', () => {
    const deadlines = new Deadlines(50);
    const fired: string[] = [];
    const [a, b, c] = ['a', 'b', 'c'].map((n) => exchange(fired, n, deadlines));
    deadlines.add(a);
    deadlines.add(a);
    deadlines.add(b);
    expect(deadlines.size).toBe(2);
    deadlines.delete(a);
    deadlines.delete(a);
    deadlines.delete(c);
    expect(deadlines.size).toBe(1);
    deadlines.add(c);
    deadlines.add(a);
    expect(deadlines.size).toBe(3);
    // Each one due now: a sweep times out exactly the live ones, each once.
    deadlines.delete(b);
    for (const e of [a, c]) e.armedAt = deadlines.tick - 10;
    (deadlines as unknown as { sweep(): void }).sweep();
    expect(fired.sort()).toEqual(['a', 'c']);
    expect(deadlines.size).toBe(0);
    deadlines.stop();
    // Added again after the slots were reset: still tracked.
    b.armedAt = deadlines.tick - 10;
    deadlines.add(b);
    (deadlines as unknown as { sweep(): void }).sweep();
    expect(fired).toContain('b');
    deadlines.stop();
  });
});
