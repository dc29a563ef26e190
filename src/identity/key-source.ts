/**
 * Where an issuer's keys come from: the configured `jwks_uri`, or OIDC
 * discovery of the issuer (RFC 8414 metadata as a fallback). Discovery runs
 * lazily on the first token of that issuer, is cached for the life of the
 * authenticator, and after a failure is retried only after an exponential
 * backoff, so an outage costs one fetch per backoff step, not one per request.
 */

import type { Logger } from '../observability/logger.js';
import { readResponseBounded } from '../http/body.js';

/** The key source is unreachable or answered nonsense; tokens of that issuer fail closed. */
export class KeySourceUnavailable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'KeySourceUnavailable';
  }
}

/** Consecutive-failure backoff: 1 s, 2 s, 4 s, ... capped. */
export interface Backoff {
  /** True while a new attempt must not be made. */
  blocked(nowMs: number): boolean;
  failed(nowMs: number): void;
  succeeded(): void;
}

/** Create a backoff doubling from `initialMs` up to `maxMs`. */
export function createBackoff(initialMs = 1000, maxMs = 60_000): Backoff {
  let failures = 0;
  let retryAt = 0;
  return {
    blocked: (nowMs) => failures > 0 && nowMs < retryAt,
    failed(nowMs) {
      failures++;
      retryAt = nowMs + Math.min(maxMs, initialMs * 2 ** Math.min(failures - 1, 30));
    },
    succeeded() {
      failures = 0;
      retryAt = 0;
    },
  };
}

/** Read at most `limit` bytes of a response body; more is an error (a key set or metadata is small). */
export async function readCapped(res: Response, limit: number): Promise<string> {
  return (await readResponseBounded(res, limit, () => new KeySourceUnavailable(`response larger than ${limit} bytes`))).toString('utf8');
}

/** Resolves the JWKS URL of one issuer. */
export interface JwksLocator {
  jwksUri(): Promise<URL>;
}

export interface JwksLocatorOptions {
  /** Configured `jwks_uri`; when set no discovery happens. */
  jwksUri?: string;
  /** Timeout of each metadata fetch. */
  timeoutMs: number;
  logger: Logger;
  now: () => number;
  backoff?: Backoff;
  /** Called once per metadata fetch attempt with its outcome (metrics). */
  onFetch?: (outcome: 'ok' | 'error') => void;
}

const METADATA_LIMIT = 256 * 1024;

function metadataUrls(issuer: string): string[] {
  const base = issuer.replace(/\/+$/, '');
  const u = new URL(base);
  const path = u.pathname === '/' ? '' : u.pathname;
  return [`${base}/.well-known/openid-configuration`, `${u.origin}/.well-known/oauth-authorization-server${path}`];
}

/** An absolute http(s) URL (what metadata must name for an endpoint or key set). */
export function isHttpUrl(value: unknown): value is string {
  if (typeof value !== 'string') return false;
  try {
    const u = new URL(value);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}

/** Create the locator of `issuer`'s key set. */
export function createJwksLocator(issuer: string, options: JwksLocatorOptions): JwksLocator {
  if (options.jwksUri !== undefined) {
    const fixed = new URL(options.jwksUri);
    return { jwksUri: async () => fixed };
  }
  const backoff = options.backoff ?? createBackoff();
  let resolved: URL | undefined;
  let inflight: Promise<URL> | undefined;

  async function fetchMetadata(url: string): Promise<Record<string, unknown> | null> {
    const res = await fetch(url, {
      method: 'GET',
      redirect: 'manual',
      headers: { accept: 'application/json' },
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    if (res.status === 404) {
      await res.body?.cancel().catch(() => {});
      return null;
    }
    if (res.status !== 200) {
      await res.body?.cancel().catch(() => {});
      throw new KeySourceUnavailable(`metadata answered HTTP ${res.status}`);
    }
    const doc: unknown = JSON.parse(await readCapped(res, METADATA_LIMIT));
    if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw new KeySourceUnavailable('metadata is not a JSON object');
    return doc as Record<string, unknown>;
  }

  async function discover(): Promise<URL> {
    for (const url of metadataUrls(issuer)) {
      const doc = await fetchMetadata(url);
      if (doc === null) continue;
      // OIDC Discovery §4.3 / RFC 8414 §3.3: the metadata must name exactly this issuer.
      if (doc.issuer !== issuer) throw new KeySourceUnavailable('metadata names a different issuer');
      if (!isHttpUrl(doc.jwks_uri)) throw new KeySourceUnavailable('metadata has no usable jwks_uri');
      return new URL(doc.jwks_uri);
    }
    throw new KeySourceUnavailable('no discovery metadata found');
  }

  return {
    async jwksUri() {
      if (resolved) return resolved;
      if (inflight) return inflight;
      if (backoff.blocked(options.now())) throw new KeySourceUnavailable('discovery backing off after a failure');
      inflight = discover()
        .then(
          (url) => {
            backoff.succeeded();
            options.onFetch?.('ok');
            resolved = url;
            return url;
          },
          (err: unknown) => {
            backoff.failed(options.now());
            options.onFetch?.('error');
            const message = err instanceof Error ? err.message : String(err);
            options.logger.warn({ issuer, err: { message } }, 'identity: OIDC discovery failed; tokens of this issuer are refused until it succeeds');
            throw err instanceof KeySourceUnavailable ? err : new KeySourceUnavailable(`discovery failed: ${message}`, { cause: err });
          },
        )
        .finally(() => {
          inflight = undefined;
        });
      return inflight;
    },
  };
}
