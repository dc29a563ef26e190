/**
 * Header hygiene between agent and upstream. Inbound credentials, hop-by-hop
 * headers (and any header the client names in `Connection`), forwarding
 * headers from untrusted peers and URL-override headers never pass.
 */

import { isTrusted, type TrustedProxies } from './trust.js';
import { util as undiciUtil } from './undici-pool.js';

/** A raw header name in lower case, as undici's parseHeaders writes it. */
const lowerName = (name: Buffer | string): string => (typeof name === 'string' ? name.toLowerCase() : undiciUtil.bufferToLowerCasedHeaderName(name));

const HOP_BY_HOP = [
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authenticate',
  'proxy-authorization',
];

// Never forwarded upstream: credentials, forwarding claims we recompute,
// URL overrides some frameworks honour, and Warden's own control headers.
const DROP_UPSTREAM = new Set([
  ...HOP_BY_HOP,
  'host',
  'authorization',
  'cookie',
  // Warden meets `Expect: 100-continue` itself (http/continue.ts); undici cannot send one.
  'expect',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-forwarded-port',
  'x-forwarded-prefix',
  'x-real-ip',
  'x-original-url',
  'x-rewrite-url',
  'x-original-uri',
  // Client-IP and forwarding claims other proxies and CDNs use: Warden sets
  // X-Forwarded-For/-Proto/-Host itself and passes none of these (#12 A.6).
  'true-client-ip',
  'x-client-ip',
  'cf-connecting-ip',
  'cf-connecting-ipv6',
  'fastly-client-ip',
  'x-cluster-client-ip',
  'x-original-forwarded-for',
  'x-forwarded',
  'forwarded-for',
  'x-forwarded-server',
  'x-forwarded-uri',
  'x-forwarded-path',
  'x-forwarded-scheme',
  'x-forwarded-ssl',
  'x-forwarded-protocol',
  'x-url-scheme',
  'front-end-https',
  'x-original-host',
  'x-host',
  'x-http-host-override',
  'x-envoy-original-path',
  'x-envoy-external-address',
  'x-envoy-internal',
  'x-remote-ip',
  'x-remote-addr',
  'x-originating-ip',
  'client-ip',
  'warden-approval',
  // The identity assertion Warden signs for upstreams (DESIGN.md): never the agent's.
  'warden-identity',
  'x-request-id',
  'traceparent',
  'tracestate',
]);

/**
 * Names a route cannot set through `upstream.headers` or `credentials.header`:
 * framing, hop-by-hop and the forwarding headers Warden computes itself.
 */
export const RESERVED_UPSTREAM_HEADERS: readonly string[] = Object.freeze([
  ...HOP_BY_HOP,
  'host',
  'content-length',
  'expect',
  'forwarded',
  'x-forwarded-for',
  'x-forwarded-host',
  'x-forwarded-proto',
  'x-request-id',
  'traceparent',
  'tracestate',
  'warden-approval',
]);

/** Every inbound header name never forwarded upstream (lower case; for tests and docs). */
export const DROPPED_UPSTREAM_HEADERS: readonly string[] = Object.freeze([...DROP_UPSTREAM]);

// Never passed back to the agent: hop-by-hop, and cookies an upstream sets
// (they would land on Warden's origin, next to Warden's own state cookies), or
// clears (Clear-Site-Data on a public route would sign people out of the console).
// The identity assertion is for the upstream only: an upstream that reflects it is not heard.
const DROP_DOWNSTREAM = new Set([...HOP_BY_HOP, 'set-cookie', 'set-cookie2', 'clear-site-data', 'warden-identity']);
/** What the relay leaves out of an upstream's head: the above, and the upstream's request id (Warden sends its own). */
const DROP_RELAYED = new Set([...DROP_DOWNSTREAM, 'x-request-id']);

/**
 * The line Warden adds to every upstream answer. The agent listener also
 * serves Warden's browser pages (console, review, sign-in under `/.warden/`),
 * so a page an upstream serves there (through a public route: a hostile
 * upstream, or a file an agent uploaded) would be same-origin with them and
 * could read their form tokens and decide approvals as the person signed in.
 * A sandboxed document has an opaque origin and runs no script; API clients
 * ignore the field, and a CSP of the upstream's own still applies beside it.
 */
