/**
 * #17, G3's promotion: the activity ring writes a batch of up to 200 decision
 * items every 200 ms through the Redis store's listPush. One script argument
 * per item (and an async listPush keeping its whole batch in its frame) held
 * every item string until Redis answered; under load that spans scavenges, so
 * each batch (~100 KB) went to the old generation: ~75 of G3's ~190 promoted
 * bytes per request. listPush now sends the items as one Buffer (off the V8
 * heap) plus their lengths. Measured in a child node process (built modules,
 * a real redis-server, V8's own GC trace): after one full GC, 300 batches of
 * 200 items with request-like garbage between them promote almost nothing.
 * And the items still arrive exactly: multi-byte text, commas, CRLF, empty
 * strings, more than one LPUSH chunk (1,000), several lists per batch.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/gateway.js';
import { promotedInChild } from '../support/promotion.js';
import { startRedis, type TestRedis } from '../support/redis.js';
import { captureLogs } from '../support/logs.js';
import { createRedisStore, packValues } from '../../src/store/redis.js';
import type { Store } from '../../src/store/store.js';

const STORE = join(REPO_ROOT, 'dist/src/store/redis.js');
const LOGGER = join(REPO_ROOT, 'dist/src/observability/logger.js');

// 300 batches of 200 activity-like items (~430 bytes of JSON each), with ~1,000 requests' worth
// of short-lived garbage over four event-loop turns between two batches.
const CHURN = `
const { createRedisStore } = await import(process.argv[1]);
const { createLogger } = await import(process.argv[2]);
const logger = createLogger({ destination: { write() {} } });
const store = await createRedisStore({ url: process.argv[3], keyPrefix: process.argv[4], timeoutMs: 10000, logger });
const item = (n) => JSON.stringify({ time: '2026-11-30T18:00:00.000Z', id: 'req-' + n + '-' + 'x'.repeat(20), route: 'api', decision: 'allow', status: 200, agent: 'agent-1', user: 'alice@example.com', method: 'GET', path: '/api/items/' + n, query: 'a=1&b=2', credentials: ['github'], pad: 'y'.repeat(200) });
let n = 0;
const batch = () => Array.from({ length: 200 }, () => ({ key: 'activity:alice', value: item(n++) }));
await store.listPush(batch(), { max: 200, ttlMs: 60000 });
globalThis.gc();
process.stdout.write('--- churn\\n');
const pushes = [];
for (let b = 0; b < 300; b++) {
  pushes.push(store.listPush(batch(), { max: 200, ttlMs: 60000 }));
  for (let t = 0; t < 4; t++) {
    for (let i = 0; i < 250; i++) globalThis.sink = Array.from({ length: 16 }, (_, i) => ({ i }));
    await new Promise((r) => setImmediate(r));
  }
}
await Promise.all(pushes);
process.stdout.write('--- end\\n');
process.stdout.write('kept ' + (await store.listRange('activity:alice', 1000)).length + '\\n');
await store.close();
`;

let redis: TestRedis;
let store: Store;

beforeAll(async () => {
  redis = await startRedis();
  store = await createRedisStore({ url: redis.url, keyPrefix: redis.keyPrefix, timeoutMs: 5_000, logger: captureLogs().logger });
}, 30_000);

afterAll(async () => {
  await store?.close();
  await redis?.stop();
});

describe('the Redis store list push and the young generation (#17)', () => {
  it('a churn of activity batches after a full GC promotes (almost) none of their items', async () => {
    const { bytes, scavenges, stdout } = await promotedInChild(CHURN, {
      modules: [STORE, LOGGER],
      args: [redis.url, `${redis.keyPrefix}churn:`],
      // V8 may pretenure the harness's own batch arrays (allocation-site feedback from the first,
      // unmeasured push): they would then be old from birth and drag the items along, whatever
      // listPush does. Off, what is promoted is what listPush keeps across scavenges.
      flags: ['--no-allocation-site-pretenuring'],
    });
    expect(stdout).toContain('kept 200');
    // The churn allocates ~400 MB: enough scavenges that batches held across them would show.
    expect(scavenges).toBeGreaterThan(100);
    // One argument per item, async frame keeping the batch: ~31 MB promoted here. One Buffer: ~2 MB (the harness's own ~1.4).
    expect(bytes).toBeLessThan(8 * 2 ** 20);
  }, 90_000);
});

describe('listPush sends the items as one blob, exactly', () => {
  it('packValues: UTF-8 byte lengths and the bytes back to back', () => {
    const [lengths, blob] = packValues(['a', 'é', '', 'x,y', '\r\n', '😀']);
    expect(lengths).toBe('1,2,0,3,2,4');
    expect(blob.toString('utf8')).toBe('aéx,y\r\n😀');
    expect(packValues([])[0]).toBe('');
  });

  it('multi-byte text, commas, CRLF and empty items arrive as pushed, in order, per list', async () => {
    const a = `blob-a-${Date.now()}`;
    const b = `blob-b-${Date.now()}`;
    const values = ['plain', 'é ü ß', '', 'a,b,,c', 'line\r\nnext', '😀 emoji', '{"json":"x"}', '$3\r\nfoo\r\n'];
    await store.listPush(
      values.flatMap((v, i) => [
        { key: a, value: v },
        { key: b, value: `${i}:${v}` },
      ]),
      { max: 100, ttlMs: 60_000 },
    );
    // LPUSH: the newest first.
    expect(await store.listRange(a, 100)).toEqual([...values].reverse());
    expect(await store.listRange(b, 100)).toEqual(values.map((v, i) => `${i}:${v}`).reverse());
  });

  it('more items than one LPUSH chunk (1,000) and the cap: the newest `max` are kept, in order', async () => {
    const key = `blob-many-${Date.now()}`;
    const other = `blob-other-${Date.now()}`;
    const entries = Array.from({ length: 2_500 }, (_, i) => ({ key, value: `v${i}-${'é'.repeat(i % 7)}` }));
    entries.splice(1_200, 0, { key: other, value: 'between' });
    await store.listPush(entries, { max: 2_400, ttlMs: 60_000 });
    const got = await store.listRange(key, 3_000);
    expect(got).toHaveLength(2_400);
    expect(got[0]).toBe(`v2499-${'é'.repeat(2499 % 7)}`);
    expect(got[2_399]).toBe(`v100-${'é'.repeat(100 % 7)}`);
    expect(got).toEqual(Array.from({ length: 2_400 }, (_, j) => 2_499 - j).map((i) => `v${i}-${'é'.repeat(i % 7)}`));
    expect(await store.listRange(other, 5)).toEqual(['between']);
    // A push after a full list trims to the cap.
    await store.listPush([{ key, value: 'last' }], { max: 2_400, ttlMs: 60_000 });
    const after = await store.listRange(key, 3_000);
    expect(after).toHaveLength(2_400);
    expect(after[0]).toBe('last');
  });
});
