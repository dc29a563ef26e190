/**
 * Refresh-before-use, once per connection across every instance sharing the
 * store. See docs/vault.md "Refresh" for the invariants; in short:
 *
 * - one local flight per connection, so an instance asks the store once however
 *   many requests wait;
 * - a store lock with a lease (renewed while the provider is slow) elects the
 *   instance that refreshes;
 * - before redeeming, the holder claims the record's current version in a
 *   "redeem marker" with compare-and-set. The marker lives longer than any
 *   provider call can (timeout + lease), so even a holder whose lease expired
 *   mid-call can never be joined by a second redeem of the same refresh token;
 * - the result is written with a version-checked replace (a stale holder cannot
 *   overwrite a newer record), and rotated refresh tokens are persisted before
 *   the lock is released;
 * - everyone else polls the record version (bounded) and uses the new token.
 */

import { createHash } from 'node:crypto';
import { WardenError, isWardenError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Lock, Store } from '../store/store.js';
import type { Connection, ConnectionRepository } from './records.js';
import { ProviderError, type OAuthProvider, type ProviderRegistry } from './providers.js';

/** Dependencies of the refresher. */
export interface RefresherOptions {
  store: Store;
  connections: ConnectionRepository;
  providers: ProviderRegistry;
  logger: Logger;
  metrics: Metrics;
  /** Lease of the refresh lock (renewed at a third of it while the provider is slow). */
  leaseMs: number;
  now?: () => number;
}

/** Keeps connections' access tokens fresh. */
export interface Refresher {
  /**
   * The connection with an access token valid for at least the provider's
   * `refresh_before` (refreshing it if needed). Throws `connection_required`
   * (re-link; without `connect_url` — the caller knows the agent and adds it), `upstream_unavailable`/`store_unavailable` with 503 + Retry-After
   * (transient; the connection is kept).
   */
  fresh(conn: Connection): Promise<Connection>;
  /** True when `conn` must be refreshed before use. */
  needsRefresh(conn: Connection): boolean;
}

/** State of the redeem of one record version, shared through the store. */
interface RedeemMarker {
  /** Record version whose refresh token is being (or was) redeemed. */
  version: number;
  /** And the link it belongs to (a re-link after a revoke starts at version 1 again). */
  generation?: string;
  state: 'in_flight' | 'failed';
  /** For `failed`: epoch ms until which callers get 503 without asking the provider again. */
  retryAt?: number;
}

/** Whether `marker` is about this very record version (of this link). */
const marks = (marker: RedeemMarker | null, c: Connection): marker is RedeemMarker =>
  marker !== null && marker.version === c.version && marker.generation === c.generation;

const POLL_START_MS = 20;
const POLL_MAX_MS = 200;

/** A 503 with Retry-After that keeps the connection. */
export function transientError(code: 'upstream_unavailable' | 'store_unavailable', detail: string, retryAfterSec: number, cause?: unknown): WardenError {
  return new WardenError(code, detail, {
    status: 503,
    headers: { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterSec))) },
    cause,
    reason: code === 'store_unavailable' ? 'vault_store_unavailable' : 'vault_provider_unavailable',
  });
}

/** Store errors keep their code but always carry Retry-After (the brief's 503 contract). */
function withRetryAfter(err: unknown): unknown {
  if (isWardenError(err, 'store_unavailable') && !err.headers['Retry-After']) {
    return transientError('store_unavailable', err.message, 1, err);
  }
  return err;
}

/** Stable, opaque id of a (user, provider) pair for store key names. */
export function connectionId(user: string, provider: string): string {
  return createHash('sha256')
    .update(JSON.stringify([user, provider]))
    .digest('hex')
    .slice(0, 40);
}

