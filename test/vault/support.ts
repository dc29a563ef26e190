/**
 * Test peers for the vault: the real oidc-provider as the upstream OAuth
 * provider (code + PKCE, rotating refresh tokens), and a small counting relay in
 * front of its token endpoint. The relay only forwards; it lets a test count
 * refresh grants and make one answer slow, failing or hanging, or drop its
 * expires_in — the provider itself still decides every grant.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startOidcProvider, type OidcTestProvider, type StartOidcProviderOptions } from '../support/oidc.js';

/** What the relay should do with upcoming token requests of one grant type. */
export interface RelayFault {
  grant: 'refresh_token' | 'authorization_code' | 'any';
  mode: 'delay' | 'error' | 'hang' | 'no_expiry';
  /** For `delay`: how long before forwarding. */
  delayMs?: number;
  /** How many requests this applies to; default 1. */
  times?: number;
  /** Extra response headers for `error` (e.g. Retry-After). */
  headers?: Record<string, string>;
}

/** A relay in front of the provider's token endpoint. */
export interface TokenRelay {
  /** URL to configure as `token_url`. */
  tokenUrl: string;
  /** Token requests seen, by grant type. */
  counts(): Record<string, number>;
  /** Refresh grants the provider answered 200 to. */
  successfulRefreshes(): number;
  reset(): void;
  fault(fault: RelayFault): void;
  close(): Promise<void>;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Start a relay that forwards `POST /token` to `upstreamTokenUrl`. */
export async function startTokenRelay(upstreamTokenUrl: string): Promise<TokenRelay> {
  let counts: Record<string, number> = {};
  let okRefreshes = 0;
  const faults: Array<RelayFault & { left: number }> = [];
  const hanging = new Set<ServerResponse>();

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const grant = new URLSearchParams(body.toString('utf8')).get('grant_type') ?? 'none';
    counts[grant] = (counts[grant] ?? 0) + 1;
    const fault = faults.find((f) => f.left > 0 && (f.grant === 'any' || f.grant === grant));
    if (fault) {
      fault.left -= 1;
      if (fault.mode === 'hang') {
        hanging.add(res);
        return;
      }
      if (fault.mode === 'error') {
        res.writeHead(503, { 'content-type': 'application/json', ...(fault.headers ?? {}) }).end('{"error":"temporarily_unavailable"}');
        return;
      }
      await new Promise((r) => setTimeout(r, fault.delayMs ?? 1000));
    }
    const headers: Record<string, string> = {};
    for (const name of ['authorization', 'content-type', 'accept']) {
      const v = req.headers[name];
      if (typeof v === 'string') headers[name] = v;
    }
    const upstream = await fetch(upstreamTokenUrl, { method: 'POST', headers, body, signal: AbortSignal.timeout(15_000) });
    let text = await upstream.text();
    if (fault?.mode === 'no_expiry' && upstream.status === 200) {
      // The provider's own answer without its expires_in (RFC 6749 §5.1: only RECOMMENDED).
      const { expires_in: _dropped, ...rest } = JSON.parse(text) as Record<string, unknown>;
      text = JSON.stringify(rest);
    }
    if (grant === 'refresh_token' && upstream.status === 200) okRefreshes += 1;
    res.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json', 'cache-control': 'no-store' }).end(text);
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: Error) => {
      if (!res.headersSent) res.writeHead(502).end(String(err.message));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    tokenUrl: `http://127.0.0.1:${port}/token`,
    counts: () => ({ ...counts }),
    successfulRefreshes: () => okRefreshes,
    reset() {
      counts = {};
      okRefreshes = 0;
      faults.length = 0;
    },
    fault(fault) {
      faults.push({ ...fault, left: fault.times ?? 1 });
    },
    async close() {
      for (const res of hanging) res.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** The upstream provider with a `warden-vault` client whose redirect URIs are given. */
export interface VaultProvider {
  op: OidcTestProvider;
  relay: TokenRelay;
  clientId: string;
  clientSecret: string;
  close(): Promise<void>;
}

/** Start oidc-provider (rotating refresh tokens) plus a relay for its token endpoint. */
export async function startVaultProvider(
  options: { redirectUris: string[]; accessTokenTtl?: number; defaultAccountId?: string } & Partial<StartOidcProviderOptions>,
): Promise<VaultProvider> {
  const clientSecret = 'vault-client-secret-' + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  const { redirectUris, ...rest } = options;
  const op = await startOidcProvider({
    refreshTokens: true,
    accessTokenTtl: options.accessTokenTtl ?? 600,
    ...rest,
    clients: [
      {
        client_id: 'warden-vault',
        client_secret: clientSecret,
        redirect_uris: redirectUris,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
      },
      ...(rest.clients ?? []),
    ],
  });
  const relay = await startTokenRelay(`${op.issuer}/token`);
  return {
    op,
    relay,
    clientId: 'warden-vault',
    clientSecret,
    async close() {
      await relay.close();
      await op.stop();
    },
  };
}

/** A round-robin HTTP balancer in front of several Warden instances (their shared public URL). */
export interface Balancer {
  url: string;
  setTargets(urls: string[]): void;
  /**
   * Answer the next request whose path starts with `pathPrefix` itself (204,
   * nothing forwarded) and resolve with its full URL — a browser's request
   * captured before Warden sees it, even when it is the target of a redirect.
   */
  captureNext(pathPrefix: string): Promise<string>;
  close(): Promise<void>;
}

/** Start the balancer first (so its URL can be the providers' redirect URI), then set targets. */
export async function startBalancer(): Promise<Balancer> {
  let targets: URL[] = [];
  let next = 0;
  let capture: { prefix: string; resolve: (url: string) => void } | null = null;
  const { request } = await import('node:http');
  const server = createServer((req, res) => {
    if (targets.length === 0) {
      res.writeHead(503).end('no targets');
      return;
    }
    if (capture && (req.url ?? '').startsWith(capture.prefix)) {
      capture.resolve(`http://${req.headers.host}${req.url}`);
      capture = null;
      res.writeHead(204).end();
      return;
    }
    const target = targets[next++ % targets.length];
    const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502).end('balancer: upstream error');
      else res.destroy();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    setTargets(urls) {
      targets = urls.map((u) => new URL(u));
    },
    captureNext(pathPrefix) {
      return new Promise((resolve) => {
        capture = { prefix: pathPrefix, resolve };
      });
    },
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
