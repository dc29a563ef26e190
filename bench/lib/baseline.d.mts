/** Types of bench/lib/baseline.mjs (for the TypeScript unit tests in test/bench). */

export declare const BASELINE_REF: string;
export declare const BASELINE_ROWS: string[];
export declare const TOLERANCE: number;
export declare const BASELINE_RATIOS: { name: string; today: [string, string]; pre: [string, string] }[];
export declare function preId(id: string): string;

export interface BaselineRatio {
  name: string;
  today_rows: string;
  pre_rows: string;
  today: number | null;
  pre: number | null;
  delta: number | null;
  pass: boolean | null;
}
export declare function baselineRatios(byId: Record<string, { rps: number | null } | undefined>): BaselineRatio[];
export declare function buildBaseline(
  repo: string,
  ref: string,
  options?: { log?: (...args: unknown[]) => void },
): { dir: string; dist: string; cli: string; sha: string; seconds: number; remove(): void };
