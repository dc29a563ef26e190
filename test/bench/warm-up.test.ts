/**
 * The harness warms each row up until its rate stops rising (bench/lib/load.mjs warmedUp) instead of for a
 * fixed two seconds: on a slow host G4 was still climbing for five seconds of the measured window.
 */

import { describe, expect, it } from 'vitest';
import { warmedUp } from '../../bench/lib/load.mjs';
import { warmupLine } from '../../bench/lib/report.mjs';

/** The first second at which warmedUp says yes, over a series of one-second rates (0: never). */
const settlesAt = (rates: number[], min = 2) => {
  for (let n = 1; n <= rates.length; n++) if (warmedUp(rates.slice(0, n), { min })) return n;
  return 0;
};

describe('warmedUp', () => {
  it('waits out a climb: G4 as measured on a slow host (1 s slices after the old 2 s warm-up)', () => {
    const g4 = [1078, 1129, 1469, 2372, 2937, 3943, 4038, 3973, 3900, 4010];
    // Not before the rate stops rising: at 8 s the last three (≤ 4,038) are 37 % above the best before them (2,937).
    expect(settlesAt(g4)).toBe(9);
  });

  it('settles a row that is steady from the start as soon as it can judge (the minimum, and three seconds to compare)', () => {
    expect(settlesAt([5000, 5100, 4900, 5050, 4980])).toBe(4);
    expect(settlesAt([5000, 5100, 4900, 5050, 4980, 5020], 5)).toBe(5);
  });

  it('is not ended by a dip, nor fooled by a slow climb of a few percent a second', () => {
    // A dip in the middle of the climb: the rate then rises again above the best before it.
    expect(settlesAt([1000, 2000, 1200, 2600, 3000, 3400, 3450, 3400, 3420])).toBe(9);
    // 4 % a second: each second alone is "within 5 %" of the one before, three together are not.
    const creep = Array.from({ length: 12 }, (_, i) => Math.round(1000 * 1.04 ** i));
    expect(settlesAt(creep)).toBe(0);
  });

  it('never says yes before the minimum', () => {
    expect(warmedUp([100, 100, 100, 100, 100], { min: 6 })).toBe(false);
    expect(warmedUp([100, 100, 100, 100, 100, 100], { min: 6 })).toBe(true);
  });
});

describe('warmupLine', () => {
  it('gives each row’s range of seconds and names the rows still rising at the cap', () => {
    const line = warmupLine([
      { id: 'R', warmup_s: [4, 5, 4] },
      { id: 'G4', warmup_s: [9, 12], warmup_still_rising: 1 },
      { id: 'G3', warmup_s: [6, 6, 6] },
    ])!;
    expect(line).toContain('R 4–5, G4 9–12, G3 6.');
    expect(line).toContain('**Still rising at the cap** in some round: G4 (1)');
  });

  it('says every row settled when none was cut off, and nothing for fixed warm-ups', () => {
    expect(warmupLine([{ id: 'R', warmup_s: [4] }])).toContain('Every row settled before the cap.');
    expect(warmupLine([{ id: 'R', warmup_s: [] }])).toBeNull();
  });
});
