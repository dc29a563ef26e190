/**
 * The canonical request target. Computed once from the raw target; route
 * matching, policy inputs and the forwarded URL all use exactly this form.
 * Anything ambiguous is refused (400) rather than repaired, because a proxy and
 * an upstream that repair it differently is how authorization gets bypassed.
 */

import { WardenError } from '../core/errors.js';

export interface CanonicalTarget {
  /** Percent-encoded canonical path, always starting with `/`. */
  path: string;
  /** Decoded path segments (for parameters). */
  segments: string[];
  /** Canonical query without `?`, credentials removed ('' when none). */
  query: string;
}

const bad = (why: string) => new WardenError('bad_request', `ambiguous or invalid request target: ${why}`, { reason: 'bad_target' });

// Unreserved characters (RFC 3986) are decoded; everything else that needs
// escaping is re-encoded the same way every time.
const KEEP_IN_SEGMENT = /[A-Za-z0-9\-._~!$&'()*+,=:@]/;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** Decode one path segment strictly. */
function decodeSegment(raw: string): string {
  if (!raw.includes('%')) return raw;
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c !== 37) {
      bytes.push(c);
      continue;
    }
    const hi = hexValue(raw.charCodeAt(i + 1));
    const lo = hexValue(raw.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) throw bad('malformed percent-encoding');
    const b = hi * 16 + lo;
    if (b === 0x2f) throw bad('encoded "/" in path');
    if (b === 0x5c) throw bad('encoded "\\" in path');
    if (b === 0x25) throw bad('double percent-encoding');
    if (b === 0x3b) throw bad('";" in path');
    if (b < 0x20 || b === 0x7f) throw bad('control character in path');
    bytes.push(b);
    i += 2;
  }
  try {
    return UTF8.decode(Uint8Array.from(bytes));
  } catch {
    throw bad('invalid UTF-8 in path');
  }
}

const PLAIN_SEGMENT = /^[A-Za-z0-9\-._~!$&'()*+,=:@]*$/;

/** Characters a canonical segment holds as they are (the PLAIN_SEGMENT class), by code. */
const KEEP: boolean[] = Array.from({ length: 128 }, (_, c) => PLAIN_SEGMENT.test(String.fromCharCode(c)));

/** rawPath[from, to) is a segment that canonicalizes to itself: not empty, not `.` or `..`. */
function canonicalSegment(rawPath: string, from: number, to: number): boolean {
  const n = to - from;
  if (n === 0) return false;
  if (rawPath.charCodeAt(from) !== 0x2e) return true;
  return !(n === 1 || (n === 2 && rawPath.charCodeAt(from + 1) === 0x2e));
}

function encodeSegment(segment: string): string {
  if (PLAIN_SEGMENT.test(segment)) return segment;
  let out = '';
  for (const ch of segment) {
    if (KEEP_IN_SEGMENT.test(ch)) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += '%' + b.toString(16).toUpperCase().padStart(2, '0');
  }
  return out;
}

// Query parameters that carry credentials are never forwarded (RFC 6750 §2.3 is refused).
const CREDENTIAL_PARAMS = new Set(['access_token']);

/** The decoded name of one `name=value` query piece (form encoding: `+` is a space). */
function queryName(piece: string): string {
  try {
    return decodeURIComponent(piece.split('=', 1)[0].replace(/\+/g, ' '));
  } catch {
    throw bad('invalid UTF-8 in query');
  }
}

/** A credential parameter's name as it can appear in a query without escapes: `access`, `.` or `_`, `token` (any case). */
const CREDENTIAL_TEXT = /access[._]token/i;

/**
 * The canonical form of a raw query: the same pairs without empty ones and
 * without credential parameters; refused when malformed or when a
 * credential hides in an ambiguous form.
 */
export function canonicalQuery(raw: string): string {
  if (raw === '') return '';
  let plain = true;
  for (let i = 0; i < raw.length; i++) {
    const c = raw.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c > 0x7e) throw bad('invalid character in query');
    if (c === 37) {
      if (hexValue(raw.charCodeAt(i + 1)) < 0 || hexValue(raw.charCodeAt(i + 2)) < 0) throw bad('malformed percent-encoding in query');
      plain = false;
    } else if (c === 0x2b /* + */ || (c === 0x26 /* & */ && (i === 0 || i === raw.length - 1 || raw.charCodeAt(i + 1) === 0x26))) plain = false;
  }
  // Without `%` or `+` every name decodes to itself, so no name can be (or hide) a credential parameter unless its
  // text appears as is; with no empty pair either, the query is its own canonical form (no split, decode or join).
  if (plain && !CREDENTIAL_TEXT.test(raw)) return raw;
  return generalQuery(raw);
}

