/** Config checks of sign-in (identity.login, approvals.review_auth, and what needs a signed-in person). */

import type { Config } from '../../config/schema.js';

/** Problems as `{ path, message }`; nothing here throws. */
export function loginConfigIssues(config: Config, env: NodeJS.ProcessEnv = process.env): Array<{ path: string; message: string }> {
  const issues: Array<{ path: string; message: string }> = [];
  const add = (path: string, message: string) => issues.push({ path, message });
  const login = config.identity.login;
  const production = env.NODE_ENV === 'production';
  const devLogin = config.identity.dev_issuer && !production;
  if (login) {
    if (login.session.secret.length < 32) add('identity.login.session.secret', 'must be at least 32 random characters (e.g. `openssl rand -base64 32`)');
    if (!login.scopes.includes('openid')) add('identity.login.scopes', 'must include openid (Warden verifies an ID token)');
    if (login.session.ttl < 60_000 || login.session.ttl > 7 * 24 * 3_600_000) add('identity.login.session.ttl', 'must be between 1m and 7d');
    if (login.algorithms.some((a) => /^HS/i.test(a))) add('identity.login.algorithms', 'HMAC algorithms are not accepted for ID tokens');
    if (production && !securePublicUrl(config.server.public_url)) {
      add(
        'identity.login',
        'in production sign-in needs server.public_url on https (session cookies are Secure and __Host-); only a loopback URL may be plain http',
      );
    }
  }
  const canSignIn = Boolean(login) || devLogin;
  const reviewAuth = config.approvals.review_auth;
  if (reviewAuth && reviewAuth !== 'link' && !canSignIn) {
    add('approvals.review_auth', `${reviewAuth} needs a way to sign in: set identity.login (or dev_issuer in development)`);
  }
  if (Object.keys(config.vault.providers).length > 0 && !canSignIn) {
    add(
      'identity.login',
      'vault.providers are linked in a browser that must be signed in as the ticket’s user: set identity.login (or dev_issuer in development)',
    );
  }
  return issues;
}

/** https, or plain http on a loopback host (browsers treat loopback as a secure context). */
function securePublicUrl(value: string | undefined): boolean {
  if (!value) return false;
  try {
    const u = new URL(value);
    return u.protocol === 'https:' || (u.protocol === 'http:' && ['127.0.0.1', '[::1]', 'localhost'].includes(u.hostname));
  } catch {
    return false;
  }
}

/** The effective `approvals.review_auth`: the configured one, else link+login when identity.login is set, else link. */
export function reviewAuthOf(config: Config): 'link' | 'login' | 'link+login' {
  return config.approvals.review_auth ?? (config.identity.login ? 'link+login' : 'link');
}
