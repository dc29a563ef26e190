/**
 * The MCP feature: on routes with `mcp:` it parses JSON-RPC, binds sessions to
 * principals, applies per-tool rules (authorize, approval, credentials,
 * `other_tools`, pinning) and filters tools/list answers. Runs after
 * authenticate and before authorize (see gateway/stages.ts).
 */

import { WardenError } from '../core/errors.js';
import { isOwnSerialization } from '../http/strict-json.js';
import type { Stage } from '../pipeline/stage.js';
import type { RequestState } from '../pipeline/context.js';
import type { Runtime } from '../core/runtime.js';
import { createMcpAdminApp } from './admin.js';
import type { McpCallDetails } from './errors.js';
import { isNotificationMethod, parseMcpBody, parseMcpMessages, serializeMessages, toolCallParams, type JsonRpcId, type JsonRpcMessage } from './json-rpc.js';
import { createToolsListRewriter, filterTools, type ToolsListRewriter } from './list-filter.js';
import { createMetadataApp } from './metadata.js';
import { createToolPins, withPinStatusCache, type PinStatus } from './pinning.js';
import { createMcpResponseBuffer, createMcpResponseHead, createMcpResponseHook } from './response-hook.js';
import { createSessionBindings, sessionIdFrom, type SessionBindings } from './sessions.js';
import { compileMcpRoute, type CompiledMcpRoute, type CompiledTool } from './tool-rules.js';
import { recordShadowFilter, recordShadowRefusal, shadowRoutes } from '../pipeline/shadow.js';

/** Names of the tool definitions in a tools/list answer, in its order. */
function toolNames(tools: readonly unknown[]): string[] {
  const names: string[] = [];
  for (const t of tools)
    if (typeof t === 'object' && t !== null && typeof (t as { name?: unknown }).name === 'string') names.push((t as { name: string }).name);
  return names;
}

/** The tools/list ids of a request that asked none (most: a tools/call); read-only, shared. */
const NO_LISTS: ReadonlySet<JsonRpcId> = new Set();

/** A route's compiled MCP rules and its session bindings. */
interface CompiledEntry {
  route: CompiledMcpRoute;
  sessions: SessionBindings;
}

/** What the stage learnt from one request's messages, for the rule and the hooks. */
interface McpRequest {
  /** Ids of the tools/list requests (their answers must be filtered). */
  listIds: ReadonlySet<JsonRpcId>;
  /** The tool of the request's tools/call, if any. */
  tool: string | undefined;
  /** False for a POST of notifications and responses only. */
  expectsMessages: boolean;
}

/**
 * Build the MCP stage. With `dryRun` (`warden explain`) a tool that was never
 * listed is evaluated as if it were (and noted on the request): explaining a
 * call must not need the upstream to have been asked first.
 */
