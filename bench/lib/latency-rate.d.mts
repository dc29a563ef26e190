/** Types of bench/lib/latency-rate.mjs (for the TypeScript unit tests in test/bench). */

export declare const UTILISATION: number;
export declare const CALIBRATION_RATE: number;
export declare const RATE_STEP: number;

export interface Calibration {
  id: string;
  rate?: number;
  achieved_rate?: number;
  sutCpuUs: number;
  loadCpuUs?: number | null;
  clientCpuUs?: number;
  p99_ms?: number | null;
}
export interface RateRule {
  rate: number;
  utilisation: number;
  limiting: { id: string; core: 'sut' | 'load'; cpuUs: number };
  rows: (Calibration & { sutMax: number | null; loadMax: number | null })[];
}
export interface GcTotals {
  count: number;
  ms: number;
  max: number;
}

export declare function utilisationAt(rate: number, cpuUs: number): number;
export declare function maxRateFor(cpuUs: number, options?: { utilisation?: number; step?: number }): number | null;
export declare function latencyRate(calibrations: (Calibration | null | undefined)[], options?: { utilisation?: number; step?: number }): RateRule | null;
export declare function describeRate(result: RateRule | null): string | null;
export declare function parseTraceGc(text: string, options?: { fromMs?: number }): { scavenge: GcTotals; full: GcTotals };
