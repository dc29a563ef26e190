/**
 * Property tests of the canonicalizer (#12 C) over generated request targets
 * built from the pieces attacks are made of: dot segments plain and encoded,
 * encoded separators, double encoding, repeated slashes, `;`, non-ASCII and
 * control characters.
 */

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { canonicalize, type CanonicalTarget } from './canonical.js';
import { compilePattern } from './routes.js';
import { WardenError } from '../core/errors.js';

const PIECES = [
  'a',
  'B',
  'z9',
  '.',
  '..',
  '%2e',
  '%2E',
  '%2e%2e',
  '.%2e',
  '%2F',
  '%2f',
  '%5C',
  '%5c',
  '%25',
  '%252e',
  '%41',
  '%7e',
  '~',
  '-',
  '_',
  '%20',
  ' ',
  ';',
  ';x=1',
  '\\',
  '%00',
  '%0a',
  '\u0001',
  'é',
  '%C3%A9',
  '%C3',
  '%FF',
  '@',
  ':',
  '!',
  '*',
  '+',
  ',',
  '=',
  "'",
  '(',
  ')',
  '$',
  '&',
];

const segment = fc.array(fc.constantFrom(...PIECES), { minLength: 0, maxLength: 4 }).map((p) => p.join(''));
const rawPath = fc
  .tuple(fc.array(segment, { minLength: 0, maxLength: 6 }), fc.boolean())
  .map(([segs, trailing]) => '/' + segs.join('/') + (trailing && segs.length ? '/' : ''));
const query = fc.constantFrom('', '?a=1', '?a=1&b=2', '?x=%41');

/** canonicalize, or null when it refuses (it must refuse only with a 400 WardenError). */
function tryCanonical(target: string): CanonicalTarget | null {
  try {
    return canonicalize(target);
  } catch (err) {
    expect(err).toBeInstanceOf(WardenError);
    expect((err as WardenError).status).toBe(400);
    return null;
  }
}

/**
 * An independent model of what a path means to an upstream that follows RFC
 * 3986: percent-decode every segment (as bytes, then UTF-8), drop empty and
 * `.` segments, let `..` remove the previous one. Refusals are not modelled;
 * the model is only consulted for targets the canonicalizer accepted.
 */
function meaning(target: string): string[] {
  const path = target.split('?')[0];
  const out: string[] = [];
  // A trailing slash is part of the meaning (most upstreams route /a and /a/ apart).
  const trailing = path.length > 1 && path.endsWith('/');
  for (const raw of path.split('/').slice(1)) {
    const seg = Buffer.from(
      raw.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16))),
      'latin1',
    ).toString('utf8');
    if (seg === '' || seg === '.') continue;
    if (seg === '..') out.pop();
    else out.push(seg);
  }
  return trailing && out.length ? [...out, '(trailing slash)'] : out;
}

const segmentsOf = (c: CanonicalTarget) => (c.path.length > 1 && c.path.endsWith('/') ? [...c.segments, '(trailing slash)'] : c.segments);

describe('canonicalize (properties)', () => {
  it('outputs no dot segment, encoded separator, double encoding, empty segment or control character', () => {
    fc.assert(
      fc.property(rawPath, query, (p, q) => {
        const c = tryCanonical(p + q);
        if (!c) return;
        expect(c.path.startsWith('/')).toBe(true);
        expect(c.path).not.toMatch(/%2f|%5c|%25|%2e/i);
        expect(c.path).not.toMatch(/[\u0000-\u0020\u007f-\uffff\\;]/);
        const segs = c.path.split('/').slice(1);
        const inner = c.path.endsWith('/') && c.path.length > 1 ? segs.slice(0, -1) : segs;
        for (const s of inner) {
          if (c.path === '/') break;
          expect(s).not.toBe('');
          expect(s).not.toBe('.');
          expect(s).not.toBe('..');
        }
        for (const s of c.segments) expect(s).not.toMatch(/[\u0000-\u001f\u007f/\\]/);
      }),
      { numRuns: 5000 },
    );
  });

  it('is idempotent', () => {
    fc.assert(
      fc.property(rawPath, query, (p, q) => {
        const c = tryCanonical(p + q);
        if (!c) return;
        const again = canonicalize(c.query ? `${c.path}?${c.query}` : c.path);
        expect(again).toEqual(c);
      }),
      { numRuns: 5000 },
    );
  });

  it('keeps the meaning: the canonical path means what the raw one meant', () => {
    fc.assert(
      fc.property(rawPath, (p) => {
        const c = tryCanonical(p);
        if (!c) return;
        expect(segmentsOf(c)).toEqual(meaning(p));
        expect(meaning(c.path)).toEqual(segmentsOf(c));
      }),
      { numRuns: 5000 },
    );
  });

  it('never makes two targets that mean different paths equal, and equal targets route the same', () => {
    const patterns = ['/a/**', '/a/:id', '/B/:id/z9', '/:x/a', '/**', '/é/:id', '/a/%41'].flatMap((s) => {
      try {
        return [compilePattern(s)];
      } catch {
        return [];
      }
    });
    expect(patterns.length).toBeGreaterThan(3);
    fc.assert(
      fc.property(rawPath, rawPath, (a, b) => {
        const ca = tryCanonical(a);
        const cb = tryCanonical(b);
        if (!ca || !cb) return;
        const sameMeaning = JSON.stringify(meaning(a)) === JSON.stringify(meaning(b));
        expect(ca.path === cb.path).toBe(sameMeaning);
        if (ca.path === cb.path) {
          for (const pattern of patterns) expect(pattern.match(ca.segments)).toEqual(pattern.match(cb.segments));
        }
      }),
      { numRuns: 5000 },
    );
  });

  it('spellings of the same path canonicalize equal (encoded unreserved, ./, //)', () => {
    const respell = fc.constantFrom(
      (p: string) => p.replace(/a/, '%61'),
      (p: string) => p.replace(/B/, '%42'),
      (p: string) => p.replace(/~/, '%7E'),
      (p: string) => p.replace(/\//, '/./'),
      (p: string) => p.replace(/\//, '//'),
      (p: string) => p.replace(/\/([^/]*)$/, '/x/../$1'),
    );
    fc.assert(
      fc.property(rawPath, respell, (p, f) => {
        const c = tryCanonical(p);
        const v = f(p);
        if (!c || meaning(v).join('/') !== meaning(p).join('/')) return;
        const cv = tryCanonical(v);
        if (!cv) return; // a respelling may only add something refused, never a second meaning
        expect(cv.path).toBe(c.path);
      }),
      { numRuns: 5000 },
    );
  });
});