export const ANSWER_SANDBOX: readonly [string, string] = Object.freeze(['content-security-policy', 'sandbox']) as readonly [string, string];

/** Headers that let a client change the method an upstream framework sees. */
export const METHOD_OVERRIDE_HEADERS = ['x-http-method-override', 'x-http-method', 'x-method-override'];

const NO_TOKENS: ReadonlySet<string> = new Set();

/** Names listed in a Connection header (lower case). */
function connectionTokens(value: string | string[] | undefined): ReadonlySet<string> {
  if (!value) return NO_TOKENS;
  const out = new Set<string>();
  for (const v of Array.isArray(value) ? value : [value]) for (const t of v.split(',')) out.add(t.trim().toLowerCase());
  return out;
}

export interface ForwardingInfo {
  clientIp: string;
  /** The public host (validated Host header or server.public_url), sent as X-Forwarded-Host. */
  host: string;
  proto: 'http' | 'https';
  requestId: string;
  traceparent: string;
  /** Sent only when tracing is on (re-serialized by the W3C propagator, so only valid list members pass). */
  tracestate?: string;
  upstreamHost: string;
}

const NO_HEADERS: ReadonlyArray<[string, string]> = [];

/** `host[:port]` as RFC 3986 allows it in Host: a DNS-style reg-name (`_` included, as container names use it), IPv4 or IP literal; nothing else. */
const HOST =
  /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?)(?::[0-9]{1,5})?$/;

/** The last value that passed HOST (never one that fails it: it starts as one that passes): an agent sends the same Host request after request. */
let lastValidHost = 'localhost';

/** True when `value` is a plain `host[:port]` (no path, query, userinfo or spaces). */
export function isValidHost(value: string): boolean {
  if (value === lastValidHost) return true;
  if (value.length <= 261 && HOST.test(value)) {
    lastValidHost = value;
    return true;
  }
  return false;
}

export interface UpstreamHeaderOptions {
  /** Static headers of the route (`upstream.headers`). */
  routeHeaders?: ReadonlyArray<[string, string]>;
  /** `headerNames(routeHeaders)`, computed once per route; computed here when absent. */
  routeHeaderNames?: ReadonlySet<string>;
  /** The `Authorization` the credentials stage chose for the upstream, if any. */
  authorization?: string;
  /**
   * Inbound headers to keep, by lower-case name (an approval release forwards
   * only what the approver was shown); undefined keeps every header not dropped.
   */
  only?: ReadonlySet<string>;
  /** Headers only Warden sets on this route (identity assertion headers), by lower-case name: never taken from the agent. */
  reserved?: ReadonlySet<string>;
  /**
   * The host (`host[:port]`, as `URL.host` gives it) the HTTP client writes as
   * `Host` when the list has none: undici writes its pool origin's own host
   * line, precomputed, and validates nothing. When `upstreamHost` equals it the
   * list leaves `host` out (the bytes on the wire are the same).
   */
  clientHost?: string;
}

/** The lower-case names of a header list (a route's `upstream.headers`, once per route). */
export function headerNames(headers: ReadonlyArray<readonly [string, string]>): ReadonlySet<string> {
  return new Set(headers.map(([name]) => name.toLowerCase()));
}

/**
 * Build the upstream header list from the agent's raw headers. Any inbound
 * header whose name Warden sets (credentials, `upstream.headers`,
 * Authorization, the identity assertion, forwarding headers) is dropped
 * first, so the agent can never shadow or add a second value (#12 A.1).
 */
