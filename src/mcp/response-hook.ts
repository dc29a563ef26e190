/**
 * The MCP response hook: binds sessions the upstream creates, forgets sessions
 * it ends, and filters tools/list answers (JSON or SSE, event by event) before
 * they reach the agent. Everything else streams through untouched.
 */

import { Readable } from 'node:stream';
import { createBrotliDecompress, createGunzip, createInflate } from 'node:zlib';
import { WardenError } from '../errors.js';
import { readBounded } from '../http/body.js';
import type { RequestState, UpstreamResponse } from '../pipeline/context.js';
import type { JsonRpcId } from './json-rpc.js';
import type { SessionBindings } from './sessions.js';
import { formatSseEvent, rewriteSse } from './sse.js';
import type { ToolsListRewriter } from './list-filter.js';

export interface McpHookContext {
  routeName: string;
  state: RequestState;
  /** The session id the request presented (already checked). */
  sessionId?: string;
  sessions: SessionBindings;
  /** Ids of tools/list requests in this POST. */
  listIds: ReadonlySet<JsonRpcId>;
  rewriter: ToolsListRewriter;
  /** Bound on a buffered JSON answer or one SSE event. */
  maxBytes: number;
}

function header(res: UpstreamResponse, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function mediaType(value: string | undefined): string {
  return (value ?? '').split(';')[0].trim().toLowerCase();
}

/** The upstream body decoded from its Content-Encoding (filtering needs plain text). */
function decoded(res: UpstreamResponse): Readable {
  const enc = (header(res, 'content-encoding') ?? 'identity').trim().toLowerCase();
  if (enc === 'identity' || enc === '') return res.body;
  const decoder = enc === 'gzip' || enc === 'x-gzip' ? createGunzip() : enc === 'deflate' ? createInflate() : enc === 'br' ? createBrotliDecompress() : null;
  if (!decoder) throw new WardenError('upstream_unavailable', `cannot filter an upstream answer encoded as ${enc}`, { status: 502, reason: 'upstream_encoding' });
  res.body.on('error', (err) => decoder.destroy(err));
  return res.body.pipe(decoder);
}


/**
 * Session bookkeeping on the upstream's answer, before anything reaches the
 * agent: bind a session the upstream created to this principal, forget one it
 * ended (DELETE) or no longer knows (404).
 */
export function createMcpResponseHead(ctx: Pick<McpHookContext, 'routeName' | 'state' | 'sessionId' | 'sessions'>) {
  const { state } = ctx;
  return function mcpResponseHead(statusCode: number, header: (name: string) => string | undefined): Promise<void> | void {
    const ok = statusCode >= 200 && statusCode < 300;
    const created = header('mcp-session-id');
    const bind = ok && created !== undefined && created !== ctx.sessionId;
    const unbind = ctx.sessionId !== undefined && ((state.method === 'DELETE' && ok) || statusCode === 404);
    if (!bind && !unbind) return;
    return (async () => {
      if (bind) await ctx.sessions.bind(ctx.routeName, created!, state.principal);
      if (unbind) await ctx.sessions.unbind(ctx.routeName, ctx.sessionId!);
    })();
  };
}

/** Build the response hook for one MCP request (tools/list filtering; see createMcpResponseHead for sessions). */
export function createMcpResponseHook(ctx: McpHookContext): (res: UpstreamResponse) => Promise<UpstreamResponse> {
  const { state } = ctx;
  return async function mcpResponseHook(res) {
    try {
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      // GET streams may replay earlier responses (resumption), so they are filtered too.
      const filter = ok && (ctx.listIds.size > 0 || state.method === 'GET');
      if (!filter) return res;
      const type = mediaType(header(res, 'content-type'));
      if (type === 'text/event-stream') return sse(res);
      if (type === 'application/json' && ctx.listIds.size > 0) return await json(res);
      if (ctx.listIds.size > 0) {
        throw new WardenError('upstream_unavailable', `upstream answered tools/list as ${type || 'no content type'}`, { status: 502, reason: 'upstream_content_type' });
      }
      return res;
    } catch (err) {
      res.body.destroy();
      throw err;
    }
  };

  function plainHeaders(res: UpstreamResponse): Record<string, string | string[]> {
    const headers = { ...res.headers };
    delete headers['content-length'];
    delete headers['content-encoding'];
    return headers;
  }

  function sse(res: UpstreamResponse): UpstreamResponse {
    const source = decoded(res);
    const events = rewriteSse(
      source,
      async (event) => {
        if ((event.event !== undefined && event.event !== 'message') || event.data === undefined) return null;
        let message: unknown;
        try {
          message = JSON.parse(event.data);
        } catch {
          return null;
        }
        const rewritten = await ctx.rewriter.rewrite(message);
        return rewritten === null ? null : formatSseEvent({ id: event.id, event: event.event, data: JSON.stringify(rewritten) });
      },
      ctx.maxBytes,
    );
    const body = Readable.from(events, { objectMode: false });
    // Stop reading the upstream when the agent goes away.
    body.on('close', () => source.destroy());
    return { statusCode: res.statusCode, headers: plainHeaders(res), body };
  }

  async function json(res: UpstreamResponse): Promise<UpstreamResponse> {
    const raw = await readBounded(decoded(res), ctx.maxBytes, () => new WardenError('upstream_unavailable', `upstream tools/list answer exceeds ${ctx.maxBytes} bytes`, { status: 502, reason: 'upstream_too_large' }));
    let message: unknown;
    try {
      message = JSON.parse(raw.toString('utf8'));
    } catch {
      throw new WardenError('upstream_unavailable', 'upstream tools/list answer is not JSON', { status: 502, reason: 'upstream_bad_json' });
    }
    const rewritten = await ctx.rewriter.rewrite(message);
    const out = rewritten === null ? raw : Buffer.from(JSON.stringify(rewritten), 'utf8');
    const headers = plainHeaders(res);
    headers['content-length'] = String(out.length);
    return { statusCode: res.statusCode, headers, body: Readable.from([out]) };
  }
}
