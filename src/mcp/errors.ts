/**
 * How refusals reach an MCP client. The SDK client (`StreamableHTTPClientTransport`)
 * turns any non-2xx POST answer into an opaque transport error and treats 202 as
 * "no body" (a request answered 202 would hang), so a refused JSON-RPC request
 * is answered HTTP 200 with a JSON-RPC error whose `error.data.code` is the
 * Warden error code. 401 stays an HTTP 401 (the pipeline adds RFC 9728
 * `resource_metadata` so clients can discover the authorization server);
 * unknown sessions answer HTTP 404 because the MCP transport tells clients to
 * re-initialize on 404.
 */

import type { ErrorCode, WardenError } from '../core/errors.js';
import type { McpCall, RequestState } from '../pipeline/context.js';
import type { JsonRpcId } from './json-rpc.js';

/** JSON-RPC error codes Warden uses (implementation-defined range -32000..-32099, plus the standard ones). */
export const JSON_RPC_CODES = {
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  internalError: -32603,
  /** Refused by policy: forbidden, approval denied/expired/mismatch, connection required. */
  accessRefused: -32003,
  /** Held for a human; retry the same call later (`data.approval_id`). */
  approvalPending: -32004,
  unauthenticated: -32005,
  rateLimited: -32029,
  /** A dependency (upstream, OpenFGA, store) could not answer; retry later. */
  unavailable: -32050,
} as const;

const CODE_FOR: Record<ErrorCode, number> = {
  unauthenticated: JSON_RPC_CODES.unauthenticated,
  forbidden: JSON_RPC_CODES.accessRefused,
  approval_pending: JSON_RPC_CODES.approvalPending,
  approval_denied: JSON_RPC_CODES.accessRefused,
  approval_expired: JSON_RPC_CODES.accessRefused,
  approval_mismatch: JSON_RPC_CODES.accessRefused,
  connection_required: JSON_RPC_CODES.accessRefused,
  bad_request: JSON_RPC_CODES.invalidRequest,
  not_found: JSON_RPC_CODES.methodNotFound,
  method_not_allowed: JSON_RPC_CODES.methodNotFound,
  payload_too_large: JSON_RPC_CODES.invalidRequest,
  headers_too_large: JSON_RPC_CODES.invalidRequest,
  rate_limited: JSON_RPC_CODES.rateLimited,
  budget_exceeded: JSON_RPC_CODES.accessRefused,
  upstream_unavailable: JSON_RPC_CODES.unavailable,
  authz_unavailable: JSON_RPC_CODES.unavailable,
  store_unavailable: JSON_RPC_CODES.unavailable,
  config_invalid: JSON_RPC_CODES.internalError,
  internal: JSON_RPC_CODES.internalError,
};

/** The MCP-specific members a request carries besides `McpCall` (set by the MCP stage). */
export interface McpCallDetails extends McpCall {
  /** The POST body was a JSON array. */
  batch?: boolean;
  /** Ids of every request in the POST (a refusal answers each of them). */
  requestIds?: JsonRpcId[];
}

/** A JSON-RPC error response for `err`, with the Warden code (and public extras) in `error.data`. */
export function toJsonRpcError(err: WardenError, id: JsonRpcId | null | undefined): Record<string, unknown> {
  let code = CODE_FOR[err.code] ?? JSON_RPC_CODES.internalError;
  if (err.code === 'bad_request' && err.reason === 'parse_error') code = JSON_RPC_CODES.parseError;
  const data: Record<string, unknown> = { code: err.code };
  if (err.expose) {
    if (err.reason && err.reason !== err.code) data.reason = err.reason;
    Object.assign(data, err.extra);
    data.code = err.code; // extras never override the contract code
  }
  return {
    jsonrpc: '2.0',
    id: id ?? null,
    error: { code, message: err.expose ? err.message : 'internal error', data },
  };
}

/**
 * The JSON-RPC rendering of `err` for a request on an MCP route, or null when
 * there is no JSON-RPC request to answer (notifications, GET, DELETE, a body
 * that could not be parsed): the caller then renders problem+json with the
 * error's HTTP status. A batch is answered with one error per request id.
 * Signature matches `PipelineDeps.jsonRpcError`.
 */
export function mcpJsonRpcError(err: WardenError, state: RequestState): { status: number; body: unknown } | null {
  const mcp = state.mcp as McpCallDetails | undefined;
  if (!mcp || err.code === 'unauthenticated') return null;
  const ids = mcp.requestIds ?? (mcp.id !== undefined && mcp.id !== null ? [mcp.id as JsonRpcId] : []);
  if (ids.length === 0) return null;
  // Unknown session: the transport spec's 404 makes the client start a new session.
  const status = err.code === 'not_found' && err.reason === 'unknown_session' ? 404 : 200;
  return { status, body: mcp.batch ? ids.map((id) => toJsonRpcError(err, id)) : toJsonRpcError(err, ids[0]) };
}