/** `connection_required` without a link yet (the stage or endpoint adds `connect_url`). */
export function relinkError(reason: string): WardenError {
  return new WardenError('connection_required', 'the connected account must be linked again', { reason: `vault_${reason}` });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Build the refresher. */
export function createRefresher(options: RefresherOptions): Refresher {
  const { store, connections, providers, logger, metrics, leaseMs } = options;
  const now = options.now ?? Date.now;
  // One flight per connection in this instance; entries live only while a refresh runs.
  const flights = new Map<string, Promise<Connection>>();

  function providerOf(conn: Connection): OAuthProvider {
    const provider = providers.get(conn.provider);
    if (!provider) throw new WardenError('internal', `vault provider ${conn.provider} is not configured`, { reason: 'vault_provider_unknown' });
    return provider;
  }

  /**
   * Refresh within `refresh_before` of expiry, or at half the token's lifetime
   * when the provider issues tokens that live less than `refresh_before`
   * (otherwise every request would refresh). The lifetime runs from when the
   * record was last written (`updatedAt`: the tokens were stored then).
   */
  function needsRefresh(conn: Connection): boolean {
    if (conn.expiresAt === undefined || conn.expiresAt === null) return false;
    const lifetime = conn.expiresAt - conn.updatedAt;
    const before = providerOf(conn).refreshBeforeMs;
    const window = lifetime > 0 ? Math.min(before, lifetime / 2) : before;
    return conn.expiresAt - now() <= window;
  }

  const markerKey = (id: string) => `vault:redeem:${id}`;
  const lockName = (id: string) => `vault-refresh:${id}`;

  function parseMarker(raw: string | null): RedeemMarker | null {
    if (raw === null) return null;
    try {
      const m = JSON.parse(raw) as RedeemMarker;
      return typeof m.version === 'number' ? m : null;
    } catch {
      return null;
    }
  }

  function failedError(marker: RedeemMarker): WardenError {
    const wait = Math.max(1, ((marker.retryAt ?? now()) - now()) / 1000);
    return transientError('upstream_unavailable', 'the provider could not refresh the token; try again later', wait);
  }

  /**
   * Redeem the refresh token of `current` while holding `lock`. Returns the
   * refreshed connection, or null when another holder claimed this version
   * (or wrote a newer record): the caller then waits for that result.
   */
  async function redeemVersion(lock: Lock, id: string, current: Connection, provider: OAuthProvider): Promise<Connection | null> {
    const raw = await store.get(markerKey(id));
    const marker = parseMarker(raw);
    if (marks(marker, current)) {
      if (marker.state === 'failed' && (marker.retryAt ?? 0) > now()) throw failedError(marker);
      if (marker.state === 'in_flight') return null;
    }
    if (!current.refreshToken) {
      throw await markRelink(current, 'no_refresh_token');
    }
    // Claim this version: whoever wins this compare-and-set is the only one that
    // may send this refresh token to the provider, lease or no lease.
    const claim: RedeemMarker = { version: current.version, generation: current.generation, state: 'in_flight' };
    const claimTtl = provider.timeoutMs + leaseMs + 1_000;
    if (!(await store.compareAndSet(markerKey(id), raw, JSON.stringify(claim), { ttlMs: claimTtl }))) return null;

    let leaseLost = false;
    const renewEvery = Math.max(50, Math.floor(leaseMs / 3));
    const renewal = setInterval(() => {
      lock.renew(leaseMs).then(
        (held) => {
          if (!held && !leaseLost) {
            leaseLost = true;
            logger.warn(
              { provider: current.provider, connection: id },
              'vault refresh lease lost during a slow refresh; the redeem marker still excludes a second redeem',
            );
          }
        },
        () => {},
      );
    }, renewEvery);
    renewal.unref();

    const started = now();
    try {
      let tokens;
      try {
        tokens = await provider.refresh(current.refreshToken, current.scopes);
      } catch (err) {
        metrics.inc('warden_vault_refresh_total', { provider: current.provider, result: err instanceof ProviderError ? err.kind : 'error' });
        if (err instanceof ProviderError && err.kind === 'invalid_grant') {
          logger.warn({ provider: current.provider, connection: id, oauth_error: err.oauthError }, 'vault refresh token rejected; connection needs re-linking');
          throw await markRelink(current, 'invalid_grant');
        }
        const retryAfter = err instanceof ProviderError && err.retryAfter ? Math.min(Math.max(err.retryAfter, 1), 60) : 2;
        const failed: RedeemMarker = { version: current.version, generation: current.generation, state: 'failed', retryAt: now() + retryAfter * 1000 };
        await store.set(markerKey(id), JSON.stringify(failed), { ttlMs: retryAfter * 1000 }).catch(() => {});
        logger.warn(
          {
            provider: current.provider,
            connection: id,
            kind: err instanceof ProviderError ? err.kind : 'error',
            http_status: (err as ProviderError).httpStatus,
            err,
          },
          'vault refresh failed; connection kept',
        );
        throw transientError('upstream_unavailable', 'the provider could not refresh the token; try again later', retryAfter, err);
      }
      // An answer without a usable expires_in: the new token is taken to live as long as the one it replaces.
      // Without a known expiry it would never be refreshed again, and the upstream would meet a dead token.
      const lifetime =
        current.expiresAt !== undefined && current.expiresAt !== null && current.expiresAt > current.updatedAt
          ? current.expiresAt - current.updatedAt
          : undefined;
      const next: Connection = {
        ...current,
        accessToken: tokens.accessToken,
        tokenType: tokens.tokenType,
        // Providers that do not rotate keep the old refresh token valid.
        refreshToken: tokens.refreshToken ?? current.refreshToken,
        expiresAt: tokens.expiresAt ?? (lifetime !== undefined ? now() + lifetime : undefined),
        scopes: tokens.scopes.length > 0 ? tokens.scopes : current.scopes,
        status: 'active',
      };
      const stored = await connections.replace(next, current.version);
      if (!stored) {
        // Someone wrote a newer record (re-link, revoke): ours must not overwrite it.
        logger.warn({ provider: current.provider, connection: id }, 'vault refresh result discarded: the record changed meanwhile');
        return null;
      }
      metrics.inc('warden_vault_refresh_total', { provider: current.provider, result: 'ok' });
      metrics.observe('warden_vault_refresh_seconds', (now() - started) / 1000, { provider: current.provider });
      logger.info({ provider: current.provider, connection: id, rotated: tokens.refreshToken !== undefined, lease_lost: leaseLost }, 'vault token refreshed');
      return stored;
    } finally {
      clearInterval(renewal);
    }
  }

  async function markRelink(conn: Connection, reason: string): Promise<WardenError> {
    try {
      await connections.replace({ ...conn, status: 'relink_required' }, conn.version);
    } catch (err) {
      logger.warn({ provider: conn.provider, err }, 'vault could not mark the connection for re-linking');
    }
    return relinkError(reason);
  }

  async function coordinate(start: Connection): Promise<Connection> {
    const provider = providerOf(start);
    const id = connectionId(start.user, start.provider);
    // Bounded waiting: a holder answers within its provider timeout plus a lease.
    const deadline = now() + provider.timeoutMs + 2 * leaseMs + 2_000;
    let delay = POLL_START_MS;
    for (;;) {
      const current = await connections.get(start.user, start.provider);
      if (!current || current.status !== 'active') {
        throw relinkError(current ? 'relink_required' : 'connection_removed');
      }
      if (!needsRefresh(current)) return current;

      const marker = parseMarker(await store.get(markerKey(id)));
      const claimed = marks(marker, current);
      if (claimed && marker.state === 'failed' && (marker.retryAt ?? 0) > now()) throw failedError(marker);
      if (!(claimed && marker.state === 'in_flight')) {
        const lock = await store.tryLock(lockName(id), leaseMs);
        if (lock) {
          try {
            // Re-read under the lock: another holder may have just finished.
            const locked = await connections.get(start.user, start.provider);
            if (!locked || locked.status !== 'active') {
              throw relinkError(locked ? 'relink_required' : 'connection_removed');
            }
            if (!needsRefresh(locked)) return locked;
            const refreshed = await redeemVersion(lock, id, locked, provider);
            if (refreshed) return refreshed;
          } finally {
            await lock.release().catch(() => false);
          }
        }
      }
      if (now() >= deadline) {
        throw transientError('upstream_unavailable', 'timed out waiting for another instance to refresh the token', 1);
      }
      await sleep(delay);
      delay = Math.min(delay * 2, POLL_MAX_MS);
    }
  }

  return {
    needsRefresh,
    async fresh(conn) {
      if (conn.status !== 'active') throw relinkError('relink_required');
      if (!needsRefresh(conn)) return conn;
      const stillValid = () => conn.expiresAt !== undefined && conn.expiresAt !== null && conn.expiresAt > now() + 1_000;
      if (!conn.refreshToken) {
        // Nothing to refresh with: use the token while it lasts, then ask for a re-link.
        if (stillValid()) return conn;
        throw await markRelink(conn, 'no_refresh_token');
      }
      const key = connectionId(conn.user, conn.provider);
      let flight = flights.get(key);
      if (!flight) {
        flight = coordinate(conn)
          .catch((err: unknown) => {
            // A token that is only close to expiry is still good while the provider is down.
            if (isWardenError(err, 'upstream_unavailable', 'store_unavailable') && stillValid()) return conn;
            throw withRetryAfter(err);
          })
          .finally(() => flights.delete(key));
        flights.set(key, flight);
      }
      return flight;
    },
  };
}
