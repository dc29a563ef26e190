/**
 * Strict JSON (RFC 8259 and the I-JSON profile, RFC 7493) for bodies a policy
 * reads. `JSON.parse` lets the last of two equal keys win, while other parsers
 * keep the first or fail; it also accepts lone surrogates (`"\ud800"`) that
 * other runtimes replace or reject. A body that two parsers could read
 * differently is refused, so rules, templates, the review page and the
 * upstream all read the same values (#12 A.2).
 */

import { WardenError } from '../core/errors.js';

/** Why a body is not strict JSON (the message; never the body itself). */
export class StrictJsonError extends Error {}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
/** Nesting deeper than this is refused (the scanner and the upstream's parser stay off the stack limit). */
export const MAX_DEPTH = 512;

const WS = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
const isHex = (c: number) => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);

/** One lexical token of a JSON text, with its exact source span. */
interface Token {
  kind: '{' | '}' | '[' | ']' | ':' | ',' | 'string' | 'number' | 'literal';
  start: number;
  end: number;
  /** Decoded value for strings (used for duplicate-key checks). */
  value?: string;
}

/**
 * Walk `text` token by token, checking the grammar, duplicate keys (compared
 * after unescaping) at every depth, lone surrogates in escapes, depth, and
 * (with `exactIntegers`, for what policy reads) integers past 2^53 − 1.
 * Calls `emit` with each token in order.
 */
