/**
 * Fast readers for large tuple files, next to the YAML reader of `model.ts`:
 *
 * - `tuples.yaml` written one flow map per line (`- { user: …, relation: …,
 *   object: … }`, the form `warden fga pull` and the sample policies use) is
 *   read line by line without building a YAML document: `fastYamlTuples`
 *   returns null as soon as a line is anything else (a condition, block
 *   style, an escape, a plain scalar YAML would read as a number or boolean),
 *   and the caller parses the whole file with the YAML parser instead, so
 *   what a file means never depends on which reader read it.
 * - JSON Lines (`.jsonl` / `.ndjson`): one JSON object per line, the same keys.
 */

import type { TupleKey } from './authorizer.js';

const TUPLE_KEYS = new Set(['user', 'relation', 'object', 'condition']);

/**
 * Checks one parsed tuple value (a YAML map's or a JSON line's object) and
 * returns the tuple; `fail` throws with the tuple's position.
 */
export function tupleFromValue(value: Record<string, unknown>, fail: (msg: string) => never): TupleKey {
  for (const key of Object.keys(value)) if (!TUPLE_KEYS.has(key)) fail(`unknown key "${key}"`);
  for (const key of ['user', 'relation', 'object'] as const) {
    if (typeof value[key] !== 'string' || (value[key] as string).length === 0) fail(`"${key}" must be a non-empty string`);
  }
  const tuple: TupleKey = { user: value.user as string, relation: value.relation as string, object: value.object as string };
  if (value.condition !== undefined && value.condition !== null) {
    const c = value.condition as Record<string, unknown>;
    if (typeof c !== 'object' || Array.isArray(c)) fail('"condition" must be a map with name and context');
    for (const key of Object.keys(c)) if (key !== 'name' && key !== 'context') fail(`unknown condition key "${key}"`);
    if (typeof c.name !== 'string' || c.name.length === 0) fail('"condition.name" must be a non-empty string');
    if (c.context !== undefined && (typeof c.context !== 'object' || c.context === null || Array.isArray(c.context))) {
      fail('"condition.context" must be a map');
    }
    tuple.condition = c.context === undefined ? { name: c.name as string } : { name: c.name as string, context: c.context as Record<string, unknown> };
  }
  return tuple;
}

/** Tuples with the 1-based line each starts on. */
export interface TupleLines {
  tuples: TupleKey[];
  lines: number[];
}

// One scalar of the fast form. Plain: starts with an ASCII letter or `_` (so YAML reads it as a string unless it is
// a null/boolean word, checked after), no whitespace, control character, quote or flow indicator, and not ending
// in `:`. Double-quoted: no escape, quote or control character. Single-quoted: no quote or control character.
const PLAIN = `[A-Za-z_][^\\s\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029\\ufeff,\\[\\]{}"']*`;
const DQ = `"[^"\\\\\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029\\ufeff]+"`;
const SQ = `'[^'\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029\\ufeff]+'`;
const VALUE = `(${PLAIN}|${DQ}|${SQ})`;
const PAIR = `(user|relation|object): +${VALUE}`;
/** `- { k: v, k: v, k: v }` at column 0, optionally followed by a comment. */
const ITEM = new RegExp(`^- +\\{ *${PAIR} *, *${PAIR} *, *${PAIR} *\\}(?: +#.*)? *$`);
/** Blank, or a comment. */
const SKIP = /^ *(?:#.*)?$/;
/** Plain scalars YAML 1.2's core schema reads as null or a boolean. */
const NOT_STRINGS = new Set(['null', 'Null', 'NULL', 'true', 'True', 'TRUE', 'false', 'False', 'FALSE']);

function scalar(raw: string): string | undefined {
  const c = raw.charCodeAt(0);
  if (c === 0x22 /* " */ || c === 0x27 /* ' */) return raw.slice(1, -1);
  if (NOT_STRINGS.has(raw) || raw.charCodeAt(raw.length - 1) === 0x3a /* : */) return undefined;
  return raw;
}

/** One shared string per distinct value (users and relations repeat across a million tuples). */
function interner(): (s: string) => string {
  const known = new Map<string, string>();
  return (s) => {
    const seen = known.get(s);
    if (seen !== undefined) return seen;
    known.set(s, s);
    return s;
  };
}

/**
 * Collects tuples into an array, with identical users and relations as one
 * shared string each (a user named by many tuples is one string in memory;
 * most objects appear once or twice, not worth a lookup each).
 */
function sharing(tuples: Iterable<TupleKey>): TupleKey[] {
  const shared = interner();
  const out: TupleKey[] = [];
  for (const t of tuples) {
    t.user = shared(t.user);
    t.relation = shared(t.relation);
    out.push(t);
  }
  return out;
}

/** The lines of `text` with their 1-based numbers (split on '\n' only; a trailing '\r' stays). */
function* eachLine(text: string): Generator<[number, string]> {
  let start = 0;
  let lineNo = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    yield [++lineNo, text.slice(start, end)];
    start = end + 1;
  }
}

