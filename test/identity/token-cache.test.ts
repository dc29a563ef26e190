/** Unit tests of the verified-token cache's own logic (bounds, expiry, counters). */

import { describe, expect, it } from 'vitest';
import { createTokenCache, tokenCacheKey } from '../../src/identity/token-cache.js';

describe('token cache', () => {
  it('returns what was set until expiry, and never at or past it', () => {
    const cache = createTokenCache<string>(10);
    cache.set('t1', 'p1', 2_000, 1_000);
    expect(cache.get('t1', 1_500)).toBe('p1');
    expect(cache.get('t1', 1_999)).toBe('p1');
    expect(cache.get('t1', 2_000)).toBeUndefined();
    // The expired entry is gone, not just hidden.
    expect(cache.stats().size).toBe(0);
  });

  it('does not store values that are already expired', () => {
    const cache = createTokenCache<string>(10);
    cache.set('t', 'p', 1_000, 1_000);
    cache.set('u', 'p', 500, 1_000);
    expect(cache.stats().size).toBe(0);
  });

  it('is bounded and evicts the least recently used entry', () => {
    const cache = createTokenCache<number>(3);
    for (let i = 0; i < 3; i++) cache.set(`t${i}`, i, 10_000, 0);
    expect(cache.get('t0', 1)).toBe(0); // t0 is now most recent
    cache.set('t3', 3, 10_000, 1);
    expect(cache.stats().size).toBe(3);
    expect(cache.get('t1', 2)).toBeUndefined(); // evicted
    expect(cache.get('t0', 2)).toBe(0);
    expect(cache.get('t3', 2)).toBe(3);
  });

  it('counts hits and misses', () => {
    const cache = createTokenCache<string>(5);
    cache.get('x', 0);
    cache.set('x', 'v', 100, 0);
    cache.get('x', 1);
    cache.get('x', 2);
    expect(cache.stats()).toEqual({ hits: 2, misses: 1, size: 1 });
  });

  it('peek answers like get, counts a hit, but leaves a miss for the get that follows', () => {
    const cache = createTokenCache<string>(5);
    expect(cache.peek('x', 0)).toBeUndefined();
    expect(cache.stats()).toEqual({ hits: 0, misses: 0, size: 0 });
    cache.set('x', 'v', 100, 0);
    expect(cache.peek('x', 1)).toBe('v');
    expect(cache.peek('x', 100)).toBeUndefined(); // never at or past expiry
    expect(cache.stats()).toEqual({ hits: 1, misses: 0, size: 0 });
  });

  it('size 0 disables it', () => {
    const cache = createTokenCache<string>(0);
    cache.set('x', 'v', 100, 0);
    expect(cache.get('x', 1)).toBeUndefined();
    expect(cache.stats()).toEqual({ hits: 0, misses: 1, size: 0 });
  });

  it('keys by SHA-256, not by the token itself', () => {
    const key = tokenCacheKey('secret.token.value');
    expect(key).not.toContain('secret');
    expect(key).toHaveLength(43);
  });

  it('rejects a negative or fractional size', () => {
    expect(() => createTokenCache(-1)).toThrow(TypeError);
    expect(() => createTokenCache(1.5)).toThrow(TypeError);
  });
});
