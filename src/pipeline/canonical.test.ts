import { describe, expect, it } from 'vitest';
import { canonicalPath, canonicalQuery, canonicalize, generalQuery } from './canonical.js';
import { WardenError } from '../core/errors.js';

function refused(target: string): string {
  try {
    canonicalize(target);
  } catch (err) {
    expect(err).toBeInstanceOf(WardenError);
    return (err as WardenError).code;
  }
  throw new Error(`accepted ${target}`);
}

describe('canonicalize', () => {
  it.each([
    ['/a/b', '/a/b'],
    ['/a//b', '/a/b'],
    ['/a/./b', '/a/b'],
    ['/a/x/../b', '/a/b'],
    ['/a/%78/../b', '/a/b'],
    ['/a/%2e/b', '/a/b'],
    ['/a/%2E%2E/b', '/b'],
    ['/%61%62c', '/abc'],
    ['/a/b/', '/a/b/'],
    ['/caf%C3%A9', '/caf%C3%A9'],
    ['/caf\u00e9'.normalize(), null],
    ['/a%20b', '/a%20b'],
    ['/a:b@c', '/a:b@c'],
  ])('%s → %s', (raw, expected) => {
    if (expected === null) expect(refused(raw)).toBe('bad_request');
    else expect(canonicalize(raw).path).toBe(expected);
  });

  it.each([
    ['/..', 'escaping dot segment'],
    ['/a/../..', 'escaping dot segment'],
    ['/%2e%2e/etc', 'encoded escaping dot segment'],
    ['/a%2fb', 'encoded slash'],
    ['/a%2Fb', 'encoded slash upper'],
    ['/a%5cb', 'encoded backslash'],
    ['/a\\b', 'raw backslash'],
    ['/a;jsessionid=1', 'path parameter'],
    ['/a%3bb', 'encoded semicolon'],
    ['/a%00b', 'NUL'],
    ['/a%0d%0ab', 'CRLF'],
    ['/a%252e%252e/b', 'double encoding'],
    ['/a%zz', 'bad escape'],
    ['/a%e', 'truncated escape'],
    ['/a%c3%28', 'invalid UTF-8'],
    ['/a%ff', 'invalid UTF-8 byte'],
    ['http://evil.example/a', 'absolute form'],
    ['*', 'asterisk form'],
    ['a/b', 'relative'],
    ['/a#frag', 'fragment'],
    ['/a?x=%00', 'NUL in query'],
    ['/a?x=%zz', 'bad escape in query'],
  ])('refuses %s (%s)', (raw) => {
    expect(refused(raw)).toBe('bad_request');
  });

  it('keeps the query but drops access_token credentials', () => {
    expect(canonicalize('/a?x=1&access_token=secret&y=2').query).toBe('x=1&y=2');
    expect(canonicalize('/a?ACCESS_TOKEN=secret').query).toBe('');
    expect(canonicalize('/a?x=1').query).toBe('x=1');
  });

  it('decoded segments are what routes match on', () => {
    expect(canonicalize('/docs/a%20b/x').segments).toEqual(['docs', 'a b', 'x']);
  });

  it('the fast path for already-canonical paths agrees with the general algorithm on 20,000 generated paths', () => {
    // Pieces chosen to hit every boundary of the fast path: dots, empty
    // segments, trailing slashes, percent-escapes, sub-delims.
    const pieces = [
      'a',
      'b',
      'Z9',
      '.',
      '..',
      '...',
      '.a',
      'a.',
      '/',
      '//',
      '%2e',
      '%41',
      '%2F',
      '~',
      '-',
      '_',
      ':',
      '@',
      '!',
      '$',
      "'",
      '(',
      '*',
      '+',
      ',',
      '=',
    ];
    let seed = 7;
    // An LCG's low bits repeat quickly: use the high ones.
    const next = () => Math.floor((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 65536);
    let fast = 0;
    for (let n = 0; n < 20_000; n++) {
      let raw = '/';
      const len = next() % 8;
      for (let i = 0; i < len; i++) raw += pieces[next() % pieces.length];
      const outcome = (f: () => unknown) => {
        try {
          return f();
        } catch (err) {
          return `refused: ${(err as WardenError).code}`;
        }
      };
      const got = outcome(() => canonicalize(raw));
      const want = outcome(() => canonicalPath(raw, ''));
      expect(got, raw).toEqual(want);
      if (typeof got === 'object' && (got as { path: string }).path === raw) fast++;
    }
    // Both branches were exercised.
    expect(fast).toBeGreaterThan(1_000);
    expect(fast).toBeLessThan(19_000);
  });

  it('the fast path for queries that are their own canonical form agrees with the general algorithm on 20,000 generated queries', () => {
    // Pieces that reach every condition of the fast path: credential names in every
    // case and separator, escapes, `+`, empty pairs, `;` and brackets.
    const pieces = [
      'a',
      'B',
      '1',
      '=',
      '&',
      '&&',
      ';',
      '[',
      ']',
      'access_token',
      'ACCESS.Token',
      'access',
      '_token',
      '.',
      'token',
      '%41',
      '%2B',
      '+',
      '-',
      '~',
      'x=y',
    ];
    let seed = 11;
    const next = () => Math.floor((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 65536);
    const outcome = (f: () => unknown) => {
      try {
        return f();
      } catch (err) {
        return `refused: ${(err as WardenError).code} ${(err as WardenError).message}`;
      }
    };
    let same = 0;
    for (let n = 0; n < 20_000; n++) {
      let raw = '';
      const len = 1 + (next() % 6);
      for (let i = 0; i < len; i++) raw += pieces[next() % pieces.length];
      const got = outcome(() => canonicalQuery(raw));
      expect(got, raw).toEqual(outcome(() => generalQuery(raw)));
      if (got === raw) same++;
    }
    // Both branches were exercised.
    expect(same).toBeGreaterThan(1_000);
    expect(same).toBeLessThan(19_000);
  });

  it('a query without escapes keeps its credential checks: every spelling of access_token is dropped or refused', () => {
    expect(canonicalize('/a?x=1&Access_Token=s').query).toBe('x=1');
    expect(() => canonicalize('/a?access.token=s&y=2')).toThrow(/ambiguous form/);
    expect(() => canonicalize('/a?x=1;access.token=s')).toThrow(/ambiguous form/);
    expect(() => canonicalize('/a?ACCESS_TOKEN[]=s')).toThrow(/ambiguous form/);
    expect(canonicalize('/a?x=1&&y=2&').query).toBe('x=1&y=2');
    expect(canonicalize('/a?&x=1').query).toBe('x=1');
    expect(canonicalize('/a?x=a+b&y=%41').query).toBe('x=a+b&y=%41');
  });
});
