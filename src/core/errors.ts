/**
 * The one error type Warden raises on purpose. Callers branch on `code`, never
 * on message text; only `http/problem.ts` (and the MCP adapter) turn it into a
 * response.
 */

/** Stable error codes of the public contract (DESIGN.md). */
export type ErrorCode =
  | 'unauthenticated'
  | 'forbidden'
  | 'approval_pending'
  | 'approval_denied'
  | 'approval_expired'
  | 'approval_mismatch'
  | 'connection_required'
  | 'bad_request'
  | 'not_found'
  | 'method_not_allowed'
  | 'payload_too_large'
  | 'headers_too_large'
  | 'rate_limited'
  | 'budget_exceeded'
  | 'upstream_unavailable'
  | 'authz_unavailable'
  | 'store_unavailable'
  | 'config_invalid'
  | 'internal';

const DEFAULT_STATUS: Record<ErrorCode, number> = {
  unauthenticated: 401,
  forbidden: 403,
  approval_pending: 202,
  approval_denied: 403,
  approval_expired: 403,
  approval_mismatch: 403,
  connection_required: 403,
  bad_request: 400,
  not_found: 404,
  method_not_allowed: 405,
  payload_too_large: 413,
  headers_too_large: 431,
  rate_limited: 429,
  budget_exceeded: 403,
  upstream_unavailable: 502,
  authz_unavailable: 503,
  store_unavailable: 503,
  config_invalid: 500,
  internal: 500,
};

export interface WardenErrorOptions {
  status?: number;
  /** Extra members of the problem document (e.g. `approval_id`, `connect_url`). */
  extra?: Record<string, unknown>;
  /** Response headers to add (e.g. `WWW-Authenticate`, `Retry-After`, `Location`). */
  headers?: Record<string, string>;
  /** Internal cause; never shown to the client. */
  cause?: unknown;
  /** Short machine-readable reason for the audit log (never secret). */
  reason?: string;
}

/** An error with a stable `code`, an HTTP `status`, and `expose = status < 500`. */
export class WardenError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly expose: boolean;
  readonly extra: Record<string, unknown>;
  readonly headers: Record<string, string>;
  readonly reason: string;

  constructor(code: ErrorCode, detail: string, options: WardenErrorOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WardenError';
    this.code = code;
    this.status = options.status ?? DEFAULT_STATUS[code];
    this.expose = this.status < 500 || code === 'authz_unavailable' || code === 'store_unavailable' || code === 'upstream_unavailable';
    this.extra = options.extra ?? {};
    this.headers = options.headers ?? {};
    this.reason = options.reason ?? code;
  }
}

/** True when `err` is a WardenError with one of the given codes. */
export function isWardenError(err: unknown, ...codes: ErrorCode[]): err is WardenError {
  return err instanceof WardenError && (codes.length === 0 || codes.includes(err.code));
}
