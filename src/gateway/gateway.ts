/**
 * One Warden instance: listeners, and the current config generation (runtime,
 * stages, pipeline). Reload builds a complete new generation first and swaps
 * it in atomically; an invalid one is logged and the old one kept. The old
 * generation is closed once its in-flight requests have finished.
 */

import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import { getRequestListener } from '@hono/node-server';
import { createServer } from 'node:http';
import { ConfigError, parsePath } from '../config/issues.js';
import type { LoadedConfig } from '../config/load.js';
import { loadConfigFile, parseConfig } from './config.js';
import { policyNameIssues } from '../authz/config-checks.js';
import type { Config } from '../config/schema.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { METRICS } from '../observability/catalog.js';
import { workerMetrics, type WorkerMetrics } from '../observability/cluster-metrics.js';
import { createDisabledMetrics, createMetrics, type MetricSnapshot } from '../observability/metrics.js';
import { createProcessMetrics, packageVersion } from '../observability/process-metrics.js';
import type { Tracing } from '../observability/tracing.js';
import { resolveTracing } from '../observability/tracing-config.js';
import { createStore } from '../store/create.js';
import type { Store } from '../store/store.js';
import { createAuthenticator } from '../identity/verifier.js';
import { loadDevIssuer, type DevIssuer } from '../identity/dev-issuer.js';
import { createAuthorizer } from '../authz/create.js';
import { compileRoutes } from '../pipeline/compile.js';
import { createPipeline, type Pipeline } from '../pipeline/pipeline.js';
import type { Stage } from '../pipeline/stage.js';
import { createProxy } from '../proxy/forward.js';
import { trustedProxies } from '../proxy/trust.js';
import { createAgentServer, type Generation } from './agent-server.js';
import { buildStages, closeStages } from './stages.js';
import { createAudit } from '../observability/audit.js';
import { createDecisionLog } from '../audit/decision-log.js';
import type { DecisionLogWriters } from '../audit/writer.js';
import { activitySource } from '../audit/activity-source.js';
import { mcpJsonRpcError as jsonRpcErrorFor } from '../mcp/errors.js';
import type { InstanceInfo, Runtime } from '../core/runtime.js';
import type { Authenticator } from '../core/principal.js';
import { dataDirOf, publicUrlOf } from '../config/public-url.js';
import { createAdminGuard } from '../http/admin-guard.js';
import { problemResponse } from '../http/problem.js';
import { WardenError } from '../core/errors.js';
import { createLoginRoutes, sessionsFromConfig } from '../identity/login/feature.js';
import { audienceBindingWarnings, mcpResources } from '../mcp/audience.js';
import { issuerNamespaceWarnings } from '../identity/config-checks.js';

export interface GatewayOptions {
  /** Path of gateway.yaml (watched/reloaded). */
  configFile?: string;
  /** Config text instead of a file (tests); relative paths resolve against `baseDir`. */
  configText?: string;
  /**
   * `configFile` already loaded (`warden start` reads it to learn `server.workers`): the first
   * generation uses it instead of reading and validating the file a second time (with 2,000
   * routes that is seconds of start-up and tens of MB of start-up heap, #17). Reloads read the file.
   */
  loaded?: LoadedConfig;
  baseDir?: string;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
  /** Override listen addresses (tests use port 0). */
  listen?: string;
  adminListen?: string | null;
  /** Build for `warden explain`: the pipeline stops before side effects. */
  dryRun?: boolean;
  /**
   * This process is one of several `server.workers`: /metrics answers for the
   * whole cluster, through the primary (see observability/cluster-metrics.ts).
   */
  clusterMetrics?: boolean;
}

export interface Gateway {
  readonly url: string;
  readonly adminUrl: string | null;
  readonly logger: Logger;
  runtime(): Runtime;
  pipeline(): Pipeline;
  /** Rebuild from the config source; resolves false (old config kept) when invalid. */
  reload(newText?: string): Promise<boolean>;
  /** Stop accepting, drain in-flight requests (up to shutdown_timeout), close everything. */
  close(): Promise<void>;
}

interface BuiltGeneration extends Generation {
  runtime: Runtime;
  stages: Stage[];
  adminApp: Hono;
  close(): Promise<void>;
}

