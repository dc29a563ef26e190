/**
 * Forwarding: one undici Pool per upstream origin with keep-alive; bodies stream
 * both ways (SSE flows event by event); redirects are not followed; nothing is
 * retried (an approved or non-idempotent request must run at most once).
 * The only module that imports undici.
 */

import { createHash, type Hash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import type { Dispatcher } from 'undici';
import { Pool, errors as undiciErrors } from './undici-pool.js';
import { WardenError } from '../core/errors.js';
import { releaseBody } from '../http/continue.js';
import { Deadlines, NOT_WAITING, type Deadline } from './deadlines.js';
import {
  ANSWER_SANDBOX,
  downstreamHeaders,
  downstreamRawHeaders,
  fieldOf,
  fieldsObject,
  hookedFields,
  parseHookedHeaders,
  upstreamHeaders,
  type ForwardingInfo,
} from './headers.js';
import type { TrustedProxies } from './trust.js';

/** What the upstream answered, as the proxy hands it to a response hook. */
export interface UpstreamResponse {
  statusCode: number;
  /** The fields the agent gets (lower-case names). The proxy builds this object when it is first read. */
  readonly headers: Record<string, string | string[]>;
  /** The whole body when `responseBuffer` asked for it, else a stream. */
  body: Readable | Buffer;
  /**
   * `headers[name]` without building `headers` (lower-case name), when the
   * proxy offers it. A hook that returns this very response, its fields never
   * read as `headers`, has the agent get the upstream's fields as they came
   * (in one flat list, as the relay sends them).
   */
  field?(name: string): string | string[] | undefined;
}

/** A bound on an upstream answer the proxy reads whole for the response hook, and the error when it is passed. */
export interface ResponseBuffer {
  maxBytes: number;
  tooLarge: () => Error;
}

/**
 * What a response hook hands back: the answer as it goes to the agent. A
 * Buffer body (an answer the hook read whole and rewrote) is sent with the
 * head in one write; a stream is piped.
 */
export interface HookedResponse {
  statusCode: number;
  headers: Record<string, string | string[]>;
  body: Readable | Buffer;
  /**
   * A stream meant to stay open while its upstream is silent (an MCP GET
   * stream): from now on the upstream may be silent this long (instead of the
   * route's timeout), and then the stream ends for the agent as a normal end,
   * not a cut, which clients answer by reconnecting.
   */
  idleTimeoutMs?: number;
}

/**
 * What the proxy reads of a request (the pipeline's request state satisfies
 * it): never identity or policy, only what shapes the upstream request and
 * how its answer is relayed. `status` is written back for the audit line.
 */
export interface ForwardRequest {
  readonly id: string;
  readonly method: string;
  /** The buffered (possibly rewritten) body; undefined streams the agent's body. */
  readonly body?: Buffer;
  /** Headers stages add for the upstream (credentials). */
  readonly upstreamHeaders: ReadonlyArray<[string, string]>;
  /** `Authorization` for the upstream, if a stage chose one. */
  readonly upstreamAuthorization?: string;
  /** When set, only these inbound headers (lower case) are forwarded. */
  readonly forwardOnlyHeaders?: ReadonlySet<string>;
  /** Lower-case names of the route's identity assertion headers: never taken from the agent, never passed back to it. */
  readonly assertionHeaders?: ReadonlySet<string>;
  /** Header lines (name, value…) added to the upstream's answer, after its own fields of the same name (never replacing them). */
  readonly responseHeaders?: readonly string[];
  /**
   * Called with the upstream response before it is sent on (MCP tools/list
   * filtering, tool pinning). Must stream; may replace the body. May answer
   * synchronously (a Buffer answer with nothing to rewrite: no promise).
   */
  readonly responseHook?: (res: UpstreamResponse) => HookedResponse | Promise<HookedResponse>;
  /**
   * Called with the upstream's status and headers before anything is sent to
   * the agent. A returned promise holds the response until it settles; a
   * rejection fails the request (nothing was sent). Never touches the body.
   */
  readonly responseHead?: (statusCode: number, header: (name: string) => string | undefined) => Promise<void> | void;
  /**
   * Asked (after responseHead) with the upstream's status and headers of a
   * hooked request: a bound when the hook wants the whole body as a Buffer
   * (read by the proxy, no stream), undefined to get a stream.
   */
  readonly responseBuffer?: (statusCode: number, header: (name: string) => string | undefined) => ResponseBuffer | undefined;
  /** Status sent to the agent. */
  status?: number;
  /** Set by the proxy when the answer did not reach the agent whole (see Cut). */
  cut?: Cut;
  /** performance.now() when the upstream's final status line arrived (upstream latency metric). */
  upstreamHeadersAt?: number;
  /** Set by the proxy when `digestBodies` is on: the SHA-256 of the streamed body (decision log). */
  streamedBody?: Hash;
}

/**
 * Why an answer did not reach the agent whole, once forwarding began:
 * `agent`, it closed the connection first (before the answer or during it);
 * `upstream`, the upstream failed, broke off or went silent after the answer
 * had begun (so the agent saw a cut, not an error answer). The audit line says
 * so: the status alone reads like a success.
 */
export type Cut = 'agent' | 'upstream';

export interface ProxyOptions {
  trusted: TrustedProxies;
  bodyLimit: number;
  /**
   * Max connections per upstream origin (server.limits.upstream_connections);
   * undefined: no limit. A cap is shared by short requests and held streams:
   * with 256 (the old fixed cap) the 257th open MCP GET stream, and every
   * request to that origin after it, waited until its timeout.
   */
  connections?: number;
  /** Hash streamed request bodies into `state.streamedBody` (the decision log records the digest, never the body). */
  digestBodies?: boolean;
}

export interface UpstreamTarget {
  origin: string;
  /** Host header for the upstream. */
  host: string;
  /** Path and query as sent upstream. */
  path: string;
  timeoutMs: number;
  /** The route's static `upstream.headers`. */
  headers?: ReadonlyArray<[string, string]>;
  /** Their lower-case names (headers.ts headerNames), computed once per route. */
  headerNames?: ReadonlySet<string>;
}

export interface Proxy {
  /**
   * Send the request upstream and its answer to the agent. `done` is called
   * once: with no argument when the agent's response is complete or cut (the
   * upstream failed after the response began), or with a WardenError when
   * nothing was sent and the caller must answer. Throws synchronously only
   * for a request that is refused before anything is sent (body too large).
   */
  forward(
    state: ForwardRequest,
    req: IncomingMessage,
    res: ServerResponse,
    target: UpstreamTarget,
    info: ForwardingInfo,
    done: (err?: WardenError) => void,
  ): void;
  close(): Promise<void>;
}

/** Counts body bytes and fails once the limit is passed (for bodies without Content-Length). */
class BodyLimit extends Transform {
  private seen = 0;
  constructor(
    private readonly limit: number,
    private readonly digest?: Hash,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback) {
    this.seen += chunk.length;
    this.digest?.update(chunk);
    if (this.seen > this.limit) done(new WardenError('payload_too_large', `request body exceeds ${this.limit} bytes`));
    else done(null, chunk);
  }
}

function hasBody(req: IncomingMessage): boolean {
  const cl = req.headers['content-length'];
  return (cl !== undefined && cl !== '0') || req.headers['transfer-encoding'] !== undefined;
}

/** The 504 of an upstream silent for `timeoutMs`: before its head (`upstream_timeout`) or between body chunks. */
function upstreamTimeout(timeoutMs: number, afterHead: boolean, cause?: unknown): WardenError {
  return new WardenError('upstream_unavailable', `the upstream did not answer within ${timeoutMs} ms`, {
    status: 504,
    cause,
    reason: afterHead ? 'upstream_body_timeout' : 'upstream_timeout',
  });
}

function mapError(err: unknown, timeoutMs: number): WardenError {
  if (err instanceof WardenError) return err;
  // Undici's own timeouts: only connecting (headers and body are Warden's Deadlines).
  if (err instanceof undiciErrors.ConnectTimeoutError) return upstreamTimeout(timeoutMs, false, err);
  const code = (err as { code?: string })?.code;
  return new WardenError('upstream_unavailable', 'the upstream could not be reached', {
    status: 502,
    cause: err,
    reason: code ? `upstream_${code}` : 'upstream_error',
  });
}

/** One upstream origin's pool and the Host undici writes for it by itself. */
interface Upstream {
  pool: Pool;
  host: string;
}

/** Create the proxy; pools live in this closure and close with it. */
export function createProxy(options: ProxyOptions): Proxy {
  const pools = new Map<string, Upstream>();
  const deadlines = new Deadlines(DEADLINE_TICK_MS);
  const upstreamFor = (origin: string): Upstream => {
    let upstream = pools.get(origin);
    if (!upstream) {
      const pool = new Pool(origin, {
        // null: undici opens a connection per request in flight (and keeps idle ones for reuse).
        connections: options.connections ?? null,
        keepAliveTimeout: 4_000,
        keepAliveMaxTimeout: 60_000,
        connect: { timeout: 5_000 },
      });
      // What undici writes as Host for a request without one: its origin's `host[:port]` (client.js, kHostHeader).
      const url = new URL(origin);
      upstream = { pool, host: url.port ? `${url.hostname}:${url.port}` : url.hostname };
      pools.set(origin, upstream);
    }
    return upstream;
  };

  return {
    forward(state, req, res, target, info, done) {
      let body: Buffer | Readable | null = null;
      if (state.body !== undefined) body = state.body;
      else if (hasBody(req)) {
        const cl = Number(req.headers['content-length']);
        if (Number.isFinite(cl) && cl > options.bodyLimit) throw new WardenError('payload_too_large', `request body exceeds ${options.bodyLimit} bytes`);
        releaseBody(req);
        body = req.pipe(new BodyLimit(options.bodyLimit, options.digestBodies ? (state.streamedBody = createHash('sha256')) : undefined));
      }
      const upstream = upstreamFor(target.origin);
      const headers = upstreamHeaders(req.rawHeaders, info, options.trusted, state.upstreamHeaders, {
        routeHeaders: target.headers,
        routeHeaderNames: target.headerNames,
        authorization: state.upstreamAuthorization,
        only: state.forwardOnlyHeaders,
        reserved: state.assertionHeaders,
        clientHost: upstream.host,
      });
      if (state.body !== undefined) fixContentLength(headers, state.body.length);

      // Both handlers keep Warden's own deadlines (see Deadlines): undici arms no timer.
      const request = {
        method: state.method as 'GET',
        path: target.path,
        headers,
        body,
        headersTimeout: 0,
        bodyTimeout: 0,
      };
      if (!state.responseHook) {
        // Fast path: a dispatch handler writes the upstream response straight into the agent's.
        upstream.pool.dispatch(request, new Relay(state, res, target.timeoutMs, done, deadlines));
        return;
      }
      // The agent left while the request was being decided: nothing is sent upstream (see Relay).
      if (res.closed || res.destroyed) return done();
      upstream.pool.dispatch(request, new HookedExchange(state, res, target.timeoutMs, done, deadlines));
    },
    async close() {
      await Promise.all([...pools.values()].map(({ pool }) => pool.close().catch(() => pool.destroy())));
      pools.clear();
      deadlines.stop();
    },
  };
}

/**
 * undici's dispatch handler for a hooked request (MCP; a sibling of Relay, in
 * place of pool.request's handler, body stream and promise machinery). On the
 * head it runs `state.responseHead` (holding the upstream while that settles),
 * then either reads the whole body into one Buffer, bounded, when
 * `state.responseBuffer` asks for it (an MCP JSON answer), or feeds a Readable
 * with backpressure (SSE and everything else); either goes through
 * `state.responseHook` and on to the agent. A hook that answers synchronously
 * (a Buffer with nothing to rewrite) costs no promise: head and body go out in
 * one write from onComplete. `done` is called once: with a WardenError when the
 * exchange failed before anything was sent, else with nothing once the agent's
 * response closed (sent or cut). The agent leaving aborts the upstream request.
 * Timeouts are Warden's Deadlines, as for Relay: the upstream's silence counts
 * from dispatch to the head and between body chunks, never while a head hook
 * holds it or the hook's stream is not being read. A stream the hook marks as
 * held (HookedResponse.idleTimeoutMs: an MCP GET stream) counts its silence
 * against that bound instead, and reaching it ends the stream, not fails it.
 */
class HookedExchange implements Dispatcher.DispatchHandler, Deadline {
  private abort: ((err?: Error) => void) | null = null;
  /** True once the answer is a held stream (HookedResponse.idleTimeoutMs): its silence ends it quietly. */
  private idle = false;
  /** True once a held stream's silence ended it: the upstream's abort ends the agent's stream normally. */
  private idleEnded = false;
  /** The tick at which the upstream's current wait began (NOT_WAITING while the wait is not its fault). */
  armedAt: number;
  private timedOut: WardenError | null = null;
  private resume: (() => void) | null = null;
  private gone = false;
  private settled = false;
  /** True once the answer went to the response hook (failures then reach the agent as a cut). */
  private delivered = false;
  /** True once undici is done with the request (completed or failed). */
  private ended = false;
  private statusCode = 0;
  /**
   * The upstream's fields the agent gets, as a flat list (hookedFields), or
   * null when the head took the two-step path or the hook read them as an
   * object (`headers`, then the truth); and the lines they leave out (name, value…).
   */
  private kept: string[] | null = null;
  private headers: Record<string, string | string[]> | null = null;
  private dropped: string[] = [];
  /** The answer handed to the response hook (its `headers` built on first read). */
  private answer: HookedAnswer | null = null;
  /** Buffer mode: the chunks so far, their size and the bound. */
  private chunks: Buffer[] | null = null;
  private size = 0;
  private limit = 0;
  private tooLarge: (() => Error) | null = null;
  /** Stream mode: the body handed to the hook. */
  private body: Readable | null = null;

  constructor(
    private readonly state: ForwardRequest,
    private readonly res: ServerResponse,
    public timeoutMs: number,
    private readonly done: (err?: WardenError) => void,
    private readonly deadlines: Deadlines,
  ) {
    this.armedAt = deadlines.tick;
    deadlines.add(this);
    // 'close' is emitted once: no `once` wrapper.
    res.on('close', this.onClose);
  }

  /**
   * Called by Deadlines when the upstream has been silent for the timeout. A
   * request still waiting for a connection (server.limits.upstream_connections)
   * has no abort yet: the agent is answered now, and onConnect aborts it later.
   */
  timeOut(): void {
    this.deadlines.delete(this);
    if (this.idle) {
      // A held stream quiet for its whole idle time: it ends (onError ends the agent's stream).
      this.idleEnded = true;
      this.abort?.(new undiciErrors.RequestAbortedError());
      return;
    }
    this.timedOut = upstreamTimeout(this.timeoutMs, this.statusCode !== 0);
    if (this.abort) this.abort(this.timedOut);
    else this.settle(this.timedOut);
  }

  /**
   * The agent's response closed: sent, or cut (the upstream is stopped). While
   * undici is still busy and nothing was handed on, its onError (the abort)
   * settles the exchange instead, with the error (as a failed upstream would).
   */
  private readonly onClose = () => {
    if (!this.res.writableFinished) {
      this.gone = true;
      this.state.cut ??= 'agent';
      this.abort?.(new undiciErrors.RequestAbortedError());
      if (!this.ended && !this.delivered) return;
    }
    this.settle();
  };

  private settle(err?: WardenError): void {
    if (this.settled) return;
    this.settled = true;
    this.deadlines.delete(this);
    this.done(err);
  }

  /** The exchange failed: before anything was sent the caller answers; once the response began the agent sees a cut. */
  private fail(err: unknown): void {
    const res = this.res;
    if (res.headersSent) {
      if (!this.gone) this.state.cut ??= 'upstream';
      if (!res.destroyed) res.destroy();
      return; // settled by onClose
    }
    // A body-limit failure surfaces as the request body stream's error.
    const cause = (err as { cause?: unknown })?.cause;
    this.settle(cause instanceof WardenError ? cause : mapError(err, this.timeoutMs));
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.gone) abort(new undiciErrors.RequestAbortedError());
    else if (this.timedOut) abort(this.timedOut);
    else this.abort = abort;
  }

  onHeaders(statusCode: number, raw: Buffer[] | string[] | null, resume: () => void): boolean {
    // Interim responses (100 Continue, 103 Early Hints) are not passed on: the final one follows.
    if (statusCode < 200) {
      this.armedAt = this.deadlines.tick;
      return true;
    }
    this.state.upstreamHeadersAt = performance.now();
    this.resume = resume;
    this.statusCode = statusCode;
    const fields = raw ?? [];
    const hidden = this.state.assertionHeaders;
    // One pass into a flat list for most heads; the rest are parsed whole, then filtered (an object).
    const kept: string[] = [];
    if (hookedFields(fields, hidden, kept, this.dropped)) this.kept = kept;
    else {
      const parsed = parseHookedHeaders(fields);
      const headers = (this.headers = downstreamHeaders(parsed, hidden));
      this.dropped = [];
      for (const name in parsed) {
        const v = parsed[name];
        if (!Object.hasOwn(headers, name)) for (const one of Array.isArray(v) ? v : [v]) this.dropped.push(name, one);
      }
    }
    let head: Promise<void> | void;
    try {
      head = this.state.responseHead?.(statusCode, this.header);
    } catch (err) {
      this.abort?.(err as Error);
      return false;
    }
    if (head) {
      // Hold the upstream (parser paused) until the hook is done: Warden's wait, not the upstream's silence.
      this.armedAt = NOT_WAITING;
      head.then(
        () => {
          if (this.ended || this.gone) return;
          this.armedAt = this.deadlines.tick;
          this.begin();
          resume();
        },
        (err: unknown) => this.abort?.(err instanceof Error ? err : new Error(String(err))),
      );
      return false;
    }
    this.armedAt = this.deadlines.tick;
    this.begin();
    return true;
  }

  /** First value of an upstream response header (lower case name): a field the agent gets, else a line left out. */
  private readonly header = (name: string): string | undefined => {
    const v = this.field(name);
    if (v !== undefined) return Array.isArray(v) ? v[0] : v;
    const dropped = this.dropped;
    for (let i = 0; i < dropped.length; i += 2) if (dropped[i] === name) return dropped[i + 1];
    return undefined;
  };

  /** `fields()[name]`: from the flat list while there is one. */
  field(name: string): string | string[] | undefined {
    return this.kept !== null ? fieldOf(this.kept, name) : this.headers![name];
  }

  /** The fields the agent gets as an object, built once; from then on the object is the truth (a hook may change it). */
  fields(): Record<string, string | string[]> {
    if (this.headers === null) {
      this.headers = fieldsObject(this.kept!);
      this.kept = null;
    }
    return this.headers;
  }

  /** After the head hook: choose buffer or stream mode; a stream goes to the response hook now. */
  private begin(): void {
    const limit = this.state.responseBuffer?.(this.statusCode, this.header);
    if (limit !== undefined) {
      this.chunks = [];
      this.limit = limit.maxBytes;
      this.tooLarge = limit.tooLarge;
      return;
    }
    this.body = new Readable({
      read: () => {
        // The hook reads again: the upstream is waited on again.
        this.armedAt = this.deadlines.tick;
        this.resume?.();
      },
      destroy: (err, cb) => {
        // The consumer stopped reading (the agent left, the hook gave up): stop the upstream.
        if (!this.ended) this.abort?.(err ?? new undiciErrors.RequestAbortedError());
        cb(err);
      },
    });
    // A failure before the hook listens must not be an uncaught 'error': send() reports it instead.
    this.body.on('error', ignore);
    this.deliver(this.body);
  }

  /** Hand the answer to the response hook, then send what it returns (at once when it answers synchronously). */
  private deliver(body: Readable | Buffer): void {
    this.delivered = true;
    const answer = (this.answer = new HookedAnswer(this, this.statusCode, body));
    let out: HookedResponse | Promise<HookedResponse>;
    try {
      out = this.state.responseHook!(answer);
    } catch (err) {
      this.fail(err);
      return;
    }
    if (out instanceof Promise)
      out.then(
        (response) => this.send(response),
        (err: unknown) => this.fail(err),
      );
    else this.send(out);
  }

  private send(response: HookedResponse): void {
    const res = this.res;
    if (this.gone || res.destroyed) {
      // The agent left while the hook worked: nobody reads the answer.
      if (!Buffer.isBuffer(response.body)) response.body.destroy();
      this.settle();
      return;
    }
    if (!Buffer.isBuffer(response.body) && response.body.destroyed) {
      // The stream failed (the upstream timed out or broke) before the hook handed it back: nothing was sent yet.
      this.fail(response.body.errored ?? new undiciErrors.RequestAbortedError());
      return;
    }
    this.state.status = response.statusCode;
    try {
      if (response === this.answer && this.kept !== null && Buffer.isBuffer(response.body)) {
        // The upstream's answer as it came, its fields never read as an object: the flat list, as the relay sends it.
        res.writeHead(response.statusCode, relayedFields(this.kept, this.state.id, this.state.responseHeaders));
      } else {
        response.headers['x-request-id'] = this.state.id;
        addResponseHeaders(response.headers, ANSWER_SANDBOX);
        addResponseHeaders(response.headers, this.state.responseHeaders);
        res.writeHead(response.statusCode, response.headers);
      }
    } catch (err) {
      if (!Buffer.isBuffer(response.body)) response.body.destroy();
      this.fail(err);
      return;
    }
    // A Buffer goes with the head in one write; the response's 'close' settles (onClose).
    if (Buffer.isBuffer(response.body)) res.end(response.body);
    else {
      if (response.idleTimeoutMs !== undefined && !this.ended) {
        this.idle = true;
        this.timeoutMs = response.idleTimeoutMs;
        this.deadlines.retimed(this);
      }
      if (isEventStream(response.headers)) res.flushHeaders();
      pipeTo(response.body, res, this.state);
    }
  }

  onData(chunk: Buffer): boolean {
    const chunks = this.chunks;
    if (chunks !== null) {
      this.size += chunk.length;
      if (this.size > this.limit) {
        this.chunks = null;
        this.abort?.(this.tooLarge!());
        return false;
      }
      chunks.push(chunk);
      this.armedAt = this.deadlines.tick;
      return true;
    }
    if (this.body!.push(chunk)) {
      this.armedAt = this.deadlines.tick;
      return true;
    }
    // Backpressure: the hook's stream is full until it reads (read() re-arms).
    this.armedAt = NOT_WAITING;
    return false;
  }

  onComplete(): void {
    this.ended = true;
    this.deadlines.delete(this);
    const chunks = this.chunks;
    if (chunks !== null) {
      this.chunks = null;
      this.deliver(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, this.size));
    } else this.body?.push(null);
  }

  onError(err: Error): void {
    this.ended = true;
    this.deadlines.delete(this);
    this.chunks = null;
    if (this.body !== null) {
      // A held stream ended for its silence: the agent's stream ends as the upstream's would have.
      if (this.idleEnded && !this.gone) {
        if (!this.body.destroyed) this.body.push(null);
        return;
      }
      // The hook has the stream: the failure reaches it (and the agent) through the stream.
      // When the agent left, nobody reads it any more: it just ends (no 'error' nobody listens to).
      if (!this.body.destroyed) this.body.destroy(this.gone ? undefined : err);
      return;
    }
    // Already answered (timed out waiting for a connection) or the agent's response closed: nothing more to say.
    if (this.settled) return;
    this.fail(err);
  }
}

