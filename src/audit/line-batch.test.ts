import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Chain } from './chain.js';
import { LineBatch, SIG_CHARS } from './line-batch.js';
import { verifyFiles } from './verify.js';

/** A stand-in signature of the right length that depends on what a checkpoint signs. */
const fakeSign = (instance: string, seq: number, head: string) =>
  Buffer.from(`${instance}|${seq}|${head}`).toString('base64url').padEnd(SIG_CHARS, 'x').slice(-SIG_CHARS);

/** A record body as the decision log hands it over: a JSON object text (any members, any characters). */
const body = fc.dictionary(
  fc.string({ unit: 'binary', maxLength: 12 }),
  fc.oneof(fc.string({ unit: 'binary', maxLength: 60 }), fc.integer(), fc.boolean(), fc.constant(null)),
  {
    maxKeys: 6,
  },
);
/** A step: a record (of a type), a checkpoint, or a flush. */
const step = fc.oneof(
  { weight: 6, arbitrary: body.map((b) => ({ kind: 'record' as const, t: 'decision', body: JSON.stringify(b) })) },
  {
    weight: 1,
    arbitrary: fc
      .nat(5000)
      .map((n) => ({ kind: 'checkpoint' as const, body: `{"time":"2026-11-30T00:00:00.000Z","records":${n},"kid":"k1","alg":"EdDSA","sig":"` })),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'take' as const }) },
);

/** What `Chain.line` (the reference that `audit verify` checks) makes of the same steps. */
function reference(steps: Array<{ kind: string; t?: string; body?: string }>, instance: string, chained: boolean): string {
  const chain = new Chain(instance);
  let out = '';
  for (const s of steps) {
    if (s.kind === 'record') out += (chained ? chain.line(s.t!, s.body!) : s.body!.length > 2 ? `{"t":"${s.t}",${s.body!.slice(1)}` : `{"t":"${s.t}"}`) + '\n';
    if (s.kind === 'checkpoint') out += chain.line('checkpoint', `${s.body}${fakeSign(instance, chain.seq, chain.prev)}"}`) + '\n';
  }
  return out;
}

function written(
  steps: Array<{ kind: string; t?: string; body?: string }>,
  instance: string,
  chained: boolean,
  capacity: number,
): { text: string; lines: number } {
  const batch = new LineBatch(chained ? new Chain(instance) : undefined, fakeSign, capacity);
  const chunks: Buffer[] = [];
  let lines = 0;
  const take = () => {
    const b = batch.take();
    if (b) {
      chunks.push(b.chunk); // kept as handed over: a later batch must never write into it (the sink may still be writing it)
      lines += b.lines;
    }
  };
  for (const s of steps) {
    if (s.kind === 'take') take();
    else {
      const text = s.kind === 'checkpoint' ? s.body! : s.body!;
      if (!batch.fits(text.length)) take();
      batch.add(s.kind === 'checkpoint' ? 'checkpoint' : s.t!, text);
    }
  }
  take();
  return { text: Buffer.concat(chunks).toString('utf8'), lines };
}

describe('pending decision lines (one Buffer, chain completed at the flush)', () => {
  it('writes byte for byte the lines Chain.line makes, whatever the records, checkpoints and flush points', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 60 }), fc.constantFrom(1024, 4096, 256 * 1024), (steps, capacity) => {
        const expected = reference(steps, 'inst-1', true);
        const got = written(steps, 'inst-1', true, capacity);
        expect(got.text).toBe(expected);
        expect(got.lines).toBe(expected.split('\n').length - 1);
      }),
      { numRuns: 300 },
    );
  });

  it('without the chain: {"t":…} and the record members, one line each', () => {
    fc.assert(
      fc.property(
        fc.array(
          step.filter((s) => s.kind !== 'checkpoint'),
          { maxLength: 40 },
        ),
        (steps) => {
          expect(written(steps, 'i', false, 1024).text).toBe(reference(steps, 'i', false));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a record larger than a batch gets a buffer of its own; the chain stays whole and verifies', async () => {
    const big = JSON.stringify({ input: 'é'.repeat(5000), n: 1 });
    const steps = [
      { kind: 'record', t: 'decision', body: '{"a":1}' },
      { kind: 'record', t: 'decision', body: big },
      { kind: 'record', t: 'decision', body: '{}' },
      { kind: 'record', t: 'decision', body: big },
    ];
    const got = written(steps, 'inst-big', true, 1024);
    expect(got.text).toBe(reference(steps, 'inst-big', true));
    const dir = mkdtempSync(join(tmpdir(), 'warden-line-batch-'));
    try {
      writeFileSync(join(dir, 'd.jsonl'), got.text);
      const result = await verifyFiles([join(dir, 'd.jsonl')]);
      expect(result).toMatchObject({ ok: true, records: 4 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to add to a full batch (the writer takes first), and take on an empty batch is nothing', () => {
    const batch = new LineBatch(new Chain('i'), fakeSign, 1024);
    expect(batch.take()).toBeUndefined();
    batch.add('decision', '{"a":1}');
    expect(batch.fits(2000)).toBe(false);
    expect(() => batch.add('decision', JSON.stringify({ x: 'y'.repeat(2000) }))).toThrow(/take\(\)/);
    expect(batch.take()?.lines).toBe(1);
  });
});
