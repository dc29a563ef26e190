/**
 * A streaming `text/event-stream` rewriter: events are parsed one at a time as
 * bytes arrive and passed on unchanged unless the callback returns a
 * replacement, so progress notifications flow through event by event.
 */

/** One server-sent event as received. */
export interface SseEvent {
  /** The event's exact text, including its terminating blank line. */
  raw: string;
  /** `event:` field (undefined = "message"). */
  event?: string;
  /** `data:` lines joined with "\n" (undefined when the event has no data). */
  data?: string;
  id?: string;
}

/** Replace an event: return new text (a complete event) or null to pass it through. */
export type SseRewrite = (event: SseEvent) => Promise<string | null> | string | null;

function parseFields(lines: string[]): Omit<SseEvent, 'raw'> {
  const out: Omit<SseEvent, 'raw'> = {};
  const data: string[] = [];
  for (const line of lines) {
    if (line.startsWith(':')) continue;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') out.event = value;
    else if (field === 'id') out.id = value;
  }
  if (data.length > 0) out.data = data.join('\n');
  return out;
}

/** Serialize an event (fields in the usual order; `data` split on newlines). */
export function formatSseEvent(event: { event?: string; id?: string; data: string }): string {
  let out = '';
  if (event.id !== undefined) out += `id: ${event.id}\n`;
  if (event.event !== undefined) out += `event: ${event.event}\n`;
  for (const line of event.data.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return `${out}\n`;
}

/**
 * Rewrite an SSE byte stream event by event. `maxEventBytes` bounds one event's
 * buffered size (an upstream that never ends an event cannot exhaust memory).
 */
export async function* rewriteSse(source: AsyncIterable<Buffer | string>, rewrite: SseRewrite, maxEventBytes: number): AsyncGenerator<string> {
  const decoder = new TextDecoder('utf-8');
  let pending = ''; // text not yet split into lines
  let eventText = ''; // raw text of the current event's lines
  let lines: string[] = [];

  async function* takeLines(final: boolean): AsyncGenerator<string> {
    let start = 0;
    for (let i = 0; i < pending.length; i++) {
      const ch = pending.charCodeAt(i);
      if (ch !== 10 && ch !== 13) continue;
      // A CR at the very end may be the first half of CRLF: wait for more input.
      if (ch === 13 && i === pending.length - 1 && !final) break;
      const line = pending.slice(start, i);
      const end = ch === 13 && pending.charCodeAt(i + 1) === 10 ? i + 2 : i + 1;
      eventText += pending.slice(start, end);
      start = end;
      i = end - 1;
      if (line.length === 0) {
        const fields = parseFields(lines);
        const raw = eventText;
        eventText = '';
        lines = [];
        const replacement = await rewrite({ raw, ...fields });
        yield replacement ?? raw;
      } else {
        lines.push(line);
      }
    }
    pending = pending.slice(start);
    if (eventText.length + pending.length > maxEventBytes) throw new Error(`server-sent event larger than ${maxEventBytes} bytes`);
  }

  for await (const chunk of source) {
    pending += typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true });
    yield* takeLines(false);
  }
  pending += decoder.decode();
  yield* takeLines(true);
  // An unterminated trailing event is passed on as is (clients discard it too).
  if (eventText.length > 0 || pending.length > 0) yield eventText + pending;
}
