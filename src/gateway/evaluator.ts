/**
 * Decide requests offline with the real pipeline: route matching, scopes,
 * MCP tool rules, authorization checks, limits (peeked) and approval rules of
 * one config, without a listener, an upstream or any side effect (memory
 * store, nothing held, stored, notified or spent; a private data dir).
 * `warden test` and `warden replay` both decide through this module.
 *
 * The caller supplies who is calling (a Principal: replay rebuilds it from a
 * record, `warden test` from claims) instead of a token; the real authenticate
 * stage then applies the route's scopes and MCP audience rules to it.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApprovalsStage } from '../approvals/stage.js';
import { policyNameIssues } from '../authz/config-checks.js';
import { createAuthorizer } from '../authz/create.js';
import { ConfigError, parsePath } from '../config/issues.js';
import type { LoadedConfig } from '../config/load.js';
import { publicUrlOf } from '../config/public-url.js';
import { authzSchema, type Config } from '../config/schema.js';
import { WardenError } from '../core/errors.js';
import type { Authenticator, Principal } from '../core/principal.js';
import type { Runtime } from '../core/runtime.js';
import { principalFromClaims, type ClaimRules } from '../identity/claims.js';
import { devIssuerIdentity } from '../identity/dev-issuer.js';
import { sessionsFromConfig } from '../identity/login/feature.js';
import { mcpResources } from '../mcp/audience.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { canonicalize } from '../pipeline/canonical.js';
import { compileRoutes } from '../pipeline/compile.js';
import type { CheckTrace } from '../pipeline/context.js';
import { createPipeline } from '../pipeline/pipeline.js';
import type { Proxy } from '../proxy/forward.js';
import { createMemoryStore } from '../store/memory.js';
import { buildStages, closeStages } from './stages.js';

/** One request to decide. */
export interface EvaluationRequest {
  /** Request id (kept in the answer; replay passes the recorded one). */
  id?: string;
  method: string;
  /** Path, optionally with `?query`; canonicalized as the gateway does. */
  target: string;
  /** Extra request headers (lower-case names). */
  headers?: Readonly<Record<string, string>>;
  /** Who calls; absent: no token. */
  principal?: Principal;
  /** JSON body (non-MCP routes). */
  body?: unknown;
  /** An MCP JSON-RPC request, sent as the POST body. */
  mcp?: { method: string; tool?: string; args?: unknown };
}

/** What the gateway would do. */
export interface EvaluationResult {
  outcome: 'allow' | 'hold' | 'deny' | 'error';
  /** Error code for deny and error (`forbidden`, `unauthenticated`, …); `approval_pending` for hold. */
  code?: string;
  /** 202 for hold, the error's status for deny/error, 200 for allow (the upstream would answer). */
  status: number;
  reason?: string;
  detail?: string;
  route?: string;
  routeIndex?: number;
  tool?: string;
  checks: CheckTrace[];
  /** The check, rule or step that decided (for failure messages). */
  decisive?: string;
}

/** Where the authorization answers come from. */
export type AuthzOverride =
  { engine: 'config' } | { engine: 'embedded'; tuples?: string } | { engine: 'openfga'; apiUrl: string; storeId: string; modelId?: string; apiToken?: string };

export interface EvaluatorOptions {
  loaded: LoadedConfig;
  authz?: AuthzOverride;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
}

export interface Evaluator {
  readonly config: Config;
  /** Aud values every MCP route of this config accepts (a principal built offline is bound to all of them). */
  readonly mcpAudiences: readonly string[];
  /** A principal from token claims, as the issuer named by `iss` (or the dev issuer) maps them. */
  principal(claims: Record<string, unknown>): Principal;
  evaluate(request: EvaluationRequest): Promise<EvaluationResult>;
  close(): Promise<void>;
}

const NO_PROXY: Proxy = {
  forward() {
    throw new WardenError('internal', 'the evaluator never forwards');
  },
  close: async () => {},
} as unknown as Proxy;

/** The config as the evaluator runs it: memory store, every route enforced, no decision log, engine as asked. */
function offlineConfig(config: Config, authz: AuthzOverride): Config {
  let a = config.authz;
  if (authz.engine === 'embedded') a = { ...a, engine: 'embedded', ...(authz.tuples ? { tuples: authz.tuples } : {}) };
  else if (authz.engine === 'openfga')
    a = {
      ...a,
      engine: 'openfga',
      // Parsed by the schema so timeout and retries get their defaults.
      openfga: authzSchema.parse({
        engine: 'openfga',
        openfga: { api_url: authz.apiUrl, store_id: authz.storeId, model_id: authz.modelId ?? '', api_token: authz.apiToken ?? '' },
      }).openfga,
    };
  return {
    ...config,
    mode: 'enforce',
    store: { ...config.store, driver: 'memory' },
    audit: { ...config.audit, decisions: undefined },
    authz: a,
    routes: config.routes.map((r) => ({ ...r, mode: undefined })),
  } as Config;
}

