/** Identity: JWT verification, verified-token cache, dev issuer. */
export type { Principal, Authenticator, AuthenticatorStats } from './principal.js';
export { createAuthenticator, IDENTITY_DEFAULTS, type AuthenticatorOptions } from './verifier.js';
export {
  loadDevIssuer,
  devIssuerIdentity,
  assertDevIssuerAllowed,
  DEV_ISSUER_KEY_FILE,
  DEV_ISSUER_PATH,
  DEV_TOKEN_MAX_TTL_SECONDS,
  type DevIssuer,
  type DevIssuerOptions,
  type DevTokenRequest,
} from './dev-issuer.js';
export { createTokenCache, tokenCacheKey, type TokenCache, type TokenCacheStats } from './token-cache.js';
export { DEFAULT_MAX_TOKEN_BYTES } from './token-shape.js';
