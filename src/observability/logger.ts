/**
 * JSON logs (pino) that cannot carry secrets: known secret fields are censored
 * by path, and every string is scrubbed of bearer tokens and JWT-shaped values
 * before it is written, so a secret that slips into a message is still caught.
 */

import { pino, symbols, type Logger, type DestinationStream } from 'pino';
import { JSON_ESCAPED } from './json-text.js';

export type { Logger };

/**
 * Field names whose values are secrets, wherever they appear in a record. A
 * list of names, not patterns: `code` is deliberately absent, so error codes
 * (`code: "store_unavailable"`, `err.code`, exit codes) stay readable; OAuth
 * authorization codes are logged under none of these names, and in URLs the
 * query scrub below removes `code=`.
 */
export const SECRET_FIELD_NAMES: readonly string[] = [
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'token',
  'access_token',
  'refresh_token',
  'id_token',
  'client_secret',
  'secret',
  'password',
  'key',
  'api_token',
  'authorization_code',
  'code_verifier',
  'device_code',
  'user_code',
  'subject_token',
  'assertion',
  'ticket',
  'private_key',
  'session_secret',
];
const SECRET_KEYS = new Set(SECRET_FIELD_NAMES);

const JWT_LIKE = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;
const BEARER = /\b(Bearer|Basic|DPoP)\s+[A-Za-z0-9._~+/=-]{8,}/gi;
const QUERY_SECRET = /([?&](?:access_token|token|code|ticket|client_secret|t)=)[^&\s"]+/gi;
// A URL's userinfo (`https://user:pass@host`, `redis://:pass@host`, `https://TOKEN@host`): the whole of it, since
// a user name can be a token too. fetch() names such a URL in its error ("Request cannot be constructed from a URL
// that includes credentials: …"), so a sink or provider URL configured with credentials would reach the log.
const URL_USERINFO = /(\b[a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"]+@/gi;

// One scan that every pattern above needs to match: most strings (ids, routes,
// paths, decisions, rendered checks like `user:a can_read doc:1=true`) fail it
// and skip the replaces. A query secret needs its `?` or `&`, userinfo its `://`.
const MAY_HOLD_SECRET = /eyJ|bearer|basic|dpop|[?&]|:\/\//i;

/** Scrub token-shaped substrings from a string. */
export function scrubString(value: string): string {
  if (!MAY_HOLD_SECRET.test(value)) return value;
  return value
    .replace(JWT_LIKE, '[redacted-jwt]')
    .replace(BEARER, '$1 [redacted]')
    .replace(QUERY_SECRET, '$1[redacted]')
    .replace(URL_USERINFO, '$1[redacted]@');
}

// MAY_HOLD_SECRET, or a character JSON.stringify escapes (quote, backslash,
// control characters, surrogates): a string with none of these is left as it
// is by the scrub and is its own JSON text between two quotes.
const MAY_NEED_WORK = new RegExp(`${MAY_HOLD_SECRET.source}|${JSON_ESCAPED.source}`, 'i');

/**
 * `JSON.stringify(scrubString(value))`, byte for byte, in one scan for the
 * strings that need neither (ids, routes, paths, names): the text of the log
 * lines written per request (audit-line.ts).
 */
export function scrubbedJson(value: string): string {
  if (typeof value === 'string' && !MAY_NEED_WORK.test(value)) return `"${value}"`;
  return JSON.stringify(scrubString(value));
}

// A string of only these characters, without `eyJ` and without `://`, is left
// as it is by the scrub and by JSON.stringify: none of them is escaped (no
// quote, backslash, control character or surrogate), none starts a query
// secret (QUERY_SECRET needs `?` or `&`), without whitespace BEARER cannot
// match (it needs `\s` after the scheme), JWT_LIKE (case-sensitive) needs
// `eyJ` and URL_USERINFO `://`. Request ids (UUIDs, or inbound ids of
// [A-Za-z0-9._:-]) and canonical paths (no `//`) are such strings, and this
// scan costs half of MAY_NEED_WORK's case-insensitive alternatives on hex text
// (where every e, b and d starts one).
const NOT_PLAIN = /[^\w.:/=@+,~-]|eyJ|:\/\//;

/**
 * `JSON.stringify(scrubString(value))` without its two quotes (the JSON
 * string's content), byte for byte: for a line that writes the quotes with the
 * text around them (audit-line.ts).
 */
export function scrubbedJsonContent(value: string): string {
  if (!NOT_PLAIN.test(value) || !MAY_NEED_WORK.test(value)) return value;
  const json = JSON.stringify(scrubString(value));
  return json.slice(1, -1);
}

/** Whether `value` is such a string (see NOT_PLAIN): the scrub and JSON.stringify leave it as it is. */
export function isPlainText(value: string): boolean {
  return !NOT_PLAIN.test(value);
}

// A scheme BEARER redacts the token after, at the end of a string.
const ENDS_WITH_SCHEME = /(?:bearer|basic|dpop)$/i;

/**
 * Whether `value` is plain (isPlainText) and does not end with a scheme, so
 * that `value + ' ' + rest`, for a plain `rest`, is left as it is by the
 * scrub and by JSON.stringify: neither side holds `eyJ`, `?`, `&`, `://` or
 * an escapable character, none of these can form across the space (nor can
 * userinfo, which holds no whitespace), and the
 * only whitespace is that space, after which BEARER would redact a token
 * only if a scheme ended right before it.
 */
export function isPlainBeforeSpace(value: string): boolean {
  return !NOT_PLAIN.test(value) && !ENDS_WITH_SCHEME.test(value);
}

// Field names repeat from record to record: remember which are secret.
const secretKeyMemo = new Map<string, boolean>();
function isSecretKey(key: string): boolean {
  let secret = secretKeyMemo.get(key);
  if (secret === undefined) {
    secret = SECRET_KEYS.has(key.toLowerCase());
    if (secretKeyMemo.size < 10_000) secretKeyMemo.set(key, secret);
  }
  return secret;
}

/** What scrub writes for an object or array nested deeper than MAX_SCRUB_DEPTH. */
export const TOO_DEEP = '[too deep]';
const MAX_SCRUB_DEPTH = 8;

/**
 * Deep copy of `value` with secret-named fields censored and strings scrubbed.
 * Fails closed: an object or array deeper than MAX_SCRUB_DEPTH (or in a cycle)
 * is replaced by TOO_DEEP, never written unscrubbed.
 */
export function scrub(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return scrubString(value);
  if (value === null || typeof value !== 'object') return value;
  if (depth > MAX_SCRUB_DEPTH) return TOO_DEEP;
  if (value instanceof Error) {
    return { type: value.name, message: scrubString(value.message), code: (value as { code?: unknown }).code };
  }
  if (Array.isArray(value)) return value.map((v) => scrub(v, depth + 1));
  const out: Record<string, unknown> = {};
  const record = value as Record<string, unknown>;
  for (const k in record) {
    if (!Object.prototype.hasOwnProperty.call(record, k)) continue;
    const v = record[k];
    // Absent fields (audit records leave many undefined) are not copied: JSON drops them anyway.
    if (v === undefined) continue;
    out[k] = isSecretKey(k) && v != null && v !== '' ? '[redacted]' : scrub(v, depth + 1);
  }
  return out;
}

/**
 * `,"time":"<ISO 8601>"`, formatted at most once per millisecond, and with
 * Date's formatter at most once per second: past a few hundred lines a second
 * most lines start a new millisecond, and only the milliseconds change.
 */
let isoAt = -1;
let isoText = '';
let isoSecond = NaN;
let isoPrefix = '';
export function cachedIsoTime(now = Date.now()): string {
  if (now !== isoAt) {
    isoAt = now;
    const second = Math.floor(now / 1000) * 1000;
    const ms = now - second;
    if (second !== isoSecond) {
      isoSecond = second;
      // `…T03:24:19.`: the text up to the milliseconds, the same for the whole second.
      isoPrefix = `,"time":"${new Date(now).toISOString().slice(0, -4)}`;
    }
    isoText = `${isoPrefix}${ms < 10 ? '00' : ms < 100 ? '0' : ''}${ms}Z"`;
  }
  return isoText;
}

export interface LoggerOptions {
  level?: string;
  /** Where to write (tests capture logs here); default stdout. */
  destination?: DestinationStream;
  /** Fields on every line next to `service` (e.g. `worker`: the cluster worker's id). */
  base?: Record<string, string | number>;
}

/** Loggers made by createLogger: their framing (level, time, bindings, message) is known, so lineFraming can frame their lines without pino. */
const wardenLoggers = new WeakSet<Logger>();

/** Create the process logger. Every record passes through `scrub`. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? process.env.WARDEN_LOG_LEVEL ?? 'info';
  const logger = pino(
    {
      level,
      base: { service: 'warden', ...options.base },
      timestamp: cachedIsoTime,
      formatters: { level: (label) => ({ level: label }) },
      hooks: {
        logMethod(args, method) {
          const cleaned = args.map((a) => scrub(a)) as typeof args;
          method.apply(this, cleaned);
        },
      },
      serializers: { err: (e: unknown) => scrub(e) },
    },
    options.destination,
  );
  wardenLoggers.add(logger);
  return logger;
}

/** What pino keeps on a logger and its destination (its exported `symbols` name them). */
type PinoInternals = Record<symbol, unknown>;
interface MetadataStream {
  lastLevel?: number;
  lastMsg?: string;
  lastObj?: unknown;
  lastTime?: string;
  lastLogger?: Logger;
}

/**
 * How a line at `level` with message `msg` is framed as pino frames it, for a
 * caller that serializes the fields itself (`,"key":value…`, every string
 * scrubbed as the scrub hook would): `head(now) + fields + tail` is the line
 * pino writes (level, time, the logger's bindings, the fields, the message),
 * and `write` hands it to the logger's destination as pino hands it over. For
 * a line written per request (the audit line), where pino's object walk and
 * the hook's scrubbed copy cost more than the text. Undefined for loggers not
 * made by createLogger (their hooks and formatters are unknown: log through
 * pino). The caller checks that the level is enabled.
 */
export interface LineFraming {
  /** `{"level":…,"time":…` and the logger's bindings for a line written at `now` (ms): the same text for every line of one millisecond. */
  head(now: number): string;
  /** The message and the line's end (`,"msg":…}` and a newline). */
  readonly tail: string;
  /** Hand one line (head + fields + tail, its head the last one `head` returned) to the destination. */
  write(line: string): void;
}

export function lineFraming(logger: Logger, level: 'info' | 'debug', msg: string): LineFraming | undefined {
  if (!wardenLoggers.has(logger)) return undefined;
  const internals = logger as unknown as PinoInternals;
  const stream = internals[symbols.streamSym] as DestinationStream & MetadataStream & PinoInternals;
  const levelNum = logger.levels.values[level];
  const levelHead = (internals[symbols.lsCacheSym] as Record<number, string>)[levelNum];
  const time = internals[symbols.timeSym] as (now?: number) => string;
  // createLogger's timestamp takes the time it formats (the audit step has read the clock already).
  const stamp = time === cachedIsoTime ? cachedIsoTime : () => time();
  const timeSlice = internals[symbols.timeSliceIndexSym] as number;
  const tail = `,${JSON.stringify(internals[symbols.messageKeySym])}:${JSON.stringify(msg)}${internals[symbols.endSym] as string}`;
  const metadata = stream[symbols.needsMetadataGsym] === true;
  // The head of the last time text and bindings: lines of one millisecond share it (one piece of their text, not three).
  // Not made one block (flatText): at a few lines a millisecond that copy costs more than it saves.
  let lastTime = '';
  let lastBindings: string | undefined;
  let head = '';
  let lastTimeValue = '';
  return {
    head(now) {
      const t = stamp(now);
      const bindings = internals[symbols.chindingsSym] as string;
      if (t !== lastTime || bindings !== lastBindings || head === '') {
        lastTime = t;
        lastBindings = bindings;
        head = levelHead + t + bindings;
        lastTimeValue = t.slice(timeSlice);
      }
      return head;
    },
    tail,
    write(line) {
      if (metadata) {
        // As pino does before each write (the batched writer reads lastLevel); no object was built for this line.
        stream.lastLevel = levelNum;
        stream.lastObj = undefined;
        stream.lastMsg = msg;
        stream.lastTime = lastTimeValue;
        stream.lastLogger = logger;
      }
      stream.write(line);
    },
  };
}
