/**
 * Operator API for tool pinning on the admin listener:
 * `GET /mcp/tools[?route=R]` lists pins, each with the whole pinned and
 * pending definition; `POST /mcp/tools/:route/:tool/accept?hash=H` accepts
 * the changed definition with that hash, and only it. The console and the CLI
 * (`warden mcp accept`) use `acceptToolChange` too.
 */

import { Hono } from 'hono';
import type { Logger } from '../observability/logger.js';
import type { Store } from '../store/store.js';
import { createToolPins, type AcceptRefusal, type LegacyReviewCopy, type PendingDefinition, type ToolDefinition, type ToolPinRecord } from './pinning.js';

/**
 * `s` as one POSIX shell word, for the `warden mcp accept` commands Warden prints for an operator to paste:
 * route and tool names are the upstream's and may hold `$(…)`, `;` or quotes.
 */
export const shellWord = (s: string) => (/^[\w.,:/@%+=-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** Outcome of accepting a tool definition. */
export type AcceptOutcome =
  | { status: 'accepted'; record: ToolPinRecord }
  | { status: 'nothing_to_accept'; record: ToolPinRecord }
  | { status: 'not_reviewable'; record: ToolPinRecord; reason: AcceptRefusal }
  | { status: 'unknown_tool' };

/** A pin as listed to operators. */
export interface ToolPinView extends ToolPinRecord {
  status: 'pinned' | 'changed';
  /** The definition's description (whole; as kept, for pins of an older Warden), as earlier versions listed it. */
  description?: string;
  changed?: PendingDefinition & { description?: string };
}

const descriptionOf = (side: { definition?: ToolDefinition; legacy?: LegacyReviewCopy }) => {
  const d = side.definition ? side.definition.description : side.legacy?.description;
  return typeof d === 'string' ? { description: d } : {};
};

function view(r: ToolPinRecord): ToolPinView {
  return {
    ...r,
    status: r.changed ? 'changed' : 'pinned',
    ...descriptionOf(r),
    ...(r.changed ? { changed: { ...r.changed, ...descriptionOf(r.changed) } } : {}),
  };
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
  if (result.refused) return { status: 'not_reviewable', record: result.record, reason: result.refused };
  if (!result.accepted) return { status: 'nothing_to_accept', record: result.record };
  logger?.info({ mcp: { route, tool, pinned: result.record.pinned }, ...(options.by !== undefined ? { by: options.by } : {}) }, 'mcp tool definition accepted');
  return { status: 'accepted', record: result.record };
}

/** Every pin (optionally of one route), with its status. */
export async function listToolPins(store: Store, route?: string): Promise<ToolPinView[]> {
  return (await createToolPins(store).list(route)).map(view);
}

/** One pin with its status, or null when the tool was never seen on the route. */
export async function getToolPin(store: Store, route: string, tool: string): Promise<ToolPinView | null> {
  const record = await createToolPins(store).get(route, tool);
  return record ? view(record) : null;
}

const HASH = /^[0-9a-f]{64}$/;
const NOT_REVIEWABLE: Record<AcceptRefusal, string> = {
  not_kept: 'the changed definition is too large to keep for review (recorded by its hash only): it cannot be accepted',
  legacy: 'the change was recorded by an older Warden, which kept only part of it: it is recorded whole the next time the tools are listed',
};

/** The admin app (mounted at `/` on the admin listener). */
export function createMcpAdminApp(store: Store, logger: Logger): Hono {
  const app = new Hono();
  app.get('/mcp/tools', async (c) => {
    const route = c.req.query('route');
    return c.json({ tools: await listToolPins(store, route || undefined) });
  });
  app.post('/mcp/tools/:route/:tool/accept', async (c) => {
    // `hash` (from GET /mcp/tools: `changed.hash`) names the definition reviewed: only that one is accepted,
    // never one that changed again between the review and this call.
    const hash = c.req.query('hash');
    if (hash === undefined) {
      return c.json({ code: 'bad_request', detail: 'hash is required: pass changed.hash from GET /mcp/tools, the definition you reviewed' }, 400);
    }
    if (!HASH.test(hash)) return c.json({ code: 'bad_request', detail: 'hash must be 64 lower-case hex digits' }, 400);
    const outcome = await acceptToolChange(store, c.req.param('route'), c.req.param('tool'), logger, { expectedHash: hash });
    if (outcome.status === 'unknown_tool') return c.json({ code: 'not_found', detail: 'no such pinned tool' }, 404);
    if (outcome.status === 'not_reviewable')
      return c.json({ code: 'not_reviewable', reason: outcome.reason, detail: NOT_REVIEWABLE[outcome.reason], tool: view(outcome.record) }, 409);
    if (outcome.status === 'nothing_to_accept')
      return c.json(
        {
          code: 'nothing_to_accept',
          detail: outcome.record.changed ? 'the changed definition is no longer the one with that hash' : 'the tool has no changed definition',
          tool: view(outcome.record),
        },
        409,
      );
    return c.json({ accepted: true, tool: view(outcome.record) });
  });
  return app;
}