function ignore(): void {}

/**
 * The upstream's answer as a hooked exchange hands it to the response hook:
 * `headers` is built when first read (a class getter, which costs what a
 * field read does once optimized; an accessor on an object literal does not),
 * `field` reads one field without it.
 */
class HookedAnswer implements UpstreamResponse {
  constructor(
    private readonly exchange: HookedExchange,
    readonly statusCode: number,
    readonly body: Readable | Buffer,
  ) {}

  get headers(): Record<string, string | string[]> {
    return this.exchange.fields();
  }

  field(name: string): string | string[] | undefined {
    return this.exchange.field(name);
  }
}

/**
 * The flat list for `writeHead` of an answer sent with the upstream's fields:
 * its `x-request-id` lines replaced by Warden's, then Warden's own lines
 * (the sandbox, then the stages': after the upstream's of the same name, as
 * addResponseHeaders places them).
 */
function relayedFields(kept: readonly string[], requestId: string, extra: readonly string[] | undefined): string[] {
  const out: string[] = [];
  for (let i = 0; i < kept.length; i += 2) if (kept[i] !== 'x-request-id') out.push(kept[i], kept[i + 1]);
  out.push('x-request-id', requestId, ANSWER_SANDBOX[0], ANSWER_SANDBOX[1]);
  if (extra) for (let i = 0; i < extra.length; i++) out.push(extra[i]);
  return out;
}

