/**
 * Starts a real Warden in-process from gateway.yaml text, on free loopback
 * ports, with its logs captured, and mints dev-issuer tokens for it.
 *
 * Several instances that must accept each other's tokens (scale-out tests)
 * need the same `dataDir` and an explicit `server.public_url` in their config.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startGateway, type Gateway } from '../../src/gateway/gateway.js';
import { captureLogs } from './logs.js';
import { startUpstream, type Upstream } from './upstream.js';
import { loadDevIssuer, type DevIssuer } from '../../src/identity/dev-issuer.js';

/** Repository root: relative paths in test configs (policies/…) resolve here. */
export const REPO_ROOT = resolve(import.meta.dirname, '../..');

export interface WardenOptions {
  /** gateway.yaml text. `server.listen`/`admin_listen` are overridden with free ports. */
  config: string;
  /** Extra environment for `${VAR}` substitution (merged over process.env). */
  env?: Record<string, string>;
  /** Data dir (dev issuer key); default a fresh temp dir removed on close. */
  dataDir?: string;
  baseDir?: string;
  /** Log level (default debug so tests can grep everything Warden says). */
  logLevel?: string;
}

export interface WardenHandle {
  readonly url: string;
  readonly adminUrl: string;
  readonly gateway: Gateway;
  readonly dataDir: string;
  /** A dev-issuer access token (identity.dev_issuer must be true). */
  token(agent: string, user?: string | null, scopes?: string[], claims?: Record<string, unknown>, ttlSeconds?: number): Promise<string>;
  /** A dev-issuer token for one MCP route (RFC 8707: `aud` = the route's resource, `<url><path>`). */
  mcpToken(path: string, agent: string, user?: string | null, scopes?: string[]): Promise<string>;
  /** Everything logged so far, one JSON object per line. */
  logs(): string;
  /** Parsed audit records (`audit: true`). */
  audits(): Array<Record<string, unknown>>;
  reload(configText?: string): Promise<boolean>;
  close(): Promise<void>;
}

/** Start Warden for a test. Always `close()` it (afterAll/finally). */
export async function startWarden(options: WardenOptions): Promise<WardenHandle> {
  const ownDir = !options.dataDir;
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'warden-test-'));
  const env = { ...process.env, ...options.env, WARDEN_DATA_DIR: dataDir };
  const { logger, lines } = captureLogs(options.logLevel ?? 'debug');
  const gateway = await startGateway({
    configText: options.config,
    baseDir: options.baseDir ?? REPO_ROOT,
    env,
    logger,
    listen: '127.0.0.1:0',
    adminListen: '127.0.0.1:0',
  });
  let issuer: DevIssuer | undefined;
  return {
    url: gateway.url,
    adminUrl: gateway.adminUrl as string,
    gateway,
    dataDir,
    async token(agent, user = null, scopes = [], claims, ttlSeconds = 3600) {
      issuer ??= await loadDevIssuer({ dataDir, publicUrl: gateway.runtime().publicUrl });
      return issuer.issue({ agent, user, scopes, ttlSeconds, claims });
    },
    async mcpToken(path, agent, user = null, scopes = []) {
      issuer ??= await loadDevIssuer({ dataDir, publicUrl: gateway.runtime().publicUrl });
      return issuer.issue({ agent, user, scopes, resource: `${gateway.runtime().publicUrl.replace(/\/+$/, '')}${path}` });
    },
    logs: () => lines.join(''),
    audits: () =>
      lines
        .join('')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>)
        .filter((r) => r.audit === true),
    reload: (text) => gateway.reload(text),
    async close() {
      await gateway.close();
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * A Warden in front of a fresh recording upstream, for the many tests that
 * need just that: `config` receives the upstream's URL. If Warden does not
 * start, the upstream is closed before the error is thrown.
 */
export async function startWardenWithUpstream(
  config: (upstreamUrl: string) => string,
  options: Omit<WardenOptions, 'config'> = {},
): Promise<{ warden: WardenHandle; upstream: Upstream }> {
  const upstream = await startUpstream();
  try {
    return { warden: await startWarden({ ...options, config: config(upstream.url) }), upstream };
  } catch (err) {
    await upstream.close();
    throw err;
  }
}

/** Close test servers in the order given (Warden before what it talks to), skipping any that never started. */
export async function closeAll(...servers: Array<{ close(): Promise<unknown> } | undefined>): Promise<void> {
  for (const server of servers) await server?.close();
}
