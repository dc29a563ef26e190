/**
 * The admin's list of every pending approval stays bounded: ids come from the
 * per user+agent pending sets (at most PENDING_SCAN of them), only one page of
 * records (ADMIN_PAGE) is read and shown, and the page says how many wait in
 * all. The listing is checked on both store drivers; the page end to end on
 * Redis with more pending approvals than one page, through a real Warden
 * (agents' requests held for approval) and headless Chromium.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApprovalRepo, type ApprovalRecord } from '../../src/approvals/records.js';
import { ADMIN_PAGE, pendingPage } from '../../src/console/pending.js';
import { renderAdminApprovals } from '../../src/console/admin/pages.js';
import { createLogger } from '../../src/observability/logger.js';
import { createMemoryStore } from '../../src/store/memory.js';
import { createRedisStore } from '../../src/store/redis.js';
import type { Store } from '../../src/store/store.js';
import { launchBrowser, type Browser } from '../support/browser.js';
import { devPolicyYaml, REDIS_STORE_YAML, upstreamRouteYaml } from '../support/config.js';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { devSignInIfAsked } from '../support/login.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { startUpstream, type Upstream } from '../support/upstream.js';

let redis: TestRedis;
beforeAll(async () => {
  redis = await startRedis();
}, 30_000);
afterAll(async () => {
  await redis?.stop();
});

/** A pending record as the approvals service writes it (slot reserved first, then the record). */
function record(id: string, user: string, createdAt: number): ApprovalRecord {
  return {
    v: 1,
    id,
    status: 'pending',
    digest: `d-${id}`,
    code: 'ABCD',
    message: `request ${id}`,
    request: { method: 'DELETE', path: `/x/${id}`, query: '', route: 'notes', agent: 'bot', user, claims: {} },
    source: 'route:notes',
    createdAt,
    expiresAt: createdAt + 600_000,
    reviewHash: 'h',
    ttlMs: 600_000,
  } as unknown as ApprovalRecord;
}

describe.each(['memory', 'redis'] as const)('pending listing on the %s store', (driver) => {
  let store: Store;
  beforeAll(async () => {
    store =
      driver === 'memory'
        ? createMemoryStore()
        : await createRedisStore({ url: redis.url, keyPrefix: `${redis.keyPrefix}repo:`, timeoutMs: 2_000, logger: createLogger({ level: 'silent' }) });
  });
  afterAll(async () => {
    await store?.close();
  });

  it('lists pending ids from the pending sets only, stops at its limit, and reads only one page of records', async () => {
    const repo = createApprovalRepo(store, { ttlMs: 600_000 });
    const now = Date.now();
    const ids: string[] = [];
    for (let i = 0; i < 30; i++) {
      const id = `pending-${String(i).padStart(10, '0')}`;
      ids.push(id);
      const user = `user${i % 3}`;
      expect(await repo.reservePending(user, 'bot', id, now + 600_000 + i, 100)).toBe(true);
      await repo.create(record(id, user, now + i));
    }
    // A slot whose time is up is not pending any more.
    expect(await repo.reservePending('user0', 'late', 'lapsed-0000000000', now + 1_000, 100)).toBe(true);
    // A decided record that is still kept is never listed (its slot was released).
    await repo.create({ ...record('decided-000000000', 'user1', now), status: 'denied', decidedAt: now, decidedBy: 'review' } as ApprovalRecord);
    await new Promise((r) => setTimeout(r, 1_100));

    const all = await repo.listPending(10_000);
    expect(all.complete).toBe(true);
    expect(all.entries.map((e) => e.id).sort()).toEqual(ids);
    const bounded = await repo.listPending(12);
    expect(bounded.complete).toBe(false);
    expect(bounded.entries).toHaveLength(12);

    // Count every pending one, read and show only the newest `size`.
    let reads = 0;
    const counting = { ...repo, get: (id: string) => (reads++, repo.get(id)) };
    const page = await pendingPage(counting, 7);
    expect(page.total).toBe(30);
    expect(page.complete).toBe(true);
    expect(page.shown.map((r) => r.id)).toEqual(ids.slice(-7).reverse());
    expect(reads).toBe(7);
  });

  it('keeps a bounded ring of recent decisions, newest first', async () => {
    const repo = createApprovalRepo(store, { ttlMs: 600_000 });
    for (let i = 0; i < 130; i++) await repo.noteDecided(`decided-${String(i).padStart(8, '0')}`);
    const recent = await repo.recentDecided(500);
    expect(recent).toHaveLength(100);
    expect(recent[0]).toBe('decided-00000129');
    expect(await repo.recentDecided(3)).toEqual(['decided-00000129', 'decided-00000128', 'decided-00000127']);
  });
});

