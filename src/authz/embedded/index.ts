/** The embedded OpenFGA-compatible engine. */
export {
  CHEAP_CHECK_STEPS,
  KNOWN_ANSWERS,
  createEmbeddedAuthorizer,
  loadEmbeddedAuthorizer,
  type EmbeddedAuthorizer,
  type EmbeddedAuthorizerOptions,
  type EmbeddedPolicyFiles,
} from './embedded-authorizer.js';
export {
  createEmbeddedEngine,
  InvalidStoredTupleError,
  DEFAULT_MAX_DEPTH,
  DEFAULT_MAX_LIST_OBJECTS,
  DEFAULT_MAX_STEPS,
  type EmbeddedEngine,
  type EmbeddedEngineOptions,
} from './engine.js';
export { FgaError, FGA_ERROR, fgaCodeOf, type FgaErrorCode } from './errors.js';
export { compileConditions, IPAddress, type CompiledCondition } from './conditions.js';
