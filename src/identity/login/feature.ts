/**
 * Sign-in for people in a browser: `GET /.warden/login`
 * (OIDC code + PKCE + state + nonce against `identity.login`, or the dev
 * issuer's "sign in as" page in development), `GET /.warden/login/callback`,
 * `GET /.warden/session` (who is signed in), `GET`/`POST /.warden/logout`.
 * The session itself lives in `src/http/session.ts` (`rt.sessions`).
 */

import { createHash } from 'node:crypto';
import { Hono, type Context } from 'hono';
import type { Config } from '../../config/schema.js';
import type { Runtime } from '../../core/runtime.js';
import type { Logger } from '../../observability/logger.js';
import type { Store } from '../../store/store.js';
import { createSessions, randomToken, type Sessions } from '../../http/session.js';
import type { DevIssuer } from '../dev-issuer.js';
import { devIssuerIdentity } from '../dev-issuer.js';
import { createLoginClient, LoginError } from './oidc-client.js';
import { userPrefixOf } from '../claims.js';
import { escapeHtml, postForm, sendPage } from './pages.js';

/** How long a started sign-in may take at the IdP. */
const SIGNIN_TTL_MS = 10 * 60_000;
/** Dev login user ids: what an OpenFGA object id and a template value accept. */
const DEV_USER = /^[A-Za-z0-9._-]{1,64}$/;

/** The session service of one generation: identity.login, else the dev issuer (never in production), else none. */
export function sessionsFromConfig(
  cfg: Config,
  deps: { store: Store; logger: Logger; publicUrl: string; devIssuer?: DevIssuer; env?: NodeJS.ProcessEnv },
): Sessions {
  const login = cfg.identity.login;
  const production = (deps.env ?? process.env).NODE_ENV === 'production';
  if (login)
    return createSessions({
      mode: 'oidc',
      secret: login.session.secret,
      ttlMs: login.session.ttl,
      publicUrl: deps.publicUrl,
      store: deps.store,
      logger: deps.logger,
    });
  if (deps.devIssuer && !production) {
    return createSessions({
      mode: 'dev',
      secret: deps.devIssuer.deriveSecret('warden dev login session'),
      ttlMs: 12 * 3_600_000,
      publicUrl: deps.publicUrl,
      store: deps.store,
      logger: deps.logger,
    });
  }
  return createSessions({ mode: null, secret: null, ttlMs: 0, publicUrl: deps.publicUrl, store: deps.store, logger: deps.logger });
}

function safeEqual(a: string, b: string): boolean {
  // Equal-length digests: no early exit on the first differing byte of the inputs.
  return createHash('sha256').update(a).digest().equals(createHash('sha256').update(b).digest());
}

async function formOf(c: Context): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  try {
    const body = await c.req.parseBody();
    for (const [k, v] of Object.entries(body)) if (typeof v === 'string') out[k] = v;
  } catch {
    /* an unreadable form is an empty one */
  }
  return out;
}

