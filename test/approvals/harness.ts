/**
 * Unit-test harness for the approvals service: the real memory store, a real
 * logger captured in memory, and small stand-ins for identity and authz (the
 * end-to-end tests use the real ones through the gateway).
 */

import { sessionsFromConfig } from '../../src/identity/login/feature.js';
import { Hono } from 'hono';
import { configSchema, type Config } from '../../src/config/schema.js';
import { WardenError } from '../../src/core/errors.js';
import type { Principal } from '../../src/core/principal.js';
import type { Authorizer, CheckRequest } from '../../src/authz/authorizer.js';
import type { RequestState } from '../../src/pipeline/context.js';
import type { Runtime } from '../../src/core/runtime.js';
import { captureLogs } from '../support/logs.js';
import { createOnError } from '../../src/http/problem.js';
import { createMetrics } from '../../src/observability/metrics.js';
import { createMemoryStore } from '../../src/store/memory.js';
import type { Store } from '../../src/store/store.js';
import { createApprovalsStage } from '../../src/approvals/stage.js';
import type { Stage } from '../../src/pipeline/stage.js';

export interface Harness {
  rt: Runtime;
  stage: Stage;
  /** The `/.warden` app with a problem+json error handler like the gateway's. */
  app: Hono;
  admin: Hono;
  logs(): string;
  /** Tokens the stand-in authenticator accepts: token → principal. */
  principals: Map<string, Principal>;
  /** Relationships the stand-in authorizer allows ("user relation object"). */
  allowed: Set<string>;
  reauthorized: number;
  state(init: {
    method?: string;
    path: string;
    query?: string;
    body?: string;
    contentType?: string;
    agent?: string;
    user?: string | null;
    headers?: Record<string, string>;
    claims?: Record<string, unknown>;
    route?: number;
  }): RequestState;
  close(): Promise<void>;
}

/** A principal as the identity module would build it. */
export function principal(agent: string, user: string | null, claims: Record<string, unknown> = {}): Principal {
  return {
    agent,
    user,
    scopes: [],
    issuer: 'test',
    claims: { sub: user ?? agent, azp: agent, ...claims },
    actors: [],
    expiresAt: Math.floor(Date.now() / 1000) + 3600,
  };
}

/** Build the approvals stage over a fresh memory store (or the given store). */
export async function createHarness(configInput: Record<string, unknown>, options: { store?: Store; publicUrl?: string } = {}): Promise<Harness> {
  const config: Config = configSchema.parse(configInput);
  const { logger, lines } = captureLogs();
  const store = options.store ?? createMemoryStore();
  const principals = new Map<string, Principal>();
  const allowed = new Set<string>();
  const authorizer: Authorizer = {
    engine: 'embedded',
    async check(r: CheckRequest) {
      return allowed.has(`${r.user} ${r.relation} ${r.object}`);
    },
    async batchCheck(rs) {
      return rs.map((r) => allowed.has(`${r.user} ${r.relation} ${r.object}`));
    },
    async listObjects() {
      return [];
    },
    relations: () => new Map(),
    async ready() {},
    async close() {},
  };
  const rt: Runtime = {
    config,
    store,
    authenticator: {
      async authenticate(token) {
        const p = principals.get(token);
        if (!p) throw new WardenError('unauthenticated', 'unknown token');
        return p;
      },
    },
    authorizer,
    logger,
    metrics: createMetrics(),
    publicUrl: options.publicUrl ?? 'http://127.0.0.1:8080',
    dataDir: '/tmp',
    sessions: sessionsFromConfig(config, { store, logger, publicUrl: options.publicUrl ?? 'http://127.0.0.1:8080' }),
  };
  const h: Harness = {
    rt,
    stage: undefined as unknown as Stage,
    app: new Hono(),
    admin: new Hono(),
    logs: () => lines.join(''),
    principals,
    allowed,
    reauthorized: 0,
    state(init) {
      const routeIndex = init.route ?? 0;
      const route = config.routes[routeIndex];
      const body = init.body === undefined ? undefined : Buffer.from(init.body);
      const headers: Record<string, string> = { ...(init.headers ?? {}) };
      if (body) {
        headers['content-length'] = String(body.length);
        headers['content-type'] = init.contentType ?? 'application/json';
      }
      const segments = init.path.split('/');
      return {
        id: Math.random().toString(36).slice(2),
        startedAt: Date.now(),
        method: init.method ?? 'POST',
        path: init.path,
        segments: segments.filter(Boolean),
        query: init.query ?? '',
        headers,
        clientIp: '127.0.0.1',
        route,
        routeIndex,
        params: { id: segments[segments.length - 1] ?? '' },
        principal: principal(init.agent ?? 'bot', init.user === undefined ? 'alice' : init.user, init.claims),
        body: body ?? Buffer.alloc(0),
        json: body && (init.contentType ?? 'application/json').includes('json') ? JSON.parse(init.body as string) : undefined,
        policy: { authorize: [], approval: (route.approval ?? []).map((rule, i) => ({ rule, source: `routes[${routeIndex}].approval[${i}]` })) },
        upstreamHeaders: [],
        checks: [],
      };
    },
    async close() {
      await h.stage.close?.();
      if (!options.store) await store.close();
    },
  };
  h.stage = await createApprovalsStage(rt, {
    async reauthorize(state: RequestState) {
      h.reauthorized++;
      if (!state.releasing) throw new Error('reauthorize must run with releasing=true');
      if (allowed.has('deny-at-release')) throw new WardenError('forbidden', 'no longer allowed');
    },
  });
  const onError = createOnError(logger, 'approvals endpoint');
  h.app.route('/.warden', h.stage.routes as Hono);
  h.app.onError(onError);
  h.admin.route('/', h.stage.admin as Hono);
  h.admin.onError(onError);
  return h;
}

/** A gateway.yaml-shaped config with one approval route. */
export function baseConfig(
  approvals: Record<string, unknown> = {},
  rule: Record<string, unknown> = {
    when: 'request.method == "DELETE" || has(body.amount) && body.amount > 100',
    message: 'Pay {body.amount} to {body.to} ({path.id})',
  },
) {
  return {
    approvals: { ttl: '10m', hold: '2s', ...approvals },
    routes: [
      {
        name: 'payments',
        match: { path: '/pay/:id' },
        upstream: { url: 'http://127.0.0.1:9' },
        authorize: [],
        approval: rule,
      },
    ],
  };
}

/** Run the stage and return the WardenError it threw (or null when it let the request through). */
export async function runStage(h: Harness, state: RequestState): Promise<WardenError | null> {
  try {
    await h.stage.run(state);
    return null;
  } catch (err) {
    if (err instanceof WardenError) return err;
    throw err;
  }
}
