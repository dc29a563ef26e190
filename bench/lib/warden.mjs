/**
 * Everything the Warden variants need: the built CLI, a gateway.yaml per
 * variant, policies, dev-issuer tokens, Redis with a pre-seeded vault
 * connection, and a real OpenFGA server with the same model and tuples.
 */

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, existsSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { freePort, waitForHttp, sleep } from './system.mjs';
import { findOpenFgaBinary, openFgaRunArgs, OPENFGA_VERSION } from '../../scripts/openfga.mjs';

export const BENCH_USER = 'bench';
export const BENCH_AGENT = 'bench-agent';
/** The upstream token the vault hands out for the bench user (the upstream echoes it at /items/auth). */
export const VAULT_TOKEN = 'vault-token-for-bench';
const KEY_PREFIX = 'wbench:';
/** Tuples per write while loading the bench store (the server is started allowing this many). */
const TUPLES_PER_WRITE = 1_000;

export const MODEL_DSL = `model
  schema 1.1

type user

type item
  relations
    define owner: [user]
    define can_read: [user] or owner
`;

export const TUPLES = [
  { user: `user:${BENCH_USER}`, relation: 'owner', object: 'item:42' },
  { user: `user:${BENCH_USER}`, relation: 'can_read', object: 'item:auth' },
  { user: `user:${BENCH_USER}`, relation: 'can_read', object: 'item:identity' },
];

/** Make sure `dist/src/cli.js` exists (build with tsc when missing or when asked). */
export function ensureBuilt(repo, dist, { build = false, log = console.error } = {}) {
  const cli = join(dist, 'src', 'cli.js');
  if (existsSync(cli) && !build) return executable(cli);
  log('bench: building Warden (tsc -p tsconfig.build.json)');
  const args = ['tsc', '-p', 'tsconfig.build.json'];
  // A private outDir keeps a bench build from racing other builds of dist/.
  if (dist !== join(repo, 'dist')) args.push('--outDir', dist, '--tsBuildInfoFile', join(dist, '.tsbuildinfo'));
  const r = spawnSync('npx', args, { cwd: repo, stdio: 'inherit' });
  if (!existsSync(cli)) throw new Error(`build failed (tsc exit ${r.status}): ${cli} is missing`);
  if (r.status !== 0) log(`bench: tsc reported errors (exit ${r.status}); using the emitted output`);
  return executable(cli);
}

/** The bin runs as a file (its shebang gives node Warden's flags): executable, as `npm install` and `npm run build` leave it. */
function executable(cli) {
  chmodSync(cli, statSync(cli).mode | 0o111);
  return cli;
}

/** Write policies/ (model and tuples) for the embedded engine. */
export function writePolicies(dir) {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.fga'), MODEL_DSL);
  writeFileSync(join(dir, 'tuples.yaml'), TUPLES.map((t) => `- { user: "${t.user}", relation: ${t.relation}, object: "${t.object}" }`).join('\n') + '\n');
}

/**
 * policies/ with `n` generated tuples of the sample policies' shape (bench/gen-tuples.mjs) for the
 * embedded engine at size, plus the bench user's grants the probe needs (`doc:auth`, `doc:identity`).
 * Returns the directory name relative to `root`.
 */
export async function writeBigPolicies(root, n) {
  const { DOCS_MODEL_DSL, writeTuples } = await import('../gen-tuples.mjs');
  const name = `policies-${n}`;
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'model.fga'), DOCS_MODEL_DSL);
  const file = join(dir, 'tuples.yaml');
  await writeTuples(file, n - 2);
  appendFileSync(
    file,
    `- { user: "user:${BENCH_USER}", relation: viewer, object: "doc:auth" }\n- { user: "user:${BENCH_USER}", relation: viewer, object: "doc:identity" }\n`,
  );
  return name;
}

/**
 * gateway.yaml for a row of bench/lib/variants.mjs: its `warden` options on `port`, with the run's
 * upstream, Redis, vault key and OpenFGA; `workDir` holds a decision log, `bigPolicies` the generated
 * tuples by count, `keyPrefix` the store prefix of an old build.
 */