/** Long-lived pieces that survive reloads while their config is unchanged. */
interface Shared {
  store?: { key: string; store: Store };
  devIssuer?: { key: string; issuer: DevIssuer };
  /** The decision log's writers by destination: each generation's chain continues, linked, where the previous one ended. */
  decisionLogs: DecisionLogWriters;
}

/**
 * Keys read once, when the process starts: the listeners (their addresses, and
 * the head size and client timeout their http.Server was created with), the
 * cluster, the file watch and the metrics registry. A reload cannot apply them,
 * so it says so for each one that changed (never accepted and silently ignored).
 */
const START_ONLY: ReadonlyArray<readonly [path: string, read: (c: Config) => unknown]> = [
  ['server.listen', (c) => c.server.listen],
  ['server.admin_listen', (c) => c.server.admin_listen],
  ['server.limits.header_bytes', (c) => c.server.limits.header_bytes],
  ['server.limits.client_timeout', (c) => c.server.limits.client_timeout],
  ['server.limits.keep_alive_timeout', (c) => c.server.limits.keep_alive_timeout],
  ['server.workers', (c) => c.server.workers],
  ['server.watch', (c) => c.server.watch],
  ['observability.metrics.enabled', (c) => c.observability.metrics.enabled],
];

/** How long a scrape waits for the scrape-time collectors (approvals pending) before rendering without them. */
const COLLECT_TIMEOUT_MS = 2_000;

function hostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  return { host: s.slice(0, i).replace(/^\[|\]$/g, ''), port: Number(s.slice(i + 1)) };
}

async function listen(server: Server, address: string): Promise<AddressInfo> {
  const { host, port } = hostPort(address);
  server.listen(port, host);
  await once(server, 'listening');
  return server.address() as AddressInfo;
}

function urlOf(a: AddressInfo): string {
  const host = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return `http://${host}:${a.port}`;
}

