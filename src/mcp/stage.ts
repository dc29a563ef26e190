/**
 * The MCP feature: on routes with `mcp:` it parses JSON-RPC, binds sessions to
 * principals, applies per-tool rules (authorize, approval, credentials,
 * `other_tools`, pinning) and filters tools/list answers. Runs after
 * authenticate and before authorize (see gateway/stages.ts).
 */

import { WardenError } from '../core/errors.js';
import type { Stage } from '../pipeline/stage.js';
import type { RequestState } from '../pipeline/context.js';
import type { Runtime } from '../core/runtime.js';
import { createMcpAdminApp } from './admin.js';
import type { McpCallDetails } from './errors.js';
import { isNotificationMethod, parseMcpBody, serializeMessages, toolCallParams, type JsonRpcId, type JsonRpcMessage } from './json-rpc.js';
import { createToolsListRewriter, filterTools } from './list-filter.js';
import { createMetadataApp } from './metadata.js';
import { createToolPins, withPinStatusCache } from './pinning.js';
import { createMcpResponseHead, createMcpResponseHook } from './response-hook.js';
import { createSessionBindings, sessionIdFrom, type SessionBindings } from './sessions.js';
import { compileMcpRoute, type CompiledMcpRoute } from './tool-rules.js';
import { recordShadowFilter, recordShadowRefusal, shadowRoutes } from '../pipeline/shadow.js';

/** Names of the tool definitions in a tools/list answer, in its order. */
function toolNames(tools: readonly unknown[]): string[] {
  const names: string[] = [];
  for (const t of tools)
    if (typeof t === 'object' && t !== null && typeof (t as { name?: unknown }).name === 'string') names.push((t as { name: string }).name);
  return names;
}

/** Build the MCP stage (and its endpoints) for one config generation. */
/**
 * Build the MCP stage. With `dryRun` (`warden explain`) a tool that was never
 * listed is evaluated as if it were (and noted on the request): explaining a
 * call must not need the upstream to have been asked first.
 */