function scan(text: string, emit?: (t: Token, depth: number) => void, exactIntegers = true): void {
  let i = 0;
  const n = text.length;
  const fail = (why: string): never => {
    throw new StrictJsonError(`${why} at offset ${i}`);
  };
  const skipWs = () => {
    while (i < n && WS(text.charCodeAt(i))) i++;
  };

  const readString = (): Token => {
    const start = i;
    i++; // opening quote
    let decoded = '';
    let chunk = i;
    for (;;) {
      if (i >= n) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        decoded += text.slice(chunk, i);
        i++;
        return { kind: 'string', start, end: i, value: decoded };
      }
      if (c < 0x20) fail('control character in string');
      if (c >= 0xd800 && c <= 0xdfff) {
        // Raw surrogates only arrive as valid pairs from UTF-8; check anyway (strings may not come from bytes).
        const d = text.charCodeAt(i + 1);
        if (c <= 0xdbff && d >= 0xdc00 && d <= 0xdfff) {
          i += 2;
          continue;
        }
        fail('lone surrogate');
      }
      if (c !== 0x5c) {
        i++;
        continue;
      }
      decoded += text.slice(chunk, i);
      const e = text.charCodeAt(i + 1);
      switch (e) {
        case 0x22:
          decoded += '"';
          break;
        case 0x5c:
          decoded += '\\';
          break;
        case 0x2f:
          decoded += '/';
          break;
        case 0x62:
          decoded += '\b';
          break;
        case 0x66:
          decoded += '\f';
          break;
        case 0x6e:
          decoded += '\n';
          break;
        case 0x72:
          decoded += '\r';
          break;
        case 0x74:
          decoded += '\t';
          break;
        case 0x75: {
          const unit = hex4(text, i + 2);
          if (unit < 0) fail('bad \\u escape');
          i += 6;
          if (unit >= 0xd800 && unit <= 0xdbff) {
            const low = text.charCodeAt(i) === 0x5c && text.charCodeAt(i + 1) === 0x75 ? hex4(text, i + 2) : -1;
            if (low < 0xdc00 || low > 0xdfff) fail('lone surrogate');
            decoded += String.fromCharCode(unit, low);
            i += 6;
          } else if (unit >= 0xdc00 && unit <= 0xdfff) {
            fail('lone surrogate');
          } else decoded += String.fromCharCode(unit);
          chunk = i;
          continue;
        }
        default:
          fail('bad escape');
      }
      i += 2;
      chunk = i;
    }
  };

  const readNumber = (): Token => {
    const start = i;
    if (text.charCodeAt(i) === 0x2d) i++;
    const digit = () => i < n && text.charCodeAt(i) >= 0x30 && text.charCodeAt(i) <= 0x39;
    if (!digit()) fail('bad number');
    if (text.charCodeAt(i) === 0x30) i++;
    else while (digit()) i++;
    const integer = text.charCodeAt(i) !== 0x2e && text.charCodeAt(i) !== 0x65 && text.charCodeAt(i) !== 0x45;
    if (text.charCodeAt(i) === 0x2e) {
      i++;
      if (!digit()) fail('bad number');
      while (digit()) i++;
    }
    if (text.charCodeAt(i) === 0x65 || text.charCodeAt(i) === 0x45) {
      i++;
      if (text.charCodeAt(i) === 0x2b || text.charCodeAt(i) === 0x2d) i++;
      if (!digit()) fail('bad number');
      while (digit()) i++;
    }
    // I-JSON: a number must fit an IEEE double; 1e400 would read as Infinity here and as something else upstream.
    const value = Number(text.slice(start, i));
    if (!Number.isFinite(value)) fail('number out of range');
    // I-JSON §2.2: an integer past 2^53 − 1 is not exact as a double. An upstream that reads integers exactly
    // (int64, bigint) would act on 9007199254740993 where policy read 9007199254740992.
    if (exactIntegers && integer && !Number.isSafeInteger(value)) fail('integer beyond 2^53 − 1 (not exact in every parser: send it as a string)');
    return { kind: 'number', start, end: i };
  };

  const readLiteral = (): Token => {
    const start = i;
    for (const word of ['true', 'false', 'null']) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return { kind: 'literal', start, end: i };
      }
    }
    return fail('unexpected character');
  };

  /**
   * An object or an array, its opening bracket at `i`: `entry` reads one
   * member or element at `depth + 1`; commas and the closing bracket are
   * checked here, once for both.
   */
  const container = (depth: number, open: '{' | '[', entry: (depth: number) => void): void => {
    if (depth >= MAX_DEPTH) fail('nested too deeply');
    const close = open === '{' ? '}' : ']';
    const closeCode = close.charCodeAt(0);
    emit?.({ kind: open, start: i, end: i + 1 }, depth);
    i++;
    skipWs();
    if (text.charCodeAt(i) === closeCode) {
      emit?.({ kind: close, start: i, end: i + 1 }, depth);
      i++;
      return;
    }
    for (;;) {
      entry(depth + 1);
      skipWs();
      const d = text.charCodeAt(i);
      if (d === 0x2c) {
        emit?.({ kind: ',', start: i, end: i + 1 }, depth + 1);
        i++;
        continue;
      }
      if (d === closeCode) {
        emit?.({ kind: close, start: i, end: i + 1 }, depth);
        i++;
        return;
      }
      fail(`expected "," or "${close}"`);
    }
  };

  const value = (depth: number): void => {
    skipWs();
    if (i >= n) fail('unexpected end');
    const c = text.charCodeAt(i);
    if (c === 0x7b) {
      const keys = new Set<string>();
      container(depth, '{', (memberDepth) => {
        skipWs();
        if (text.charCodeAt(i) !== 0x22) fail('expected a key');
        const key = readString();
        if (keys.has(key.value!)) fail(`duplicate key ${JSON.stringify(key.value!.slice(0, 64))}`);
        keys.add(key.value!);
        emit?.(key, memberDepth);
        skipWs();
        if (text.charCodeAt(i) !== 0x3a) fail('expected ":"');
        emit?.({ kind: ':', start: i, end: i + 1 }, memberDepth);
        i++;
        value(memberDepth);
      });
      return;
    }
    if (c === 0x5b) return container(depth, '[', value);
    const t = c === 0x22 ? readString() : c === 0x2d || (c >= 0x30 && c <= 0x39) ? readNumber() : readLiteral();
    emit?.(t, depth);
  };

  value(0);
  skipWs();
  if (i < n) fail('trailing characters');
}