/** The general case of canonicalQuery (exported so a test can check the fast path against it). */
export function generalQuery(raw: string): string {
  if (/%00/.test(raw)) throw bad('NUL in query');
  const kept = raw.split('&').filter((pair) => {
    if (pair === '') return false;
    if (CREDENTIAL_PARAMS.has(queryName(pair).toLowerCase())) return false;
    // `x=1;access_token=…` or `access_token[]=…` still carries the token to an upstream that splits on `;` or folds brackets.
    for (const piece of pair.split(';')) {
      const d = queryName(piece);
      const bracket = d.indexOf('[');
      if (CREDENTIAL_PARAMS.has((bracket >= 0 ? d.slice(0, bracket) : d).toLowerCase().replace(/[. ]/g, '_')))
        throw bad('credential parameter in an ambiguous form');
    }
    return true;
  });
  return kept.join('&');
}

/**
 * Canonicalize a raw request target (origin-form only). Dot segments are
 * resolved, but one that would climb above `/` is refused; runs of `/` collapse.
 */
export function canonicalize(rawTarget: string): CanonicalTarget {
  if (rawTarget.length === 0 || rawTarget.charCodeAt(0) !== 47 /* / */) throw bad('only origin-form targets are accepted');
  if (rawTarget.includes('#')) throw bad('fragment in request target');
  const q = rawTarget.indexOf('?');
  const rawPath = q < 0 ? rawTarget : rawTarget.slice(0, q);
  const query = canonicalQuery(q < 0 ? '' : rawTarget.slice(q + 1));

  // One pass: refuse what is never valid, and see whether the path is already
  // canonical (only characters kept as they are, no empty or dot segment),
  // collecting its segments as it goes (a slice per segment is cheaper than
  // slicing the path and splitting it again).
  let plain = true;
  let segmentStart = 1;
  const segments: string[] = [];
  for (let i = 0; i < rawPath.length; i++) {
    const c = rawPath.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c > 0x7e) throw bad('invalid character in path');
    if (c === 0x5c) throw bad('"\\" in path');
    if (c === 0x3b) throw bad('";" in path');
    if (!plain) continue;
    if (c === 0x2f) {
      if (i > 0) {
        if (canonicalSegment(rawPath, segmentStart, i)) segments.push(rawPath.slice(segmentStart, i));
        else plain = false;
        segmentStart = i + 1;
      }
    } else if (!KEEP[c]) plain = false;
  }
  if (plain && (segmentStart === rawPath.length || canonicalSegment(rawPath, segmentStart, rawPath.length))) {
    // Already canonical: the path is its own canonical form; a trailing `/` is kept (and names no segment).
    if (segmentStart < rawPath.length) segments.push(rawPath.slice(segmentStart));
    return { path: rawPath, segments, query };
  }
  return canonicalPath(rawPath, query);
}

/**
 * The general case: decode, resolve dot segments, re-encode. (Exported so a
 * test can check the fast path above against it on many generated targets.)
 */
export function canonicalPath(rawPath: string, query: string): CanonicalTarget {
  const out: string[] = [];
  const rawSegments = rawPath.split('/');
  const trailingSlash = rawPath.length > 1 && rawPath.endsWith('/');
  for (let i = 1; i < rawSegments.length; i++) {
    const seg = decodeSegment(rawSegments[i]);
    if (seg === '') continue; // collapses `//` (and the trailing slash, restored below)
    if (seg === '.') continue;
    if (seg === '..') {
      if (out.length === 0) throw bad('dot segment escapes the root');
      out.pop();
      continue;
    }
    out.push(seg);
  }
  let path = '/' + out.map(encodeSegment).join('/');
  if (trailingSlash && out.length > 0) path += '/';
  return { path, segments: out, query };
}
