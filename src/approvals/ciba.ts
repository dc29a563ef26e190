/**
 * CIBA poll-mode client (OpenID CIBA Core 1.0): Warden asks an external OpenID
 * provider to get the user's consent on their own device, then polls the token
 * endpoint. The provider's answer becomes an ordinary decision on the approval.
 * Every call has a timeout; discovery is cached for an hour.
 */

import type { Logger } from '../observability/logger.js';
import { createIdTokenVerifier, type IdTokenVerifier } from '../identity/id-token.js';
import { unverifiedEmail } from '../identity/claims.js';

export interface CibaConfig {
  issuer: string;
  client_id: string;
  client_secret: string;
  scope: string;
  timeout: number;
  /** The ID token claim naming the person who decided (default `sub`). */
  user_claim?: string;
  /** Prepended to that claim: the prefix agent tokens of the same issuer give their users (identity.issuers[].user_prefix). */
  user_prefix?: string;
}

/** A started backchannel authentication request. */
export interface CibaRequest {
  authReqId: string;
  /** Poll interval in seconds. */
  interval: number;
  /** ms since epoch. */
  expiresAt: number;
}

export type CibaOutcome = 'approved' | 'denied' | 'expired' | 'aborted' | 'failed';

/** How a backchannel request ended; `person` (the ID token's user claim) names who approved. */
export interface CibaAnswer {
  outcome: CibaOutcome;
  person?: string;
}

export interface CibaClient {
  start(params: { loginHint: string; bindingMessage: string; requestedExpirySeconds: number }): Promise<CibaRequest>;
  /** Poll until the provider decides, the request expires or `signal` aborts; an approval names the person who gave it. */
  poll(req: CibaRequest, signal: AbortSignal, onInterval?: (interval: number) => void): Promise<CibaAnswer>;
}

interface Discovery {
  backchannel_authentication_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
}

const DISCOVERY_TTL_MS = 3_600_000;
const ABORTED: CibaAnswer = Object.freeze({ outcome: 'aborted' });
const EXPIRED: CibaAnswer = Object.freeze({ outcome: 'expired' });
const DENIED: CibaAnswer = Object.freeze({ outcome: 'denied' });
const FAILED: CibaAnswer = Object.freeze({ outcome: 'failed' });
const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });

