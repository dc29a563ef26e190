import { mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';
import { createBatchedWriter, writeChunks } from './log-writer.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-log-writer-'));
const open: number[] = [];
afterEach(() => {
  for (const fd of open.splice(0)) closeSync(fd);
});

function sink(name: string) {
  const path = join(dir, name);
  const fd = openSync(path, 'w');
  open.push(fd);
  return { fd, read: () => readFileSync(path, 'utf8') };
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('batched log writer', () => {
  it('holds info lines for at most the interval, then writes them in one go', async () => {
    const out = sink('info.log');
    const logger = createLogger({ destination: createBatchedWriter({ fd: out.fd, intervalMs: 100 }) });
    logger.info({ n: 1 }, 'first');
    logger.info({ n: 2 }, 'second');
    expect(out.read()).toBe('');
    await sleep(250);
    const lines = out.read().split('\n').filter(Boolean);
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['first', 'second']);
  });

  it('writes a warning at once, after the lines logged before it', () => {
    const out = sink('warn.log');
    const logger = createLogger({ destination: createBatchedWriter({ fd: out.fd, intervalMs: 60_000 }) });
    logger.info('before');
    logger.warn('careful');
    expect(
      out
        .read()
        .split('\n')
        .filter(Boolean)
        .map((l) => (JSON.parse(l) as { msg: string }).msg),
    ).toEqual(['before', 'careful']);
    logger.info('after');
    expect(out.read()).not.toContain('after');
  });

  it('keeps the format and redaction of the unbatched logger', () => {
    const out = sink('same.log');
    const writer = createBatchedWriter({ fd: out.fd, intervalMs: 60_000 });
    const direct: string[] = [];
    const record = { audit: true, path: '/x?access_token=abc123456', authorization: 'Bearer abcdefgh12345678', user: 'alice' };
    createLogger({ destination: writer }).info(record, 'request');
    createLogger({ destination: { write: (s: string) => void direct.push(s) } }).info(record, 'request');
    writer.flushSync();
    const strip = (l: string) => l.replace(/"time":"[^"]+"/, '');
    expect(strip(out.read())).toBe(strip(direct.join('')));
    expect(out.read()).not.toContain('abc123456');
    expect(out.read()).not.toContain('abcdefgh12345678');
  });

  it('cuts writes between lines at maxWriteBytes (cluster workers sharing one pipe)', () => {
    const line = 'x'.repeat(39) + '\n'; // 40 bytes
    const long = 'y'.repeat(149) + '\n';
    const chunks = writeChunks([line, line, line, long, line, 'é'.repeat(30) + '\n', line], 100);
    // 'é' is two bytes: 40 + 61 bytes do not fit in 100 (as 40 + 31 characters would).
    expect(chunks).toEqual([line + line, line, long, line, 'é'.repeat(30) + '\n', line]);
    for (const c of chunks) expect(c.endsWith('\n')).toBe(true);
  });

  it('writes every line once, in order, across timer flushes, size flushes and warnings', async () => {
    const out = sink('order.log');
    const logger = createLogger({ destination: createBatchedWriter({ fd: out.fd, intervalMs: 20 }) });
    for (let i = 0; i < 3_000; i++) {
      if (i % 500 === 0) logger.warn({ i }, 'w');
      else logger.info({ i, pad: 'p'.repeat(i % 97) }, 'i');
      if (i % 700 === 0) await sleep(30);
    }
    await sleep(100);
    const seen = out
      .read()
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { i: number }).i);
    expect(seen).toEqual(Array.from({ length: 3_000 }, (_, i) => i));
  });
});

process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
