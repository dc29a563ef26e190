import { describe, expect, it } from 'vitest';
import { newRequestId } from './request-id.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
// Past several refills of the random pool (256 ids each).
const N = 20_000;

describe('newRequestId', () => {
  it('is a version 4 UUID in lower-case hex, as crypto.randomUUID() writes one', () => {
    for (let i = 0; i < N; i++) expect(UUID_V4.test(newRequestId())).toBe(true);
  });

  it('never repeats, across pool refills', () => {
    const seen = new Set<string>();
    for (let i = 0; i < N; i++) seen.add(newRequestId());
    expect(seen.size).toBe(N);
  });

  it('uses every hex digit at every random position (both nibbles of every byte are written)', () => {
    const digits = Array.from({ length: 36 }, () => new Set<string>());
    for (let i = 0; i < 4_000; i++) {
      const id = newRequestId();
      for (let j = 0; j < 36; j++) digits[j].add(id[j]);
    }
    for (let j = 0; j < 36; j++) {
      if (j === 8 || j === 13 || j === 18 || j === 23) expect([...digits[j]]).toEqual(['-']);
      else if (j === 14) expect([...digits[j]]).toEqual(['4']);
      else if (j === 19) expect([...digits[j]].sort()).toEqual(['8', '9', 'a', 'b']);
      else expect(digits[j].size).toBe(16);
    }
  });
});
