/**
 * bench/streams.mjs: held MCP GET streams through Warden and through R. The
 * report's arithmetic, and the tool end to end at a small size (real Warden,
 * R, upstream and agents): every stream opens, every event reaches every
 * agent, and every stream is torn down when the agents leave.
 */

import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { overR, streamsMarkdown, type StreamsRow } from '../../bench/lib/streams-report.mjs';
import { REPO_ROOT } from '../support/gateway.js';

const row = (over: Partial<StreamsRow>): StreamsRow => ({
  row: 'R',
  streams: 1000,
  open_s: 1,
  rss_before_mb: 80,
  rss_held_mb: 96,
  rss_after_events_mb: 97,
  kb_per_stream: 16,
  fds_per_stream: 2,
  idle_cpu_pct: 0,
  fanout_ms: 50,
  cpu_us_per_event: 40,
  closed_ms: 100,
  streams_left: 0,
  agent_connections_left: 0,
  ...over,
});

describe('the held-streams report', () => {
  it("sets Warden's figures over R's at the same number of streams, and nothing for R itself or without R", () => {
    const results = [
      row({}),
      row({ streams: 4000, kb_per_stream: 15 }),
      row({ row: 'Warden', kb_per_stream: 20, cpu_us_per_event: 100 }),
      row({ row: 'Warden', streams: 4000, kb_per_stream: 30 }),
      row({ row: 'Warden', streams: 9000 }),
    ];
    expect(overR(results, results[2], 'kb_per_stream')).toBeCloseTo(20 / 16, 9);
    expect(overR(results, results[2], 'cpu_us_per_event')).toBeCloseTo(100 / 40, 9);
    expect(overR(results, results[3], 'kb_per_stream')).toBeCloseTo(30 / 15, 9);
    expect(overR(results, results[0], 'kb_per_stream')).toBeNull();
    expect(overR(results, results[4], 'kb_per_stream')).toBeNull();
    expect(overR([row({ cpu_us_per_event: 0 }), row({ row: 'Warden' })], row({ row: 'Warden' }), 'cpu_us_per_event')).toBeNull();
  });

  it('prints one line per row, and says when the streams did not close', () => {
    const md = streamsMarkdown([row({}), row({ row: 'Warden', kb_per_stream: 20, closed_ms: null, streams_left: 3 })], { header: 'HEAD\n' });
    const lines = md.split('\n').filter((l) => l.startsWith('| R ') || l.startsWith('| Warden '));
    expect(lines).toHaveLength(2);
    expect(md.startsWith('HEAD\n')).toBe(true);
    expect(lines[1]).toContain('| 1.25× |');
    expect(lines[1]).toContain('| not within 30 s | 3 | 0 |');
  });
});

describe('bench/streams.mjs', () => {
  it('holds streams through R and Warden, delivers every event to every agent, and leaves nothing open', () => {
    const out = mkdtempSync(join(tmpdir(), 'warden-streams-'));
    try {
      const r = spawnSync(
        process.execPath,
        ['bench/streams.mjs', '--streams', '40', '--rows', 'R,W', '--hold', '1', '--warmup', '10', '--events', '2', '--out', out],
        { cwd: REPO_ROOT, encoding: 'utf8', timeout: 170_000 },
      );
      expect(r.status, r.stderr).toBe(0);
      const { results } = JSON.parse(readFileSync(join(out, 'streams.json'), 'utf8')) as { results: StreamsRow[] };
      expect(results.map((x) => [x.row, x.streams])).toEqual([
        ['R', 40],
        ['Warden', 40],
      ]);
      for (const x of results) {
        // Two events reached all 40 agents (the tool fails otherwise), each in a measured time.
        expect(x.fanout_ms).toBeGreaterThan(0);
        expect(x.closed_ms).not.toBeNull();
        expect(x.streams_left).toBe(0);
        expect(x.agent_connections_left).toBe(0);
        // Each held stream is at least a new agent connection (the upstream one may be a pooled one reused).
        expect(x.fds_per_stream).toBeGreaterThanOrEqual(1);
      }
      expect(readFileSync(join(out, 'streams.md'), 'utf8')).toContain('| Warden | 40 |');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 180_000);
});