function hex4(text: string, at: number): number {
  for (let k = 0; k < 4; k++) if (!isHex(text.charCodeAt(at + k))) return -1;
  return parseInt(text.slice(at, at + 4), 16);
}

/** Decode UTF-8 strictly (no replacement characters, a BOM is kept and then refused by the grammar). */
export function decodeUtf8Strict(bytes: Uint8Array): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new StrictJsonError('invalid UTF-8');
  }
}

/** Throw StrictJsonError unless `text` is one strict JSON value. */
export function assertStrictJson(text: string): void {
  scan(text);
}

/** Parse bytes as strict JSON; throws StrictJsonError saying why not. */
export function parseStrictJson(bytes: Uint8Array): unknown {
  if (Buffer.isBuffer(bytes)) {
    const keys = plainBytes(bytes);
    if (keys >= 0) {
      // ASCII: the latin1 string is the strict UTF-8 decoding (and no BOM can be there).
      const text = bytes.toString('latin1');
      return parsePlainText(text, keys) ?? parseScanned(text);
    }
  }
  const text = decodeUtf8Strict(bytes);
  return parsePlain(text) ?? parseScanned(text);
}

/** parseStrictJson's general path: the full scan, then JSON.parse. */
export function parseScanned(text: string): unknown {
  scan(text);
  // The grammar was checked above and keys are unique: JSON.parse now reads exactly what any parser would.
  return JSON.parse(text);
}

/** Values nested deeper than this are left to the full scan (which knows MAX_DEPTH). */
const PLAIN_DEPTH = 64;

/**
 * parseStrictJson's fast path, for a text without a backslash (most bodies):
 * JSON.parse checks the grammar natively, and what only the strict scan
 * refuses is checked on its result. Without a backslash there is no escape,
 * so no lone surrogate and no `"` inside a string: every `"` delimits a
 * string, a key is a string followed by `:`, and the keys of the text number
 * as many as the parsed objects hold exactly when no object repeats one. A
 * number out of range reads as an infinity. Returns undefined whenever it is
 * not sure (a backslash, text JSON.parse refuses, a repeated key, an
 * infinity or an integer past 2^53 − 1, deep nesting): the full scan then
 * decides, and says why.
 */
export function parsePlain(text: string): unknown {
  if (text.indexOf('\\') >= 0) return undefined;
  return parsePlainText(text, -1);
}

/** parsePlain of a text without a backslash, whose keys written are `keys` (counted here when -1). */
function parsePlainText(text: string, keys: number): unknown {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) {
    return typeof value === 'number' && doubtfulNumber(value) ? undefined : value;
  }
  const held = keysHeld(value, 0);
  return held >= 0 && held === (keys >= 0 ? keys : keysWritten(text)) ? value : undefined;
}

/**
 * The bytes `plainBytes` last read, and whether they are their own
 * serialization (isOwnSerialization's answer, found in the same pass).
 * Request bodies are never changed in place, so the MCP stage asking about
 * the body the body stage just parsed gets the answer without a second pass.
 */
let ownBytes: Buffer | null = null;
let ownVerdict = false;

/**
 * parseStrictJson's first look at a body, on its bytes (no decoding, no
 * native call per string): -1 unless every byte is ASCII and none is a
 * backslash (then the other paths decide), else the number of keys written
 * (strings followed by `:`, as keysWritten counts them). In the same pass it
 * decides isOwnSerialization for these bytes (remembered in ownBytes).
 */
