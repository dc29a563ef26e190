/**
 * The `credentials` stage: what the upstream is sent instead of the agent's
 * token (a static `header`, the user's vaulted token, or an RFC 8693
 * exchanged token), with the vault's `/.warden` endpoints for linking,
 * listing/revoking connections and exchanging tokens.
 */

import { WardenError, isWardenError } from '../core/errors.js';
import type { Stage } from '../pipeline/stage.js';
import type { RequestState } from '../pipeline/context.js';
import type { Runtime } from '../core/runtime.js';
import { createVaultCipher } from './crypto.js';
import { withConnectionCache } from './read-cache.js';
import { createConnectionRepository, type Connection, type ConnectionRepository } from './records.js';
import { createProviders, ProviderError, type ProviderRegistry } from './providers.js';
import { createRefresher, transientError } from './refresh.js';
import { createVaultRoutes } from './routes.js';
import { missingScopes, requireProvider, type VaultServices } from './services.js';
import { createLinkSecrets } from './tickets.js';
import { vaultConfigIssues } from './config-checks.js';
import { createAuthorizationServerMetadataApp } from './as-metadata.js';
import { createTokenExchangeClient, type TokenExchangeClient, type TokenExchangeConfig } from './token-exchange.js';

export { vaultConfigIssues } from './config-checks.js';

/** Build the vault services (exported for the CLI and tests). */
export async function createVaultServices(rt: Runtime): Promise<VaultServices & { exchangeClient: TokenExchangeClient; close(): Promise<void> }> {
  const vault = rt.config.vault;
  const issues = vaultConfigIssues(rt.config);
  if (issues.length > 0) throw new WardenError('config_invalid', issues.join('; '), { reason: 'vault_config_invalid' });
  const providers: ProviderRegistry = createProviders(vault.providers);
  // Without keys nothing can be stored; a route that needs the vault then fails closed.
  const cipher = vault.keys.length > 0 ? createVaultCipher(vault.keys) : undefined;
  const repository: ConnectionRepository = cipher ? createConnectionRepository(rt.store, cipher) : unavailableRepository();
  const connections = await withConnectionCache(repository, { store: rt.store, ttlMs: vault.cache_ttl, logger: rt.logger, metrics: rt.metrics });
  const secrets = createLinkSecrets(rt.store, vault.connect_ttl, { cipher });
  const refresher = createRefresher({ store: rt.store, connections, providers, logger: rt.logger, metrics: rt.metrics, leaseMs: vault.refresh_lease });
  const baseUrl = rt.publicUrl.replace(/\/+$/, '');
  const exchangeClient = createTokenExchangeClient({ timeoutMs: 10_000 });

  return {
    rt,
    providers,
    connections,
    secrets,
    refresher,
    baseUrl,
    exchangeClient,
    redirectUri: (provider) => `${baseUrl}/.warden/callback/${provider}`,
    async close() {
      exchangeClient.close();
      await connections.close();
    },
    async connectionRequired({ user, agent, provider }, reason) {
      const scopes = [...requireProvider(providers, provider).scopes];
      const ticket = await secrets.issueTicket({ user, agent, provider, scopes });
      rt.metrics.inc('warden_vault_connection_required_total', { provider });
      return new WardenError('connection_required', `link your ${provider} account: open connect_url in a browser, then retry`, {
        extra: { connect_url: `${baseUrl}/.warden/connect/${provider}?ticket=${ticket}`, provider },
        reason: reason.startsWith('vault_') ? reason : `vault_${reason}`,
      });
    },
  };
}

function unavailableRepository(): ConnectionRepository {
  const fail = async (): Promise<never> => {
    throw new WardenError('internal', 'vault.keys is empty: connections cannot be stored', { reason: 'vault_key_missing' });
  };
  return { get: fail, put: fail, replace: fail, delete: fail, list: fail, rekey: fail };
}

// The cached connection objects are shared by warm requests: build their header value once.
const bearers = new WeakMap<Connection, string>();
function bearerOf(conn: Connection): string {
  let value = bearers.get(conn);
  if (value === undefined) bearers.set(conn, (value = `Bearer ${conn.accessToken}`));
  return value;
}

/**
 * Whether a cached connection's scopes cover `required` (a provider's), answered
 * from a memo after the first check: the cached connection objects are shared
 * and never change (a write caches a new object), and `required` is the
 * provider's own array (a reload makes new ones), so the memo holds while both
 * are the same objects. A warm request then builds no Set and no array.
 */
const coveredScopes = new WeakMap<Connection, readonly string[]>();
export function coversScopes(conn: Connection, required: readonly string[]): boolean {
  if (coveredScopes.get(conn) === required) return true;
  if (missingScopes(required, conn.scopes).length > 0) return false;
  coveredScopes.set(conn, required);
  return true;
}

