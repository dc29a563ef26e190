/** Types of the parts of bench/lib/report.mjs the TypeScript unit tests in test/bench use. */

export interface TargetRow {
  name: string;
  target: string;
  value: number | null;
  pass: boolean | 'reported' | null;
}
export declare function targets(byId: Record<string, { rps?: number | null; sut_cpu_us_per_request?: number | null } | undefined>): TargetRow[];
export declare function mcpCeiling(g3: number | null | undefined, rpb: number | null | undefined, r: number | null | undefined): number | null;
export declare function mcpOwn(
  g4: number | null | undefined,
  g3: number | null | undefined,
  rpb: number | null | undefined,
  r: number | null | undefined,
): number | null;
