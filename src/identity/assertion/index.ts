/** Signed identity assertions for upstreams: keys, claims, signing, per-route settings. */
export { createAssertionService, type AssertionService, type AssertionRequest } from './service.js';
export { assertionConfigIssues, MAX_ASSERTION_TTL_MS } from './config-checks.js';
export { compileAssertionPlan, DEFAULT_ASSERTION_HEADER, type AssertionPlan, type RouteAssertion } from './settings.js';
export { actClaim, buildClaims, RESERVED_CLAIMS, type ApprovalEvidence, type AllowedCheck, type ActClaim } from './claims.js';
export { ASSERTION_TYP } from './signer.js';
export { DEV_ASSERTION_KEY_FILE, parseAssertionKey, type AssertionKey, type PublicJwk } from './keys.js';
