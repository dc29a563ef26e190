/**
 * A streaming `text/event-stream` rewriter. The stream is parsed exactly as the
 * WHATWG HTML "event stream interpretation" says (UTF-8 decode with one BOM
 * stripped; CR, LF and CRLF line ends; comments; `event`/`data`/`id`/`retry`;
 * an empty or absent event type is `message`; an unterminated event at the end
 * is discarded), and every event is re-serialized from what was parsed. The
 * agent's client therefore sees exactly the events Warden inspected: no framing
 * trick of a hostile upstream can mean one thing here and another there.
 */

import { Transform } from 'node:stream';

/** One server-sent event as parsed (one block ending in a blank line). */
export interface SseEvent {
  /** The event type; undefined when empty or absent (a `message`). */
  event?: string;
  /** `data:` lines joined with "\n"; undefined when the block has no data line (not dispatched). */
  data?: string;
  /** The `id` set in this block (values containing NUL are ignored, as the spec says). */
  id?: string;
  /** The last valid `retry` (ASCII digits only) in this block. */
  retry?: number;
}

/** Whether a parsed event is dispatched to the client as a `message` event. */
export function isMessageEvent(event: SseEvent): boolean {
  return event.data !== undefined && (event.event === undefined || event.event === 'message');
}

/** Replace an event: return new text (complete events) or null to emit the parsed event as is. */
export type SseRewrite = (event: SseEvent) => Promise<string | null> | string | null;

/** Serialize one event block (no `event:` line for a message; `data` split on line ends). */
export function formatSseEvent(event: SseEvent): string {
  let out = '';
  if (event.id !== undefined) out += `id: ${event.id}\n`;
  if (event.event !== undefined && event.event !== 'message') out += `event: ${event.event}\n`;
  if (event.retry !== undefined) out += `retry: ${event.retry}\n`;
  if (event.data !== undefined) for (const line of event.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return out.length > 0 ? `${out}\n` : '';
}

/** An incremental parser: feed decoded text, receive one item per finished block or comment line. */
export interface SseParser {
  /** Parse `text`; `final` ends the stream (a trailing CR ends its line; an unterminated event is dropped). */
  feed(text: string, final?: boolean): Array<SseEvent | { comment: string }>;
  /** Characters buffered for the event in progress (its lines and the unfinished line). */
  buffered(): number;
}

/** Create a spec-exact SSE parser (input already UTF-8 decoded, BOM stripped). */
export function createSseParser(): SseParser {
  let pending = '';
  let block: SseEvent = {};
  let dataLines: string[] = [];
  let blockChars = 0;

  function line(text: string, out: Array<SseEvent | { comment: string }>): void {
    if (text.length === 0) {
      const done: SseEvent = { ...block };
      if (dataLines.length > 0) done.data = dataLines.join('\n');
      block = {};
      dataLines = [];
      blockChars = 0;
      if (done.data !== undefined || done.id !== undefined || done.retry !== undefined) out.push(done);
      return;
    }
    if (text.charCodeAt(0) === 58 /* : */) {
      out.push({ comment: text.slice(1) });
      return;
    }
    blockChars += text.length + 1;
    const colon = text.indexOf(':');
    const field = colon < 0 ? text : text.slice(0, colon);
    let value = colon < 0 ? '' : text.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case 'event':
        block.event = value === '' ? undefined : value;
        break;
      case 'data':
        dataLines.push(value);
        break;
      case 'id':
        if (!value.includes('\0')) block.id = value;
        break;
      case 'retry':
        if (/^[0-9]+$/.test(value)) block.retry = Number(value);
        break;
      default:
        break; // unknown fields are ignored
    }
  }

  return {
    feed(text, final = false) {
      pending += text;
      const out: Array<SseEvent | { comment: string }> = [];
      let start = 0;
      for (let i = 0; i < pending.length; i++) {
        const ch = pending.charCodeAt(i);
        if (ch !== 10 && ch !== 13) continue;
        // A CR at the very end may be the first half of a CRLF: wait for more input.
        if (ch === 13 && i === pending.length - 1 && !final) break;
        line(pending.slice(start, i), out);
        if (ch === 13 && pending.charCodeAt(i + 1) === 10) i++;
        start = i + 1;
      }
      pending = pending.slice(start);
      if (final) {
        // The spec discards an event that was never terminated by a blank line.
        pending = '';
        block = {};
        dataLines = [];
        blockChars = 0;
      }
      return out;
    },
    buffered: () => blockChars + pending.length,
  };
}

/**
 * The SSE rewriter as a stream stage: UTF-8 bytes in, event texts out, one
 * readable item per event (object mode: a consumer sees them event by event,
 * each as soon as it is complete). `maxEventBytes` bounds one event's
 * buffered size (an upstream that never ends an event cannot exhaust memory).
 * A rewrite that decides at once (most events) costs no promise; one that
 * answers with a promise holds the events after it until it settles, so the
 * order is kept. (An async generator behind Readable.from did the same with a
 * promise or two per event and per chunk at every stage.)
 *
 * With `keepAliveMs` (> 0), a stream never leaves the agent without a byte
 * for that long: when quiet, it sends a comment line (`: keep-alive`; see
 * KeepAlives for when exactly), which every SSE client ignores:
 * load balancers and proxies between the agent and Warden close connections
 * idle for a minute or so, and an agent that left is noticed when the write
 * fails. Output only ever ends at an event or line boundary (whole events
 * are pushed), so a comment never lands inside an event.
 */
