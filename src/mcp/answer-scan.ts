/**
 * One pass over the bytes of a whole JSON answer, for the response hook's fast
 * path (`passesUnchanged`): is it one JSON value (RFC 8259 grammar) in whose
 * text neither `"tools"` nor `\u` occurs? Decided on the Buffer, without
 * decoding it to a string or building the value (JSON.parse of a 1 KB
 * tools/call answer cost several times this scan).
 *
 * The scan is an accelerator, never the last word on a refusal: it answers
 * PLAIN only for text it has checked against the whole grammar, SPELLED when
 * the bytes hold `"tools"` or `\u` (the caller's answer is then false whatever
 * the rest is), and UNSURE for anything else (text it finds invalid, nesting
 * deeper than its stack): the caller then decides with JSON.parse, as before.
 * UTF-8 validity is not its business (the caller checks it natively).
 */

/** One JSON value, `"tools"` and `\u` absent from its text. */
export const PLAIN = 0;
/** The text holds `"tools"` or `\u` (as bytes, anywhere). */
export const SPELLED = 1;
/** Neither proven: the caller decides another way. */
export const UNSURE = 2;

export type AnswerScan = typeof PLAIN | typeof SPELLED | typeof UNSURE;

/** Nesting the scan follows; deeper text is UNSURE. */
const MAX_DEPTH = 512;
const OBJECT = 1;
const ARRAY = 2;
// Reused by every scan (the scan is synchronous: no two run at once).
const stack = new Uint8Array(MAX_DEPTH);

// String scan results below 0: the string is malformed (UNSURE) or spells a marker (SPELLED).
const BAD = -1;
const MARKED = -2;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const LOWER_U = 0x75;

