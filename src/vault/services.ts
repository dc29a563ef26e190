/**
 * What the vault's stage and endpoints share, built once per config generation
 * by `createVaultFeature`: providers, the connection repository, link secrets,
 * the refresher, and the `connection_required` error builder.
 */

import { WardenError } from '../core/errors.js';
import type { Runtime } from '../core/runtime.js';
import type { CachedConnections } from './read-cache.js';
import type { OAuthProvider, ProviderRegistry } from './providers.js';
import type { Refresher } from './refresh.js';
import type { LinkSecrets } from './tickets.js';

/** The vault's shared services. */
export interface VaultServices {
  readonly rt: Runtime;
  readonly providers: ProviderRegistry;
  /** Writes invalidate the hot-path read cache on every instance. */
  readonly connections: CachedConnections;
  readonly secrets: LinkSecrets;
  readonly refresher: Refresher;
  /** `publicUrl` without a trailing slash. */
  readonly baseUrl: string;
  /** Build (and record a ticket for) `connection_required` for this user and provider. */
  connectionRequired(binding: { user: string; agent: string; provider: string }, reason: string): Promise<WardenError>;
  /** Where the provider sends the browser back. */
  redirectUri(provider: string): string;
}

/** Scopes of `required` missing from `granted`. */
export function missingScopes(required: readonly string[], granted: readonly string[]): string[] {
  const have = new Set(granted);
  return required.filter((s) => !have.has(s));
}

/** The provider, or a config error (cross-checked at load; this guards reloads). */
export function requireProvider(providers: ProviderRegistry, name: string): OAuthProvider {
  const provider = providers.get(name);
  if (!provider) {
    throw new WardenError('internal', `vault provider ${name} is not configured`, { reason: 'vault_provider_unknown' });
  }
  return provider;
}
