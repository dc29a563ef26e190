/**
 * Operator API for tool pinning on the admin listener:
 * `GET /mcp/tools[?route=R]` lists pins; `POST /mcp/tools/:route/:tool/accept`
 * accepts a changed definition. The CLI (`warden mcp accept --route R
 * --tool T`) uses `acceptToolDefinition` from pinning.ts.
 */

import { Hono } from 'hono';
import type { Logger } from '../observability/logger.js';
import type { Store } from '../store/store.js';
import { createToolPins, type ToolPinRecord } from './pinning.js';

/** Outcome of accepting a tool definition. */
export type AcceptOutcome = { status: 'accepted'; record: ToolPinRecord } | { status: 'nothing_to_accept'; record: ToolPinRecord } | { status: 'unknown_tool' };

/** A pin as listed to operators. */
export interface ToolPinView extends ToolPinRecord {
  status: 'pinned' | 'changed';
}

/**
 * Accept the pending definition of `tool` on `route`, saying why when nothing was accepted. With
 * `expectedHash` only that definition is accepted (the one the operator reviewed); `by` is logged.
 */
export async function acceptToolChange(
  store: Store,
  route: string,
  tool: string,
  logger?: Logger,
  options: { expectedHash?: string; by?: string } = {},
): Promise<AcceptOutcome> {
  const result = await createToolPins(store).accept(route, tool, options.expectedHash);
  if (!result) return { status: 'unknown_tool' };
  if (!result.accepted) return { status: 'nothing_to_accept', record: result.record };
  logger?.info({ mcp: { route, tool, pinned: result.record.pinned }, ...(options.by !== undefined ? { by: options.by } : {}) }, 'mcp tool definition accepted');
  return { status: 'accepted', record: result.record };
}

/** Every pin (optionally of one route), with its status. */
export async function listToolPins(store: Store, route?: string): Promise<ToolPinView[]> {
  const records = await createToolPins(store).list(route);
  return records.map((r) => ({ ...r, status: r.changed ? 'changed' : 'pinned' }));
}

/** The admin app (mounted at `/` on the admin listener). */
export function createMcpAdminApp(store: Store, logger: Logger): Hono {
  const app = new Hono();
  app.get('/mcp/tools', async (c) => {
    const route = c.req.query('route');
    return c.json({ tools: await listToolPins(store, route || undefined) });
  });
  app.post('/mcp/tools/:route/:tool/accept', async (c) => {
    const outcome = await acceptToolChange(store, c.req.param('route'), c.req.param('tool'), logger);
    if (outcome.status === 'unknown_tool') return c.json({ code: 'not_found', detail: 'no such pinned tool' }, 404);
    if (outcome.status === 'nothing_to_accept')
      return c.json({ code: 'nothing_to_accept', detail: 'the tool has no changed definition', tool: outcome.record }, 409);
    return c.json({ accepted: true, tool: outcome.record });
  });
  return app;
}