/**
 * `src.pipe(dst)` for a hooked answer: a failing source cuts the agent's
 * response, the agent leaving stops the source. (stream.pipeline allocates an
 * AbortController per call, which showed in profiles of the MCP path.)
 */
function pipeTo(src: Readable, dst: ServerResponse, state: ForwardRequest): void {
  const onError = () => {
    state.cut ??= 'upstream';
    if (!dst.destroyed) dst.destroy();
  };
  src.on('error', onError);
  dst.once('close', () => {
    src.off('error', onError);
    if (!dst.writableFinished) src.destroy();
  });
  src.pipe(dst);
}

/** Add Warden's lines after the upstream's fields of the same name (a Structured Field list continues across lines). */
function addResponseHeaders(headers: Record<string, string | string[]>, extra: readonly string[] | undefined): void {
  if (!extra) return;
  for (let i = 0; i < extra.length; i += 2) {
    const name = extra[i].toLowerCase();
    const had = headers[name];
    headers[name] = had === undefined ? extra[i + 1] : [...(Array.isArray(had) ? had : [had]), extra[i + 1]];
  }
}

/**
 * How often relayed requests are checked against their upstream deadline
 * (deadlines.ts): a timeout fires at most two ticks (100 ms) late.
 */
const DEADLINE_TICK_MS = 50;

