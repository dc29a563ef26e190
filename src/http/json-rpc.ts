/** Chooses how errors on MCP routes are rendered (JSON-RPC); delegates to the MCP module. */

import type { WardenError } from '../errors.js';
import type { RequestState } from '../pipeline/context.js';
import { toJsonRpcError } from '../mcp/errors.js';

/** JSON-RPC rendering for a request on an MCP route (null: use problem+json). */
export function jsonRpcErrorFor(err: WardenError, state: RequestState): { status: number; body: unknown } | null {
  if (!state.mcp || state.mcp.id === undefined) return null;
  return { status: 200, body: toJsonRpcError(err, state.mcp.id ?? null) };
}
