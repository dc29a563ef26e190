/** Errors on MCP routes are rendered by the MCP module as JSON-RPC; this is the pipeline's hook. */

export { mcpJsonRpcError as jsonRpcErrorFor } from '../mcp/errors.js';