function plainBytes(b: Buffer): number {
  const n = b.length;
  let keys = 0;
  let own = true;
  let i = 0;
  while (i < n) {
    const c = b[i];
    if (c === 0x22) {
      let end = i + 1;
      let digits = true;
      let d = 0;
      while (end < n && (d = b[end]) !== 0x22) {
        if (d >= 0x80 || d === 0x5c) return -1;
        if (d < 0x30 || d > 0x39) digits = false;
        end++;
      }
      if (end >= n) return -1;
      let j = end + 1;
      let e = b[j];
      while (e === 0x20 || e === 0x0a || e === 0x0d || e === 0x09) {
        own = false;
        e = b[++j];
      }
      if (e === 0x3a) {
        keys++;
        // A key of digits only (or empty) could be an integer key, listed first by V8.
        if (digits) own = false;
      }
      i = j;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      const j = numberEnd(b, i, n);
      if (own && !printsAsWritten(b, i, j)) own = false;
      i = j;
    } else if (c >= 0x80 || c === 0x5c) return -1;
    else {
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) own = false;
      i++;
    }
  }
  ownBytes = b;
  ownVerdict = own;
  return keys;
}

/** Keys written in a text without backslashes that JSON.parse accepted: strings followed by `:`. */
function keysWritten(text: string): number {
  let keys = 0;
  let i = text.indexOf('"');
  while (i >= 0) {
    const end = text.indexOf('"', i + 1);
    if (end < 0) return -1; // (JSON.parse accepted the text: every string is closed)
    let j = end + 1;
    let c = text.charCodeAt(j);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = text.charCodeAt(++j);
    if (c === 0x3a) keys++;
    i = text.indexOf('"', j);
  }
  return keys;
}

/** Keys the parsed objects hold, or -1 for a doubtful number (doubtfulNumber) or nesting deeper than PLAIN_DEPTH. */
function keysHeld(value: object, depth: number): number {
  if (depth >= PLAIN_DEPTH) return -1;
  let keys = 0;
  if (Array.isArray(value)) {
    for (const v of value as unknown[]) {
      const n = held(v, depth);
      if (n < 0) return -1;
      keys += n;
    }
    return keys;
  }
  const o = value as Record<string, unknown>;
  for (const k in o) {
    keys++;
    const n = held(o[k], depth);
    if (n < 0) return -1;
    keys += n;
  }
  return keys;
}

function held(v: unknown, depth: number): number {
  if (typeof v === 'object') return v === null ? 0 : keysHeld(v, depth + 1);
  return typeof v === 'number' && doubtfulNumber(v) ? -1 : 0;
}

/** An infinity, or an integer past 2^53 − 1: the full scan decides (from how it was written) whether it is refused. */
function doubtfulNumber(v: number): boolean {
  return !Number.isSafeInteger(v) && (!Number.isFinite(v) || Number.isInteger(v));
}

/**
 * Whether policy reads a request body as JSON: its Content-Type names JSON
 * (`application/json`, `text/json`, `application/x-json`, `…+json`), or its
 * first non-blank byte opens an object or array (an upstream may parse it
 * whatever the type says). The body stage, CEL and the stored request's
 * template variables all decide with this one rule.
 */
export function readsAsJson(contentType: string | undefined, body: Buffer): boolean {
  if (body.length === 0) return false;
  if (contentType !== undefined && /\bjson\b/i.test(contentType)) return true;
  let i = 0;
  while (i < body.length && (body[i] === 0x20 || body[i] === 0x09 || body[i] === 0x0a || body[i] === 0x0d)) i++;
  return body[i] === 0x7b || body[i] === 0x5b;
}

/** parseStrictJson for a request body: refusal is a 400 `bad_request` (reason `bad_json`). */
export function parseJsonBody(bytes: Uint8Array): unknown {
  try {
    return parseStrictJson(bytes);
  } catch (err) {
    if (err instanceof StrictJsonError) {
      throw new WardenError('bad_request', `the request body is not strict JSON: ${err.message}`, { reason: 'bad_json' });
    }
    throw err;
  }
}

/**
 * Indent a strict JSON text for a human, from its own tokens: every string and
 * number appears exactly as written (escapes and all), only whitespace between
 * tokens changes. Returns null when `text` is not strict JSON.
 */