/** Build an evaluator for one config (closes everything it built when it fails). */
export async function createEvaluator(options: EvaluatorOptions): Promise<Evaluator> {
  const env = options.env ?? process.env;
  const logger = options.logger ?? createLogger({ level: 'silent' });
  const loaded = options.loaded;
  const config = offlineConfig(loaded.config, options.authz ?? { engine: 'config' });
  const publicUrl = publicUrlOf(config);
  const dataDir = mkdtempSync(join(tmpdir(), 'warden-evaluate-'));
  const store = createMemoryStore();
  const metrics = createMetrics({});
  const principals = new Map<string, Principal>();
  const authenticator: Authenticator = {
    peek: (token) => principals.get(token),
    authenticate: (token) => {
      const p = principals.get(token);
      return p ? Promise.resolve(p) : Promise.reject(new WardenError('unauthenticated', 'no principal for this token', { reason: 'evaluator_token' }));
    },
  };
  const closers: Array<() => Promise<void>> = [async () => rmSync(dataDir, { recursive: true, force: true }), () => store.close()];
  const closeAll = async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
  };
  try {
    const authorizer = await createAuthorizer(config.authz, { baseDir: loaded.baseDir, logger, metrics });
    closers.push(() => authorizer.close());
    const issues = policyNameIssues(config, authorizer.relations());
    if (issues.length)
      throw new ConfigError(
        loaded.file,
        issues.map((i) => ({ ...i, line: loaded.lineOf(parsePath(i.path)) })),
      );
    const sessions = sessionsFromConfig(config, { store, logger, publicUrl, env: { ...env, NODE_ENV: 'development' } });
    const rt: Runtime = { config, store, authenticator, authorizer, logger, metrics, publicUrl, dataDir, sessions };
    let approvals: ApprovalsStage | undefined;
    const stages = await buildStages(rt, { dryRun: true, onApprovals: (s) => (approvals = s) });
    closers.push(() => closeStages(stages, rt));
    const pipeline = createPipeline({ routes: compileRoutes(config), stages, proxy: NO_PROXY, audit: () => {}, logger, dryRun: true });
    const audiences = mcpResources(config, publicUrl);
    const dev = config.identity.dev_issuer ? devIssuerIdentity(publicUrl).issuer : undefined;
    let n = 0;

    return {
      config,
      mcpAudiences: audiences,
      principal(claims) {
        const iss = typeof claims.iss === 'string' ? claims.iss : undefined;
        const issuer = config.identity.issuers.find((i) => i.issuer === iss) ?? (iss === undefined && !dev ? config.identity.issuers[0] : undefined);
        const rules: ClaimRules = issuer ?? { token_types: ['at+jwt'], allow_untyped: false, user_claim: 'sub' };
        const full = { exp: Math.floor(Date.now() / 1000) + 3600, aud: audiences.length ? audiences : undefined, ...claims };
        return principalFromClaims(full, rules, issuer?.issuer ?? iss ?? dev ?? 'warden-test');
      },
      async evaluate(req) {
        const headers: Record<string, string> = { host: new URL(publicUrl).host, ...req.headers };
        const token = `warden-evaluate-${++n}`;
        if (req.principal) {
          principals.set(token, req.principal);
          headers.authorization = `Bearer ${token}`;
        }
        let body: Buffer | undefined;
        let json: unknown;
        if (req.mcp) {
          const params = req.mcp.tool !== undefined ? { name: req.mcp.tool, arguments: req.mcp.args ?? {} } : undefined;
          // A notification carries no id (one that does is refused as a request in disguise).
          const id = req.mcp.method.startsWith('notifications/') ? {} : { id: 1 };
          json = { jsonrpc: '2.0', ...id, method: req.mcp.method, ...(params ? { params } : {}) };
          headers.accept ??= 'application/json, text/event-stream';
        } else json = req.body;
        if (json !== undefined) {
          body = Buffer.from(JSON.stringify(json));
          headers['content-type'] ??= 'application/json';
          headers['content-length'] = String(body.length);
        }
        const result: EvaluationResult = { outcome: 'allow', status: 200, checks: [] };
        let state: ReturnType<typeof pipeline.newState> | undefined;
        try {
          state = pipeline.newState({ method: req.method, target: canonicalize(req.target), headers, clientIp: '127.0.0.1', requestId: req.id });
          if (body) {
            state.body = body;
            state.json = json;
          }
          await pipeline.evaluate(state);
          if (approvals?.shadowRun) await approvals.shadowRun(state);
          if (state.shadow?.outcome === 'would_hold') {
            Object.assign(result, { outcome: 'hold', code: 'approval_pending', status: 202 });
            const rule = state.policy.approval[0];
            if (rule) result.decisive = `approval rule ${rule.source}${rule.rule.when ? ` (when ${rule.rule.when})` : ''}`;
          }
        } catch (err) {
          const e = err instanceof WardenError ? err : new WardenError('internal', (err as Error).message);
          result.outcome = e.code === 'approval_pending' ? 'hold' : e.status >= 500 ? 'error' : 'deny';
          result.code = e.code;
          result.status = e.status;
          result.reason = e.reason;
          result.detail = e.message;
          const denied = state?.checks.find((c) => c.allowed !== true);
          result.decisive = denied ? `${denied.user} ${denied.relation} ${denied.object} = ${denied.allowed ?? denied.error}` : e.message;
        } finally {
          principals.delete(token);
        }
        if (state) {
          result.route = state.route?.name;
          result.routeIndex = state.routeIndex;
          result.tool = state.mcp?.tool;
          result.checks = state.checks;
        }
        return result;
      },
      close: closeAll,
    };
  } catch (err) {
    await closeAll();
    throw err;
  }
}