/** The sign-in endpoints, mounted at `/.warden` on the agent listener whatever features are built. */
export function createLoginRoutes(rt: Runtime): Hono {
  const sessions = rt.sessions;
  const cfg = rt.config.identity.login;
  const base = rt.publicUrl.replace(/\/+$/, '');
  const basePath = sessions.basePath;
  const redirectUri = `${base}/.warden/login/callback`;
  const defaultReturn = `${basePath}/.warden/session`;
  const client = cfg
    ? createLoginClient(cfg, { clockToleranceMs: rt.config.identity.clock_tolerance, userPrefix: userPrefixOf(rt.config.identity.issuers, cfg.issuer) })
    : null;
  const devIssuer = sessions.mode === 'dev' ? devIssuerIdentity(rt.publicUrl).issuer : null;
  const log = rt.logger;
  const app = new Hono();

  app.onError((err, c) => {
    log.error({ err }, 'login endpoint failed');
    return sendPage(c, 503, 'Sign-in unavailable', 'Warden could not complete this step. Try again in a moment.');
  });

  const refusedReturn = (c: Context) =>
    sendPage(
      c,
      400,
      'Refused',
      'The page to return to after sign-in must be a page of this Warden (a path under /.warden/). This link was changed or is not from Warden.',
    );

  app.get('/login', async (c) => {
    const requested = c.req.query('return_to');
    const returnTo = requested === undefined ? defaultReturn : sessions.safeReturnTo(requested);
    if (returnTo === null) {
      log.warn({ reason: 'unsafe_return_to' }, 'sign-in refused: return_to is not a Warden page');
      return refusedReturn(c);
    }
    if (sessions.mode === null) return sendPage(c, 404, 'Sign-in is not configured', 'This Warden has no identity.login; nobody can sign in here.');
    if (sessions.mode === 'dev') {
      const csrf = randomToken();
      sessions.setTransaction(c, { k: 'dev', csrf, return_to: returnTo }, SIGNIN_TTL_MS);
      const form = `<form method="post" action="${escapeHtml(`${basePath}/.warden/login/dev`)}" id="dev-login">
<input type="hidden" name="csrf" value="${escapeHtml(csrf)}">
<label for="user">User id</label><input type="text" id="user" name="user" required pattern="[A-Za-z0-9._\\-]{1,64}" autocomplete="username" value="alice">
<button type="submit">Sign in</button></form>`;
      return sendPage(c, 200, 'Sign in (development)', 'Development sign-in: the dev issuer vouches for whoever you type. Never enabled in production.', form);
    }
    const pkce = createPkce();
    const state = randomToken();
    const nonce = randomToken();
    let location: string;
    try {
      location = await client!.authorizationUrl({ redirectUri, state, nonce, codeChallenge: pkce.challenge });
    } catch (err) {
      log.warn({ err: { message: (err as Error).message } }, 'sign-in: the IdP could not be reached');
      return sendPage(c, 503, 'Sign-in unavailable', 'The identity provider could not be reached. Try again in a moment.');
    }
    sessions.setTransaction(c, { k: 'oidc', state, nonce, verifier: pkce.verifier, return_to: returnTo }, SIGNIN_TTL_MS);
    c.header('Cache-Control', 'no-store');
    c.header('Referrer-Policy', 'no-referrer');
    return c.redirect(location, 302);
  });

  app.get('/login/callback', async (c) => {
    if (sessions.mode !== 'oidc' || !client) return sendPage(c, 404, 'Sign-in is not configured', 'This Warden has no identity.login.');
    const tx = sessions.readTransaction(c);
    const state = c.req.query('state');
    // The answer only completes the sign-in this browser started (login CSRF, RFC 9700 §4.7).
    if (!tx || tx.k !== 'oidc' || typeof tx.state !== 'string' || typeof state !== 'string' || !safeEqual(state, tx.state)) {
      log.warn({ has_transaction: Boolean(tx) }, 'sign-in callback refused: state does not match this browser');
      return sendPage(c, 400, 'Sign-in failed', 'This sign-in was not started in this browser, or it took too long. Start again.');
    }
    sessions.clearTransaction(c);
    const error = c.req.query('error');
    if (error) {
      log.info({ error: error.slice(0, 64) }, 'sign-in refused at the IdP');
      return sendPage(c, 400, 'Sign-in cancelled', `The identity provider did not sign you in (${error.slice(0, 64)}).`);
    }
    // RFC 9207: when the IdP names itself, it must be the one we sent the browser to.
    const iss = c.req.query('iss');
    if (iss !== undefined && iss.replace(/\/+$/, '') !== client.issuer.replace(/\/+$/, '')) {
      log.warn({}, 'sign-in callback refused: issuer mismatch');
      return sendPage(c, 400, 'Sign-in failed', 'The answer came from a different identity provider.');
    }
    const code = c.req.query('code');
    if (!code) return sendPage(c, 400, 'Sign-in failed', 'The identity provider sent no authorization code.');
    let verified;
    try {
      verified = await client.finish({ code, codeVerifier: String(tx.verifier), redirectUri, nonce: String(tx.nonce) });
    } catch (err) {
      const transient = err instanceof LoginError && err.kind === 'transient';
      log.warn({ err: { message: (err as Error).message }, kind: (err as LoginError).kind }, 'sign-in failed');
      return transient
        ? sendPage(c, 503, 'Sign-in unavailable', 'The identity provider did not answer. Try again in a moment.')
        : sendPage(c, 400, 'Sign-in failed', 'The identity provider’s answer could not be verified. Start again.');
    }
    const person = sessions.signIn(c, { sub: verified.sub, issuer: client.issuer, claims: verified.claims as Record<string, unknown>, via: 'oidc' });
    log.info({ user: person.sub }, 'person signed in');
    const back = sessions.safeReturnTo(tx.return_to) ?? defaultReturn;
    c.header('Cache-Control', 'no-store');
    return c.redirect(back, 303);
  });

  app.post('/login/dev', async (c) => {
    if (sessions.mode !== 'dev' || !devIssuer) return sendPage(c, 404, 'Not available', 'The development sign-in is off.');
    if (!sessions.isSameOriginPost(c)) return sendPage(c, 403, 'Refused', 'Sign in from Warden’s own sign-in page.');
    const form = await formOf(c);
    const tx = sessions.readTransaction(c);
    if (!tx || tx.k !== 'dev' || typeof tx.csrf !== 'string' || !form.csrf || !safeEqual(form.csrf, tx.csrf)) {
      return sendPage(c, 403, 'Refused', 'The sign-in form expired or was not opened in this browser. Open the sign-in page again.');
    }
    const user = form.user ?? '';
    if (!DEV_USER.test(user)) return sendPage(c, 400, 'Bad user id', 'Use letters, digits, dot, dash or underscore (at most 64).');
    sessions.clearTransaction(c);
    const person = sessions.signIn(c, { sub: user, issuer: devIssuer, claims: {}, via: 'dev' });
    log.info({ user: person.sub, dev: true }, 'person signed in');
    c.header('Cache-Control', 'no-store');
    return c.redirect(sessions.safeReturnTo(tx.return_to) ?? defaultReturn, 303);
  });

  // Who is signed in, with a sign-out button.
  app.get('/session', async (c) => {
    const person = await sessions.current(c);
    if (!person) {
      const link = sessions.mode ? `<p><a id="sign-in" href="${escapeHtml(sessions.loginPath(defaultReturn))}">Sign in</a></p>` : '';
      return sendPage(c, 200, 'Not signed in', 'Nobody is signed in to Warden in this browser.', link);
    }
    return sendPage(
      c,
      200,
      'Signed in',
      `You are signed in to Warden as ${person.sub}.`,
      `<p class="who">Until ${escapeHtml(new Date(person.expiresAt).toISOString())}</p>${postForm(`${basePath}/.warden/logout`, { csrf: sessions.csrfToken(person, 'logout') }, 'Sign out', { id: 'logout' })}`,
    );
  });

  app.get('/logout', async (c) => {
    const person = await sessions.current(c);
    if (!person) return sendPage(c, 200, 'Signed out', 'Nobody is signed in to Warden in this browser.');
    return sendPage(
      c,
      200,
      'Sign out',
      `You are signed in as ${person.sub}.`,
      postForm(`${basePath}/.warden/logout`, { csrf: sessions.csrfToken(person, 'logout') }, 'Sign out', { id: 'logout' }),
    );
  });

  app.post('/logout', async (c) => {
    if (!sessions.isSameOriginPost(c)) return sendPage(c, 403, 'Refused', 'Sign out from Warden’s own page.');
    const person = await sessions.current(c);
    const form = await formOf(c);
    if (person && !sessions.checkCsrf(person, 'logout', form.csrf)) {
      return sendPage(c, 403, 'Refused', 'The form token is missing or wrong; open the sign-out page again.');
    }
    await sessions.signOut(c, person);
    if (person) log.info({ user: person.sub }, 'person signed out');
    return sendPage(c, 200, 'Signed out', 'You are signed out of Warden in this browser.');
  });

  return app;
}

function createPkce(): { verifier: string; challenge: string } {
  const verifier = randomToken();
  return { verifier, challenge: createHash('sha256').update(verifier, 'ascii').digest('base64url') };
}