/**
 * undici's lowest-level handler for one forwarded request: headers, body
 * chunks and the end go straight into the agent's response, with backpressure
 * both ways and one 'close' listener that aborts the upstream request when the
 * agent goes away. No intermediate stream, AbortController or finished().
 * Settles when the agent's response closes (sent or cut), or rejects with a
 * WardenError when the upstream fails before anything was sent.
 */
class Relay implements Dispatcher.DispatchHandler, Deadline {
  private abort: ((err?: Error) => void) | null = null;
  private resume: (() => void) | null = null;
  private settled = false;
  private gone = false;
  private timedOut: WardenError | null = null;
  /** The tick at which the upstream's current wait began (NOT_WAITING while the wait is not its fault; see deadlines.ts). */
  armedAt: number;
  /** Set on the first backpressure only (most answers never wait on the agent). */
  private onDrain: (() => void) | null = null;
  /** True while the upstream is paused for the agent's socket to drain. */
  private waiting = false;
  /** Body bytes still to come when the upstream's head declared them (Content-Length), else -1. */
  private remaining = -1;
  /** True once the agent's response was ended with the body's last chunk (onData). */
  private ended = false;

  constructor(
    private readonly state: ForwardRequest,
    private readonly res: ServerResponse,
    readonly timeoutMs: number,
    private readonly done: (err?: WardenError) => void,
    private readonly deadlines: Deadlines,
  ) {
    this.armedAt = deadlines.tick;
    if (res.closed || res.destroyed) {
      // The agent left while the request was being decided (a limit, a store call,
      // an approval hold): its 'close' has passed, so nothing would ever settle
      // this exchange. Nothing is sent upstream (onConnect aborts) and it settles now.
      this.gone = true;
      state.cut = 'agent';
      this.settle();
      return;
    }
    deadlines.add(this);
    res.on('close', () => {
      if (!res.writableFinished) {
        this.gone = true;
        state.cut ??= 'agent';
        this.abort?.(new Error('the agent closed the connection'));
      }
      this.settle();
    });
  }

