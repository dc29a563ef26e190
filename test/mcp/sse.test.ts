import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createSseRewriter, formatSseEvent, isMessageEvent, KEEP_ALIVE, type SseEvent } from '../../src/mcp/sse.js';
import { rewriteSse } from '../support/sse.js';

async function collect(
  chunks: string[],
  rewrite: (e: SseEvent) => string | null | Promise<string | null>,
  max = 1 << 20,
): Promise<{ out: string[]; seen: SseEvent[] }> {
  const seen: SseEvent[] = [];
  const out: string[] = [];
  async function* source() {
    for (const c of chunks) yield Buffer.from(c, 'utf8');
  }
  for await (const piece of rewriteSse(source(), (e) => (seen.push(e), rewrite(e)), max)) out.push(piece);
  return { out, seen };
}

describe('the SSE rewriter', () => {
  it('re-serializes every event from what was parsed, across chunk boundaries and line endings', async () => {
    const stream = 'event: message\nid: 1\ndata: {"a":1}\n\n: comment\r\ndata: x\r\ndata: y\r\n\r\nretry: 10\rdata: z\r\r';
    const chunks = stream.match(/.{1,3}/gs) as string[];
    const { out, seen } = await collect(chunks, () => null);
    expect(out.join('')).toBe('id: 1\ndata: {"a":1}\n\n:\ndata: x\ndata: y\n\nretry: 10\ndata: z\n\n');
    expect(seen.map((e) => e.data)).toEqual(['{"a":1}', 'x\ny', 'z']);
    expect(seen[0]).toMatchObject({ event: 'message', id: '1' });
  });

  it('emits each event as soon as it is complete (event by event)', async () => {
    const { out } = await collect(['data: 1\n\nda', 'ta: 2\n', '\n'], () => null);
    expect(out).toEqual(['data: 1\n\n', 'data: 2\n\n']);
  });

  it('replaces only the events the callback rewrites', async () => {
    const { out } = await collect(['data: keep\n\ndata: change\n\n'], (e) => (e.data === 'change' ? formatSseEvent({ data: 'new', id: '7' }) : null));
    expect(out.join('')).toBe('data: keep\n\nid: 7\ndata: new\n\n');
  });

  it('reads an empty or absent event type as message, as the spec and the MCP SDK do', async () => {
    const { seen } = await collect(['event:\ndata: a\n\nevent: \ndata: b\n\nevent\ndata: c\n\ndata: d\n\nevent: other\ndata: e\n\n'], () => null);
    expect(seen.map(isMessageEvent)).toEqual([true, true, true, true, false]);
  });

  it('strips one BOM, ignores ids with NUL and invalid retry values, keeps id-only blocks', async () => {
    const { out, seen } = await collect(['\uFEFFid: a\0b\nretry: 1x\ndata: 1\n\nid: 9\n\n'], () => null);
    expect(seen).toEqual([{ data: '1' }, { id: '9' }]);
    expect(out.join('')).toBe('data: 1\n\nid: 9\n\n');
  });

  it('drops an unterminated trailing event (the spec discards it)', async () => {
    const { out } = await collect(['data: 1\n\ndata: partial'], () => null);
    expect(out.join('')).toBe('data: 1\n\n');
  });

  it('keeps the order when some rewrites answer later than the events after them', async () => {
    const delays = [30, 0, 10, 0];
    let n = 0;
    const { out } = await collect(['data: a\n\ndata: b\n', '\ndata: c\n\ndata: d\n\n'], (e) => {
      const delay = delays[n++];
      const text = formatSseEvent({ data: e.data!.toUpperCase() });
      return delay === 0 ? text : new Promise((r) => setTimeout(() => r(text), delay));
    });
    expect(out).toEqual(['data: A\n\n', 'data: B\n\n', 'data: C\n\n', 'data: D\n\n']);
  });

  it('fails the stream when a rewrite fails, at once or later', async () => {
    await expect(
      collect(['data: 1\n\n'], () => {
        throw new Error('refused at once');
      }),
    ).rejects.toThrow('refused at once');
    await expect(collect(['data: 1\n\n'], () => Promise.reject(new Error('refused later')))).rejects.toThrow('refused later');
  });

  it('refuses an event larger than the bound', async () => {
    await expect(collect(['data: ' + 'x'.repeat(100)], () => null, 50)).rejects.toThrow(/larger than 50/);
  });
});