export function prettyJsonText(text: string, indent = 2): string | null {
  let out = '';
  let prev: Token['kind'] | undefined;
  const pad = (depth: number) => '\n' + ' '.repeat(depth * indent);
  try {
    scan(
      text,
      (t, depth) => {
        const src = text.slice(t.start, t.end);
        if (t.kind === '}' || t.kind === ']') {
          out += prev === '{' || prev === '[' ? src : pad(depth) + src;
        } else if (t.kind === ':') out += ': ';
        else if (t.kind === ',') out += ',';
        else if (prev === '{' || prev === '[' || prev === ',') out += pad(depth) + src;
        else out += src;
        prev = t.kind;
      },
      false,
    );
  } catch (err) {
    if (err instanceof StrictJsonError) return null;
    throw err;
  }
  return out;
}

/** Bytes a number token may hold after its first (a minus sign or a digit). */
const isNumberByte = (c: number) => (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x2b || c === 0x2e || c === 0x65 || c === 0x45;

/**
 * Digits an integer token may have and still print as written: every integer
 * below 10^15 (< 2^53) is exact and JavaScript prints it in full.
 */
const EXACT_DIGITS = 15;

/**
 * Whether `bytes`, a strict JSON text (parseStrictJson accepted it), are
 * exactly what `JSON.stringify` writes for the value they parse to, as UTF-8:
 * then that text can be forwarded as read instead of serialized again (it is
 * the same bytes). True only without whitespace between tokens, without
 * escapes (no backslash), with every number as JavaScript prints it, and
 * without an all-digit key (V8 lists integer keys first, so JSON.stringify
 * could reorder them). False is always safe: the caller serializes.
 *
 * One pass in JavaScript (a native indexOf per string cost more than the
 * bytes of a short string); an integer of at most EXACT_DIGITS digits without
 * a leading zero, other than -0, prints as written, so only other numbers are
 * printed to compare.
 */
export function isOwnSerialization(bytes: Buffer): boolean {
  if (bytes === ownBytes) {
    ownBytes = null; // (not kept alive longer than needed)
    return ownVerdict;
  }
  return ownSerializationScan(bytes);
}

/** isOwnSerialization by its own pass over the bytes (what plainBytes finds in its pass; exported for the tests). */
export function ownSerializationScan(bytes: Buffer): boolean {
  if (bytes.indexOf(0x5c) >= 0) return false;
  const n = bytes.length;
  let i = 0;
  while (i < n) {
    const c = bytes[i];
    if (c === 0x22) {
      let end = i + 1;
      while (end < n && bytes[end] !== 0x22) end++;
      if (end >= n) return false;
      if (bytes[end + 1] === 0x3a) {
        // A key: all digits (or empty) could be an integer key.
        let digits = true;
        for (let k = i + 1; k < end && digits; k++) digits = bytes[k] >= 0x30 && bytes[k] <= 0x39;
        if (digits) return false;
      }
      i = end + 1;
    } else if (c === 0x2d || (c >= 0x30 && c <= 0x39)) {
      const j = numberEnd(bytes, i, n);
      if (!printsAsWritten(bytes, i, j)) return false;
      i = j;
    } else if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) return false;
    else i++;
  }
  return true;
}

/** The end of the number token starting at `i` (a minus sign or a digit). */
function numberEnd(bytes: Buffer, i: number, n: number): number {
  let j = i + 1;
  while (j < n && isNumberByte(bytes[j])) j++;
  return j;
}

/**
 * Whether the number token `bytes[i, j)` is what JavaScript prints for its
 * value: an integer of at most EXACT_DIGITS digits without a leading zero,
 * other than -0, is; other numbers are printed to compare.
 */
function printsAsWritten(bytes: Buffer, i: number, j: number): boolean {
  const first = bytes[i] === 0x2d ? i + 1 : i;
  let integer = true;
  for (let k = first; k < j && integer; k++) integer = bytes[k] >= 0x30 && bytes[k] <= 0x39;
  const digits = j - first;
  if (integer && digits >= 1 && digits <= EXACT_DIGITS && (bytes[first] !== 0x30 || (digits === 1 && first === i))) return true;
  const written = bytes.toString('latin1', i, j);
  return String(Number(written)) === written;
}
