import { describe, expect, it } from 'vitest';
import { PassThrough } from 'node:stream';
import { readBounded } from './body.js';

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
