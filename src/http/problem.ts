/**
 * The one place errors become responses: RFC 9457 problem+json with a stable
 * `code` (and RFC 6750 `WWW-Authenticate` on 401); on MCP routes a JSON-RPC
 * error the MCP client understands, carrying the same `code`.
 */

import type { ServerResponse } from 'node:http';
import { WardenError } from '../core/errors.js';

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

/** Write `err` to `res` (only if nothing was sent yet). */
export function sendError(res: ServerResponse, thrown: unknown, options: RenderOptions = {}): WardenError {
  const err = asWardenError(thrown);
  if (res.headersSent) {
    res.destroy();
    return err;
  }
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
  headers['content-length'] = String(Buffer.byteLength(body));
  res.writeHead(status, headers);
  res.end(body);
  return err;
}