  private settle(err?: WardenError) {
    if (this.settled) return;
    this.settled = true;
    this.deadlines.delete(this);
    this.done(err);
  }

  /**
   * Called by Deadlines when the upstream has been silent for the timeout. A
   * request still waiting for a connection (server.limits.upstream_connections)
   * has no abort yet: the agent is answered now, and onConnect aborts it later.
   */
  timeOut(): void {
    this.deadlines.delete(this);
    this.timedOut = upstreamTimeout(this.timeoutMs, this.res.headersSent);
    if (this.abort) this.abort(this.timedOut);
    else this.settle(this.timedOut);
  }

  onConnect(abort: (err?: Error) => void): void {
    if (this.gone) abort(new Error('the agent closed the connection'));
    else if (this.timedOut) abort(this.timedOut);
    else this.abort = abort;
  }

  onHeaders(statusCode: number, raw: Buffer[] | string[] | null, resume: () => void): boolean {
    // Interim responses (100 Continue, 103 Early Hints) are not relayed: the final one follows.
    if (statusCode < 200) return true;
    this.state.upstreamHeadersAt = performance.now();
    this.resume = resume;
    const head = this.state.responseHead?.(statusCode, (name) => rawHeader(raw as Buffer[], name));
    if (head) {
      // Hold the upstream (parser paused) until the hook is done, then send the head and go on.
      this.armedAt = NOT_WAITING;
      head.then(
        () => {
          if (this.gone) return;
          this.armedAt = this.deadlines.tick;
          try {
            this.writeHead(statusCode, raw as Buffer[]);
          } catch (err) {
            this.abort?.(err as Error);
            return;
          }
          resume();
        },
        (err: unknown) => this.abort?.(err instanceof Error ? err : new Error(String(err))),
      );
      return false;
    }
    this.armedAt = this.deadlines.tick;
    this.writeHead(statusCode, raw as Buffer[]);
    return true;
  }