export function createSseRewriter(rewrite: SseRewrite, maxEventBytes: number, keepAliveMs = 0): Transform {
  // Non-fatal UTF-8 decode that strips one leading BOM: the spec's "UTF-8 decode".
  const decoder = new TextDecoder('utf-8');
  const parser = createSseParser();
  /** The stream's keep-alive schedule entry (null with keep-alives off): when the agent was last sent something. */
  let keep: KeepAliveEntry | null = null;
  /** True once the upstream's stream ended (nothing may be pushed after its last events). */
  let ending = false;

  function out(stream: Transform, text: string): void {
    if (text.length === 0) return;
    if (keep !== null) keep.lastOut = performance.now();
    stream.push(text);
  }

  /** Push the text of `items` from `from` on; `done` once all are out (at once unless a rewrite is pending). */
  function emit(stream: Transform, items: Array<SseEvent | { comment: string }>, from: number, done: (err?: Error) => void): void {
    for (let i = from; i < items.length; i++) {
      const item = items[i];
      if ('comment' in item) {
        // Comments keep idle connections alive; their text carries no meaning.
        out(stream, ':\n');
        continue;
      }
      let replacement: ReturnType<SseRewrite>;
      try {
        replacement = rewrite(item);
      } catch (err) {
        done(err as Error);
        return;
      }
      if (replacement instanceof Promise) {
        replacement.then(
          (text) => {
            out(stream, text ?? formatSseEvent(item));
            emit(stream, items, i + 1, done);
          },
          (err: unknown) => done(err instanceof Error ? err : new Error(String(err))),
        );
        return;
      }
      out(stream, replacement ?? formatSseEvent(item));
    }
    done();
  }

  const stream = new Transform({
    readableObjectMode: true,
    transform(chunk: Buffer, _encoding, callback) {
      emit(this, parser.feed(decoder.decode(chunk, { stream: true })), 0, (err) => {
        if (err) callback(err);
        else if (parser.buffered() > maxEventBytes) callback(new Error(`server-sent event larger than ${maxEventBytes} bytes`));
        else callback();
      });
    },
    flush(callback) {
      ending = true;
      emit(this, parser.feed(decoder.decode(), true), 0, (err) => callback(err));
    },
  });
  if (keepAliveMs <= 0) return stream;
  const entry: KeepAliveEntry = {
    lastOut: performance.now(),
    beat(now) {
      if (ending || stream.destroyed) return;
      // A reader that is behind (output still queued) needs no keep-alive.
      if (stream.readableLength === 0) out(stream, KEEP_ALIVE);
      entry.lastOut = now;
    },
  };
  keep = entry;
  const beats = keepAlivesEvery(keepAliveMs);
  beats.add(entry);
  stream.once('close', () => beats.delete(entry));
  return stream;
}

/** What a quiet stream sends the agent (one comment line: no event is dispatched). */
export const KEEP_ALIVE = ': keep-alive\n';

/** A stream under keep-alives: when it last sent the agent something, and how to send one. */
interface KeepAliveEntry {
  lastOut: number;
  beat(now: number): void;
}

/**
 * The keep-alives of one period, for every stream that has it: one interval
 * (not a timer per stream), running while any such stream is open. Why: a
 * timer per stream woke the event loop once per keep-alive, each a loop turn
 * of its own; 8,000 quiet streams at 25 s are 320 a second. A tick every
 * tenth of the period (at most a second) sends every stream quiet for at
 * least the period minus a tick its comment in one turn. So the agent never
 * waits longer than the period for a byte, nor gets comments more often than
 * every nine tenths of it.
 */
class KeepAlives {
  private readonly streams = new Set<KeepAliveEntry>();
  private timer: NodeJS.Timeout | null = null;
  private readonly tickMs: number;

  constructor(private readonly everyMs: number) {
    this.tickMs = Math.max(1, Math.min(1_000, Math.floor(everyMs / 10)));
  }

  add(entry: KeepAliveEntry): void {
    this.streams.add(entry);
    if (this.timer === null) {
      this.timer = setInterval(() => this.tick(), this.tickMs);
      this.timer.unref();
    }
  }

  delete(entry: KeepAliveEntry): void {
    this.streams.delete(entry);
    if (this.streams.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private tick(): void {
    const now = performance.now();
    const due = this.everyMs - this.tickMs;
    for (const entry of this.streams) if (now - entry.lastOut >= due) entry.beat(now);
  }
}

/** The keep-alive schedule of each period in use (a route's mcp.keepalive). */
const keepAlives = new Map<number, KeepAlives>();

function keepAlivesEvery(ms: number): KeepAlives {
  let beats = keepAlives.get(ms);
  if (!beats) keepAlives.set(ms, (beats = new KeepAlives(ms)));
  return beats;
}