export function upstreamHeaders(
  rawHeaders: readonly string[],
  info: ForwardingInfo,
  trusted: TrustedProxies,
  extra: ReadonlyArray<[string, string]>,
  options: UpstreamHeaderOptions = {},
): string[] {
  const routeHeaders = options.routeHeaders ?? NO_HEADERS;
  // Every Connection line counts (a second one must not hide the first one's names).
  let connection: Set<string> | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i].length === 10 && rawHeaders[i].toLowerCase() === 'connection') {
      const value = rawHeaders[i + 1];
      // `keep-alive` names only itself, which is dropped anyway: no set for what most clients send.
      if (value === 'keep-alive' || value === 'Keep-Alive') continue;
      connection ??= new Set();
      for (const t of connectionTokens(value)) connection.add(t);
    }
  }
  // Names Warden sets: the route's, lower-cased once per route (compile.ts), and the stages' (usually none or one).
  const routeNames = routeHeaders.length > 0 ? (options.routeHeaderNames ?? headerNames(routeHeaders)) : undefined;
  let stageNames: string[] | undefined;
  if (extra.length > 0) {
    stageNames = [];
    for (let i = 0; i < extra.length; i++) stageNames.push(extra[i][0].toLowerCase());
  }
  const only = options.only;
  const reserved = options.reserved;
  const fromTrusted = trusted.size > 0 && isTrusted(trusted, info.clientIp);
  const out: string[] = [];
  let priorXff: string | undefined;
  let priorProto: string | undefined;
  let priorHost: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i].toLowerCase();
    if (fromTrusted) {
      if (name === 'x-forwarded-for') priorXff = priorXff ? `${priorXff}, ${rawHeaders[i + 1]}` : rawHeaders[i + 1];
      else if (name === 'x-forwarded-proto' && (rawHeaders[i + 1] === 'http' || rawHeaders[i + 1] === 'https')) priorProto = rawHeaders[i + 1];
      else if (name === 'x-forwarded-host' && isValidHost(rawHeaders[i + 1])) priorHost = rawHeaders[i + 1];
    }
    if (DROP_UPSTREAM.has(name) || connection?.has(name) || routeNames?.has(name) || stageNames?.includes(name) || reserved?.has(name)) continue;
    if (only !== undefined && !only.has(name)) continue;
    out.push(rawHeaders[i], rawHeaders[i + 1]);
  }
  if (info.upstreamHost !== options.clientHost) out.push('host', info.upstreamHost);
  out.push('x-forwarded-for', priorXff ? `${priorXff}, ${info.clientIp}` : info.clientIp);
  out.push('x-forwarded-proto', priorProto ?? info.proto);
  out.push('x-forwarded-host', priorHost ?? info.host);
  out.push('x-request-id', info.requestId);
  out.push('traceparent', info.traceparent);
  if (info.tracestate) out.push('tracestate', info.tracestate);
  for (let i = 0; i < routeHeaders.length; i++) out.push(routeHeaders[i][0], routeHeaders[i][1]);
  for (let i = 0; i < extra.length; i++) out.push(extra[i][0], extra[i][1]);
  if (options.authorization) out.push('authorization', options.authorization);
  return out;
}

/**
 * The header values of recent upstream answers, by position in the header
 * list. An upstream sends the same fields in the same order answer after
 * answer (Server, Content-Type, Content-Length, Connection…), so a value equal
 * byte for byte to the one last seen at its position reuses that string
 * instead of a new latin1 slice (a call into C++ per value, which showed in
 * profiles of the relay). Latin1 maps each byte to the character of the same
 * code, so the reused string is exactly what `toString('latin1')` gives.
 * Bounded: the first VALUE_SLOTS positions, values up to VALUE_MAX bytes.
 */
const VALUE_SLOTS = 32;
const VALUE_MAX = 128;
const lastValues: string[] = new Array<string>(VALUE_SLOTS).fill('');

/** `value.toString('latin1')`, reusing the string last seen at `slot` when the bytes are the same. */
export function latin1Value(value: Buffer, slot: number): string {
  const n = value.length;
  if (slot >= VALUE_SLOTS || n > VALUE_MAX) return value.toString('latin1');
  const last = lastValues[slot];
  if (last.length === n) {
    let j = 0;
    while (j < n && value[j] === last.charCodeAt(j)) j++;
    if (j === n) return last;
  }
  return (lastValues[slot] = value.toString('latin1'));
}

