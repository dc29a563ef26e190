import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { fileSink } from './sinks.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-file-sink-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lines = (from: number, n: number) => Buffer.from(Array.from({ length: n }, (_, i) => `{"n":${from + i},"s":"é"}\n`).join(''));
const tick = () => new Promise((r) => setTimeout(r, 20));

describe('file sink', () => {
  it('writes every chunk, in order, byte for byte: while the file opens, then with it open (each batch written as it comes)', async () => {
    const path = join(dir, 'open', 'decisions.jsonl');
    const metrics = createMetrics();
    const sink = fileSink(path, 1 << 30, 3, createLogger({ level: 'silent' }), metrics);
    sink.write(lines(0, 2), 2); // opens the file
    sink.write(lines(2, 1), 1); // queued behind the open
    await tick();
    expect(readFileSync(path, 'utf8')).toBe(lines(0, 3).toString());
    // The file is open: each batch is written when it is handed over, and the next one is not held back.
    for (let i = 3; i < 60; i += 3) {
      sink.write(lines(i, 3), 3);
      expect(readFileSync(path, 'utf8')).toBe(lines(0, i + 3).toString());
    }
    await sink.close();
    expect(readFileSync(path, 'utf8')).toBe(lines(0, 60).toString());
    expect(metrics.render()).not.toMatch(/warden_decision_log_errors_total\{sink="file"\} [1-9]/);
  });

  it('rotates between lines while batches keep coming: the files, oldest first, hold every line once', async () => {
    const sub = join(dir, 'rot');
    const path = join(sub, 'decisions.jsonl');
    const sink = fileSink(path, 200, 100, createLogger({ level: 'silent' }), createMetrics());
    for (let i = 0; i < 120; i += 4) {
      sink.write(lines(i, 4), 4);
      if (i % 20 === 0) await tick();
    }
    await sink.close();
    const rotated = readdirSync(sub)
      .filter((n) => /\.\d+$/.test(n))
      .sort((a, b) => Number(b.split('.').pop()) - Number(a.split('.').pop()));
    expect(rotated.length).toBeGreaterThan(5);
    const all = [...rotated, 'decisions.jsonl'].map((n) => readFileSync(join(sub, n), 'utf8'));
    expect(all.join('')).toBe(lines(0, 120).toString());
    for (const f of all) expect(f.endsWith('\n')).toBe(true);
  });
});
