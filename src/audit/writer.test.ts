import { appendFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decisionLogSchema } from '../config/schema.js';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { Chain } from './chain.js';
import { dataDirKey } from './decision-log.js';
import { sinkAfter, type Sink } from './sinks.js';
import { verifyFiles } from './verify.js';
import { attachWriter, fileChainEnd, type DecisionLogWriters } from './writer.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-writer-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const silent = createLogger({ level: 'silent' });
const deps = { logger: silent, metrics: createMetrics() };
const recordsOf = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, any>);

/** `n` chained lines of instance `id` (with a newline after each). */
const chained = (id: string, n: number, pad = '') => {
  const chain = new Chain(id);
  return Array.from({ length: n }, (_, i) => chain.line('decision', JSON.stringify({ i, pad })) + '\n').join('');
};

describe('where the previous chain of a file ended', () => {
  it("is the live file's last record, else the newest rotated file's when the live one is empty or missing", async () => {
    const path = join(dir, 'end', 'd.jsonl');
    expect(await fileChainEnd(path, silent)).toBeNull(); // no file yet
    mkdirSync(join(dir, 'end'));
    writeFileSync(`${path}.1`, chained('older', 3));
    const last = recordsOf(`${path}.1`).at(-1)!;
    expect(await fileChainEnd(path, silent)).toEqual({ instance: 'older', seq: 2, hash: last.hash });
    writeFileSync(path, ''); // just rotated
    expect(await fileChainEnd(path, silent)).toEqual({ instance: 'older', seq: 2, hash: last.hash });
    // A last line longer than one read-back chunk.
    writeFileSync(path, chained('live', 2, 'x'.repeat(200_000)));
    expect(await fileChainEnd(path, silent)).toMatchObject({ instance: 'live', seq: 1 });
  });

  it('is none when the file ends with a line cut short (a crash mid-write) or a foreign line', async () => {
    const path = join(dir, 'cut.jsonl');
    writeFileSync(path, chained('c', 2));
    appendFileSync(path, '{"t":"decision","instance":"c","seq":2,"prev":"ab');
    expect(await fileChainEnd(path, silent)).toBeNull();
    writeFileSync(path, chained('c', 2) + '{"hello":"world"}\n');
    expect(await fileChainEnd(path, silent)).toBeNull();
  });
});

describe('a writer shared by config generations', () => {
  it('a reload starts a chain linked to the previous one, records still in flight go to it, a changed sink waits for the old one; a restart links to the file', async () => {
    const file = join(dir, 'gen', 'decisions.jsonl');
    const { key, jwk } = await dataDirKey(join(dir, 'gen-key'));
    const cfg = (extra: object) => decisionLogSchema.parse({ sink: 'file', path: file, checkpoint_every: 2, ...extra });
    const writers: DecisionLogWriters = new Map();
    const a = await attachWriter(writers, cfg({}), key, deps);
    a.push('decision', '{"n":"a0"}');
    a.push('decision', '{"n":"a1"}');
    a.push('decision', '{"n":"a2"}');
    // A reload that changes the sink's settings: a new sink for the same file, writing after the old one.
    const b = await attachWriter(writers, cfg({ rotate: '50MB' }), key, deps);
    expect(writers.size).toBe(1);
    a.push('decision', '{"n":"a-in-flight"}');
    b.push('decision', '{"n":"b0"}');
    await a.close(); // the old generation drained: the newer one keeps writing
    b.push('decision', '{"n":"b1"}');
    await b.close();
    expect(writers.size).toBe(0);

    const restarted: DecisionLogWriters = new Map();
    const c = await attachWriter(restarted, cfg({}), key, deps);
    c.push('decision', '{"n":"c0"}');
    await c.close();

    const recs = recordsOf(file);
    const ids = [...new Set(recs.map((r) => r.instance))];
    expect(ids).toHaveLength(3);
    expect(recs.filter((r) => r.t === 'decision').map((r) => `${ids.indexOf(r.instance)}:${r.n}`)).toEqual([
      '0:a0',
      '0:a1',
      '0:a2',
      '1:a-in-flight',
      '1:b0',
      '1:b1',
      '2:c0',
    ]);
    const geneses = recs.filter((r) => r.t === 'genesis');
    expect(geneses.map((g) => g.after?.instance ?? null)).toEqual([null, ids[0], ids[1]]);
    for (const g of geneses.slice(1)) {
      const before = recs[recs.indexOf(g) - 1];
      expect(g.after).toEqual({ instance: before.instance, seq: before.seq, hash: before.hash });
    }
    const r = await verifyFiles([file], { jwks: [jwk] });
    expect(r).toMatchObject({ ok: true, records: 7, roots: [ids[0]], unlinked: [] });
    expect(Object.values(r.unsigned)).toEqual([0, 0, 0]);
  });
});

describe('sinkAfter', () => {
  it('holds lines until the sink it replaces has closed, then writes them in order', async () => {
    const got: string[] = [];
    const next: Sink = { write: (chunk) => void got.push(chunk.toString()), close: async () => {} };
    let closed!: () => void;
    const sink = sinkAfter(new Promise<void>((r) => (closed = r)), next);
    sink.write(Buffer.from('1\n'), 1);
    sink.write(Buffer.from('2\n'), 1);
    await new Promise((r) => setTimeout(r, 10));
    expect(got).toEqual([]);
    closed();
    await new Promise((r) => setTimeout(r, 0));
    sink.write(Buffer.from('3\n'), 1);
    await sink.close();
    expect(got).toEqual(['1\n', '2\n', '3\n']);
  });
});
