/**
 * bench/bodies.mjs: large bodies through Warden and through R. The report's
 * arithmetic (sizes, medians over rounds, ratios to R), and the tool end to
 * end at a small size (real Warden, R, upstream and clients): every download
 * and upload completes, and the slow readers are held and read.
 */

import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bodiesMarkdown, overR, parseSize, sizeText, summarizeBodies, type BodiesRow, type BodySample } from '../../bench/lib/bodies-report.mjs';
import { REPO_ROOT } from '../support/gateway.js';

const MB = 1024 * 1024;
const sample = (over: Partial<BodySample>): BodySample => ({
  round: 1,
  row: 'R',
  direction: 'download',
  size: MB,
  requests: 100,
  bytes: 100 * MB,
  seconds: 2,
  cpu_us: 400_000,
  peak_rss_mb: 100,
  ...over,
});

describe('the bodies report', () => {
  it('reads and writes sizes in powers of 1024', () => {
    expect([parseSize('64KB'), parseSize('1MB'), parseSize('1.5kb'), parseSize('300'), parseSize('2 GB')]).toEqual([65536, MB, 1536, 300, 2 * 1024 * MB]);
    expect([parseSize('1TB'), parseSize('MB'), parseSize('-1KB'), parseSize('')].every(Number.isNaN)).toBe(true);
    expect([sizeText(65536), sizeText(MB), sizeText(16 * MB), sizeText(1536), sizeText(300)]).toEqual(['64 KB', '1 MB', '16 MB', '1536 B', '300 B']);
  });

  it('takes the median of each figure over the rounds, per gateway, direction and size', () => {
    const results = summarizeBodies([
      sample({ round: 1, cpu_us: 400_000 }),
      sample({ round: 2, cpu_us: 600_000, seconds: 4 }),
      sample({ round: 3, cpu_us: 500_000 }),
      sample({ row: 'Warden', cpu_us: 800_000 }),
      sample({ row: 'Warden', direction: 'upload', bytes: 50 * MB, requests: 50 }),
    ]);
    expect(results).toHaveLength(3);
    const [r, w, up] = results;
    expect(r).toMatchObject({
      row: 'R',
      direction: 'download',
      size: MB,
      rounds: 3,
      mb_per_s: 50,
      req_per_s: 50,
      cpu_us_per_mb: 5000,
      cpu_us_per_request: 5000,
    });
    expect(w.cpu_us_per_mb).toBe(8000);
    expect(overR(results, w, 'cpu_us_per_mb')).toBeCloseTo(8000 / 5000, 9);
    expect(overR(results, w, 'mb_per_s')).toBeCloseTo(1, 9);
    // No R upload of that size: no ratio; none for R itself either.
    expect(overR(results, up, 'cpu_us_per_mb')).toBeNull();
    expect(overR(results, r, 'cpu_us_per_mb')).toBeNull();
  });

  it('prints a line per case and one per gateway with slow readers', () => {
    const results: BodiesRow[] = summarizeBodies([sample({}), sample({ row: 'Warden', cpu_us: 800_000 })]);
    const md = bodiesMarkdown(
      results,
      [{ row: 'Warden', readers: 50, rate: 256 * 1024, rss_before_mb: 100, rss_with_mb: 110, kb_per_reader: 205, read_mb: 90 }],
      {
        header: 'HEAD\n',
      },
    );
    expect(md.startsWith('HEAD\n')).toBe(true);
    expect(md).toContain('| Warden | download | 1 MB | 50 | 1.00× | 50 | 8000 | 2.00× | 8000 | 100 | 1 |');
    expect(md).toContain('| Warden | 50 | 256 KB/s | 100 | 110 | 205 | 90 |');
  });
});

describe('bench/bodies.mjs', () => {
  it('downloads and uploads through R and Warden, and holds slow readers', () => {
    const out = mkdtempSync(join(tmpdir(), 'warden-bodies-'));
    try {
      const r = spawnSync(
        process.execPath,
        [
          'bench/bodies.mjs',
          ...['--rows', 'R,W', '--downloads', '64KB,1MB', '--uploads', '64KB', '--rounds', '1', '--duration', '1', '--warmup', '0'],
          ...['--slow', '4', '--slow-hold', '1', '--out', out],
        ],
        { cwd: REPO_ROOT, encoding: 'utf8', timeout: 170_000 },
      );
      expect(r.status, r.stderr).toBe(0);
      const report = JSON.parse(readFileSync(join(out, 'bodies.json'), 'utf8')) as {
        results: BodiesRow[];
        slow: Array<{ row: string; readers: number; read_mb: number }>;
        samples: BodySample[];
      };
      expect(report.results.map((x) => [x.row, x.direction, x.size])).toEqual([
        ['R', 'download', 65536],
        ['R', 'download', MB],
        ['R', 'upload', 65536],
        ['Warden', 'download', 65536],
        ['Warden', 'download', MB],
        ['Warden', 'upload', 65536],
      ]);
      for (const s of report.samples) {
        // Every request moved its whole body (the tool fails on any error), and the gateway did work for it.
        expect(s.requests).toBeGreaterThan(0);
        expect(s.bytes).toBe(s.requests * s.size);
        expect(s.cpu_us).toBeGreaterThan(0);
      }
      expect(report.slow.map((s) => [s.row, s.readers])).toEqual([
        ['R', 4],
        ['Warden', 4],
      ]);
      for (const s of report.slow) expect(s.read_mb).toBeGreaterThan(0);
      expect(readFileSync(join(out, 'bodies.md'), 'utf8')).toContain('| Warden | upload | 64 KB |');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  }, 180_000);
});
