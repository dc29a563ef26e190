/** One measured run of bench/bodies.mjs: a gateway, a direction and a body size, in one round. */
export interface BodySample {
  round: number;
  row: string;
  direction: 'download' | 'upload';
  size: number;
  requests: number;
  bytes: number;
  seconds: number;
  cpu_us: number;
  peak_rss_mb: number;
}
/** The medians over the rounds of one gateway, direction and size. */
export interface BodiesRow {
  row: string;
  direction: 'download' | 'upload';
  size: number;
  rounds: number;
  mb_per_s: number;
  req_per_s: number;
  cpu_us_per_mb: number;
  cpu_us_per_request: number;
  peak_rss_mb: number;
}
export interface SlowReadersRow {
  row: string;
  readers: number;
  rate: number;
  rss_before_mb: number;
  rss_with_mb: number;
  kb_per_reader: number;
  read_mb: number;
}
export function parseSize(text: string): number;
export function sizeText(bytes: number): string;
export function summarizeBodies(samples: BodySample[]): BodiesRow[];
export function overR(results: BodiesRow[], row: BodiesRow, key: keyof BodiesRow): number | null;
export function bodiesMarkdown(results: BodiesRow[], slow: SlowReadersRow[], options?: { header?: string }): string;
