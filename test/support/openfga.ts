/**
 * A real OpenFGA server for tests: the `openfga` binary from `go install`, on
 * free loopback ports with the memory datastore, or the server named by
 * `OPENFGA_API_URL`. Stores are created over plain HTTP so the helper does not
 * depend on the code under test.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { transformer } from '@openfga/syntax-transformer';
import { freePort, listenerOwnedBy } from './net.js';
import { findOpenFgaBinary, openFgaCandidates, openFgaRunArgs, OPENFGA_VERSION } from '../../scripts/openfga.mjs';

/** A running OpenFGA server. */
export interface OpenFgaServer {
  /** Base URL of the HTTP API, e.g. `http://127.0.0.1:41234`. */
  apiUrl: string;
  /** Process id, or undefined for an external server (`OPENFGA_API_URL`). */
  pid: number | undefined;
  /** Stops the server (SIGCONT first, so a stopped process can exit); no-op for an external server. */
  stop(): Promise<void>;
}

/** Options of `startOpenFga`. */
export interface StartOpenFgaOptions {
  /** Always spawn a private server, even when `OPENFGA_API_URL` is set (fault tests kill it). */
  private?: boolean;
  /** Extra command-line flags, e.g. `['--max-checks-per-batch-check', '10']`. */
  args?: string[];
  /** How long to wait for /healthz; default 30 s. */
  readyTimeoutMs?: number;
}

/** Path of the `openfga` binary: `$OPENFGA_BIN`, `/root/go/bin/openfga`, or `$(go env GOPATH)/bin/openfga`. */
export function openFgaBinary(): string {
  const found = findOpenFgaBinary();
  if (!found) {
    throw new Error(
      `OpenFGA binary not found (looked in ${openFgaCandidates().join(', ')}). Install it with ` +
        `\`GOTOOLCHAIN=local go install github.com/openfga/openfga/cmd/openfga@${OPENFGA_VERSION}\` ` +
        '(npm test runs scripts/test-setup.mjs, which does this) or set OPENFGA_API_URL.',
    );
  }
  return found;
}

