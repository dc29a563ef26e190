import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { readBounded, readWhole } from './body.js';

const tooLarge = () => new Error('too large');

describe('readBounded', () => {
  it('collects every chunk, strings included', async () => {
    const s = new PassThrough();
    const got = readBounded(s, 100, tooLarge);
    s.write('ab');
    s.write(Buffer.from('cd'));
    s.end('e');
    expect((await got).toString()).toBe('abcde');
  });

  it('past the limit rejects with the caller’s error and pauses, leaving the stream to the caller', async () => {
    const s = new PassThrough();
    const got = readBounded(s, 4, tooLarge);
    s.write('abc');
    s.write('de');
    await expect(got).rejects.toThrow('too large');
    expect(s.destroyed).toBe(false);
    expect(s.isPaused()).toBe(true);
    expect(s.listenerCount('data')).toBe(0);
  });

  it('rejects when the stream closes before its end', async () => {
    const s = new PassThrough();
    const got = readBounded(s, 100, tooLarge);
    s.write('ab');
    s.destroy();
    await expect(got).rejects.toThrow(/closed before its end/);
  });
});

describe('readBounded after the end', () => {
  it('resolves with the body, and an error or close the stream emits later changes nothing (and is not thrown)', async () => {
    const s = new PassThrough();
    const got = readBounded(s, 100, tooLarge);
    s.end('abc');
    expect((await got).toString()).toBe('abc');
    // A stream without an 'error' listener would throw this; the read's listener absorbs it.
    expect(() => s.emit('error', new Error('late'))).not.toThrow();
    s.destroy();
    await new Promise((r) => setImmediate(r));
    expect((await got).toString()).toBe('abc');
  });
});

describe('readWhole', () => {
  it('resolves with what its function makes of the body', async () => {
    const s = new PassThrough();
    const got = readWhole(s, 100, tooLarge, (body) => body.toString().toUpperCase());
    s.end('abc');
    expect(await got).toBe('ABC');
  });

  it('rejects with what its function throws (a refused body), and is not called past the limit', async () => {
    const s = new PassThrough();
    const refused = readWhole(s, 100, tooLarge, () => {
      throw new Error('not strict JSON');
    });
    s.end('{"a":1,"a":2}');
    await expect(refused).rejects.toThrow('not strict JSON');

    const big = new PassThrough();
    let called = false;
    const over = readWhole(big, 2, tooLarge, () => (called = true));
    big.end('abc');
    await expect(over).rejects.toThrow('too large');
    expect(called).toBe(false);
  });
});