/** Thrown by `fastYamlTupleStream` at the first line that is not of the simple form. */
export class NotSimpleYaml extends Error {
  constructor(readonly line: number) {
    super(`line ${line} is not a one-line flow map`);
    this.name = 'NotSimpleYaml';
  }
}

/**
 * Reads a YAML tuples file written one flow map per line, one tuple at a time
 * (a million tuples go straight into the engine's index, never all at once
 * into an array of objects); pushes each tuple's 1-based line to `lines`.
 * Throws NotSimpleYaml at the first line of any other form: the caller then
 * drops what it built and parses the whole file as YAML. Strings are not
 * shared here (the index interns what it keeps); the array readers share them.
 */
export function* fastYamlTupleStream(text: string, lines: number[]): Generator<TupleKey, void, undefined> {
  for (const [lineNo, raw] of eachLine(text)) {
    const line = raw.charCodeAt(raw.length - 1) === 0x0d ? raw.slice(0, -1) : raw;
    if (line.charCodeAt(0) !== 0x2d /* - */) {
      if (SKIP.test(line)) continue;
      throw new NotSimpleYaml(lineNo);
    }
    const m = ITEM.exec(line);
    if (!m) throw new NotSimpleYaml(lineNo);
    let user: string | undefined;
    let relation: string | undefined;
    let object: string | undefined;
    for (let i = 1; i < 7; i += 2) {
      const v = scalar(m[i + 1]);
      if (v === undefined) throw new NotSimpleYaml(lineNo);
      const key = m[i];
      if (key === 'user') {
        if (user !== undefined) throw new NotSimpleYaml(lineNo);
        user = v;
      } else if (key === 'relation') {
        if (relation !== undefined) throw new NotSimpleYaml(lineNo);
        relation = v;
      } else {
        if (object !== undefined) throw new NotSimpleYaml(lineNo);
        object = v;
      }
    }
    if (user === undefined || relation === undefined || object === undefined) throw new NotSimpleYaml(lineNo);
    lines.push(lineNo);
    yield { user, relation, object };
  }
}

/**
 * Reads a YAML tuples file written one flow map per line. Returns null when
 * any line is not of that simple form (the caller then parses the file as
 * YAML).
 */
export function fastYamlTuples(text: string): TupleLines | null {
  const lines: number[] = [];
  try {
    return { tuples: sharing(fastYamlTupleStream(text, lines)), lines };
  } catch (err) {
    if (err instanceof NotSimpleYaml) return null;
    throw err;
  }
}

/** True for a file name the JSON Lines reader takes (`.jsonl`, `.ndjson`). */
export function isJsonLinesPath(path: string): boolean {
  return /\.(jsonl|ndjson)$/i.test(path);
}

/**
 * Reads JSON Lines one tuple at a time: one JSON object `{user, relation,
 * object, condition?}` per line; blank lines are skipped; pushes each tuple's
 * line to `lines`. `fail(message, line)` throws.
 */
export function* jsonLinesTupleStream(text: string, fail: (message: string, line: number) => never, lines: number[]): Generator<TupleKey, void, undefined> {
  let index = 0;
  for (const [lineNo, line] of eachLine(text)) {
    if (line.trim() === '') continue;
    const at = lineNo;
    const n = ++index;
    const bad = (msg: string): never => fail(`tuple ${n}: ${msg}`, at);
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      bad(`not JSON (${(err as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) bad('expected a JSON object with user, relation, object');
    lines.push(at);
    yield tupleFromValue(value as Record<string, unknown>, bad);
  }
}

/**
 * Reads JSON Lines: one JSON object `{user, relation, object, condition?}` per
 * line; blank lines are skipped. `fail(message, line)` throws.
 */
export function jsonLinesTuples(text: string, fail: (message: string, line: number) => never): TupleLines {
  const lines: number[] = [];
  return { tuples: sharing(jsonLinesTupleStream(text, fail, lines)), lines };
}
