/**
 * "Notes Cloud", the demo's upstream OAuth 2.0 authorization server behind
 * `npm start`: authorization code with PKCE (S256), a consent page where you
 * pick the account to link, and a token endpoint with rotating refresh tokens.
 * Warden's vault links an account here and then injects that account's token
 * into requests to the notes API. Memory only, loopback only: a demo, not a
 * production authorization server.
 */

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

/** A registered OAuth client (Warden's vault). */
export interface DemoClient {
  clientId: string;
  clientSecret: string;
  redirectUris: string[];
}

export interface DemoOAuthProviderOptions {
  /** Listen port on 127.0.0.1 (0 = any free port). */
  port?: number;
  clients: DemoClient[];
  /** Accounts offered on the consent page. */
  accounts?: string[];
  /** Access token lifetime in seconds (default 300). */
  accessTokenTtl?: number;
}

export interface DemoOAuthProvider {
  readonly url: string;
  /** Which account an access token belongs to (undefined for unknown or expired tokens). */
  accountOf(accessToken: string): string | undefined;
  close(): Promise<void>;
}

interface PendingCode {
  clientId: string;
  redirectUri: string;
  challenge: string;
  account: string;
  scope: string;
  expiresAt: number;
}

const CODE_TTL_MS = 60_000;
const REFRESH_TTL_MS = 24 * 3_600_000;
const MAX_BODY = 16_384;

const token = (prefix: string) => `${prefix}_${randomBytes(24).toString('base64url')}`;
const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