export function variantYaml(v, { port, upstreamPort, redisUrl, vaultKey, openfga, workDir, bigPolicies, keyPrefix }) {
  const w = v.warden;
  return wardenYaml({
    port,
    upstreamPort,
    level: w.level,
    tokenCache: w.tokenCache !== false,
    authz: w.authz,
    openfga,
    cacheTtl: w.cacheTtl,
    redisUrl: w.redis ? redisUrl : undefined,
    vaultKey: w.level >= 3 ? vaultKey : undefined,
    mcp: w.mcp,
    workers: w.workers ?? 1,
    limits: w.limits,
    assertion: w.assertion,
    manyRoutes: w.manyRoutes,
    decisionsPath: w.decisions ? join(workDir, `decisions-${v.id}.jsonl`) : undefined,
    tracing: w.tracing,
    metricsOff: w.metricsOff,
    ...(w.tuples ? { policies: bigPolicies.get(w.tuples), checkType: 'doc' } : {}),
    ...(keyPrefix ? { keyPrefix } : {}),
  });
}

/**
 * gateway.yaml for one Warden variant.
 * level: 0 public, 1 +JWT, 2 +check, 3 +vault; mcp: the MCP route (G4).
 */
export function wardenYaml({
  port,
  upstreamPort,
  level,
  tokenCache = true,
  authz = 'embedded',
  openfga,
  cacheTtl = '5s',
  redisUrl,
  vaultKey,
  mcp = false,
  mcpKeepalive,
  workers = 1,
  limits = false,
  assertion,
  manyRoutes,
  decisionsPath,
  tracing,
  metricsOff = false,
  policies = 'policies',
  checkType = 'item',
  keyPrefix = KEY_PREFIX,
}) {
  const store = redisUrl ? `store: { driver: redis, url: "${redisUrl}", key_prefix: "${keyPrefix}" }` : 'store: { driver: memory }';
  const authzBlock =
    authz === 'openfga'
      ? `authz:\n  engine: openfga\n  model: policies/model.fga\n  openfga: { api_url: "${openfga.apiUrl}", store_id: "${openfga.storeId}", model_id: "${openfga.modelId}" }\n  cache_ttl: ${cacheTtl}`
      : `authz:\n  engine: embedded\n  model: ${policies}/model.fga\n  tuples: ${policies}/tuples.yaml\n  cache_ttl: ${cacheTtl}`;
  const vault = vaultKey
    ? `vault:\n  keys: [{ id: k1, key: "${vaultKey}" }]\n  providers:\n    bench:\n      authorization_url: http://127.0.0.1:9/authorize\n      token_url: http://127.0.0.1:9/token\n      client_id: bench\n      scopes: []`
    : '';
  const check = `[{ user: "user:{user}", relation: can_read, object: "${checkType}:{path.id}" }]`;
  let policy;
  if (level === 0) policy = '    public: true';
  else if (level === 1) policy = '    authorize: []';
  else policy = `    authorize: ${check}`;
  if (level >= 3) policy += '\n    credentials: { vault: bench }';
  // G3L: a rate limit and a budget that never refuse during a run, so every request pays for both decisions.
  if (limits) policy += '\n    rate_limit: { requests: 1000000000, per: 1h }\n    budget: { key: "{user}", amount: 1, max: 1000000000000, per: 1m }';
  // G5: a signed identity assertion on every request (per_assertion reuses one per principal and route; per_request signs each).
  if (assertion) policy += '\n    assertion: true';
  let routes = mcp
    ? `  - name: mcp
    match: { path: /mcp }
    upstream: { url: "http://127.0.0.1:${upstreamPort}/mcp" }
    authorize: []
    mcp:
      tools:
        read_file:
          authorize: [{ user: "user:{user}", relation: can_read, object: "item:{args.id}" }]
          credentials: { vault: bench }${mcpKeepalive === undefined ? '' : `\n      keepalive: ${mcpKeepalive}`}`
    : `  - name: api
    match: { path: "/api/items/:id" }
    upstream: { url: "http://127.0.0.1:${upstreamPort}", strip_prefix: /api }
${policy}`;
  // G0-2k*: 1,999 other public routes (distinct literal prefixes, one :param each) before or after the measured one.
  if (manyRoutes) {
    let filler = '';
    for (let i = 0; i < 1999; i++)
      filler += `  - name: svc${i}\n    match: { path: "/svc${i}/items/:id" }\n    upstream: { url: "http://127.0.0.1:${upstreamPort}", strip_prefix: /svc${i} }\n    public: true\n`;
    routes = manyRoutes === 'last' ? filler + routes : routes + '\n' + filler;
  }
  return `# generated by bench/run.mjs
server:
  listen: 127.0.0.1:${port}
  public_url: http://127.0.0.1:${port}
  admin_listen: null
  workers: ${workers}
${store}
identity:
  dev_issuer: true
  token_cache_size: ${tokenCache ? 10000 : 0}${assertion ? `\n  assertion: { jti: ${assertion} }` : ''}
${authzBlock}
${vault}${decisionsPath ? `\naudit:\n  decisions: { sink: file, path: "${decisionsPath}" }` : ''}${tracing || metricsOff ? '\nobservability:' : ''}${
    // G3T*: OpenTelemetry traces exported over OTLP/HTTP to the upstream nginx (a sink that accepts every export).
    tracing ? `\n  tracing: { endpoint: "http://127.0.0.1:${upstreamPort}/v1/traces", sampling: ${tracing.sampling}, flush_interval: 1s }` : ''
  }${
    // G3m0: metrics off (observability.metrics.enabled: false), to measure what metrics cost.
    metricsOff ? '\n  metrics: { enabled: false }' : ''
  }
routes:
${routes}
`;
}