/** Index after the whitespace at `i`. */
function ws(b: Uint8Array, i: number, n: number): number {
  while (i < n) {
    const c = b[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
  return i;
}

/**
 * The scanned bytes four at a time, for the long runs of plain bytes in a
 * string (an answer's text): an Int32Array over the answer's ArrayBuffer from
 * the word holding its first byte (null for a short answer), and that byte's
 * place in its word. Set by scanAnswer for the scan under way.
 */
let words: Int32Array | null = null;
let wordShift = 0;
/** Answers shorter than this are scanned byte by byte (the view costs more than it saves). */
const WORDS_FROM = 128;
/** Plain bytes of a string read one by one before the rest of the run is read by words. */
const RUN = 16;

/**
 * Whether none of the four bytes of `x` is a control character (below 0x20),
 * `"` or `\`: the exact existence tests of "a byte less than" and "a zero
 * byte" on a word, which hold for bytes of 0x80 and above too.
 */
function plainWord(x: number): boolean {
  const q = x ^ 0x22222222;
  const e = x ^ 0x5c5c5c5c;
  return ((((x - 0x20202020) & ~x) | ((q - 0x01010101) & ~q) | ((e - 0x01010101) & ~e)) & 0x80808080) === 0;
}

/** From `j` (inside a string, `b[j]` plain), past the whole words of plain bytes: the index of the first byte not proven plain. */
function skipWords(b: Uint8Array, j: number, n: number): number {
  const w = words!;
  // Word k holds bytes 4k - wordShift to 4k - wordShift + 3; start at the first word wholly at or after j.
  let k = (j + wordShift + 3) >> 2;
  const end = (n + wordShift) >> 2;
  // The bytes before that word one by one (at most three).
  for (let p = j; p < 4 * k - wordShift && p < n; p++) {
    const c = b[p];
    if (c < 0x20 || c === QUOTE || c === BACKSLASH) return p;
  }
  while (k < end && plainWord(w[k])) k++;
  return Math.min(4 * k - wordShift, n);
}

/**
 * The string starting at `i` (a `"`): the index after its closing quote, BAD
 * when it is not a JSON string, MARKED when `"tools"` or `\u` is in its bytes.
 * In a valid text `"tools"` occurs only as a string that is exactly `tools`, or
 * one that ends with the escape `\"` then `tools` (a `"` outside a string opens
 * one; inside it is escaped or closes it). `\u` occurs only as an escape or
 * after the escape `\\`.
 */
function str(b: Uint8Array, i: number, n: number): number {
  const start = i + 1;
  let j = start;
  /** Where the last `\"` escape began. */
  let quoteEscape = -1;
  while (j < n) {
    let c = b[j];
    // Most bytes of a string: none of `"`, `\`, a control character. Keys and short values end
    // within RUN bytes, read one by one; a longer run goes on four bytes at a time.
    const run = j + RUN < n ? j + RUN : n;
    while (c >= 0x20 && c !== QUOTE && c !== BACKSLASH && ++j < run) c = b[j];
    if (j === run) {
      if (j >= n) break;
      if (words !== null) {
        j = skipWords(b, j, n);
        if (j >= n) break;
      }
      c = b[j];
      while (c >= 0x20 && c !== QUOTE && c !== BACKSLASH && ++j < n) c = b[j];
      if (j >= n) break;
    }
    if (c === QUOTE) {
      if (j - start === 5 || (j - start >= 7 && quoteEscape === j - 7)) {
        if (b[j - 5] === 0x74 && b[j - 4] === 0x6f && b[j - 3] === 0x6f && b[j - 2] === 0x6c && b[j - 1] === 0x73) return MARKED;
      }
      return j + 1;
    }
    if (c === BACKSLASH) {
      const e = b[j + 1];
      if (e === LOWER_U) return MARKED;
      if (e === QUOTE) quoteEscape = j;
      else if (e === BACKSLASH) {
        if (b[j + 2] === LOWER_U) return MARKED;
      } else if (e !== 0x2f && e !== 0x62 && e !== 0x66 && e !== 0x6e && e !== 0x72 && e !== 0x74) return BAD;
      j += 2;
      continue;
    }
    if (c < 0x20) return BAD;
    j++;
  }
  return BAD;
}

const isDigit = (c: number) => c >= 0x30 && c <= 0x39;

/** The number starting at `i`: the index after it, or BAD. `-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?` */
function num(b: Uint8Array, i: number, n: number): number {
  if (b[i] === 0x2d) i++;
  if (i >= n) return BAD;
  if (b[i] === 0x30) i++;
  else if (b[i] >= 0x31 && b[i] <= 0x39) {
    i++;
    while (i < n && isDigit(b[i])) i++;
  } else return BAD;
  if (i < n && b[i] === 0x2e) {
    i++;
    if (i >= n || !isDigit(b[i])) return BAD;
    while (i < n && isDigit(b[i])) i++;
  }
  if (i < n && (b[i] === 0x65 || b[i] === 0x45)) {
    i++;
    if (i < n && (b[i] === 0x2b || b[i] === 0x2d)) i++;
    if (i >= n || !isDigit(b[i])) return BAD;
    while (i < n && isDigit(b[i])) i++;
  }
  return i;
}

/** The literal `word` (its bytes) at `i`: the index after it, or BAD. */
function literal(b: Uint8Array, i: number, n: number, word: readonly number[]): number {
  if (i + word.length > n) return BAD;
  for (let k = 0; k < word.length; k++) if (b[i + k] !== word[k]) return BAD;
  return i + word.length;
}

const TRUE = [0x74, 0x72, 0x75, 0x65];
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65];
const NULL = [0x6e, 0x75, 0x6c, 0x6c];

/** Scan `b` (see the module comment). */
export function scanAnswer(b: Uint8Array): AnswerScan {
  const n = b.length;
  if (n >= WORDS_FROM) {
    wordShift = b.byteOffset & 3;
    const start = b.byteOffset - wordShift;
    words = new Int32Array(b.buffer, start, (n + wordShift) >> 2);
  } else words = null;
  try {
    return scanValue(b, n);
  } finally {
    words = null;
  }
}

function scanValue(b: Uint8Array, n: number): AnswerScan {
  let depth = 0;
  let i = ws(b, 0, n);
  for (;;) {
    // A value starts at i.
    if (i >= n) return UNSURE;
    const c = b[i];
    let next: number;
    if (c === 0x7b || c === 0x5b) {
      const close = c === 0x7b ? 0x7d : 0x5d;
      i = ws(b, i + 1, n);
      if (b[i] === close) next = i + 1;
      else {
        if (depth === MAX_DEPTH) return UNSURE;
        stack[depth++] = c === 0x7b ? OBJECT : ARRAY;
        if (c === 0x7b) {
          // The first key and its colon; then its value.
          const r = key(b, i, n);
          if (r < 0) return r === MARKED ? SPELLED : UNSURE;
          i = r;
        }
        continue;
      }
    } else if (c === QUOTE) next = str(b, i, n);
    else if (c === 0x2d || isDigit(c)) next = num(b, i, n);
    else if (c === 0x74) next = literal(b, i, n, TRUE);
    else if (c === 0x66) next = literal(b, i, n, FALSE);
    else if (c === 0x6e) next = literal(b, i, n, NULL);
    else return UNSURE;
    if (next < 0) return next === MARKED ? SPELLED : UNSURE;
    // After a value: a separator, a close, or the end.
    i = next;
    for (;;) {
      i = ws(b, i, n);
      if (depth === 0) return i === n ? PLAIN : UNSURE;
      const d = b[i];
      const inObject = stack[depth - 1] === OBJECT;
      if (d === 0x2c) {
        i = ws(b, i + 1, n);
        if (inObject) {
          const r = key(b, i, n);
          if (r < 0) return r === MARKED ? SPELLED : UNSURE;
          i = r;
        }
        break;
      }
      if (d === (inObject ? 0x7d : 0x5d)) {
        depth--;
        i++;
        continue;
      }
      return UNSURE;
    }
  }
}

/** A key at `i` and its colon: the index of its value, or BAD / MARKED. */
function key(b: Uint8Array, i: number, n: number): number {
  if (b[i] !== QUOTE) return BAD;
  const end = str(b, i, n);
  if (end < 0) return end;
  const colon = ws(b, end, n);
  if (b[colon] !== 0x3a) return BAD;
  return ws(b, colon + 1, n);
}
