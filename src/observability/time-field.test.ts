import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cachedIsoTime } from './logger.js';

const expected = (t: number) => `,"time":"${new Date(t).toISOString()}"`;

describe('the time field of a log line', () => {
  it('is Date’s ISO text at every millisecond, across seconds, in any order (second kept, milliseconds written)', () => {
    const base = Date.UTC(2026, 10, 30, 3, 24, 19, 0);
    for (const t of [base, base + 9, base + 10, base + 99, base + 100, base + 999, base + 1000, base + 1001, base - 1, base + 5, base + 86_400_000 - 1]) {
      expect(cachedIsoTime(t), String(t)).toBe(expected(t));
    }
    for (let t = base - 2_500; t < base + 2_500; t++) expect(cachedIsoTime(t)).toBe(expected(t));
  });

  it('is Date’s ISO text for any time, before 1970 and after 9999 included', () => {
    fc.assert(
      fc.property(fc.integer({ min: -8.64e15 + 2000, max: 8.64e15 - 2000 }), fc.integer({ min: -1500, max: 1500 }), (t, step) => {
        expect(cachedIsoTime(t)).toBe(expected(t));
        expect(cachedIsoTime(t + step)).toBe(expected(t + step));
      }),
      { numRuns: 3000 },
    );
  });

  it('defaults to now', () => {
    const before = Date.now();
    const text = cachedIsoTime();
    const t = Date.parse(text.slice(9, -1));
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(Date.now());
  });
});