/**
 * The same for the names of an upstream's head (its own spelling and case,
 * position by position): a name equal byte for byte to the one last seen at
 * its position reuses that name's lower-case form instead of undici's lookup
 * tree walk (or a latin1 slice and toLowerCase) per name. Bounded like values.
 */
const NAME_SLOTS = 32;
const NAME_MAX = 64;
const lastRawNames: string[] = new Array<string>(NAME_SLOTS).fill('');
const lastLowerNames: string[] = new Array<string>(NAME_SLOTS).fill('');

/** `lowerName(name)`, reusing the lower-case name last seen at `slot` when the bytes are the same. */
export function lowerNameAt(name: Buffer, slot: number): string {
  const n = name.length;
  if (slot >= NAME_SLOTS || n > NAME_MAX) return lowerName(name);
  const last = lastRawNames[slot];
  if (last.length === n) {
    let j = 0;
    while (j < n && name[j] === last.charCodeAt(j)) j++;
    if (j === n) return lastLowerNames[slot];
  }
  const lower = lowerName(name);
  lastRawNames[slot] = name.toString('latin1');
  lastLowerNames[slot] = lower;
  return lower;
}

/**
 * undici's `util.parseHeaders` of a raw head (names lower-cased, a repeated
 * name's values in an array, names of Object.prototype's members kept as own
 * properties), with each single value read by `latin1Value` (the string last
 * seen at its position when the bytes are the same, no slice per value). The
 * same object: tested against undici's.
 */
export function parseHookedHeaders(raw: ReadonlyArray<Buffer | string>): Record<string, string | string[]> {
  const obj: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const key = lowerName(raw[i]);
    const v = raw[i + 1];
    const value = typeof v === 'string' ? v : latin1Value(v, i >> 1);
    const had = obj[key];
    if (had === undefined) obj[key] = value;
    else if (!Object.hasOwn(obj, key)) {
      // A name of an Object.prototype member (`constructor`, `__proto__`…): an own property like any other.
      Object.defineProperty(obj, key, { value, enumerable: true, configurable: true, writable: true });
    } else if (typeof had === 'string') obj[key] = [had, value];
    else had.push(value);
  }
  return obj;
}

/**
 * Filter the upstream's raw response headers (undici's name/value Buffers) into
 * the flat list `writeHead` takes, ending with Warden's `x-request-id`. Names
 * go out in lower case (as HTTP/2 writes them, and as undici's parsed headers
 * give them): well-known names are interned strings from undici's lookup tree,
 * so the hot path neither copies nor case-maps a name, and Node's own
 * header matching finds nothing to lower-case. Values pass as latin1, byte for
 * byte, which is how Node writes them back out. Also reports whether the
 * response is an event stream (flushed at once), and the body's length when
 * the head delimits it by exactly one Content-Length and no Transfer-Encoding
 * (-1 otherwise): the relay then knows which chunk is the last one.
 */
export function downstreamRawHeaders(
  raw: readonly Buffer[],
  requestId: string,
  hidden?: ReadonlySet<string>,
): { headers: string[]; eventStream: boolean; contentLength: number } {
  const headers: string[] = [];
  let connection: Set<string> | undefined;
  let eventStream = false;
  let contentLength = -1;
  let delimited = true;
  for (let i = 0; i < raw.length; i += 2) {
    const name = lowerNameAt(raw[i], i >> 1);
    if (name === 'transfer-encoding') delimited = false;
    if (name === 'connection') {
      const value = latin1Value(raw[i + 1], i >> 1);
      // `keep-alive` and `close` name no other header; anything else is parsed (every Connection line counts).
      if (value !== 'keep-alive' && value !== 'close') {
        connection ??= new Set();
        for (const t of connectionTokens(value)) connection.add(t);
      }
      continue;
    }
    if (DROP_RELAYED.has(name) || hidden?.has(name)) continue;
    const value = latin1Value(raw[i + 1], i >> 1);
    if (name === 'content-type' && value.startsWith('text/event-stream')) eventStream = true;
    else if (name === 'content-length') {
      if (contentLength !== -1) delimited = false;
      else if (value === lastLengthText) contentLength = lastLength;
      else if (DECIMAL.test(value)) contentLength = lastLength = Number((lastLengthText = value));
      else delimited = false;
    }
    headers.push(name, value);
  }
  if (connection !== undefined) {
    // Rare: the upstream named extra hop-by-hop headers; drop them after the fact.
    for (let i = headers.length - 2; i >= 0; i -= 2) if (connection.has(headers[i])) headers.splice(i, 2);
  }
  headers.push('x-request-id', requestId);
  return { headers, eventStream, contentLength: delimited ? contentLength : -1 };
}

