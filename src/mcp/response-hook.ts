/**
 * The MCP response hook: binds sessions the upstream creates, forgets sessions
 * it ends, and filters tools/list answers (JSON or SSE, event by event) before
 * they reach the agent. Everything else streams through untouched.
 */

import { isUtf8 } from 'node:buffer';
import { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { WardenError } from '../core/errors.js';
import { readBounded } from '../http/body.js';
import type { RequestState } from '../pipeline/context.js';
import type { HookedResponse, ResponseBuffer, UpstreamResponse } from '../proxy/forward.js';
import { PLAIN, SPELLED, scanAnswer } from './answer-scan.js';
import type { SessionBindings } from './sessions.js';
import { createSseRewriter, formatSseEvent, isMessageEvent } from './sse.js';
import type { ToolsListRewriter } from './list-filter.js';

export interface McpHookContext {
  routeName: string;
  state: RequestState;
  /** The session id the request presented (already checked). */
  sessionId?: string;
  sessions: SessionBindings;
  /** The tools/list rewriter, or undefined until `buildRewriter` builds it (see rewriterOf). */
  rewriter?: ToolsListRewriter;
  /** Builds the rewriter when an answer is first read as messages (a tools/call answer with nothing to filter never needs it). */
  buildRewriter?: () => ToolsListRewriter;
  /** False for a POST of notifications and responses only (its answer carries no messages). */
  expectsMessages: boolean;
  /**
   * True when the request asked a tools/list. Without one, a JSON answer that
   * cannot carry a tools list goes to the agent as the upstream's bytes (see
   * `passesUnchanged`): nothing in it could be filtered.
   */
  expectsLists: boolean;
  /** Bound on a buffered JSON answer or one SSE event. */
  maxBytes: number;
  /** An SSE answer quiet this long sends the agent a keep-alive comment (0 or absent: never; `mcp.keepalive`). */
  keepAliveMs?: number;
  /**
   * For a GET stream (the server's channel to the agent, silent most of the
   * time): how long its upstream may stay silent once it is open, instead of
   * the route's timeout (`mcp.stream_idle_timeout`). Undefined for a POST,
   * whose SSE answer is an answer and stalls like one.
   */
  streamIdleMs?: number;
}

// Stateless when used without `stream: true`: one for every answer.
const UTF8 = new TextDecoder('utf-8');

/** `res.headers[name]`, read without building the proxy's object of the fields when it offers `field`. */
function answerField(res: UpstreamResponse, name: string): string | string[] | undefined {
  return res.field !== undefined ? res.field(name) : res.headers[name];
}

function header(res: UpstreamResponse, name: string): string | undefined {
  const v = answerField(res, name);
  return Array.isArray(v) ? v[0] : v;
}

/** The upstream body decoded from its Content-Encoding (filtering needs plain text). */
function decoded(res: UpstreamResponse): Readable {
  const enc = (header(res, 'content-encoding') ?? 'identity').trim().toLowerCase();
  // A Buffer body comes only for an unencoded JSON answer (createMcpResponseBuffer).
  if (Buffer.isBuffer(res.body)) {
    if (enc === 'identity' || enc === '') return Readable.from([res.body]);
    throw new WardenError('upstream_unavailable', `cannot filter an upstream answer encoded as ${enc}`, { status: 502, reason: 'upstream_encoding' });
  }
  if (enc === 'identity' || enc === '') return res.body;
  const decoder = enc === 'gzip' || enc === 'x-gzip' ? createGunzip() : enc === 'deflate' ? createInflate() : enc === 'br' ? createBrotliDecompress() : null;
  if (!decoder)
    throw new WardenError('upstream_unavailable', `cannot filter an upstream answer encoded as ${enc}`, { status: 502, reason: 'upstream_encoding' });
  const body = res.body;
  body.on('error', (err) => decoder.destroy(err));
  return body.pipe(decoder);
}

/**
 * Session bookkeeping on the upstream's answer, before anything reaches the
 * agent: bind a session the upstream created to this principal, forget one it
 * ended (DELETE) or no longer knows (404).
 */
export function createMcpResponseHead(ctx: Pick<McpHookContext, 'routeName' | 'state' | 'sessionId' | 'sessions'>) {
  const { state } = ctx;
  return function mcpResponseHead(statusCode: number, header: (name: string) => string | undefined): Promise<void> | void {
    const ok = statusCode >= 200 && statusCode < 300;
    const created = header('mcp-session-id');
    const bind = ok && created !== undefined && created !== ctx.sessionId;
    const unbind = ctx.sessionId !== undefined && ((state.method === 'DELETE' && ok) || statusCode === 404);
    if (!bind && !unbind) return;
    return (async () => {
      if (bind) await ctx.sessions.bind(ctx.routeName, created!, state.principal);
      if (unbind) await ctx.sessions.unbind(ctx.routeName, ctx.sessionId!);
    })();
  };
}

/**
 * The media type of a Content-Type value, as the MCP SDK client reads it
 * (lowercased `type/subtype`, parameters ignored); undefined when absent or
 * not one well-formed media type (e.g. joined duplicates).
 */
export function mediaTypeEssence(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  // A pure function of the text, asked twice per answer (buffering decision, hook) with what the upstream always sends.
  if (value === lastType) return lastEssence;
  const essence = essenceOf(value);
  lastType = value;
  lastEssence = essence;
  return essence;
}

/** The Content-Type text mediaTypeEssence read last, and its answer. */
let lastType: string | undefined;
let lastEssence: string | undefined;

/** mediaTypeEssence without the memory (exported for its test). */
export function essenceOf(value: string): string | undefined {
  const semi = value.indexOf(';');
  const essence = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  if (!/^[!#$%&'*+.^_`|~0-9a-z-]+\/[!#$%&'*+.^_`|~0-9a-z-]+$/.test(essence)) return undefined;
  if (semi >= 0 && value.slice(semi).includes(',')) return undefined;
  return essence;
}

function tooLargeAnswer(maxBytes: number): WardenError {
  return new WardenError('upstream_unavailable', `upstream MCP answer exceeds ${maxBytes} bytes`, { status: 502, reason: 'upstream_too_large' });
}

/**
 * Which answers the proxy reads whole for the response hook (no stream): the
 * ones the hook reads whole anyway, a successful unencoded JSON answer, with
 * the hook's bound and error. Anything else (SSE, encoded, errors) streams.
 */
export function createMcpResponseBuffer(maxBytes: number): (statusCode: number, header: (name: string) => string | undefined) => ResponseBuffer | undefined {
  const bound: ResponseBuffer = { maxBytes, tooLarge: () => tooLargeAnswer(maxBytes) };
  return function mcpResponseBuffer(statusCode, header) {
    if (statusCode < 200 || statusCode >= 300 || statusCode === 202 || statusCode === 204) return undefined;
    if (mediaTypeEssence(header('content-type')) !== 'application/json') return undefined;
    const enc = (header('content-encoding') ?? 'identity').trim().toLowerCase();
    return enc === 'identity' || enc === '' ? bound : undefined;
  };
}

/** `"tools"`: in a JSON text without `\u` escapes, the only spelling of a `tools` key. */
const TOOLS_KEY = Buffer.from('"tools"');
const U_ESCAPE = Buffer.from('\\u');

/**
 * Whether a whole JSON answer may reach the agent as the upstream's bytes,
 * for a request that asked no tools/list: it is valid UTF-8 JSON (no BOM)
 * whose text holds neither `"tools"` nor a `\u` escape, so no spelling of a
 * `tools` key is anywhere in it (duplicate keys included, which JSON.parse
 * would hide by keeping the last). The general path would parse it, find
 * nothing to filter and re-serialize the same value. One scan of the bytes
 * decides most answers (answer-scan.ts); what it cannot prove either way is
 * decided as before, by searching the bytes and JSON.parse (`passesParsed`).
 */
export function passesUnchanged(raw: Buffer): boolean {
  const scan = scanAnswer(raw);
  if (scan === PLAIN) return isUtf8(raw);
  if (scan === SPELLED) return false;
  return passesParsed(raw);
}

/** passesUnchanged decided by searching the bytes and parsing them (the scan's fallback; the same answer where both decide). */
export function passesParsed(raw: Buffer): boolean {
  if (raw.indexOf(TOOLS_KEY) >= 0 || raw.indexOf(U_ESCAPE) >= 0 || !isUtf8(raw)) return false;
  try {
    // A BOM is kept by toString and refused by JSON.parse: the general path strips it.
    JSON.parse(raw.toString('utf8'));
  } catch {
    return false; // the general path refuses it
  }
  return true;
}

/**
 * Build the response hook for one MCP POST or GET: every successful answer
 * that a client could read as JSON-RPC (SSE or JSON) is parsed and each
 * response carrying `result.tools` filtered (see createToolsListRewriter).
 * Anything else that could carry messages is refused (fail closed). An answer
 * the proxy read whole is decided synchronously unless a tools list in it must
 * be filtered (no promise for a tools/call answer).
 */
export function createMcpResponseHook(ctx: McpHookContext): (res: UpstreamResponse) => HookedResponse | Promise<HookedResponse> {
  return function mcpResponseHook(res) {
    try {
      // 202 Accepted carries no messages (clients discard its body); errors are not parsed as messages.
      if (res.statusCode < 200 || res.statusCode >= 300 || res.statusCode === 202 || res.statusCode === 204) return res;
      const type = mediaTypeEssence(header(res, 'content-type'));
      if (type === 'text/event-stream') return sse(ctx, res);
      if (type === 'application/json') {
        // The proxy read an unencoded answer whole, bounded by the same limit (createMcpResponseBuffer).
        if (Buffer.isBuffer(res.body)) return json(ctx, res, res.body);
        const body = res.body;
        return readBounded(decoded(res), ctx.maxBytes, () => tooLargeAnswer(ctx.maxBytes))
          .then((raw) => json(ctx, res, raw))
          .catch((err: unknown) => {
            body.destroy();
            throw err;
          });
      }
      // A POST of notifications and responses only expects no messages back (clients discard the body).
      if (!ctx.expectsMessages) return res;
      throw new WardenError('upstream_unavailable', `upstream answered an MCP request as ${type ?? 'no or a malformed content type'}`, {
        status: 502,
        reason: 'upstream_content_type',
      });
    } catch (err) {
      if (!Buffer.isBuffer(res.body)) res.body.destroy();
      throw err;
    }
  };
}

/** The context's rewriter, built on first use. (Not a getter on the context: an object literal with an accessor costs ~20x a plain one.) */
function rewriterOf(ctx: McpHookContext): ToolsListRewriter {
  const built = (ctx.rewriter ??= ctx.buildRewriter?.());
  if (!built) throw new WardenError('internal', 'MCP response hook without a tools/list rewriter', { reason: 'mcp_rewriter_missing' });
  return built;
}

// The hook's parts are module functions (the hook's own closure is the only one built per request).

function plainHeaders(res: UpstreamResponse): Record<string, string | string[]> {
  // A copy without the two (not `delete`, which leaves a slow dictionary-mode object for writeHead).
  const { 'content-length': _length, 'content-encoding': _encoding, ...headers } = res.headers;
  return headers;
}

/** An SSE answer, rewritten event by event (tools lists filtered), streamed on. */
function sse(ctx: McpHookContext, res: UpstreamResponse): HookedResponse {
  const source = decoded(res);
  const body = createSseRewriter(
    (event) => {
      if (!isMessageEvent(event)) return null;
      // Nothing in it could be filtered (no tools/list asked, no spelling of a `tools` key): as is, unparsed.
      if (!ctx.expectsLists && !mayNameTools(event.data!)) return null;
      let message: unknown;
      try {
        message = JSON.parse(event.data!);
      } catch {
        return null; // no client can read it as a message either
      }
      return rewriterOf(ctx)
        .rewrite(message)
        .then((rewritten) => (rewritten === null ? null : formatSseEvent({ id: event.id, retry: event.retry, data: JSON.stringify(rewritten) })));
    },
    ctx.maxBytes,
    ctx.keepAliveMs,
  );
  // The upstream failing reaches the agent as a cut stream; the agent leaving stops reading the upstream.
  source.on('error', (err) => body.destroy(err));
  body.on('close', () => source.destroy());
  source.pipe(body);
  return { statusCode: res.statusCode, headers: plainHeaders(res), body, idleTimeoutMs: ctx.streamIdleMs };
}

/**
 * Whether an event's data could hold a `tools` key: in JSON text without a
 * `\u` escape a key `tools` is spelled `"tools"` and nothing else. Without
 * either, the rewriter leaves the message alone (for a request that asked no
 * tools/list, whose ids it would also answer), and data that is not JSON is
 * left alone too: the event goes on as it was parsed, which parsing and
 * searching it would conclude at greater cost (a GET stream's notifications).
 */
function mayNameTools(data: string): boolean {
  return data.includes('"tools"') || data.includes('\\u');
}

/** A whole JSON answer (decoded): checked, filtered when it carries a tools list, sent as one Buffer. */
function json(ctx: McpHookContext, res: UpstreamResponse, raw: Buffer): HookedResponse | Promise<HookedResponse> {
  // Nothing to filter (a tools/call answer): the upstream's bytes, unparsed and unchanged.
  if (!ctx.expectsLists && passesUnchanged(raw)) return unchanged(res, raw);
  let message: unknown;
  try {
    // fetch's response.json() (what the SDK uses) strips a BOM and replaces invalid UTF-8; so does this decoder.
    message = JSON.parse(UTF8.decode(raw));
  } catch {
    throw new WardenError('upstream_unavailable', 'upstream MCP answer is not JSON', { status: 502, reason: 'upstream_bad_json' });
  }
  if (!rewriterOf(ctx).answersEveryList(message)) {
    // A JSON body is the whole answer: a tools/list it does not answer cannot be filtered or pinned.
    throw new WardenError('upstream_unavailable', 'upstream MCP answer does not answer the tools/list request', {
      status: 502,
      reason: 'upstream_unmatched_tools_list',
    });
  }
  // A message with nothing to filter costs no promise (touches() is rewrite()'s own test).
  if (!rewriterOf(ctx).touches(message)) return whole(res, Buffer.from(JSON.stringify(message), 'utf8'));
  return rewriterOf(ctx)
    .rewrite(message)
    .then((rewritten) => whole(res, Buffer.from(JSON.stringify(rewritten ?? message), 'utf8')));
}

/**
 * The upstream's own answer, read whole (`raw` is its unencoded body): its
 * headers as they are when they already say so (no Content-Encoding, one
 * Content-Length, that of `raw`), else as whole() sets them. The proxy's own
 * answer object goes back as it is when `raw` is its body: the agent then gets
 * the upstream's fields without an object of them being built (forward.ts).
 */
function unchanged(res: UpstreamResponse, raw: Buffer): HookedResponse {
  if (answerField(res, 'content-encoding') === undefined && answerField(res, 'content-length') === String(raw.length)) {
    return res.body === raw ? res : { statusCode: res.statusCode, headers: res.headers, body: raw };
  }
  return whole(res, raw);
}

/** The answer with `out` as its body, sent with the head in one write (forward.ts), not through a stream. */
function whole(res: UpstreamResponse, out: Buffer): HookedResponse {
  const headers = plainHeaders(res);
  headers['content-length'] = String(out.length);
  return { statusCode: res.statusCode, headers, body: out };
}
