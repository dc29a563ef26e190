/**
 * The one place errors become responses: RFC 9457 problem+json with a stable
 * `code` (and RFC 6750 `WWW-Authenticate` on 401); on MCP routes a JSON-RPC
 * error the MCP client understands, carrying the same `code`. Every surface
 * renders here: the pipeline (`sendError`), Warden's own endpoints
 * (`problemResponse`, `createOnError`) and the raw socket of a request Node
 * could not parse (`rawProblem`).
 */

import type { ServerResponse } from 'node:http';
import type { Context } from 'hono';
import { WardenError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  code: string;
  detail: string;
  request_id?: string;
  [extra: string]: unknown;
}

const TITLES: Record<number, string> = {
  202: 'Accepted',
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  405: 'Method Not Allowed',
  413: 'Content Too Large',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/** Normalize anything thrown into a WardenError (unknown errors are internal, never exposed). */
export function asWardenError(err: unknown): WardenError {
  if (err instanceof WardenError) return err;
  return new WardenError('internal', 'internal error', { cause: err, reason: 'internal_error' });
}

/** Problem document for an error. */
export function problemOf(err: WardenError, requestId?: string): ProblemBody {
  // Extension members never replace the RFC 9457 members or the contract code.
  return {
    ...(err.expose ? err.extra : {}),
    type: `https://warden.dev/problems/${err.code}`,
    title: TITLES[err.status] ?? 'Error',
    status: err.status,
    code: err.code,
    detail: err.expose ? err.message : 'internal error',
    ...(requestId ? { request_id: requestId } : {}),
  };
}

export interface RenderOptions {
  requestId?: string;
  /** Render as a JSON-RPC error for this request id (MCP routes). */
  jsonRpc?: (err: WardenError) => { status: number; body: unknown } | null;
}

/** A rendered error answer: status, headers and body text. */
export interface RenderedProblem {
  readonly err: WardenError;
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Render `thrown` as problem+json (or JSON-RPC on MCP routes), headers included. */
export function renderProblem(thrown: unknown, options: RenderOptions = {}): RenderedProblem {
  const err = asWardenError(thrown);
  const headers: Record<string, string> = { 'cache-control': 'no-store', ...err.headers };
  if (options.requestId) headers['x-request-id'] = options.requestId;
  if (err.status === 401 && !Object.keys(headers).some((h) => h.toLowerCase() === 'www-authenticate')) {
    headers['www-authenticate'] = 'Bearer realm="warden"';
  }
  const rpc = err.status !== 401 ? options.jsonRpc?.(err) : null;
  let body: string;
  let status = err.status;
  if (rpc) {
    status = rpc.status;
    headers['content-type'] = 'application/json';
    body = JSON.stringify(rpc.body);
  } else {
    headers['content-type'] = 'application/problem+json';
    body = JSON.stringify(problemOf(err, options.requestId));
  }
  return { err, status, headers, body };
}

/** Write `err` to `res` (only if nothing was sent yet). */
export function sendError(res: ServerResponse, thrown: unknown, options: RenderOptions = {}): WardenError {
  if (res.headersSent) {
    res.destroy();
    return asWardenError(thrown);
  }
  const { err, status, headers, body } = renderProblem(thrown, options);
  headers['content-length'] = String(Buffer.byteLength(body));
  res.writeHead(status, headers);
  res.end(body);
  return err;
}

/** The error as a Web Response (Warden's own Hono endpoints). */
export function problemResponse(thrown: unknown): Response {
  const { status, headers, body } = renderProblem(thrown);
  return new Response(body, { status, headers });
}

/**
 * The `onError` of every Hono app Warden mounts: problem+json, and a log line
 * (as `<what> failed`) for errors of Warden's own (5xx) that the client
 * does not see in detail.
 */
export function createOnError(logger: Logger, what: string): (err: Error, c: Context) => Response {
  return (err) => {
    const rendered = renderProblem(err);
    if (rendered.err.status >= 500) logger.error({ err, error_code: rendered.err.code }, `${what} failed`);
    return new Response(rendered.body, { status: rendered.status, headers: rendered.headers });
  };
}

/**
 * A complete HTTP/1.1 answer for a socket whose request Node could not parse
 * (no ServerResponse exists): problem+json, then the connection closes.
 */
export function rawProblem(err: WardenError, options: RenderOptions = {}): string {
  const { status, headers, body } = renderProblem(err, options);
  let head = `HTTP/1.1 ${status} ${TITLES[status] ?? 'Error'}\r\n`;
  for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
  return `${head}content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`;
}
