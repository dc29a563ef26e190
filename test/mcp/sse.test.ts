import { describe, expect, it } from 'vitest';
import { formatSseEvent, isMessageEvent, type SseEvent } from '../../src/mcp/sse.js';
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