/** A Content-Length value the relay counts on: digits only, at most 15 (an exact integer). */
const DECIMAL = /^[0-9]{1,15}$/;
/** The last Content-Length value that passed DECIMAL, and its number (an upstream sends the same length again and again). */
let lastLengthText = '0';
let lastLength = 0;

/** Filter upstream response headers for the agent. */
export function downstreamHeaders(headers: Record<string, string | string[] | undefined>, hidden?: ReadonlySet<string>): Record<string, string | string[]> {
  const connection = connectionTokens(headers['connection']);
  const out: Record<string, string | string[]> = {};
  for (const name in headers) {
    const v = headers[name];
    if (v === undefined || DROP_DOWNSTREAM.has(name) || connection.has(name) || hidden?.has(name)) continue;
    out[name] = v;
  }
  return out;
}

/**
 * For the hooked exchange, in one pass over the raw head: the lines the agent
 * gets, pushed onto `kept` as lower-case name and value in the order they came
 * (the flat list `writeHead` takes, as the relay sends it: no object of the
 * fields unless the response hook asks for one, see `fieldsObject`), and the
 * lines left out (Connection, the other hop-by-hop fields, Set-Cookie,
 * `hidden`) pushed onto `dropped`, so the upstream's own fields stay readable:
 * every line of a name is kept or every line dropped. False for a head this
 * pass does not decide (a Connection line naming other fields, which are
 * dropped after the fact): the caller takes the two-step path,
 * `downstreamHeaders(parseHookedHeaders(raw), hidden)`.
 */
export function hookedFields(raw: ReadonlyArray<Buffer | string>, hidden: ReadonlySet<string> | undefined, kept: string[], dropped: string[]): boolean {
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    const key = typeof name === 'string' ? name.toLowerCase() : lowerNameAt(name, i >> 1);
    const v = raw[i + 1];
    const value = typeof v === 'string' ? v : latin1Value(v, i >> 1);
    if (DROP_DOWNSTREAM.has(key) || hidden?.has(key)) {
      // `keep-alive` names only itself (dropped anyway); other tokens are the two-step path's.
      if (key === 'connection' && value !== 'keep-alive' && value !== 'Keep-Alive') return false;
      dropped.push(key, value);
      continue;
    }
    kept.push(key, value);
  }
  return true;
}

/**
 * The object of a flat field list (lower-case names): a repeated name's values
 * in an array, in order, and names of Object.prototype's members (`constructor`,
 * `__proto__`…) as own properties like any other, as parseHookedHeaders reads them.
 */
export function fieldsObject(list: readonly string[]): Record<string, string | string[]> {
  const obj: Record<string, string | string[]> = {};
  for (let i = 0; i < list.length; i += 2) {
    const key = list[i];
    const value = list[i + 1];
    const had = obj[key];
    if (had === undefined) obj[key] = value;
    else if (!Object.hasOwn(obj, key)) Object.defineProperty(obj, key, { value, enumerable: true, configurable: true, writable: true });
    else if (typeof had === 'string') obj[key] = [had, value];
    else had.push(value);
  }
  return obj;
}

/**
 * `fieldsObject(list)[name]` without building the object: the value of the
 * one line named `name` (lower case), all its values when it has several, or
 * undefined.
 */
export function fieldOf(list: readonly string[], name: string): string | string[] | undefined {
  let found: string | string[] | undefined;
  for (let i = 0; i < list.length; i += 2) {
    if (list[i] !== name) continue;
    const value = list[i + 1];
    if (found === undefined) found = value;
    else if (typeof found === 'string') found = [found, value];
    else found.push(value);
  }
  return found;
}