/** Start a gateway: load config, listen, build the first generation. */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const env = options.env ?? process.env;
  const logger = options.logger ?? createLogger();
  const load = (text?: string): LoadedConfig => {
    if (text !== undefined || options.configText !== undefined) {
      return parseConfig(text ?? (options.configText as string), {
        file: options.configFile ?? 'gateway.yaml',
        env,
        baseDir: options.baseDir ?? process.cwd(),
      });
    }
    return loadConfigFile(options.configFile ?? 'gateway.yaml', env);
  };

  const first = options.loaded ?? load();
  // observability.metrics.enabled is read once, at start: the registry lives as long as the process.
  const metricsOn = first.config.observability.metrics.enabled;
  const metrics = metricsOn ? createMetrics(METRICS) : createDisabledMetrics();
  const processMetrics = createProcessMetrics();
  const reloads = {
    success: metrics.counter('warden_config_reloads_total', { result: 'success' }),
    failure: metrics.counter('warden_config_reloads_total', { result: 'failure' }),
  };
  const loadedNow = () => metrics.gauge('warden_config_last_reload_success_timestamp_seconds', Date.now() / 1000);
  /** Scrape-time gauges of the current generation's stages; a failing or slow one is counted and skipped. */
  const collect = async () => {
    const gen = current;
    if (!gen) return;
    await Promise.all(
      gen.stages.flatMap((s) =>
        s.collect
          ? [
              withTimeout(s.collect(), COLLECT_TIMEOUT_MS).catch((err: unknown) => {
                metrics.inc('warden_metrics_collect_errors_total', { stage: s.name });
                logger.warn({ err, stage: s.name }, 'metrics collector failed');
              }),
            ]
          : [],
      ),
    );
  };
  const snapshot = async (): Promise<MetricSnapshot[][]> => {
    await collect();
    return [metrics.snapshot(), await processMetrics.snapshot()];
  };
  let cluster: WorkerMetrics | undefined;
  const config = first.config;
  const dataDir = dataDirOf(env, first.baseDir);
  let current: BuiltGeneration | null = null;
  const shared: Shared = { decisionLogs: new Map() };
  let lastLoad: ReturnType<InstanceInfo['lastLoad']> = { at: Date.now(), ok: true, kind: 'start' };
  const instance: InstanceInfo = { version: packageVersion(), startedAt: Date.now(), lastLoad: () => lastLoad };

  const agentServer = createAgentServer({
    headerBytes: config.server.limits.header_bytes,
    clientTimeoutMs: config.server.limits.client_timeout,
    keepAliveTimeoutMs: config.server.limits.keep_alive_timeout,
    current: () => current,
    onError: (err) => logger.error({ err }, 'unhandled request error'),
    onRefused: (r) => {
      metrics.inc('warden_requests_total', { route: '-', decision: 'deny', status: String(r.status) });
      logger.info(
        {
          audit: true,
          request_id: r.requestId,
          route: '-',
          method: r.method,
          decision: 'deny',
          reason: r.reason,
          code: r.code,
          status: r.status,
          client_ip: r.clientIp,
        },
        'request',
      );
    },
  });
  const agentAddr = await listen(agentServer, options.listen ?? config.server.listen);
  const url = urlOf(agentAddr);

  const adminListener = getRequestListener((req) => (current ? current.adminApp.fetch(req) : new Response('starting', { status: 503 })));
  const adminServer = createServer((req, res) => {
    adminListener(req, res).catch((err: unknown) => logger.error({ err }, 'unhandled admin request error'));
  });
  const adminAddress = options.adminListen !== undefined ? options.adminListen : config.server.admin_listen;
  const adminUrl = adminAddress ? urlOf(await listen(adminServer, adminAddress)) : null;

  async function build(loaded: LoadedConfig): Promise<BuiltGeneration> {
    const cfg = loaded.config;
    const publicUrl = publicUrlOf(cfg, url);
    const storeKey = JSON.stringify(cfg.store);
    const closers: Array<() => Promise<void>> = [];
    let store: Store;
    if (shared.store?.key === storeKey) store = shared.store.store;
    else {
      store = await createStore(cfg.store, logger, loaded.baseDir);
      closers.push(async () => {
        if (shared.store?.store !== store) await store.close();
      });
    }

    let devIssuer: DevIssuer | undefined;
    if (cfg.identity.dev_issuer) {
      const key = `${dataDir}|${publicUrl}`;
      devIssuer = shared.devIssuer?.key === key ? shared.devIssuer.issuer : await loadDevIssuer({ dataDir, publicUrl });
      shared.devIssuer = { key, issuer: devIssuer };
    }
    const authenticator: Authenticator = await createAuthenticator(cfg.identity, { devIssuer, devAudiences: mcpResources(cfg, publicUrl), logger, metrics });
    for (const w of [...audienceBindingWarnings(cfg, publicUrl), ...issuerNamespaceWarnings(cfg)]) logger.warn({ path: w.path }, w.message);
    const authorizer = await createAuthorizer(cfg.authz, { baseDir: loaded.baseDir, logger, metrics });
    closers.push(() => authorizer.close());
    if (authenticator.close) closers.push(() => authenticator.close!());

    // With OpenFGA unreachable at startup the model is not known yet: names are not checked then (logged).
    let relations: ReturnType<typeof authorizer.relations> | null = null;
    try {
      relations = authorizer.relations();
    } catch (err) {
      if (!(err instanceof WardenError) || err.code !== 'authz_unavailable') throw err;
      logger.warn({ reason: err.reason }, 'authorization model not loaded yet: policy names in routes are not checked against it');
    }
    const nameIssues = relations ? policyNameIssues(cfg, relations) : [];
    if (nameIssues.length) {
      await Promise.all(closers.map((c) => c().catch(() => {})));
      throw new ConfigError(
        loaded.file,
        nameIssues.map((i) => ({ ...i, line: loaded.lineOf(parsePath(i.path)) })),
      );
    }

    const sessions = sessionsFromConfig(cfg, { store, logger, publicUrl, devIssuer, env });
    // While this generation is being built (and until it serves), `current` is the one before it.
    const currentAuthorizer = () => current?.runtime.authorizer ?? authorizer;
    const runtime: Runtime = { config: cfg, store, authenticator, authorizer, currentAuthorizer, logger, metrics, publicUrl, dataDir, sessions, instance };
    const proxy = createProxy({
      trusted: trustedProxies(cfg.server.trusted_proxies),
      bodyLimit: cfg.server.limits.body_bytes,
      connections: cfg.server.limits.upstream_connections,
      digestBodies: Boolean(cfg.audit.decisions),
    });
    closers.push(() => proxy.close());

    let built: Stage[];
    let decisions: Awaited<ReturnType<typeof createDecisionLog>>;
    // The console's activity: the decision log's file read back, else a per-user ring in the store (none without sign-in).
    const activity = activitySource(cfg, store, logger, sessions.mode !== null);
    let tracing: Tracing | undefined;
    try {
      decisions = options.dryRun ? undefined : await createDecisionLog(cfg, runtime, shared.decisionLogs);
      if (decisions) closers.push(() => decisions!.close());
      // Off (no endpoint, or `warden explain`): the pipeline gets no tracer and creates no span.
      const tracingConfig = options.dryRun ? null : resolveTracing(cfg.observability.tracing, env);
      if (tracingConfig) {
        // Loaded only when on: OpenTelemetry's SDK and exporter hold ~15 MB a gateway without tracing never uses (#17).
        const { createTracing } = await import('../observability/tracing.js');
        tracing = createTracing(tracingConfig, { logger, metrics, version: instance.version });
        // Closed after the generation's in-flight requests: their spans are flushed.
        closers.push(() => tracing!.shutdown());
      }
      built = await buildStages(runtime, { dryRun: options.dryRun, activity: activity.source });
    } catch (err) {
      await Promise.all(closers.map((c) => c().catch(() => {})));
      throw err;
    }
    const pipeline = createPipeline({
      routes: compileRoutes(cfg),
      stages: built,
      proxy,
      audit: createAudit(runtime, decisions, options.dryRun ? undefined : activity.ring),
      logger,
      publicUrl: cfg.server.public_url,
      jsonRpcError: jsonRpcErrorFor,
      dryRun: options.dryRun,
      tracing,
    });

    const app = new Hono();
    app.get('/.warden/healthz', (c) => c.json({ status: 'ok' }));
    app.get('/.warden/readyz', async (c) => {
      const checks: Record<string, string> = {};
      const reasons: Record<string, string> = {};
      const probe = async (name: string, fn: () => Promise<void>) => {
        try {
          await fn();
          checks[name] = 'ok';
        } catch (err) {
          checks[name] = 'unavailable';
          // The reason code (e.g. openfga_unreachable) says why, without internals.
          if (err instanceof WardenError && err.reason) reasons[name] = err.reason;
          logger.warn({ err, component: name }, 'readiness probe failed');
        }
      };
      await Promise.all([probe('store', () => store.ping()), probe('authz', () => authorizer.ready())]);
      const ok = Object.values(checks).every((v) => v === 'ok');
      return c.json({ status: ok ? 'ready' : 'unavailable', checks, ...(Object.keys(reasons).length ? { reasons } : {}) }, ok ? 200 : 503);
    });
    // One key set: the dev issuer's (when on) and every published assertion key
    // (active, next, retiring) — also when the dev issuer is off.
    const published: object[] = [...(devIssuer?.jwks().keys ?? []), ...built.flatMap((s) => s.jwks?.() ?? [])];
    if (published.length) {
      const jwks = { keys: published };
      app.get('/.warden/jwks.json', (c) => c.json(jwks));
    }
    app.route('/.warden', createLoginRoutes(runtime));
    for (const s of built) {
      if (s.routes) app.route('/.warden', s.routes);
      if (s.wellKnown) app.route('/.well-known', s.wellKnown);
    }
    app.notFound(() => problemResponse(new WardenError('not_found', 'no such Warden endpoint')));

    const adminApp = new Hono();
    // Host, cross-site and token checks before any admin endpoint (see admin-guard.ts).
    adminApp.use(
      '*',
      createAdminGuard({ listen: adminAddress ?? '', hosts: cfg.server.admin_hosts, token: cfg.server.admin_token, metricsAuth: cfg.server.metrics_auth }),
    );
    adminApp.get('/metrics', async (c) => {
      // observability.metrics.enabled: false: nothing is counted, so there is nothing to serve.
      if (!metricsOn) return problemResponse(new WardenError('not_found', 'metrics are off (observability.metrics.enabled: false)'));
      const headers = { 'content-type': 'text/plain; version=0.0.4' };
      if (cluster) {
        try {
          return c.text(await cluster.scrape(), 200, headers);
        } catch (err) {
          // A partial sum would read as a counter reset: no answer is better than a wrong one.
          logger.warn({ err }, 'cluster metrics scrape failed');
          return c.text('metrics of every worker could not be gathered; see the log\n', 503);
        }
      }
      await collect();
      return c.text(metrics.render() + (await processMetrics.render()), 200, headers);
    });
    adminApp.get('/routes', (c) =>
      c.json(
        cfg.routes.map((r) => ({
          name: r.name,
          path: r.match.path,
          methods: r.match.methods ?? null,
          upstream: new URL(r.upstream.url).origin,
          public: Boolean(r.public),
          mcp: Boolean(r.mcp),
          approval: Boolean(r.approval?.length),
          credentials: r.credentials?.kind ?? 'none',
        })),
      ),
    );
    for (const s of built) if (s.admin) adminApp.route('/', s.admin);

    if (shared.store?.store !== store) shared.store = { key: storeKey, store };
    return {
      pipeline,
      app,
      adminApp,
      runtime,
      stages: built,
      inflight: 0,
      async close() {
        await closeStages(built, runtime);
        // The activity ring's last batch goes to the store before the store may close.
        await activity.ring?.close();
        await Promise.all(closers.map((c) => c().catch((err) => logger.warn({ err }, 'close failed'))));
      },
    };
  }

  async function drain(gen: BuiltGeneration, timeoutMs: number) {
    const deadline = Date.now() + timeoutMs;
    while (gen.inflight > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  }

  try {
    current = await build(first);
  } catch (err) {
    agentServer.close();
    adminServer.close();
    throw err;
  }
  loadedNow();
  if (options.clusterMetrics) cluster = workerMetrics(snapshot);
  logger.info({ url, admin: adminUrl, routes: config.routes.length, store: config.store.driver, authz: config.authz.engine }, 'warden listening');

  let reloading = Promise.resolve(true);
  return {
    url,
    adminUrl,
    logger,
    runtime: () => (current as BuiltGeneration).runtime,
    pipeline: () => (current as BuiltGeneration).pipeline,
    reload(newText) {
      reloading = reloading.then(async () => {
        let next: BuiltGeneration;
        try {
          next = await build(load(newText));
        } catch (err) {
          logger.error({ err: err instanceof ConfigError ? { message: err.message } : err }, 'reload failed; keeping the running configuration');
          reloads.failure.inc();
          // The console shows that it failed and the kind of error, never the message (it may quote config values).
          lastLoad = { at: Date.now(), ok: false, kind: 'reload', reason: err instanceof ConfigError ? 'invalid configuration' : 'build failed' };
          return false;
        }
        const old = current as BuiltGeneration;
        current = next;
        reloads.success.inc();
        for (const [path, read] of START_ONLY) {
          const running = read(config);
          const wanted = read(next.runtime.config);
          if (wanted !== running) logger.warn({ path, running, wanted }, `${path} changed: it takes effect at the next start`);
        }
        loadedNow();
        // Store shared across generations must not be closed with the old one.
        logger.info({ routes: next.runtime.config.routes.length }, 'configuration reloaded');
        lastLoad = { at: Date.now(), ok: true, kind: 'reload' };
        void drain(old, old.runtime.config.server.shutdown_timeout).then(() => old.close());
        return true;
      });
      return reloading;
    },
    async close() {
      cluster?.close();
      agentServer.drain();
      const gen = current as BuiltGeneration;
      const stopped = Promise.all([new Promise((r) => agentServer.close(r)), new Promise((r) => adminServer.close(r))]);
      agentServer.closeIdleConnections();
      await drain(gen, gen.runtime.config.server.shutdown_timeout);
      agentServer.closeAllConnections();
      adminServer.closeAllConnections();
      await stopped;
      await gen.close();
      if (shared.store) await shared.store.store.close().catch(() => {});
      current = null;
    },
  };
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, expired]).finally(() => clearTimeout(timer));
}

export type { Config };