/** Credentials from the vault (`vault`) and from a token exchange (`token_exchange`). */
function createVaultCredentials(v: VaultServices, exchangeClient: TokenExchangeClient) {
  async function vaultCredentials(state: RequestState, providerName: string): Promise<void> {
    const principal = state.principal;
    if (!principal) throw new WardenError('unauthenticated', 'vault credentials need an authenticated agent', { reason: 'vault_no_principal' });
    if (principal.user === null) {
      throw new WardenError('forbidden', 'this route uses the user’s connected account; the token does not act for a user', { reason: 'vault_no_user' });
    }
    const binding = { user: principal.user, agent: principal.agent, provider: providerName };
    const provider = requireProvider(v.providers, providerName);
    try {
      const conn = await v.connections.cachedGet(binding.user, providerName);
      if (!conn) throw await v.connectionRequired(binding, 'not_linked');
      if (conn.status !== 'active') throw await v.connectionRequired(binding, 'relink_required');
      if (missingScopes(provider.scopes, conn.scopes).length > 0) throw await v.connectionRequired(binding, 'scopes_changed');
      const fresh = await v.refresher.fresh(conn);
      state.upstreamAuthorization = `Bearer ${fresh.accessToken}`;
    } catch (err) {
      if (isWardenError(err, 'connection_required') && err.extra.connect_url === undefined) {
        throw await v.connectionRequired(binding, err.reason);
      }
      if (isWardenError(err, 'store_unavailable') && err.headers['Retry-After'] === undefined) {
        throw transientError('store_unavailable', 'the vault store is unavailable', 1, err);
      }
      throw err;
    }
  }

  async function exchangedCredentials(state: RequestState, config: TokenExchangeConfig): Promise<void> {
    if (!state.principal || !state.token) {
      throw new WardenError('unauthenticated', 'token exchange needs the agent’s token', { reason: 'token_exchange_no_token' });
    }
    try {
      const exchanged = await exchangeClient.exchange(state.token, state.principal.expiresAt * 1000, config);
      state.upstreamAuthorization = `Bearer ${exchanged.accessToken}`;
    } catch (err) {
      if (err instanceof ProviderError) {
        v.rt.logger.warn({ kind: err.kind, oauth_error: err.oauthError, http_status: err.httpStatus, token_url: config.token_url }, 'token exchange failed');
        if (err.kind === 'transient') {
          throw transientError('upstream_unavailable', 'the token exchange server is unavailable', err.retryAfter ?? 2, err);
        }
        throw new WardenError('forbidden', 'the authorization server refused to exchange the token', { reason: 'token_exchange_refused', cause: err });
      }
      throw err;
    }
  }

  /**
   * The warm path: a cached, active connection with every configured scope and
   * an access token that needs no refresh. Anything else (including every
   * refusal) goes through vaultCredentials, which rechecks from the start.
   */
  function warmVaultCredentials(state: RequestState, providerName: string): boolean {
    const user = state.principal?.user;
    if (!user) return false;
    const provider = v.providers.get(providerName);
    if (!provider) return false;
    const conn = v.connections.peek(user, providerName);
    if (!conn || conn.status !== 'active' || v.refresher.needsRefresh(conn)) return false;
    if (provider.scopes.length > 0 && !coversScopes(conn, provider.scopes)) return false;
    state.upstreamAuthorization = bearerOf(conn);
    return true;
  }

  return function vaultCredentialsStage(state: RequestState): Promise<void> | void {
    const credentials = state.policy.credentials;
    if (credentials?.kind === 'vault') {
      if (warmVaultCredentials(state, credentials.provider)) return;
      return vaultCredentials(state, credentials.provider);
    }
    if (credentials?.kind === 'token_exchange') return exchangedCredentials(state, credentials);
  };
}

/** Build the stage (and the vault's endpoints) for one config generation. */
/** The credentials stage; `services` is what the console lists and revokes connections with. */
export type CredentialsStage = Stage & { readonly services: VaultServices };

export async function createCredentialsStage(rt: Runtime): Promise<CredentialsStage> {
  const services = await createVaultServices(rt);
  const fromVault = createVaultCredentials(services, services.exchangeClient);
  return {
    name: 'credentials',
    effects: true,
    run(state) {
      const c = state.policy.credentials;
      if (!c || c.kind === 'none') return;
      if (c.kind === 'header') {
        state.upstreamHeaders.push([c.name, c.value]);
        return;
      }
      return fromVault(state);
    },
    routes: createVaultRoutes(services),
    wellKnown: createAuthorizationServerMetadataApp(services.baseUrl),
    async close() {
      await services.close();
    },
    services,
  };
}