  private writeHead(statusCode: number, raw: Buffer[]): void {
    const { headers, eventStream, contentLength } = downstreamRawHeaders(raw, this.state.id, this.state.assertionHeaders);
    headers.push(ANSWER_SANDBOX[0], ANSWER_SANDBOX[1]);
    const extra = this.state.responseHeaders;
    if (extra) for (let i = 0; i < extra.length; i++) headers.push(extra[i]);
    this.state.status = statusCode;
    this.res.writeHead(statusCode, headers);
    this.remaining = contentLength;
    // SSE: the agent must see the headers before the first event arrives.
    if (eventStream) this.res.flushHeaders();
  }

  onData(chunk: Buffer): boolean {
    // undici hands over an empty chunk each time the parser resumes after
    // backpressure: written, it cost a corked write and an empty write(2) on
    // the agent's socket per 64 KB of a large body.
    if (chunk.length === 0) return true;
    if (this.remaining > 0 && (this.remaining -= chunk.length) === 0) {
      // The last byte the head declared: the chunk goes out with the end of the
      // response (one pass through Node's writer, no corked write and tick of
      // its own); undici's onComplete follows in the same parse.
      this.ended = true;
      this.res.end(chunk);
      return true;
    }
    if (this.res.write(chunk)) {
      this.armedAt = this.deadlines.tick;
      return true;
    }
    // Backpressure: pause the upstream parser until the agent's socket drains.
    // Waiting for the agent is not the upstream's silence. One 'drain'
    // listener for the whole answer: a large body waits on the agent every
    // 64 KB or so, and a `once` per wait cost a wrapper and a listener change each time.
    this.armedAt = NOT_WAITING;
    this.waiting = true;
    if (this.onDrain === null) {
      this.onDrain = () => {
        if (!this.waiting) return;
        this.waiting = false;
        this.armedAt = this.deadlines.tick;
        this.resume!();
      };
      this.res.on('drain', this.onDrain);
    }
    return false;
  }

