/**
 * Starting the provider's authorization-code flow for a signed-in person
 * (PKCE, a single-use state bound to this browser by a cookie). Used by the
 * connect link's confirmation and by the console's link / re-link button;
 * the callback in routes.ts finishes both alike.
 */

import type { Context } from 'hono';
import { setCookie } from 'hono/cookie';
import { createPkcePair } from './providers.js';
import type { VaultServices } from './services.js';

/** Name of the state cookie for one provider (one flow per provider per browser). */
export function stateCookieName(provider: string): string {
  return `warden_link_${provider}`;
}

/** Path the state cookie is sent to (the callback only). */
export function stateCookiePath(v: VaultServices): string {
  return `${new URL(v.baseUrl).pathname.replace(/\/+$/, '')}/.warden/callback`;
}

/**
 * Record the flow, set the state cookie and return the provider's
 * authorization URL to send the browser to. Throws when the provider's
 * endpoints cannot be resolved (the caller answers 503).
 */
export async function beginLinking(
  v: VaultServices,
  c: Context,
  link: { user: string; agent: string; provider: string; scopes: readonly string[] },
): Promise<string> {
  const provider = v.providers.get(link.provider);
  if (!provider) throw new Error(`unknown provider ${link.provider}`);
  const pkce = createPkcePair();
  const redirectUri = v.redirectUri(link.provider);
  const state = await v.secrets.startFlow({
    user: link.user,
    agent: link.agent,
    provider: link.provider,
    scopes: [...link.scopes],
    codeVerifier: pkce.verifier,
    redirectUri,
  });
  const location = await provider.authorizationUrl({ redirectUri, state, codeChallenge: pkce.challenge, scopes: link.scopes });
  setCookie(c, stateCookieName(link.provider), state, {
    httpOnly: true,
    sameSite: 'Lax',
    secure: v.baseUrl.startsWith('https://'),
    path: stateCookiePath(v),
    maxAge: Math.max(1, Math.floor(v.rt.config.vault.connect_ttl / 1000)),
  });
  return location;
}
