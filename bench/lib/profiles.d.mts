/** Types of bench/lib/profiles.mjs for the tests (the harness is plain JavaScript). */

export interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number }; children?: number[] }>;
  samples: number[];
  timeDeltas: number[];
}

export interface FunctionTime {
  fn: string;
  ms: number;
  pct: number;
}

export interface Summary {
  totalMs: number;
  busyMs: number;
  self: FunctionTime[];
  inclusive: FunctionTime[];
}

export interface Comparison {
  cpuA: number;
  cpuB: number;
  parts: Array<{ part: string; a: number; b: number; delta: number }>;
  functions: Array<{ fn: string; a: number; b: number; delta: number }>;
}

export function shortUrl(url: string): string;
export function summarize(profile: CpuProfile, skipUs?: number): Summary;
export function partOf(fn: string): string;
export const PARTS: readonly string[];
export function comparePerRequest(a: Summary, b: Summary, cpuA: number, cpuB: number): Comparison;