  onComplete(): void {
    this.deadlines.delete(this);
    if (!this.ended) this.res.end();
  }

  onError(err: Error): void {
    // Already answered (timed out waiting for a connection) or the agent's response closed: nothing more to say.
    if (this.settled) return;
    const res = this.res;
    // Once the response has started nothing more can be said: the agent sees a cut stream.
    if (res.headersSent || this.gone) {
      if (!this.gone) this.state.cut ??= 'upstream';
      if (!res.destroyed) res.destroy();
      return;
    }
    // A body-limit failure surfaces as the request body stream's error.
    const cause = (err as { cause?: unknown })?.cause;
    this.settle(cause instanceof WardenError ? cause : mapError(err, this.timeoutMs));
  }
}

/** First value of header `name` (lower case) in undici's raw header list. */
function rawHeader(raw: Buffer[], name: string): string | undefined {
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].length === name.length && raw[i].toString('latin1').toLowerCase() === name) return raw[i + 1].toString('latin1');
  }
  return undefined;
}

function isEventStream(headers: Record<string, string | string[]>): boolean {
  const type = headers['content-type'];
  return typeof type === 'string' && type.startsWith('text/event-stream');
}

/** When Warden buffered (and possibly re-serialized) the body, its length is authoritative. */
function fixContentLength(headers: string[], length: number) {
  for (let i = 0; i < headers.length; i += 2) {
    const n = headers[i].toLowerCase();
    if (n === 'content-length') headers[i + 1] = String(length);
  }
  if (!headers.some((h, i) => i % 2 === 0 && h.toLowerCase() === 'content-length')) headers.push('content-length', String(length));
}
