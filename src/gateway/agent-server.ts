/**
 * The agent-facing HTTP listener. Raw requests are prechecked and
 * canonicalized here; `/.warden/*` and `/.well-known/*` go to Warden's own
 * endpoints (Hono), everything else through the pipeline to an upstream.
 */

import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import type { Hono } from 'hono';
import { canonicalize, type CanonicalTarget } from '../pipeline/canonical.js';
import { holdBody, releaseBody } from '../http/continue.js';
import { precheck } from '../http/prechecks.js';
import { rawProblem, sendError } from '../http/problem.js';
import { WardenError } from '../core/errors.js';
import type { Pipeline } from '../pipeline/pipeline.js';

/** What the listener needs from the current config generation. */
export interface Generation {
  readonly pipeline: Pipeline;
  readonly app: Hono;
  /** Incremented/decremented around every request (drain on reload and shutdown). */
  inflight: number;
}

export interface AgentServerOptions {
  headerBytes: number;
  clientTimeoutMs: number;
  /** server.limits.keep_alive_timeout (default 5 s). */
  keepAliveTimeoutMs?: number;
  current(): Generation | null;
  onError(err: unknown): void;
  /**
   * A request refused before it could be canonicalized (ambiguous target or
   * headers, or a message the HTTP parser rejects): often a probe, so it gets a
   * request id, an audit line and a metric like any other request.
   */
  onRefused?(refusal: Refusal): void;
}

/** What is known about a request refused before the pipeline. */
export interface Refusal {
  requestId: string;
  status: number;
  code: string;
  reason: string;
  method?: string;
  clientIp: string;
}

function clientIp(req: IncomingMessage): string {
  return req.socket.remoteAddress ?? '';
}

/** Create (not listen) the agent listener. */
/** The agent listener, and the start of its drain. */
export interface AgentServer extends Server {
  /**
   * Shutdown began: answers whose head is not written yet (in flight now, or
   * requests still arriving on kept-alive connections) say `Connection: close`
   * and their connection closes after them, and connections that fall idle are
   * closed as they do, so a client does not send its next request on a
   * connection the drain would cut at `shutdown_timeout`. Stops with close().
   */
  drain(): void;
}

/** How often a draining listener closes the connections that fell idle. */
const DRAIN_IDLE_CHECK_MS = 100;

export function createAgentServer(options: AgentServerOptions): AgentServer {
  const honoListeners = new WeakMap<Hono, ReturnType<typeof getRequestListener>>();
  const honoFor = (app: Hono) => {
    let l = honoListeners.get(app);
    if (!l) honoListeners.set(app, (l = getRequestListener(app.fetch)));
    return l;
  };

  // The in-flight release of the current generation, made once per generation rather than once per request.
  let doneGen: Generation | null = null;
  let doneFn = () => {};
  const doneOf = (gen: Generation): (() => void) => {
    if (gen !== doneGen) {
      doneGen = gen;
      doneFn = () => {
        gen.inflight--;
      };
    }
    return doneFn;
  };

  /**
   * Refuse a request before the pipeline, and close its connection (the rest of the stream can't be trusted):
   * a fresh request id (nothing in the message, its X-Request-Id included, is echoed), an audit line, a metric.
   */
  const refuse = (req: IncomingMessage, res: ServerResponse, err: unknown): void => {
    const requestId = randomUUID();
    res.setHeader('connection', 'close');
    const sent = sendError(res, err, { requestId });
    options.onRefused?.({ requestId, status: sent.status, code: sent.code, reason: sent.reason, method: req.method, clientIp: clientIp(req) });
    req.resume();
  };

  let draining = false;
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    // A request arriving on a kept-alive connection while draining: answered, then its connection closes.
    if (draining) res.shouldKeepAlive = false;
    const gen = options.current();
    if (!gen) {
      sendError(res, new WardenError('store_unavailable', 'Warden is starting', { status: 503, headers: { 'Retry-After': '1' } }));
      return;
    }
    gen.inflight++;
    const done = doneOf(gen);
    let target: CanonicalTarget;
    try {
      precheck(req);
      target = canonicalize(req.url ?? '');
    } catch (err) {
      refuse(req, res, err);
      done();
      return;
    }
    if (target.path.startsWith('/.warden/') || target.path.startsWith('/.well-known/') || target.path === '/.warden') {
      // Hono sees exactly the canonical target, never the raw one.
      req.url = target.query ? `${target.path}?${target.query}` : target.path;
      // Warden's own endpoints read their bodies through Hono: a waiting client may send at once.
      releaseBody(req);
      honoFor(gen.app)(req, res).catch(options.onError).finally(done);
      return;
    }
    // done() runs once the response has been sent (or cut) and audited, so
    // the in-flight count needs no per-request listener.
    try {
      gen.pipeline.handle(req, res, target, clientIp(req), done);
    } catch (err) {
      options.onError(err);
      if (!res.headersSent) sendError(res, err);
      done();
    }
  };

  const server = createServer(
    {
      maxHeaderSize: options.headerBytes,
      requestTimeout: options.clientTimeoutMs,
      headersTimeout: Math.min(options.clientTimeoutMs, 60_000),
      keepAliveTimeout: options.keepAliveTimeoutMs ?? 5_000,
      // How often Node enforces requestTimeout/headersTimeout on slow clients.
      connectionsCheckingInterval: Math.max(250, Math.min(options.clientTimeoutMs / 4, 5_000)),
      // Duplicate and obs-folded headers are refused by precheck/llhttp rather than merged.
      joinDuplicateHeaders: false,
      requireHostHeader: true,
    },
    onRequest,
  );
  // Expect: 100-continue (HTTP/1.1): Continue is sent when the body is first read (http/continue.ts), not before the head's checks.
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    holdBody(req, res);
    onRequest(req, res);
  });
  // Any other expectation (HTTP/1.1) cannot be met: 417, in Warden's problem format, audited like every refusal.
  server.on('checkExpectation', (req: IncomingMessage, res: ServerResponse) =>
    refuse(req, res, new WardenError('bad_request', 'the only expectation Warden meets is 100-continue', { status: 417, reason: 'expectation_unsupported' })),
  );
  server.on('clientError', (err: NodeJS.ErrnoException, socket) => {
    if (!socket.writable) return socket.destroy();
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const code = status === 431 ? 'headers_too_large' : 'bad_request';
    const requestId = randomUUID();
    socket.end(rawProblem(new WardenError(code, 'malformed or oversized HTTP request', { status }), { requestId }));
    const parserCode = typeof err.code === 'string' && /^[A-Z_]{1,40}$/.test(err.code) ? err.code.toLowerCase() : 'parse_error';
    options.onRefused?.({ requestId, status, code, reason: `http_${parserCode}`, clientIp: (socket as { remoteAddress?: string }).remoteAddress ?? '' });
  });

  // Open connections (a Set entry per connection, nothing per request): the drain reaches the answers in flight on them.
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  let idleCheck: NodeJS.Timeout | undefined;
  server.once('close', () => clearInterval(idleCheck));
  return Object.assign(server, {
    drain() {
      if (draining) return;
      draining = true;
      for (const socket of sockets) {
        // The answer in flight on this connection (Node's own link from socket to response).
        const res = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
        if (res && !res.headersSent) res.shouldKeepAlive = false;
      }
      // An answer whose head already said keep-alive (a stream): its connection is closed once it falls idle.
      idleCheck = setInterval(() => server.closeIdleConnections(), DRAIN_IDLE_CHECK_MS);
      idleCheck.unref();
    },
  });
}