/** Mint a dev-issuer token for the bench agent acting for the bench user (for an MCP route: bound to its resource, RFC 8707). */
export function mintToken(cli, yamlFile, dataDir, route) {
  const args = [cli, 'token', '--agent', BENCH_AGENT, '--user', BENCH_USER, '--ttl', '4h', '-c', yamlFile, ...(route ? ['--route', route] : [])];
  const r = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    env: { ...process.env, WARDEN_DATA_DIR: dataDir, WARDEN_LOG_LEVEL: 'warn' },
  });
  if (r.status !== 0) throw new Error(`warden token failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** A fresh vault key (base64 of 32 bytes), like `warden keygen`. */
/**
 * The environment a Warden row starts with: its data directory, development mode, and the default log level
 * (info: one audit line per request) unless the row sets its own.
 */
export function wardenEnv(v, dataDir) {
  const env = { ...process.env, WARDEN_DATA_DIR: dataDir, NODE_ENV: 'development' };
  delete env.WARDEN_LOG_LEVEL;
  if (v.logLevel) env.WARDEN_LOG_LEVEL = v.logLevel;
  return env;
}

export const newVaultKey = () => randomBytes(32).toString('base64');

/** Start redis-server (persistence off) on a free port, pinned to `cpus`. */
export async function startRedis(tracker, workDir, cpus) {
  const port = await freePort();
  const dir = join(workDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const proc = tracker.start(
    'redis',
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning'],
    {
      cpus,
      logFile: join(workDir, 'redis.log'),
    },
  );
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const r = spawnSync('redis-cli', ['-p', String(port), 'ping'], { encoding: 'utf8' });
    if (r.stdout?.trim() === 'PONG') return { url: `redis://127.0.0.1:${port}/0`, port, proc };
    if (proc.exitInfo) break;
    await sleep(100);
  }
  await proc.stop();
  throw new Error('redis-server did not answer PING');
}

/** Store the bench user's connection through Warden's own repository (sealed with `vaultKey`). */
export async function seedVault(dist, redisUrl, vaultKey, keyPrefix = KEY_PREFIX) {
  const mod = (p) => import(pathToFileURL(join(dist, 'src', p)).href);
  const [{ createRedisStore }, { createVaultCipher }, { createConnectionRepository }, { createLogger }] = await Promise.all([
    mod('store/redis.js'),
    mod('vault/crypto.js'),
    mod('vault/records.js'),
    mod('observability/logger.js'),
  ]);
  const logger = createLogger({ destination: { write: () => {} } });
  const store = await createRedisStore({ url: redisUrl, keyPrefix, timeoutMs: 5_000, logger });
  try {
    const repo = createConnectionRepository(store, createVaultCipher([{ id: 'k1', key: vaultKey }]));
    await repo.put({ user: BENCH_USER, provider: 'bench', accessToken: VAULT_TOKEN, scopes: [] });
    const back = await repo.get(BENCH_USER, 'bench');
    if (back?.accessToken !== VAULT_TOKEN) throw new Error('vault seed did not read back');
  } finally {
    await store.close();
  }
}

