/** Types of bench/lib/load.mjs (for the TypeScript unit tests in test/bench). */

export interface WrkResult {
  rps: number;
  requests: number;
  non2xx: number;
  socket_errors: number;
  latency_ms: Partial<Record<'p50' | 'p75' | 'p90' | 'p99', number>>;
  /** Set by mergeWrk: each slice's req/s, in the order run. */
  slices?: number[];
}

export declare function parseWrk(text: string): WrkResult;
export declare function mergeWrk(runs: WrkResult[]): WrkResult;
export declare function warmedUp(rates: number[], options: { min: number; patience?: number; gain?: number }): boolean;
