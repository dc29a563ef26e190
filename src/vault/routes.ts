/**
 * The vault's endpoints under `/.warden`: the linking flow (connect → provider
 * → callback), the user's connection list and revocation, and the RFC 8693
 * exchange endpoint (in `exchange-endpoint.ts`). Browser-facing steps answer
 * with small HTML pages; API steps with problem+json.
 */

import { Hono, type Context } from 'hono';
import { deleteCookie, getCookie } from 'hono/cookie';
import { WardenError } from '../core/errors.js';
import { createOnError } from '../http/problem.js';
import { bearerToken } from '../identity/bearer.js';
import type { Principal } from '../core/principal.js';
import { ProviderError } from './providers.js';
import { beginLinking, stateCookieName } from './begin-link.js';
import { missingScopes, type VaultServices } from './services.js';
import { isSecretShaped, safeEqual } from './tickets.js';
import { createExchangeClients } from './exchange-clients.js';
import { createExchangeHandler } from './exchange-endpoint.js';
import type { SignedInPerson } from '../http/session.js';
import { postForm, sendPage } from '../identity/login/pages.js';

export { stateCookieName } from './begin-link.js';

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}

/** A minimal self-contained page; no scripts, not frameable. */
function page(c: Context, status: 200 | 400 | 403 | 404 | 503, title: string, message: string): Response {
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${escapeHtml(title)}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:4rem auto;padding:0 1rem;color:#222}h1{font-size:1.4rem}</style></head>
<body><main><h1 id="title">${escapeHtml(title)}</h1><p id="message">${escapeHtml(message)}</p></main></body></html>`;
  return c.html(html, status, {
    'Cache-Control': 'no-store',
    'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    'X-Frame-Options': 'DENY',
    'Referrer-Policy': 'no-referrer',
  });
}

/** The principal of the `Authorization: Bearer` token, or `unauthenticated`. */
async function authenticateBearer(v: VaultServices, c: Context): Promise<Principal & { user: string }> {
  const token = bearerToken(c.req.header('authorization'));
  if (token === null) throw new WardenError('unauthenticated', 'a bearer token is required', { reason: 'missing_token' });
  const principal = await v.rt.authenticator.authenticate(token);
  if (principal.resourceBound) {
    // A token bound to MCP resources (RFC 8707) is no token for the user's connections as a whole.
    throw new WardenError('unauthenticated', 'the token was issued for an MCP resource, not for this endpoint', {
      headers: { 'WWW-Authenticate': 'Bearer realm="warden", error="invalid_token", error_description="token audience is an MCP resource"' },
      reason: 'wrong_resource_audience',
    });
  }
  if (principal.user === null) {
    throw new WardenError('forbidden', 'connections belong to users; this token does not act for a user', { reason: 'vault_no_user' });
  }
  return principal as Principal & { user: string };
}

/** Build the Hono app mounted at `/.warden`. */
export function createVaultRoutes(v: VaultServices): Hono {
  const app = new Hono();
  const { rt } = v;
  const secure = v.baseUrl.startsWith('https://');
  const basePath = new URL(v.baseUrl).pathname.replace(/\/+$/, '');
  // Without a vault (no keys, no providers) these endpoints do not exist: 404, never a 500 from an empty vault.
  if (rt.config.vault.keys.length === 0 && Object.keys(rt.config.vault.providers).length === 0) {
    const absent = (c: Context) =>
      c.json(
        { type: 'https://warden.dev/problems/not_found', title: 'Not Found', status: 404, code: 'not_found', detail: 'no token vault is configured' },
        404,
        {
          'content-type': 'application/problem+json',
          'cache-control': 'no-store',
        },
      );
    for (const path of ['/connections', '/connections/*', '/connect/*', '/callback/*']) app.all(path, absent);
  }
  const cookiePath = `${basePath}/.warden/callback`;
  const sessions = rt.sessions;

  /** The person signed in as `user`, or the page to answer instead (sign in first, or a refusal naming both people). */
  async function signedInFor(c: Context, user: string, returnTo: string): Promise<SignedInPerson | Response> {
    if (sessions.mode === null) {
      return page(c, 503, 'Sign-in is not configured', 'Linking an account needs a signed-in person, and this Warden has no identity.login.');
    }
    const person = await sessions.current(c);
    if (!person) {
      c.header('Cache-Control', 'no-store');
      c.header('Referrer-Policy', 'no-referrer');
      return c.redirect(sessions.loginPath(returnTo), 303);
    }
    if (person.sub !== user) return refusedFor(c, person, user);
    return person;
  }

  function refusedFor(c: Context, person: SignedInPerson, linkFor: string): Response {
    const signedInAs = person.sub;
    rt.logger.warn({ user: linkFor, signed_in: signedInAs }, 'vault connect refused: signed in as another person');
    return sendPage(
      c,
      403,
      'This link is for someone else',
      `You are signed in as ${signedInAs}, but this link is for ${linkFor}. Nothing was connected. If you are ${linkFor}, sign out and open the link again.`,
      `<p class="who">Signed in as <strong id="signed-in-as">${escapeHtml(signedInAs)}</strong>; link for <strong id="link-for">${escapeHtml(linkFor)}</strong>.</p>` +
        postForm(`${basePath}/.warden/logout`, { csrf: sessions.csrfToken(person, 'logout') }, 'Sign out', { id: 'logout', secondary: true }),
    );
  }

  app.onError(createOnError(rt.logger, 'vault endpoint'));

  // ---- linking: step 1, the connect link handed out with connection_required.
  // A GET only shows what the link is for (a chat client's link preview fetches
  // it too); the ticket is used up by the signed-in person's POST.
  app.get('/connect/:provider', async (c) => {
    const name = c.req.param('provider');
    const provider = v.providers.get(name);
    if (!provider) return page(c, 404, 'Unknown provider', 'This link names a provider Warden does not know.');
    const ticket = c.req.query('ticket');
    const bound = isSecretShaped(ticket) ? await v.secrets.peekTicket(ticket) : null;
    if (!bound || bound.provider !== name) {
      return page(c, 400, 'Link expired', 'This link was already used or has expired. Ask your agent to try again; it will get a new link.');
    }
    const signedIn = await signedInFor(c, bound.user, `${basePath}/.warden/connect/${name}?ticket=${ticket}`);
    if (signedIn instanceof Response) return signedIn;
    let formOrigin: string;
    try {
      formOrigin = new URL((await provider.endpoints()).authorizationUrl).origin;
    } catch (err) {
      rt.logger.warn({ provider: name, err }, 'vault could not resolve the provider endpoints');
      return page(c, 503, 'Provider unavailable', 'Warden could not reach the provider. Ask your agent to try again later.');
    }
    const details = `<dl><dt>Agent</dt><dd id="agent">${escapeHtml(bound.agent)}</dd><dt>Provider</dt><dd id="provider">${escapeHtml(name)}</dd><dt>Permissions</dt><dd id="scopes">${escapeHtml(bound.scopes.join(' ') || '(none requested)')}</dd><dt>For</dt><dd id="user">${escapeHtml(bound.user)}</dd></dl>`;
    const form = postForm(
      `${basePath}/.warden/connect/${name}`,
      { ticket: ticket as string, csrf: sessions.csrfToken(signedIn, `connect:${name}`) },
      `Connect ${name}`,
      { id: 'confirm' },
    );
    return sendPage(
      c,
      200,
      `Connect your ${name} account?`,
      `The agent ${bound.agent} asks to act with your ${name} account. Continue only if you expected this.`,
      details + form,
      [formOrigin],
    );
  });

  app.post('/connect/:provider', async (c) => {
    const name = c.req.param('provider');
    const provider = v.providers.get(name);
    if (!provider) return page(c, 404, 'Unknown provider', 'This link names a provider Warden does not know.');
    if (!sessions.isSameOriginPost(c)) return page(c, 403, 'Refused', 'Accounts are connected from Warden’s own confirmation page.');
    let form: Record<string, unknown> = {};
    try {
      form = (await c.req.parseBody()) as Record<string, unknown>;
    } catch {
      return page(c, 400, 'Bad request', 'The form could not be read.');
    }
    const ticket = typeof form.ticket === 'string' ? form.ticket : undefined;
    const person = await sessions.current(c);
    if (!person) return page(c, 403, 'Not signed in', 'Your sign-in ended. Open the link your agent gave you again.');
    if (!sessions.checkCsrf(person, `connect:${name}`, form.csrf)) {
      return page(c, 403, 'Refused', 'The form token is missing or wrong; open the link your agent gave you again.');
    }
    const peeked = isSecretShaped(ticket) ? await v.secrets.peekTicket(ticket) : null;
    if (!peeked || peeked.provider !== name) {
      return page(c, 400, 'Link expired', 'This link was already used or has expired. Ask your agent to try again; it will get a new link.');
    }
    if (peeked.user !== person.sub) return refusedFor(c, person, peeked.user);
    const bound = await v.secrets.takeTicket(ticket as string);
    // Checked again on what was taken: only one POST wins, and it must be the ticket's user.
    if (!bound || bound.provider !== name || bound.user !== person.sub) {
      return page(c, 400, 'Link expired', 'This link was already used or has expired. Ask your agent to try again; it will get a new link.');
    }
    let location: string;
    try {
      location = await beginLinking(v, c, { user: bound.user, agent: bound.agent, provider: name, scopes: bound.scopes });
    } catch (err) {
      rt.logger.warn({ provider: name, err }, 'vault could not build the authorization URL');
      return page(c, 503, 'Provider unavailable', 'Warden could not reach the provider. Ask your agent to try again later.');
    }
    rt.logger.info({ provider: name, user: bound.user, agent: bound.agent }, 'vault linking started');
    c.header('Cache-Control', 'no-store');
    c.header('Referrer-Policy', 'no-referrer');
    return c.redirect(location, 303);
  });

  // ---- linking: step 2, the provider sends the browser back
  app.get('/callback/:provider', async (c) => {
    const name = c.req.param('provider');
    const provider = v.providers.get(name);
    if (!provider) return page(c, 404, 'Unknown provider', 'This link names a provider Warden does not know.');
    const state = c.req.query('state');
    const cookie = getCookie(c, stateCookieName(name));
    // The flow only finishes in the browser that started it: the state must match
    // the cookie set by /connect. A mismatch leaves the flow for its real owner.
    if (!isSecretShaped(state) || !cookie || !safeEqual(state, cookie)) {
      rt.logger.warn({ provider: name, has_cookie: Boolean(cookie) }, 'vault callback refused: state does not match this browser');
      return page(c, 400, 'Linking failed', 'This sign-in was not started in this browser. Open the link your agent gave you again, in this browser.');
    }
    const flow = await v.secrets.takeFlow(state);
    deleteCookie(c, stateCookieName(name), { path: cookiePath, secure, httpOnly: true, sameSite: 'Lax' });
    if (!flow || flow.provider !== name) {
      return page(c, 400, 'Linking failed', 'This sign-in has expired or was already used. Ask your agent for a new link.');
    }
    // The browser that finishes must still be signed in as the person the link was for.
    const person = await sessions.current(c);
    if (!person || person.sub !== flow.user) {
      rt.logger.warn({ provider: name, user: flow.user }, 'vault callback refused: not signed in as the ticket’s user');
      return page(c, 403, 'Linking failed', 'This browser is no longer signed in as the person this link was for. Ask your agent for a new link.');
    }
    const providerError = c.req.query('error');
    if (providerError) {
      rt.logger.info({ provider: name, user: flow.user, error: providerError.slice(0, 64) }, 'vault linking refused at the provider');
      return page(c, 400, 'Linking cancelled', `The provider did not grant access (${providerError.slice(0, 64)}).`);
    }
    // RFC 9207: when the provider names itself, it must be the one we sent the user to (mix-up defence).
    const iss = c.req.query('iss');
    if (iss !== undefined && provider.issuer !== undefined && iss.replace(/\/+$/, '') !== provider.issuer.replace(/\/+$/, '')) {
      rt.logger.warn({ provider: name, user: flow.user }, 'vault callback refused: issuer mismatch');
      return page(c, 400, 'Linking failed', 'The answer came from a different provider than the one this sign-in was sent to.');
    }
    const code = c.req.query('code');
    if (!code) return page(c, 400, 'Linking failed', 'The provider did not send an authorization code.');

    let tokens;
    try {
      tokens = await provider.exchangeCode({ code, codeVerifier: flow.codeVerifier, redirectUri: flow.redirectUri, scopes: flow.scopes });
    } catch (err) {
      const transient = err instanceof ProviderError && err.kind === 'transient';
      rt.logger.warn({ provider: name, user: flow.user, err, kind: (err as ProviderError).kind }, 'vault code exchange failed');
      return transient
        ? page(c, 503, 'Provider unavailable', 'The provider did not answer. Ask your agent for a new link and try again later.')
        : page(c, 400, 'Linking failed', 'The provider refused to complete the sign-in. Ask your agent for a new link.');
    }
    const missing = missingScopes(flow.scopes, tokens.scopes);
    if (missing.length > 0) {
      rt.logger.warn({ provider: name, user: flow.user, missing }, 'vault linking granted fewer scopes than required');
      return page(c, 400, 'Not enough access', `The provider did not grant all required permissions (missing: ${missing.join(', ')}).`);
    }
    await v.connections.put({
      user: flow.user,
      provider: name,
      accessToken: tokens.accessToken,
      refreshToken: tokens.refreshToken,
      tokenType: tokens.tokenType,
      expiresAt: tokens.expiresAt,
      scopes: tokens.scopes,
    });
    rt.metrics.inc('warden_vault_links_total', { provider: name });
    rt.logger.info({ provider: name, user: flow.user, agent: flow.agent, scopes: tokens.scopes }, 'vault connection linked');
    return page(c, 200, 'Account connected', `Your ${name} account is connected. You can close this window; your agent can continue.`);
  });

  // ---- the user's connections (authenticated by their agent's token)
  app.get('/connections', async (c) => {
    const principal = await authenticateBearer(v, c);
    const list = await v.connections.list(principal.user);
    const now = Date.now();
    const connections = list.map((conn) => ({
      provider: conn.provider,
      scopes: conn.scopes,
      status:
        conn.status === 'active' && conn.expiresAt !== undefined && conn.expiresAt !== null && conn.expiresAt <= now && !conn.refreshToken
          ? 'expired'
          : conn.status,
      expires_at: conn.expiresAt ? new Date(conn.expiresAt).toISOString() : null,
      linked_at: new Date(conn.createdAt).toISOString(),
    }));
    c.header('Cache-Control', 'no-store');
    return c.json({ connections });
  });

  app.delete('/connections/:provider', async (c) => {
    const principal = await authenticateBearer(v, c);
    const name = c.req.param('provider');
    const conn = await v.connections.get(principal.user, name);
    if (!conn) throw new WardenError('not_found', `no ${name} connection`, { reason: 'vault_no_connection' });
    await v.connections.delete(principal.user, name);
    rt.logger.info({ provider: name, user: principal.user, agent: principal.agent }, 'vault connection revoked');
    // Best effort at the provider: the local record is already gone, which is what protects the user.
    const provider = v.providers.get(name);
    if (provider) {
      const token = conn.refreshToken ?? conn.accessToken;
      await provider.revoke(token, conn.refreshToken ? 'refresh_token' : 'access_token').catch((err: unknown) => {
        rt.logger.warn({ provider: name, err, kind: (err as ProviderError).kind }, 'vault revocation at the provider failed');
      });
    }
    return c.body(null, 204);
  });

  const clients = createExchangeClients(v.rt.config.vault.exchange_clients, {
    // RFC 7523 §3: a client assertion's aud names the token endpoint (or the issuer).
    audiences: [`${v.baseUrl}/.warden/oauth/token`, v.baseUrl],
    store: v.rt.store,
  });
  // Every method reaches the handler, which answers anything but POST with 405 and Allow: POST.
  app.all('/oauth/token', createExchangeHandler(v, clients));

  return app;
}
