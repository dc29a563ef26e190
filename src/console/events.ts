/**
 * The console's live-update streams (a person's pending approvals, every
 * user's for admins): server-sent events driven by polling the pending sets.
 * The stream owns the loop — headers, the poll interval, the time bound after
 * which the browser reconnects (and its session and role are checked again),
 * the agent leaving — and each page's `tick` decides what one poll sends.
 */
import type { Context } from 'hono';
import { streamSSE, type SSEStreamingApi } from 'hono/streaming';
import type { ApprovalRepo } from '../approvals/records.js';
import { watchPending, type PendingChange } from './pending.js';

/** How often an event stream looks at the pending sets. */
export const EVENTS_POLL_MS = 2_000;
/** An event stream ends after this; the browser reconnects. */
export const EVENTS_MAX_MS = 5 * 60_000;

/** One poll: `look` reads the pending sets (it may throw); return `false` to end the stream. */
export type PendingTick = (stream: SSEStreamingApi, look: () => Promise<PendingChange>, poll: number) => Promise<boolean | void>;

export function pendingEventStream(c: Context, repo: ApprovalRepo, tick: PendingTick): Response {
  c.header('Cache-Control', 'no-store');
  c.header('X-Content-Type-Options', 'nosniff');
  return streamSSE(c, async (stream) => {
    const started = Date.now();
    let closed = false;
    stream.onAbort(() => {
      closed = true;
    });
    const look = watchPending(repo);
    for (let poll = 0; !closed && Date.now() - started < EVENTS_MAX_MS; poll++) {
      if ((await tick(stream, look, poll)) === false) return;
      await stream.sleep(EVENTS_POLL_MS);
    }
  });
}
