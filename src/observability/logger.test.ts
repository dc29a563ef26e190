import { describe, expect, it } from 'vitest';
import { scrubString } from './logger.js';

// The full scrub, without the one-scan pre-check scrubString starts with.
const full = (s: string) =>
  s
    .replace(/eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, '[redacted-jwt]')
    .replace(/\b(Bearer|Basic|DPoP)\s+[A-Za-z0-9._~+/=-]{8,}/gi, '$1 [redacted]')
    .replace(/([?&](?:access_token|token|code|ticket|client_secret|t)=)[^&\s"]+/gi, '$1[redacted]');

describe('scrubString', () => {
  it('redacts tokens in every shape the patterns know', () => {
    expect(scrubString('Authorization: Bearer abcdefgh12345678')).toBe('Authorization: Bearer [redacted]');
    expect(scrubString('bearer abcdefgh12345678')).toBe('bearer [redacted]');
    expect(scrubString('DPOP abcdefgh12345678')).toBe('DPOP [redacted]');
    expect(scrubString('x eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.sig y')).toBe('x [redacted-jwt] y');
    expect(scrubString('/cb?code=abc&state=1&T=zz')).toBe('/cb?code=[redacted]&state=1&T=[redacted]');
  });

  it('the fast pre-check never skips a string the full scrub would change (20,000 generated strings)', () => {
    const pieces = [
      'a',
      'Z',
      '0',
      ' ',
      '.',
      '-',
      '_',
      '/',
      '?',
      '&',
      '=',
      'eyJ',
      'EYJ',
      'Bearer ',
      'BASIC ',
      'dPoP ',
      'token',
      'code',
      't',
      'abcdefgh',
      '12345678',
      '"',
    ];
    let seed = 11;
    const next = () => Math.floor((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 65536);
    let changed = 0;
    for (let n = 0; n < 20_000; n++) {
      let s = '';
      const len = next() % 14;
      for (let i = 0; i < len; i++) s += pieces[next() % pieces.length];
      expect(scrubString(s), s).toBe(full(s));
      if (full(s) !== s) changed++;
    }
    expect(changed).toBeGreaterThan(100); // the generator does reach the patterns
  });
});
