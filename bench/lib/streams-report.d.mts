export interface StreamsRow {
  row: string;
  streams: number;
  open_s: number;
  rss_before_mb: number;
  rss_held_mb: number;
  rss_after_events_mb: number;
  kb_per_stream: number;
  fds_per_stream: number;
  idle_cpu_pct: number;
  fanout_ms: number;
  cpu_us_per_event: number;
  closed_ms: number | null;
  streams_left: number;
  agent_connections_left: number;
}
export function overR(results: StreamsRow[], row: StreamsRow, key: keyof StreamsRow): number | null;
export function streamsMarkdown(results: StreamsRow[], options?: { header?: string }): string;
