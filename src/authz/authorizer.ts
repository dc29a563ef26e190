/**
 * One interface for both authorization engines: the embedded evaluator of
 * OpenFGA models and a real OpenFGA server. Semantics follow OpenFGA exactly.
 */

export interface TupleKey {
  user: string;
  relation: string;
  object: string;
  condition?: { name: string; context?: Record<string, unknown> };
}

export interface CheckRequest {
  user: string;
  relation: string;
  object: string;
  context?: Record<string, unknown>;
  contextualTuples?: TupleKey[];
}

export interface CheckOptions {
  /** `higher_consistency` bypasses server caches (used when releasing approved requests). */
  consistency?: 'minimize_latency' | 'higher_consistency';
}

export interface ListObjectsRequest {
  user: string;
  relation: string;
  type: string;
  context?: Record<string, unknown>;
  contextualTuples?: TupleKey[];
}

export interface Authorizer {
  readonly engine: 'embedded' | 'openfga';
  /** The revision answers come from, when the engine names one: OpenFGA's authorization model id, the embedded engine's policy digest. Recorded with every check in the decision log. */
  readonly modelId?: string;
  /** Throws WardenError `authz_unavailable` when the engine cannot answer (fail closed). */
  check(request: CheckRequest, options?: CheckOptions): Promise<boolean>;
  /** Answers in the order of `requests`. */
  batchCheck(requests: CheckRequest[], options?: CheckOptions): Promise<boolean[]>;
  /**
   * Answers from the decision cache when every request has a fresh one, with
   * no promise; undefined means "call batchCheck". Only a caching authorizer
   * implements it; it never consults the engine.
   */
  peekBatch?(requests: CheckRequest[], options?: CheckOptions): boolean[] | undefined;
  /**
   * Answers in the order of `requests` without a promise: implemented by an
   * engine that evaluates in-process (the embedded engine), and by the decision
   * cache in front of one. Throws where `batchCheck` would reject.
   */
  batchCheckSync?(requests: CheckRequest[], options?: CheckOptions): boolean[];
  /**
   * An in-process engine's answer when the check takes only a few resolution
   * steps (cheaper than building and storing a decision-cache entry), else
   * undefined (ask again through the cache). Throws where `check` would reject.
   */
  checkIfCheap?(request: CheckRequest): boolean | undefined;
  /**
   * An in-process engine's remembered answer to a check `checkIfCheap`
   * answered before (answers of a policy generation never change), without
   * evaluating or reading a clock; else undefined (then ask `checkIfCheap`).
   */
  checkIfKnown?(request: CheckRequest): boolean | undefined;
  listObjects(request: ListObjectsRequest, options?: CheckOptions): Promise<string[]>;
  /** Types of the loaded model and the relations each defines (for load-time validation). */
  relations(): ReadonlyMap<string, ReadonlySet<string>>;
  ready(): Promise<void>;
  close(): Promise<void>;
}