async function healthy(apiUrl: string): Promise<boolean> {
  try {
    const res = await fetch(`${apiUrl}/healthz`, { signal: AbortSignal.timeout(1_000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/**
 * Spawn OpenFGA once on `ports` (default: two free ones). 'port-taken' when it
 * could not have its HTTP port: it failed to bind, or another process answers
 * on it (see listenerOwnedBy).
 */
export async function spawnOnce(
  bin: string,
  extra: string[],
  readyTimeoutMs: number,
  ports?: { http: number; grpc: number },
): Promise<OpenFgaServer | 'port-taken'> {
  const { http, grpc } = ports ?? { http: await freePort(), grpc: await freePort() };
  const apiUrl = `http://127.0.0.1:${http}`;
  const child = spawn(bin, openFgaRunArgs({ http, grpc, extra }), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    if (stderr.length < 8_192) stderr += d.toString();
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGCONT');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited(child);
    clearTimeout(timer);
  };
  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      if (/address already in use/i.test(stderr)) return 'port-taken';
      throw new Error(`openfga exited with ${child.exitCode ?? child.signalCode}: ${stderr.slice(0, 2_000)}`);
    }
    if (await healthy(apiUrl)) {
      // The answer may have come from another process that took the port first; and OpenFGA's HTTP
      // gateway calls its gRPC address, so a gRPC port another process took answers through ours.
      const pid = child.pid as number;
      if (listenerOwnedBy(pid, http) !== false && listenerOwnedBy(pid, grpc) !== false) return { apiUrl, pid: child.pid, stop };
      await stop();
      return 'port-taken';
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`openfga did not become healthy on ${apiUrl} within ${readyTimeoutMs} ms: ${stderr.slice(0, 2_000)}`);
}

/**
 * Start OpenFGA (or use `OPENFGA_API_URL`). Resolves once `GET /healthz` is 200.
 * Throws a clear error when the binary is missing.
 */
export async function startOpenFga(options: StartOpenFgaOptions = {}): Promise<OpenFgaServer> {
  const external = process.env.OPENFGA_API_URL;
  if (external && !options.private) {
    const apiUrl = external.replace(/\/+$/, '');
    if (!(await healthy(apiUrl))) throw new Error(`OPENFGA_API_URL=${apiUrl} is not healthy (GET /healthz)`);
    return { apiUrl, pid: undefined, stop: async () => {} };
  }
  const bin = openFgaBinary();
  // Two free ports are picked before the spawn; another process may grab one in
  // between, so a bind failure is retried on new ports.
  for (let attempt = 0; attempt < 3; attempt++) {
    const server = await spawnOnce(bin, options.args ?? [], options.readyTimeoutMs ?? 30_000);
    if (server !== 'port-taken') return server;
  }
  throw new Error('openfga could not bind free loopback ports after 3 attempts');
}

async function api<T>(apiUrl: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${apiUrl}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`OpenFGA ${method} ${path} → ${res.status}: ${text.slice(0, 1_000)}`);
  return (text ? JSON.parse(text) : {}) as T;
}

/** A tuple as the OpenFGA HTTP API takes it. */
export interface HttpTupleKey {
  user: string;
  relation: string;
  object: string;
  condition?: { name: string; context?: Record<string, unknown> };
}

/**
 * Create a store, write `modelJson` (an authorization model in OpenFGA's JSON
 * form: `{schema_version, type_definitions, conditions?}`) and `tuples` (in
 * writes of at most 100). Returns the new ids.
 */
export async function createStoreWithModel(
  apiUrl: string,
  modelJson: Record<string, unknown>,
  tuples: HttpTupleKey[] = [],
  name = 'warden-test',
): Promise<{ storeId: string; modelId: string }> {
  const store = await api<{ id: string }>(apiUrl, 'POST', '/stores', { name });
  const model = await api<{ authorization_model_id: string }>(apiUrl, 'POST', `/stores/${store.id}/authorization-models`, {
    schema_version: modelJson.schema_version ?? '1.1',
    type_definitions: modelJson.type_definitions,
    conditions: modelJson.conditions ?? {},
  });
  for (let i = 0; i < tuples.length; i += 100) {
    await api(apiUrl, 'POST', `/stores/${store.id}/write`, {
      authorization_model_id: model.authorization_model_id,
      writes: { tuple_keys: tuples.slice(i, i + 100) },
    });
  }
  return { storeId: store.id, modelId: model.authorization_model_id };
}

/** Delete a store (best effort; memory stores vanish with the server anyway). */
export async function deleteStore(apiUrl: string, storeId: string): Promise<void> {
  await api(apiUrl, 'DELETE', `/stores/${storeId}`).catch(() => undefined);
}

// ---------------------------------------------------------------- a sample model

/** An OpenFGA DSL model in its JSON form (via @openfga/syntax-transformer). */
export function dslToJson(dsl: string): Record<string, unknown> {
  return transformer.transformDSLToJSONObject(dsl) as unknown as Record<string, unknown>;
}

/**
 * A small model that exercises every rewrite (direct, wildcard, userset,
 * computed, tuple-to-userset, union, exclusion) and two conditions.
 */
export const SAMPLE_DSL = `model
  schema 1.1
type user
type agent
type group
  relations
    define member: [user, group#member]
type folder
  relations
    define owner: [user]
    define viewer: [user, user:*, group#member] or owner
type document
  relations
    define parent: [folder]
    define owner: [user]
    define blocked: [user]
    define editor: [user, user with in_office] or owner
    define viewer: ([user, group#member, user with in_office] or editor or viewer from parent) but not blocked
type tool
  relations
    define can_call: [agent, agent with under_limit]
condition in_office(ip: ipaddress, cidr: string) {
  ip.in_cidr(cidr)
}
condition under_limit(amount: int, limit: int) {
  amount <= limit
}
`;

/** The sample model in OpenFGA's JSON form. */
export function sampleModel(): Record<string, unknown> {
  return dslToJson(SAMPLE_DSL);
}

/** Tuples for the sample model (one with each condition). */
export const SAMPLE_TUPLES: HttpTupleKey[] = [
  { user: 'user:anne', relation: 'member', object: 'group:eng' },
  { user: 'group:eng#member', relation: 'viewer', object: 'document:roadmap' },
  { user: 'user:bob', relation: 'owner', object: 'document:budget' },
  { user: 'folder:shared', relation: 'parent', object: 'document:plan' },
  { user: 'user:*', relation: 'viewer', object: 'folder:shared' },
  { user: 'user:carl', relation: 'blocked', object: 'document:plan' },
  { user: 'user:dana', relation: 'editor', object: 'document:secret', condition: { name: 'in_office', context: { cidr: '10.0.0.0/8' } } },
  { user: 'agent:bot', relation: 'can_call', object: 'tool:refund', condition: { name: 'under_limit', context: { limit: 100 } } },
];