describe('the admin approvals page', () => {
  it('says when the count stopped at the scan bound', () => {
    const html = renderAdminApprovals({ base: '/.warden/console', sub: 'alice', csrf: 'c' }, [], [], { total: 10_000, complete: false });
    expect(html).toContain('<span class="count" id="pending-count">10000+</span>');
    expect(html).toContain('of 10000 or more waiting approvals');
  });
});

describe('admin approvals page on Redis with more pending approvals than one page', () => {
  let warden: WardenHandle;
  let upstream: Upstream;
  let browser: Browser;
  const TOTAL = ADMIN_PAGE + 15;

  beforeAll(async () => {
    [upstream, browser] = await Promise.all([startUpstream(), launchBrowser()]);
    warden = await startWarden({
      config: `
server:
  listen: 127.0.0.1:0
${devPolicyYaml('test/console/fixtures')}
${REDIS_STORE_YAML}
approvals:
  hold: 0s
  max_pending_per_user: ${TOTAL + 10}
console:
  admin: { relation: admin, object: "warden:console" }
routes:
${upstreamRouteYaml({ name: 'notes', object: 'api:notes' })}
    approval: { when: 'request.method == "DELETE"', message: "Delete note {request.path}" }
`,
      env: { UPSTREAM_URL: upstream.url, REDIS_URL: redis.url, REDIS_PREFIX: `${redis.keyPrefix}gw:` },
    });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await warden?.close();
    await upstream?.close();
  });

  it(`shows the newest ${ADMIN_PAGE} of ${TOTAL} with the full count and a note about the rest`, async () => {
    const token = await warden.token('bot', 'carol');
    const hold = async (n: number) => {
      const res = await fetch(`${warden.url}/notes/n-${n}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(202);
      return ((await res.json()) as { approval_id: string }).approval_id;
    };
    // The oldest first, one by one, then the rest in parallel batches (all of them later).
    const oldest: string[] = [];
    for (let n = 0; n < TOTAL - ADMIN_PAGE; n++) oldest.push(await hold(n));
    await new Promise((r) => setTimeout(r, 20));
    const newest: string[] = [];
    for (let n = TOTAL - ADMIN_PAGE; n < TOTAL; n += 25) {
      newest.push(...(await Promise.all(Array.from({ length: Math.min(25, TOTAL - n) }, (_, k) => hold(n + k)))));
    }

    const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await ctx.newPage();
    await page.goto(`${warden.url}/.warden/console/admin/approvals`);
    await devSignInIfAsked(page, 'alice');
    expect(new URL(page.url()).pathname).toBe('/.warden/console/admin/approvals');
    expect(await page.textContent('#pending-count')).toBe(String(TOTAL));
    expect(await page.locator('#pending article.approval').count()).toBe(ADMIN_PAGE);
    expect(await page.textContent('#pending-more')).toContain(`Showing the newest ${ADMIN_PAGE} of ${TOTAL} waiting approvals`);
    for (const id of oldest) expect(await page.locator(`#approval-${id}`).count()).toBe(0);
    const shown = await page.locator('#pending article.approval').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')));
    expect(shown.sort()).toEqual([...newest].sort());

    // The health page counts every one of them too.
    await page.goto(`${warden.url}/.warden/console/admin`);
    expect(await page.textContent('#h-config ~ p.meta')).toContain(`${TOTAL} pending approvals`);
    await ctx.close();
  }, 120_000);
});