async function readForm(req: IncomingMessage): Promise<URLSearchParams> {
  let size = 0;
  const chunks: Buffer[] = [];
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new Error('body too large');
    chunks.push(chunk as Buffer);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

/** Start the provider on loopback. */
export async function startDemoOAuthProvider(options: DemoOAuthProviderOptions): Promise<DemoOAuthProvider> {
  const clients = new Map(options.clients.map((c) => [c.clientId, c]));
  const accounts = options.accounts ?? ['alice', 'bob'];
  const accessTtlMs = (options.accessTokenTtl ?? 300) * 1000;
  const codes = new Map<string, PendingCode>();
  const accessTokens = new Map<string, { account: string; expiresAt: number }>();
  const refreshTokens = new Map<string, { clientId: string; account: string; scope: string; expiresAt: number }>();

  const json = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) }).end(text);
  };
  const oauthError = (res: ServerResponse, status: number, error: string, description: string) => json(res, status, { error, error_description: description });
  const html = (res: ServerResponse, status: number, title: string, body: string): void =>
    void res
      .writeHead(status, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
        'x-frame-options': 'DENY',
        // No form-action: Chromium applies it to the redirect back to the client as well.
        'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
      })
      .end(
        `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>` +
          '<style>body{font:16px system-ui;max-width:34em;margin:3em auto;padding:0 1em}button{font:inherit;padding:.4em 1em;margin:.2em}</style>' +
          `</head><body><h1 id="title">${escapeHtml(title)}</h1>${body}</body></html>`,
      );

  /** The authorization request, checked before anything is shown (redirect_uri must be registered exactly). */
  function authorizationRequest(params: URLSearchParams): { ok: true; client: DemoClient; redirectUri: string } | { ok: false; message: string } {
    const client = clients.get(params.get('client_id') ?? '');
    if (!client) return { ok: false, message: 'unknown client_id' };
    const redirectUri = params.get('redirect_uri') ?? '';
    if (!client.redirectUris.includes(redirectUri)) return { ok: false, message: 'redirect_uri is not registered for this client' };
    return { ok: true, client, redirectUri };
  }

  function redirectWith(res: ServerResponse, redirectUri: string, params: Record<string, string>): void {
    const target = new URL(redirectUri);
    for (const [k, v] of Object.entries(params)) target.searchParams.set(k, v);
    res.writeHead(302, { location: target.toString(), 'cache-control': 'no-store' }).end();
  }

  async function authorize(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const params = req.method === 'POST' ? await readForm(req) : url.searchParams;
    const checked = authorizationRequest(params);
    if (!checked.ok) return html(res, 400, 'Invalid request', `<p>${escapeHtml(checked.message)}</p>`);
    const state = params.get('state') ?? '';
    if (params.get('response_type') !== 'code') return redirectWith(res, checked.redirectUri, { error: 'unsupported_response_type', state });
    const challenge = params.get('code_challenge') ?? '';
    if (params.get('code_challenge_method') !== 'S256' || !/^[A-Za-z0-9_-]{43}$/.test(challenge)) {
      return redirectWith(res, checked.redirectUri, { error: 'invalid_request', error_description: 'PKCE with S256 is required', state });
    }
    const scope = params.get('scope') ?? '';
    if (req.method === 'GET') {
      const hidden = ['response_type', 'client_id', 'redirect_uri', 'state', 'code_challenge', 'code_challenge_method', 'scope']
        .map((k) => `<input type="hidden" name="${k}" value="${escapeHtml(params.get(k) ?? '')}">`)
        .join('');
      const buttons = accounts.map((a) => `<button name="account" value="${escapeHtml(a)}">Link as ${escapeHtml(a)}</button>`).join('');
      return html(
        res,
        200,
        'Notes Cloud: link your account',
        `<p><b>${escapeHtml(checked.client.clientId)}</b> asks for access to your Notes Cloud account (scope: <code>${escapeHtml(scope || '(none)')}</code>).</p>` +
          `<form method="post" action="/authorize">${hidden}${buttons}<button name="deny" value="1">Cancel</button></form>`,
      );
    }
    if (params.get('deny')) return redirectWith(res, checked.redirectUri, { error: 'access_denied', state });
    const account = params.get('account') ?? '';
    if (!accounts.includes(account)) return html(res, 400, 'Invalid request', '<p>unknown account</p>');
    const code = token('nc_code');
    codes.set(code, { clientId: checked.client.clientId, redirectUri: checked.redirectUri, challenge, account, scope, expiresAt: Date.now() + CODE_TTL_MS });
    redirectWith(res, checked.redirectUri, { code, state });
  }

  /** Client authentication: HTTP Basic (RFC 6749 §2.3.1) or client_secret in the form. */
  function authenticateClient(req: IncomingMessage, form: URLSearchParams): DemoClient | null {
    let id = form.get('client_id') ?? '';
    let secret = form.get('client_secret') ?? '';
    const basic = /^Basic ([A-Za-z0-9+/=]+)$/.exec(req.headers.authorization ?? '');
    if (basic) {
      const decoded = Buffer.from(basic[1], 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      id = decodeURIComponent(decoded.slice(0, colon));
      secret = decodeURIComponent(decoded.slice(colon + 1));
    }
    const client = clients.get(id);
    return client && sameSecret(secret, client.clientSecret) ? client : null;
  }

  function issue(res: ServerResponse, clientId: string, account: string, scope: string): void {
    const access = token('nc_at');
    const refresh = token('nc_rt');
    accessTokens.set(access, { account, expiresAt: Date.now() + accessTtlMs });
    refreshTokens.set(refresh, { clientId, account, scope, expiresAt: Date.now() + REFRESH_TTL_MS });
    json(res, 200, { access_token: access, token_type: 'Bearer', expires_in: accessTtlMs / 1000, refresh_token: refresh, scope });
  }

  async function tokenEndpoint(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (req.method !== 'POST') return oauthError(res, 405, 'invalid_request', 'POST only');
    const form = await readForm(req);
    const client = authenticateClient(req, form);
    if (!client) return oauthError(res, 401, 'invalid_client', 'client authentication failed');
    const grant = form.get('grant_type');
    if (grant === 'authorization_code') {
      const code = codes.get(form.get('code') ?? '');
      codes.delete(form.get('code') ?? ''); // single use, whatever happens next
      if (!code || code.expiresAt < Date.now() || code.clientId !== client.clientId || code.redirectUri !== form.get('redirect_uri')) {
        return oauthError(res, 400, 'invalid_grant', 'unknown, expired or mismatched code');
      }
      const verifier = form.get('code_verifier') ?? '';
      if (createHash('sha256').update(verifier).digest('base64url') !== code.challenge)
        return oauthError(res, 400, 'invalid_grant', 'PKCE verification failed');
      return issue(res, client.clientId, code.account, code.scope);
    }
    if (grant === 'refresh_token') {
      const value = form.get('refresh_token') ?? '';
      const refresh = refreshTokens.get(value);
      refreshTokens.delete(value); // rotation: an old refresh token never works twice
      if (!refresh || refresh.expiresAt < Date.now() || refresh.clientId !== client.clientId)
        return oauthError(res, 400, 'invalid_grant', 'unknown, used or expired refresh token');
      return issue(res, client.clientId, refresh.account, refresh.scope);
    }
    return oauthError(res, 400, 'unsupported_grant_type', 'authorization_code or refresh_token');
  }

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://provider.local');
    const route = url.pathname === '/authorize' ? authorize(req, res, url) : url.pathname === '/token' ? tokenEndpoint(req, res) : null;
    if (!route) return void json(res, 404, { error: 'not_found' });
    route.catch(() => {
      if (!res.headersSent) oauthError(res, 400, 'invalid_request', 'malformed request');
      else res.destroy();
    });
  });
  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    accountOf(accessToken) {
      const t = accessTokens.get(accessToken);
      return t && t.expiresAt > Date.now() ? t.account : undefined;
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
