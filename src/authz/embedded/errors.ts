/**
 * Errors of the embedded evaluator, numbered like OpenFGA's API error codes so
 * the conformance suite and the differential test can compare them with the
 * server's. The Authorizer wrapper turns them into WardenError.
 */

/** OpenFGA error codes the embedded engine can raise. */
export const FGA_ERROR = {
  /** Invalid request: malformed ids, unknown types in a check, condition evaluation failures. */
  validation: 2000,
  /** The resolution depth limit was reached (`--resolve-node-limit`). */
  resolutionTooComplex: 2002,
  /** ListObjects on a type the model does not define. */
  typeNotFound: 2021,
  /** ListObjects on a relation the type does not define. */
  relationNotFound: 2022,
  /** A contextual tuple that the model would not accept as a write. */
  invalidTuple: 2027,
} as const;

/** One of the numeric codes in `FGA_ERROR`. */
export type FgaErrorCode = (typeof FGA_ERROR)[keyof typeof FGA_ERROR];

/** An error the evaluator raises for a request OpenFGA would also refuse. */
export class FgaError extends Error {
  readonly code: FgaErrorCode;

  constructor(code: FgaErrorCode, message: string) {
    super(message);
    this.name = 'FgaError';
    this.code = code;
  }
}

/** The OpenFGA code of `err` (directly, or as the `cause` of a wrapping error), if any. */
export function fgaCodeOf(err: unknown): FgaErrorCode | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    if (e instanceof FgaError) return e.code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}
