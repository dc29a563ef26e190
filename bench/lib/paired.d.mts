/** Types of bench/lib/paired.mjs (for the TypeScript unit tests in test/bench). */

export interface Pair {
  a: string;
  b: string;
  name: string;
  goal: number | null;
  issue?: string;
}
export interface Estimate {
  median: number;
  low: number;
  high: number;
  slices: number;
}
export interface PairedRow {
  name: string;
  goal: number | null;
  issue: string | null;
  median?: number;
  low?: number;
  high?: number;
  measured: boolean;
  pass: boolean | null;
  derived?: boolean;
}

export declare const TARGET_PAIRS: Pair[];
export declare const DERIVED: { name: string; of: [string, string]; goal: number }[];
export declare function parsePairs(text: string): Pair[];
export declare function pairEstimate(slices: { a: number; b: number }[]): Estimate | null;
export declare function pairedTargets(pairs: Pair[], results: Record<string, Estimate | null>): PairedRow[];
export declare function pairedMarkdown(rows: PairedRow[], options?: { header?: string }): string;