export async function createMcpStage(rt: Runtime, options: { dryRun?: boolean } = {}): Promise<Stage> {
  const compiled = new Map<string, CompiledEntry>();
  rt.config.routes.forEach((route, i) => {
    if (!route.mcp) return;
    compiled.set(route.name, { route: compileMcpRoute(route, i), sessions: createSessionBindings(rt.store, route.mcp.session_ttl) });
  });
  // Pinned statuses are remembered briefly; changes seen anywhere invalidate them at once.
  const pins = await withPinStatusCache(createToolPins(rt.store), rt.store);
  const maxBytes = rt.config.server.limits.body_bytes;
  // The proxy reads an unencoded JSON answer whole with the hook's bound (one function for every request).
  const responseBuffer = createMcpResponseBuffer(maxBytes);
  const shadow = shadowRoutes(rt.config);

  /**
   * Add the tool's rule to the request's policy, or refuse the call (throws).
   * Returns a promise only when the pin status must be read from the store: a
   * tool pinned and remembered is decided without one (see pipeline/DESIGN.md).
   */
  function applyToolRule(state: RequestState, route: CompiledMcpRoute, tool: string): Promise<void> | void {
    const rule = route.ruleFor(tool);
    if (!rule) {
      throw new WardenError('forbidden', `tool ${JSON.stringify(tool)} is not allowed on this route`, { reason: 'tool_not_allowed' });
    }
    if (route.config.pin_tools && pins.peek(route.routeName, tool) !== 'pinned') {
      return pins.status(route.routeName, tool).then((status) => {
        checkPin(state, tool, status);
        addRule(state, route, tool, rule);
      });
    }
    addRule(state, route, tool, rule);
  }

  function checkPin(state: RequestState, tool: string, status: PinStatus): void {
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

  function addRule(state: RequestState, route: CompiledMcpRoute, tool: string, rule: CompiledTool): void {
    const { authorize, approval, credentials } = rule.config;
    if (authorize) state.policy.authorize.push(authorize);
    approval?.forEach((r, j) => state.policy.approval.push({ rule: r, source: `routes[${route.routeIndex}].mcp.tools.${tool}.approval[${j}]` }));
    if (credentials) state.policy.credentials = credentials;
  }

  /** The tool rule on a shadow route: a refusal (no rule, not pinned, definition changed) is recorded, not enforced. */
  function applyShadowToolRule(state: RequestState, route: CompiledMcpRoute, tool: string): Promise<void> | void {
    state.shadowMode = true;
    let pending: Promise<void> | void;
    try {
      pending = applyToolRule(state, route, tool);
    } catch (err) {
      recordShadowRefusal(state, err);
      return;
    }
    return pending?.catch((err: unknown) => recordShadowRefusal(state, err));
  }

  /**
   * The stage. Synchronous until it must wait (see pipeline/DESIGN.md): a
   * tools/call without a session whose tool is pinned and remembered returns
   * no promise; a session check or a pin read continues in `afterSession`.
   */
  function mcpStage(state: RequestState): Promise<void> | void {
    const routeConfig = state.route;
    if (!routeConfig?.mcp) return;
    const entry = compiled.get(routeConfig.name);
    if (!entry) throw new WardenError('internal', `MCP route ${routeConfig.name} was not compiled`, { reason: 'mcp_route_missing' });
    const { route, sessions } = entry;
    const sessionId = sessionIdFrom(state.headers['mcp-session-id']);
    const request: McpRequest = { listIds: NO_LISTS, tool: undefined, expectsMessages: state.method === 'GET' };

    if (state.method === 'POST') readMessages(state, sessionId, request);
    else if (state.method !== 'GET' && state.method !== 'DELETE') {
      throw new WardenError('method_not_allowed', 'MCP endpoints accept POST, GET and DELETE', {
        reason: 'mcp_method',
        headers: { Allow: 'DELETE, GET, POST' },
      });
    }

    if (sessionId !== undefined) return sessions.check(route.routeName, sessionId, state.principal).then(() => afterSession(state, entry, sessionId, request));
    return afterSession(state, entry, sessionId, request);
  }

  /** Parse and check the POSTed messages; sets `state.body` (re-serialized), `state.json` and `state.mcp`. */
  function readMessages(state: RequestState, sessionId: string | undefined, request: McpRequest): void {
    // The body stage parsed the body strictly into state.json (a strict parse reads what JSON.parse reads): check that
    // value rather than decode and parse the bytes again. Without it (empty body, `warden explain` of a non-strict body) parse here.
    const strict = state.json !== undefined;
    const parsed = strict ? parseMcpMessages(state.json) : parseMcpBody(state.body);
    // Forward exactly what was parsed (and what policy sees): the bytes read when they already are
    // that serialization (a strict parse's text that JSON.stringify writes the same), else re-serialized.
    if (!strict || state.body === undefined || !isOwnSerialization(state.body)) state.body = serializeMessages(parsed);
    const messages = parsed.messages;
    state.json = parsed.batch ? messages.map((m) => m.raw) : messages[0].raw;
    // A request method sent without an id would run upstream with no rule
    // applied (tools/call above all): only notifications/* may be notifications.
    for (const m of messages) {
      if (m.kind === 'notification' && !isNotificationMethod(m.method)) {
        throw new WardenError('bad_request', `${JSON.stringify(m.method)} is a request and needs an id`, { reason: 'request_as_notification' });
      }
    }
    const requestIds: JsonRpcId[] = [];
    let lists: Set<JsonRpcId> | undefined;
    let call: JsonRpcMessage | undefined;
    let first: JsonRpcMessage | undefined;
    let calls = 0;
    for (const m of messages) {
      if (m.kind !== 'request') continue;
      first ??= m;
      requestIds.push(m.id);
      if (m.method === 'tools/call') {
        call ??= m;
        calls++;
      } else if (m.method === 'tools/list') (lists ??= new Set()).add(m.id);
    }
    // One tool call per POST: the policy, approval and credentials of a request are those of one tool.
    if (calls > 1) throw new WardenError('bad_request', 'a batch may contain at most one tools/call', { reason: 'batch_multiple_tool_calls' });
    request.expectsMessages = requestIds.length > 0;
    if (lists) request.listIds = lists;
    const primary = call ?? first ?? messages[0];
    const mcp: McpCallDetails = {
      method: primary.kind === 'response' ? 'response' : primary.method,
      id: primary.kind === 'notification' ? undefined : primary.id,
      sessionId,
      batch: parsed.batch,
      requestIds,
    };
    if (call) {
      const params = toolCallParams(call);
      mcp.tool = request.tool = params.name;
      mcp.args = params.args;
    }
    state.mcp = mcp;
  }

  function afterSession(state: RequestState, entry: CompiledEntry, sessionId: string | undefined, request: McpRequest): Promise<void> | void {
    const { route } = entry;
    const tool = request.tool;
    const pending = tool === undefined ? undefined : shadow[route.routeIndex] ? applyShadowToolRule(state, route, tool) : applyToolRule(state, route, tool);
    if (pending) return pending.then(() => attachHooks(state, entry, sessionId, request));
    attachHooks(state, entry, sessionId, request);
  }

  /** The tools/list filter of one request's answers (see list-filter.ts); on a shadow route it records what it would hide. */
  function toolsListRewriter(state: RequestState, route: CompiledMcpRoute, listIds: ReadonlySet<JsonRpcId>): ToolsListRewriter {
    const filter = async (tools: readonly unknown[]) => {
      const { kept, verdicts } = await filterTools(tools, state, route, { authorizer: rt.authorizer, pins: route.config.pin_tools ? pins : null });
      rt.logger.debug({ request_id: state.id, route: route.routeName, tools: Object.fromEntries(verdicts) }, 'mcp tools/list filtered');
      return { kept, verdicts };
    };
    return createToolsListRewriter(
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
  }

  /** The response head hook (sessions) and, for answers read as JSON-RPC, the tools/list filter. */
  function attachHooks(state: RequestState, entry: CompiledEntry, sessionId: string | undefined, request: McpRequest): void {
    const { route, sessions } = entry;
    state.responseHead = createMcpResponseHead({ routeName: route.routeName, state, sessionId, sessions });
    // Every answer a client reads as JSON-RPC is checked for tools lists: an
    // upstream may put one on any stream, under any id (see list-filter.ts).
    if (state.method === 'POST' || state.method === 'GET') {
      state.responseHook = createMcpResponseHook({
        routeName: route.routeName,
        state,
        sessionId,
        sessions,
        rewriter: undefined,
        // Built when an answer is read as messages: a tools/call answer with nothing to filter never needs it.
        buildRewriter: () => toolsListRewriter(state, route, request.listIds),
        maxBytes,
        keepAliveMs: route.config.keepalive,
        streamIdleMs: state.method === 'GET' ? route.config.stream_idle_timeout : undefined,
        expectsMessages: request.expectsMessages,
        expectsLists: request.listIds.size > 0,
      });
      state.responseBuffer = responseBuffer;
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
