/** Types of the parts of bench/lib/report.mjs the TypeScript unit tests in test/bench use. */

export interface TargetRow {
  name: string;
  target: string;
  value: number | null;
  /** The ratio within each round both rows were measured in, in round order. */
  per_round: number[];
  pass: boolean | 'reported' | null;
}
export declare function targets(
  byId: Record<string, { rps?: number | null; sut_cpu_us_per_request?: number | null; rps_by_round?: Record<string, number> } | undefined>,
  micro?: ReadonlyArray<{ name: string; ns_per_op: number }>,
): TargetRow[];
export declare function mcpBudget(g3: number | null | undefined, rpb: number | null | undefined, r: number | null | undefined, goal?: number): number | null;
export declare const MCP_PARSE: string;
export declare const MCP_ANSWER: string;
export declare function mcpFloor(micro: ReadonlyArray<{ name: string; ns_per_op: number }> | null | undefined): number | null;
export declare function mcpCeiling(g3: number | null | undefined, rpb: number | null | undefined, r: number | null | undefined): number | null;
export declare function mcpOwn(
  g4: number | null | undefined,
  g3: number | null | undefined,
  rpb: number | null | undefined,
  r: number | null | undefined,
): number | null;

export interface RoundSample {
  round: number;
  error?: string;
  wrk: { rps: number; latency_ms: Record<string, number> };
}
export declare function summarize(
  variant: { id: string; what: string; pinned?: boolean },
  samples: RoundSample[],
): { rps: number | null; rps_by_round: Record<string, number> };

export interface HostPair {
  heavier: string;
  lighter: string;
  adds: string;
  value: number;
  per_round: number[];
  in_order: boolean;
}
export declare const ORDERED_PAIRS: ReadonlyArray<readonly [string, string, string]>;
export declare const HOST_TOLERANCE: number;
export declare function hostCheck(
  byId: Record<string, { rps?: number | null; rps_by_round?: Record<string, number> } | undefined>,
  tolerance?: number,
): { tolerance: number; pairs: HostPair[]; out_of_order: number; r_spread: number | null; steady: boolean };
export declare function roundOutOfOrder(
  rpsById: Record<string, number | undefined>,
  tolerance?: number,
): Array<{ heavier: string; lighter: string; adds: string; value: number }>;
export declare function markdown(result: unknown): string;
export declare function normalizedRounds(
  a: { rps_by_round?: Record<string, number> } | undefined,
  b: { rps_by_round?: Record<string, number> } | undefined,
  c: { rps_by_round?: Record<string, number> } | undefined,
  d: { rps_by_round?: Record<string, number> } | undefined,
): number[];
export declare function warmupLine(variants: Array<{ id: string; warmup_s?: number[]; warmup_still_rising?: number }>): string | null;