export async function createMcpStage(rt: Runtime, options: { dryRun?: boolean } = {}): Promise<Stage> {
  const compiled = new Map<string, { route: CompiledMcpRoute; sessions: SessionBindings }>();
  rt.config.routes.forEach((route, i) => {
    if (!route.mcp) return;
    compiled.set(route.name, { route: compileMcpRoute(route, i), sessions: createSessionBindings(rt.store, route.mcp.session_ttl) });
  });
  // Pinned statuses are remembered briefly; changes seen anywhere invalidate them at once.
  const pins = await withPinStatusCache(createToolPins(rt.store), rt.store);
  const maxBytes = rt.config.server.limits.body_bytes;
  const shadow = shadowRoutes(rt.config);

  /** Add the tool's rule to the request's policy, or refuse the call. */
  async function applyToolRule(state: RequestState, route: CompiledMcpRoute, tool: string): Promise<void> {
    const rule = route.ruleFor(tool);
    if (!rule) {
      throw new WardenError('forbidden', `tool ${JSON.stringify(tool)} is not allowed on this route`, { reason: 'tool_not_allowed' });
    }
    if (route.config.pin_tools) {
      const status = await pins.status(route.routeName, tool);
      if (status === 'unknown') {
        if (options.dryRun) {
          if (state.mcp) state.mcp.pin = 'unlisted';
        } else throw new WardenError('forbidden', `tool ${JSON.stringify(tool)} has not been listed yet; call tools/list first`, { reason: 'tool_not_pinned' });
      }
      if (status === 'changed') {
        throw new WardenError('forbidden', `the definition of tool ${JSON.stringify(tool)} changed and awaits operator review`, {
          reason: 'tool_definition_changed',
        });
      }
    }
    const { authorize, approval, credentials } = rule.config;
    if (authorize) state.policy.authorize.push(authorize);
    approval?.forEach((r, j) => state.policy.approval.push({ rule: r, source: `routes[${route.routeIndex}].mcp.tools.${tool}.approval[${j}]` }));
    if (credentials) state.policy.credentials = credentials;
  }

  async function mcpStage(state: RequestState): Promise<void> {
    const routeConfig = state.route;
    if (!routeConfig?.mcp) return;
    const entry = compiled.get(routeConfig.name);
    if (!entry) throw new WardenError('internal', `MCP route ${routeConfig.name} was not compiled`, { reason: 'mcp_route_missing' });
    const { route, sessions } = entry;
    const sessionId = sessionIdFrom(state.headers['mcp-session-id']);
    const listIds = new Set<JsonRpcId>();
    let tool: string | undefined;
    let expectsMessages = state.method === 'GET';

    if (state.method === 'POST') {
      const parsed = parseMcpBody(state.body);
      // Forward exactly what was parsed (and what policy sees).
      state.body = serializeMessages(parsed);
      const raws = parsed.messages.map((m) => m.raw);
      state.json = parsed.batch ? raws : raws[0];
      // A request method sent without an id would run upstream with no rule
      // applied (tools/call above all): only notifications/* may be notifications.
      for (const m of parsed.messages) {
        if (m.kind === 'notification' && !isNotificationMethod(m.method)) {
          throw new WardenError('bad_request', `${JSON.stringify(m.method)} is a request and needs an id`, { reason: 'request_as_notification' });
        }
      }
      const requests = parsed.messages.flatMap((m) => (m.kind === 'request' ? [m] : []));
      const calls = requests.filter((m) => m.method === 'tools/call');
      // One tool call per POST: the policy, approval and credentials of a request are those of one tool.
      if (calls.length > 1) throw new WardenError('bad_request', 'a batch may contain at most one tools/call', { reason: 'batch_multiple_tool_calls' });
      for (const r of requests) if (r.method === 'tools/list') listIds.add(r.id);
      expectsMessages = requests.length > 0;
      const primary = (calls.length > 0 ? calls[0] : requests.length > 0 ? requests[0] : parsed.messages[0]) as JsonRpcMessage;
      const mcp: McpCallDetails = {
        method: primary.kind === 'response' ? 'response' : primary.method,
        id: primary.kind === 'notification' ? undefined : primary.id,
        sessionId,
        batch: parsed.batch,
        requestIds: requests.map((r) => r.id),
      };
      if (calls[0]) {
        const params = toolCallParams(calls[0]);
        mcp.tool = tool = params.name;
        mcp.args = params.args;
      }
      state.mcp = mcp;
    } else if (state.method !== 'GET' && state.method !== 'DELETE') {
      throw new WardenError('method_not_allowed', 'MCP endpoints accept POST, GET and DELETE', {
        reason: 'mcp_method',
        headers: { Allow: 'DELETE, GET, POST' },
      });
    }

    if (sessionId !== undefined) await sessions.check(route.routeName, sessionId, state.principal);
    if (tool !== undefined) {
      if (shadow[route.routeIndex]) {
        // Shadow route: a tool-level refusal (no rule, not pinned, definition changed) is recorded, not enforced.
        state.shadowMode = true;
        await applyToolRule(state, route, tool).catch((err: unknown) => recordShadowRefusal(state, err));
      } else await applyToolRule(state, route, tool);
    }

    state.responseHead = createMcpResponseHead({ routeName: route.routeName, state, sessionId, sessions });
    // Every answer a client reads as JSON-RPC is checked for tools lists: an
    // upstream may put one on any stream, under any id (see list-filter.ts).
    if (state.method === 'POST' || state.method === 'GET') {
      const filter = async (tools: readonly unknown[]) => {
        const { kept, verdicts } = await filterTools(tools, state, route, { authorizer: rt.authorizer, pins: route.config.pin_tools ? pins : null });
        rt.logger.debug({ request_id: state.id, route: route.routeName, tools: Object.fromEntries(verdicts) }, 'mcp tools/list filtered');
        return { kept, verdicts };
      };
      const rewriter = createToolsListRewriter(
        listIds,
        shadow[route.routeIndex]
          ? // Shadow route: the agent sees the upstream's list unchanged; what enforce mode would hide is recorded.
            async (tools) => {
              state.shadowMode = true;
              try {
                const { verdicts } = await filter(tools);
                recordShadowFilter(state, toolNames(tools), verdicts);
              } catch (err) {
                recordShadowRefusal(state, err);
              }
              return [...tools];
            }
          : async (tools) => (await filter(tools)).kept,
      );
      state.responseHook = createMcpResponseHook({ routeName: route.routeName, state, sessionId, sessions, rewriter, maxBytes, expectsMessages });
    }
  }

  return {
    name: 'mcp',
    appliesTo: (route) => Boolean(route.config.mcp),
    run: (state) => mcpStage(state),
    wellKnown: createMetadataApp(rt.config, rt.publicUrl),
    admin: createMcpAdminApp(rt.store, rt.logger),
    close: () => pins.close(),
  };
}