async function fgaApi(apiUrl, method, path, body) {
  const res = await fetch(apiUrl + path, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`OpenFGA ${method} ${path}: ${res.status} ${text.slice(0, 500)}`);
  return text ? JSON.parse(text) : {};
}

/**
 * Start OpenFGA pinned to `cpus` on a SQLite datastore (indexed, as a production database is: the
 * memory datastore scans every tuple of the store on each read and each write, so 100k tuples would
 * measure that scan), create a store with the bench model and tuples.
 * `objects` > 0 also writes `user:bench owner item:i` for every i < objects (G2m, F0).
 */
export async function startOpenFga(tracker, workDir, cpus, { objects = 0 } = {}) {
  const bin = findOpenFgaBinary();
  if (!bin)
    throw new Error(`openfga binary not found: GOTOOLCHAIN=local go install github.com/openfga/openfga/cmd/openfga@${OPENFGA_VERSION} (or set OPENFGA_BIN)`);
  const [http, grpc] = [await freePort(), await freePort()];
  const apiUrl = `http://127.0.0.1:${http}`;
  const dir = join(workDir, 'openfga');
  mkdirSync(dir, { recursive: true });
  // A scratch database: durability is not what is measured.
  const datastore = ['--datastore-engine', 'sqlite', '--datastore-uri', `file:${join(dir, 'openfga.db')}?_pragma=synchronous(OFF)`];
  const migrate = spawnSync(bin, ['migrate', ...datastore], { encoding: 'utf8', timeout: 60_000 });
  if (migrate.status !== 0) throw new Error(`openfga migrate failed: ${(migrate.stderr || migrate.stdout || '').slice(0, 500)}`);
  // Bigger writes load 100k tuples in a few seconds instead of a minute and a half at the default 100.
  const extra = ['--max-tuples-per-write', String(TUPLES_PER_WRITE), '--request-timeout', '30s'];
  const proc = tracker.start('openfga', bin, openFgaRunArgs({ http, grpc, datastore, extra }), { cpus, logFile: join(workDir, 'openfga.log') });
  await waitForHttp(`${apiUrl}/healthz`, { timeoutMs: 30_000, proc });
  const { transformer } = await import('@openfga/syntax-transformer');
  const model = transformer.transformDSLToJSONObject(MODEL_DSL);
  const store = await fgaApi(apiUrl, 'POST', '/stores', { name: 'warden-bench' });
  const m = await fgaApi(apiUrl, 'POST', `/stores/${store.id}/authorization-models`, {
    schema_version: model.schema_version,
    type_definitions: model.type_definitions,
    conditions: model.conditions ?? {},
  });
  await fgaApi(apiUrl, 'POST', `/stores/${store.id}/write`, { authorization_model_id: m.authorization_model_id, writes: { tuple_keys: TUPLES } });
  // item:42 already has its owner tuple; two writes in flight at a time.
  const chunks = [];
  for (let i = 0; i < objects; i += TUPLES_PER_WRITE) {
    const keys = [];
    for (let j = i; j < Math.min(i + TUPLES_PER_WRITE, objects); j++)
      if (j !== 42) keys.push({ user: `user:${BENCH_USER}`, relation: 'owner', object: `item:${j}` });
    chunks.push(keys);
  }
  const writer = async () => {
    for (let keys = chunks.pop(); keys; keys = chunks.pop())
      await fgaApi(apiUrl, 'POST', `/stores/${store.id}/write`, { authorization_model_id: m.authorization_model_id, writes: { tuple_keys: keys } });
  };
  await Promise.all([writer(), writer()]);
  return { apiUrl, storeId: store.id, modelId: m.authorization_model_id, proc };
}
