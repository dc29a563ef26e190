/**
 * A busy person's activity items are written into the oldest item's object
 * once their buffer is full (no item allocated per request between flushes):
 * what the ring writes must be exactly the newest ACTIVITY_RING_MAX requests,
 * each with only its own fields, never one left over from the request whose
 * object it reused.
 */

import { describe, expect, it } from 'vitest';
import { WardenError } from '../../src/core/errors.js';
import { ACTIVITY_RING_MAX, createActivityRing } from '../../src/audit/activity.js';
import { createLogger } from '../../src/observability/logger.js';
import type { RequestState } from '../../src/pipeline/context.js';
import { createMemoryStore } from '../../src/store/memory.js';

const logger = createLogger({ level: 'silent' });
const startedAt = Date.parse('2026-03-04T05:06:07.089Z');

/** Request n: the first ring's worth carries every optional field, the rest none. */
function request(n: number): RequestState {
  const full = n < ACTIVITY_RING_MAX;
  return {
    id: `r-${n}`,
    startedAt: startedAt + n,
    method: full ? 'POST' : 'GET',
    path: `/notes/${n}`,
    query: full ? 'a=1' : '',
    route: { name: full ? 'notes' : 'other' },
    principal: { agent: full ? 'bot' : undefined, user: 'hal', actors: full ? [{ sub: 'x' }] : [], issuer: 'dev', scopes: [] },
    policy: full ? { credentials: { kind: 'vault' } } : {},
    mcp: full ? { tool: 'search' } : undefined,
    approvalId: full ? `ap-${n}` : undefined,
    shadowMode: full ? true : undefined,
    shadow: full ? { outcome: 'deny' } : undefined,
    decision: full ? 'allow' : undefined,
    reason: full ? 'because' : undefined,
    status: full ? 200 : undefined,
  } as unknown as RequestState;
}

describe('activity ring: items reused once a person’s buffer is full', () => {
  it('writes the newest requests, each with its own fields only', async () => {
    const store = createMemoryStore();
    const ring = createActivityRing(store, logger, { intervalMs: 60_000 });
    const total = ACTIVITY_RING_MAX + 150;
    for (let n = 0; n < total; n++) ring.record(request(n), n === total - 1 ? new WardenError('internal', 'x') : undefined);
    await ring.close();
    const raw = await store.listRange('activity:hal', 1_000);
    expect(raw).toHaveLength(ACTIVITY_RING_MAX);
    const items = raw.map((s) => JSON.parse(s) as Record<string, unknown>);
    // Newest first: requests total-1 … total-ACTIVITY_RING_MAX.
    expect(items.map((i) => i.id)).toEqual(Array.from({ length: ACTIVITY_RING_MAX }, (_, k) => `r-${total - 1 - k}`));
    for (const item of items) {
      const n = Number((item.id as string).slice(2));
      const time = new Date(startedAt + n).toISOString();
      if (n >= ACTIVITY_RING_MAX) {
        // A bare request (its object held a full one before): nothing of that one is left.
        const reason = n === total - 1 ? { reason: 'internal' } : {};
        expect(item).toEqual({ time, id: `r-${n}`, route: 'other', decision: 'error', ...reason, status: 0, user: 'hal', method: 'GET', path: `/notes/${n}` });
      } else {
        expect(item).toEqual({
          time,
          id: `r-${n}`,
          route: 'notes',
          decision: 'allow',
          reason: 'because',
          status: 200,
          agent: 'bot',
          user: 'hal',
          act: [{ sub: 'x' }],
          method: 'POST',
          path: `/notes/${n}`,
          query: 'a=1',
          tool: 'search',
          approval: { id: `ap-${n}`, outcome: 'approved' },
          mode: 'shadow',
          shadow: { outcome: 'deny' },
          credentials: 'vault',
        });
      }
      expect(Object.keys(item)[0]).toBe('time');
    }
  });

  it('a later batch of the same person starts from items of its own', async () => {
    const store = createMemoryStore();
    const ring = createActivityRing(store, logger, { intervalMs: 60_000 });
    for (let n = 0; n < ACTIVITY_RING_MAX + 10; n++) ring.record(request(n), undefined);
    await ring.close();
    const ring2 = createActivityRing(store, logger, { intervalMs: 60_000 });
    ring2.record(request(ACTIVITY_RING_MAX + 500), undefined);
    await ring2.close();
    const [newest] = (await store.listRange('activity:hal', 1)).map((s) => JSON.parse(s) as Record<string, unknown>);
    expect(newest).toMatchObject({ id: `r-${ACTIVITY_RING_MAX + 500}`, route: 'other' });
    expect(newest).not.toHaveProperty('tool');
  });
});
