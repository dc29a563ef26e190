import { createServer, type Server } from 'node:http';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../observability/logger.js';
import { createMetrics } from '../observability/metrics.js';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { httpSink } from './sinks.js';
import { until } from '../../test/support/eventually.js';

/** A real ingest endpoint: records every POST body; `hold` keeps answers back until released. */
async function endpoint() {
  const posts: string[] = [];
  let held: Array<() => void> | undefined;
  const server: Server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (c: Buffer) => parts.push(c));
    req.on('end', () => {
      posts.push(Buffer.concat(parts).toString('utf8'));
      const answer = () => void res.writeHead(204).end();
      if (held) held.push(answer);
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/ingest`,
    posts,
    hold: () => void (held = []),
    release: () => {
      const h = held ?? [];
      held = undefined;
      for (const a of h) a();
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const lines = (from: number, n: number) => Buffer.from(Array.from({ length: n }, (_, i) => `{"n":${from + i},"s":"é"}\n`).join(''));
const options = (url: string, over: Partial<Parameters<typeof httpSink>[0]> = {}) => ({
  url,
  headers: {},
  batch: 3,
  flushIntervalMs: 10,
  timeoutMs: 2000,
  retries: 0,
  maxBuffer: 1000,
  maxBufferBytes: 1 << 20,
  ...over,
});

describe('HTTP sink', () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });

  it('posts the lines it was handed, in order and byte for byte, at most `batch` per POST, splitting chunks between lines', async () => {
    const ep = await endpoint();
    close = ep.close;
    const sink = httpSink(options(ep.url), createLogger({ level: 'silent' }), createMetrics());
    sink.write(lines(0, 2), 2);
    sink.write(lines(2, 5), 5);
    sink.write(lines(7, 1), 1);
    await sink.close();
    expect(ep.posts.join('')).toBe(lines(0, 8).toString('utf8'));
    for (const p of ep.posts) {
      expect(p.endsWith('\n')).toBe(true);
      expect(p.split('\n').length - 1).toBeLessThanOrEqual(3);
    }
    expect(ep.posts.length).toBe(3);
  });

  it('keeps at most maxBuffer records while the endpoint is slow: the oldest are dropped and counted', async () => {
    const ep = await endpoint();
    close = ep.close;
    const metrics = createMetrics();
    const sink = httpSink(options(ep.url, { batch: 2, maxBuffer: 4 }), createLogger({ level: 'silent' }), metrics);
    ep.hold();
    sink.write(lines(0, 2), 2); // a full batch: posted at once, held by the endpoint
    await new Promise((r) => setTimeout(r, 100));
    sink.write(lines(2, 3), 3);
    sink.write(lines(5, 3), 3); // 6 pending beyond the one in flight: the 2 oldest (2, 3) go
    ep.release();
    await sink.close();
    expect(ep.posts.join('')).toBe(lines(0, 2).toString('utf8') + lines(4, 4).toString('utf8'));
    expect(metrics.render()).toMatch(/warden_decision_log_dropped_total\{sink="http"\} 2\b/);
  });
});

describe('HTTP sink memory bound', () => {
  it('holds at most maxBufferBytes of records while the endpoint is slow, however few they are: the oldest go, counted', async () => {
    const ep = await endpoint();
    const metrics = createMetrics();
    const sink = httpSink(options(ep.url, { batch: 1, maxBuffer: 1000, maxBufferBytes: 10_000 }), createLogger({ level: 'silent' }), metrics);
    ep.hold();
    try {
      // Records as long as what they record (a long URL): 4 KB each.
      const long = (n: number) => Buffer.from(`{"n":${n},"url":"/${'a'.repeat(4_000)}"}\n`);
      sink.write(long(0), 1); // posted at once, held by the endpoint
      await new Promise((r) => setTimeout(r, 100));
      for (let n = 1; n <= 5; n++) sink.write(long(n), 1); // 20 KB pending past the one in flight: the 3 oldest go
      ep.release();
      await sink.close();
      expect(ep.posts.map((p) => (JSON.parse(p) as { n: number }).n)).toEqual([0, 4, 5]);
      expect(metrics.render()).toMatch(/warden_decision_log_dropped_total\{sink="http"\} 3\b/);
    } finally {
      await ep.close();
    }
  });
});

describe('HTTP sink with nothing pending', () => {
  it('a flush that finds nothing pending (all dropped) does not stop later records', async () => {
    const ep = await endpoint();
    const metrics = createMetrics();
    const sink = httpSink(options(ep.url, { batch: 10, flushIntervalMs: 10, maxBufferBytes: 100 }), createLogger({ level: 'silent' }), metrics);
    try {
      // One record longer than the bound: dropped at once, and the flush timer then finds nothing.
      sink.write(Buffer.from(`{"n":0,"url":"/${'a'.repeat(200)}"}\n`), 1);
      await new Promise((r) => setTimeout(r, 50));
      sink.write(lines(1, 1), 1);
      await until(() => ep.posts.length === 1, { timeoutMs: 3_000, what: 'the next record posted' });
      expect(ep.posts).toEqual([lines(1, 1).toString('utf8')]);
      // Only once that worked: close() awaited a stale promise forever (a microtask loop no timeout stops).
      await sink.close();
    } finally {
      await ep.close();
    }
  });

  it('close() of an idle sink returns (a child process, so a hang fails the test instead of freezing it)', () => {
    const dist = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '../../dist/src')).href;
    const script = `
      import { createServer } from 'node:http';
      const { httpSink } = await import('${dist}/audit/sinks.js');
      const { createMetrics } = await import('${dist}/observability/metrics.js');
      const { createLogger } = await import('${dist}/observability/logger.js');
      const server = createServer((req, res) => { req.resume(); req.on('end', () => res.writeHead(204).end()); });
      await new Promise((r) => server.listen(0, '127.0.0.1', r));
      const o = { url: 'http://127.0.0.1:' + server.address().port + '/', headers: {}, batch: 10, flushIntervalMs: 10, timeoutMs: 2000, retries: 0, maxBuffer: 1000, maxBufferBytes: 1 << 20 };
      const sink = httpSink(o, createLogger({ level: 'silent' }), createMetrics());
      sink.write(Buffer.from('{"n":1}\\n'), 1);
      await new Promise((r) => setTimeout(r, 200)); // delivered: nothing pending, nothing in flight
      await sink.close();
      server.close();
      console.log('closed');
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 10_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe('closed');
  });
});

describe('HTTP sink errors in the log', () => {
  it('never writes the password of an endpoint URL with credentials (fetch names the URL in its error)', async () => {
    const ep = await endpoint();
    const logged: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer | string, _enc, done) {
        logged.push(chunk.toString());
        done();
      },
    });
    const withCredentials = ep.url.replace('http://', 'http://ingest:s3cr3t-ingest-pass@');
    const sink = httpSink(options(withCredentials), createLogger({ level: 'info', destination }), createMetrics());
    sink.write(lines(0, 1), 1);
    await sink.close();
    await ep.close();
    const text = logged.join('');
    expect(text).toContain('decision log: endpoint unreachable');
    expect(text).not.toContain('s3cr3t-ingest-pass');
  });
});