/** Create a client for one provider. */
export function createCibaClient(cfg: CibaConfig, logger: Logger): CibaClient {
  const userClaim = cfg.user_claim ?? 'sub';
  const userPrefix = cfg.user_prefix ?? '';
  let discovery: { value: Discovery; at: number } | undefined;
  let verifier: { jwksUri: string; verifier: IdTokenVerifier } | undefined;
  const idTokens = (d: Discovery): IdTokenVerifier => {
    if (verifier?.jwksUri !== d.jwks_uri)
      verifier = {
        jwksUri: d.jwks_uri,
        verifier: createIdTokenVerifier({ issuer: cfg.issuer, clientId: cfg.client_id, jwksUri: d.jwks_uri, timeoutMs: cfg.timeout }),
      };
    return verifier.verifier;
  };
  const basic = 'Basic ' + Buffer.from(`${encodeURIComponent(cfg.client_id)}:${encodeURIComponent(cfg.client_secret)}`).toString('base64');

  async function discover(): Promise<Discovery> {
    if (discovery && Date.now() - discovery.at < DISCOVERY_TTL_MS) return discovery.value;
    const url = cfg.issuer.replace(/\/$/, '') + '/.well-known/openid-configuration';
    const res = await fetch(url, { signal: AbortSignal.timeout(cfg.timeout), redirect: 'error' });
    if (!res.ok) throw new Error(`CIBA discovery answered ${res.status}`);
    const doc = (await res.json()) as Record<string, unknown>;
    if (String(doc.issuer).replace(/\/$/, '') !== cfg.issuer.replace(/\/$/, '')) throw new Error('CIBA discovery issuer mismatch');
    const bc = doc.backchannel_authentication_endpoint;
    const te = doc.token_endpoint;
    const jwks = doc.jwks_uri;
    if (typeof bc !== 'string' || typeof te !== 'string') throw new Error('provider does not advertise CIBA endpoints');
    if (typeof jwks !== 'string') throw new Error('provider does not advertise jwks_uri (needed to verify the ID token)');
    const value = { backchannel_authentication_endpoint: bc, token_endpoint: te, jwks_uri: jwks };
    discovery = { value, at: Date.now() };
    return value;
  }

  async function post(url: string, form: Record<string, string>, signal?: AbortSignal) {
    const timeout = AbortSignal.timeout(cfg.timeout);
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', authorization: basic },
      body: new URLSearchParams(form).toString(),
      redirect: 'error',
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
    let body: Record<string, unknown> = {};
    try {
      body = (await res.json()) as Record<string, unknown>;
    } catch {
      // non-JSON error body: keep the status only
    }
    return { status: res.status, body };
  }

  return {
    async start({ loginHint, bindingMessage, requestedExpirySeconds }) {
      const d = await discover();
      const form: Record<string, string> = {
        scope: cfg.scope,
        login_hint: loginHint,
        requested_expiry: String(Math.max(1, Math.floor(requestedExpirySeconds))),
      };
      if (bindingMessage) form.binding_message = bindingMessage;
      const { status, body } = await post(d.backchannel_authentication_endpoint, form);
      if (status !== 200 || typeof body.auth_req_id !== 'string') {
        throw new Error(`CIBA request refused: ${status} ${typeof body.error === 'string' ? body.error : ''}`.trim());
      }
      const expiresIn = Number(body.expires_in);
      const interval = Number(body.interval);
      return {
        authReqId: body.auth_req_id,
        interval: Number.isFinite(interval) && interval > 0 ? interval : 5, // CIBA Core §7.3: default 5 s
        expiresAt: Date.now() + (Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : requestedExpirySeconds) * 1000,
      };
    },

    async poll(req, signal, onInterval) {
      let interval = req.interval;
      let failures = 0;
      for (;;) {
        await sleep(interval * 1000, signal);
        if (signal.aborted) return ABORTED;
        if (Date.now() >= req.expiresAt) return EXPIRED;
        let answer: { status: number; body: Record<string, unknown> };
        let d: Discovery;
        try {
          d = await discover();
          answer = await post(d.token_endpoint, { grant_type: 'urn:openid:params:grant-type:ciba', auth_req_id: req.authReqId }, signal);
        } catch (err) {
          if (signal.aborted) return ABORTED;
          // Transient (network, timeout): keep polling, backing off, until the request expires.
          failures++;
          logger.warn({ err, failures }, 'CIBA token poll failed');
          interval = Math.min(interval + 5, 60);
          continue;
        }
        if (answer.status === 200) {
          // CIBA Core §10.1.1: the answer carries an ID token; only a verified one is an approval.
          const idToken = answer.body.id_token;
          if (typeof idToken !== 'string') {
            logger.warn({ status: answer.status }, 'CIBA token answer without an ID token: not an approval');
            return FAILED;
          }
          let person: unknown;
          try {
            const claims = await idTokens(d).verify(idToken);
            const bound = claims['urn:openid:params:jwt:claim:auth_req_id'];
            if (bound !== undefined && bound !== req.authReqId) throw new Error('ID token is bound to another auth_req_id');
            person = claims[userClaim];
            if (typeof person !== 'string' || person === '') throw new Error(`ID token has no ${userClaim} naming the person`);
            if (unverifiedEmail(userClaim, claims)) throw new Error('the ID token names the person by an unverified email address');
          } catch (err) {
            logger.warn({ err: { message: (err as Error).message, code: (err as { code?: string }).code } }, 'CIBA ID token refused: not an approval');
            return FAILED;
          }
          // Who approved is the caller's to judge (the request's user, or one who holds `approvers`).
          return { outcome: 'approved', person: userPrefix + person };
        }
        const error = answer.body.error;
        if (error === 'authorization_pending') continue;
        if (error === 'slow_down') {
          interval += 5; // CIBA Core §11: increase the interval by at least 5 seconds for this and all later requests
          onInterval?.(interval);
          continue;
        }
        if (error === 'access_denied') return DENIED;
        if (error === 'expired_token') return EXPIRED;
        if (answer.status >= 500) {
          interval = Math.min(interval + 5, 60);
          continue;
        }
        logger.warn({ status: answer.status, error }, 'CIBA token poll refused');
        return FAILED;
      }
    },
  };
}