describe('keep-alive comments on a quiet stream', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 0, toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'performance', 'Date'] });
  });
  afterEach(async () => {
    // The streams' 'close' (which takes them off the shared interval) comes on a later tick.
    await new Promise((r) => setImmediate(r));
    expect(vi.getTimerCount()).toBe(0);
    vi.useRealTimers();
  });

  /** A rewriter with keep-alives every 1 s, its output as [fake ms, text], read as the agent's socket would. */
  function quietStream(options: { read?: boolean } = {}) {
    const stage = createSseRewriter(() => null, 1 << 20, 1_000);
    const out: Array<[number, string]> = [];
    if (options.read !== false) stage.on('data', (text: string) => out.push([performance.now(), text]));
    return { stage, out };
  }

  /** The gaps (ms) between the stream's start, each output and `until`. */
  const gaps = (out: Array<[number, string]>, from: number, until: number) => {
    const times = [from, ...out.map(([t]) => t), until];
    return times.slice(1).map((t, i) => t - times[i]);
  };

  it('never leaves the agent a second without a byte, nor sends one more often than every 0.9 s of quiet', async () => {
    const { stage, out } = quietStream();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(out.map(([, text]) => text)).toEqual(Array(5).fill(KEEP_ALIVE));
    for (const gap of gaps(out, 0, 5_000)) expect(gap).toBeLessThanOrEqual(1_000);
    for (const gap of gaps(out, 0, 5_000).slice(0, -1)) expect(gap).toBeGreaterThanOrEqual(900);
    stage.destroy();
  });

  it('sends none while events flow, and only ever between whole events', async () => {
    const { stage, out } = quietStream();
    // Events every 600 ms (and half an event left waiting): quiet never lasts 0.9 s, so no comment.
    for (let i = 0; i < 5; i++) {
      stage.write(`data: ${i}\n\nda`);
      await vi.advanceTimersByTimeAsync(300);
      stage.write('ta: rest\n');
      await vi.advanceTimersByTimeAsync(300);
    }
    expect(out.map(([, text]) => text)).toEqual(['data: 0\n\n', ...[1, 2, 3, 4].map((i) => `data: rest\ndata: ${i}\n\n`)]);
    // Quiet again (the last event went out at 2.4 s), with an event half received: the comment goes between whole events.
    out.length = 0;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(out.map(([, text]) => text)).toEqual([KEEP_ALIVE]);
    expect(out[0][0] - 2_400).toBeGreaterThanOrEqual(900);
    expect(out[0][0] - 2_400).toBeLessThanOrEqual(1_000);
    stage.write('\n');
    await vi.advanceTimersByTimeAsync(0);
    expect(out.map(([, text]) => text).join('')).toBe(`${KEEP_ALIVE}data: rest\n\n`);
    stage.destroy();
  });

  it('keeps many streams on one timer', async () => {
    const streams = Array.from({ length: 100 }, () => quietStream());
    expect(vi.getTimerCount()).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    for (const { out } of streams) expect(out.map(([, text]) => text)).toEqual([KEEP_ALIVE]);
    for (const { stage } of streams) stage.destroy();
    await vi.advanceTimersByTimeAsync(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('sends none to a reader that is behind, and stops when the stream ends or is destroyed', async () => {
    const behind = quietStream({ read: false });
    behind.stage.write('data: unread\n\n');
    await vi.advanceTimersByTimeAsync(3_500);
    // Only the event is queued: no comment piles up behind it.
    expect(behind.stage.readableLength).toBe(1);
    behind.stage.destroy();

    const ended = quietStream();
    ended.stage.end('data: last\n\n');
    await vi.advanceTimersByTimeAsync(5_000);
    expect(ended.out.map(([, text]) => text)).toEqual(['data: last\n\n']);
    expect(vi.getTimerCount()).toBe(0);

    const destroyed = quietStream();
    destroyed.stage.destroy();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(destroyed.out).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('are off by default', async () => {
    const stage = createSseRewriter(() => null, 1 << 20);
    const out: string[] = [];
    stage.on('data', (text: string) => out.push(text));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(out).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
    stage.destroy();
  });
});
