/**
 * Reading the decision log back for the console: newest first across the
 * live file and its rotated copies, one user's records only, bounded scans
 * that continue where they stopped, and cursors that can only narrow.
 */

import { mkdtempSync, rmSync, writeFileSync, renameSync, appendFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decisionLogReader } from '../../src/audit/read-back.js';
import type { ActivityItem, ActivitySource } from '../../src/audit/activity.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-readback-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let seq = 0;
function line(user: string | null, n: number, extra: Record<string, unknown> = {}): string {
  const rec = {
    t: 'decision',
    instance: 'i',
    seq: seq++,
    time: new Date(1_700_000_000_000 + n * 1000).toISOString(),
    id: `r${n}`,
    route: n % 3 === 0 ? 'pay' : 'notes',
    decision: n % 4 === 0 ? 'deny' : 'allow',
    status: 200,
    agent: n % 2 ? 'bot' : 'helper',
    user,
    method: 'GET',
    path: `/p/${n}`,
    ...extra,
  };
  return JSON.stringify(rec);
}

async function all(src: ActivitySource, user: string, filter = {}, limit = 7): Promise<{ items: ActivityItem[]; pages: number }> {
  const items: ActivityItem[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await src.page(user, filter, { cursor, limit });
    items.push(...page.items);
    cursor = page.next;
    pages++;
    expect(pages).toBeLessThan(500);
  } while (cursor);
  return { items, pages };
}

describe('decision log read-back', () => {
  // 300 records over three files: .2 oldest, then .1, then the live file; alice every 3rd, bob and nobody the rest.
  const path = join(dir, 'decisions.jsonl');
  const users = (n: number) => (n % 3 === 0 ? 'alice' : n % 3 === 1 ? 'bob' : null);
  const write = (file: string, from: number, to: number) =>
    writeFileSync(file, Array.from({ length: to - from }, (_, i) => line(users(from + i), from + i)).join('\n') + '\n');
  write(`${path}.2`, 0, 100);
  write(`${path}.1`, 100, 200);
  // The live file: a checkpoint line, a record whose query merely mentions alice, and a partly written last line.
  writeFileSync(
    path,
    Array.from({ length: 100 }, (_, i) => line(users(200 + i), 200 + i)).join('\n') +
      '\n' +
      JSON.stringify({ t: 'checkpoint', instance: 'i', seq: 999, user: 'alice' }) +
      '\n' +
      line('bob', 300, { query: '"user":"alice"' }) +
      '\n' +
      line('alice', 301).slice(0, 40),
  );

  it('returns exactly the user’s records, newest first, across rotated files, whatever the page size', async () => {
    const expected = Array.from({ length: 300 }, (_, n) => n)
      .filter((n) => users(n) === 'alice')
      .reverse()
      .map((n) => `r${n}`);
    for (const limit of [1, 7, 50, 1000]) {
      const { items } = await all(decisionLogReader(path, 2), 'alice', {}, limit);
      expect(items.map((i) => i.id)).toEqual(expected);
      expect(items.every((i) => i.user === 'alice')).toBe(true);
    }
    const bob = await all(decisionLogReader(path, 2), 'bob');
    expect(bob.items.every((i) => i.user === 'bob')).toBe(true);
    expect(bob.items[0].id).toBe('r300');
  });

  it('a small scan bound pages through the log in pieces and still finds everything once', async () => {
    const small = decisionLogReader(path, 2, { scanBytes: 4096 });
    const { items, pages } = await all(small, 'alice', {}, 50);
    expect(items.length).toBe(100);
    expect(new Set(items.map((i) => i.id)).size).toBe(100);
    expect(pages).toBeGreaterThan(3);
    const first = await small.page('alice', {}, { limit: 50 });
    expect(first.partial).toBe(true);
  });

  it('filters by agent, route and outcome', async () => {
    const { items } = await all(decisionLogReader(path, 2), 'alice', { agent: 'helper', route: 'pay', outcome: 'deny' });
    expect(items.length).toBeGreaterThan(0);
    expect(items.every((i) => i.agent === 'helper' && i.route === 'pay' && i.decision === 'deny' && i.user === 'alice')).toBe(true);
  });

  it('a crafted cursor only moves within the file: it never yields another user’s record', async () => {
    const src = decisionLogReader(path, 2);
    const { ino } = (await import('node:fs')).statSync(path);
    for (const offset of [0, 1, 17, 5000, 10_000, 999_999_999]) {
      const page = await src.page('alice', {}, { cursor: `${ino}.${offset}`, limit: 20 });
      expect(page.items.every((i) => i.user === 'alice')).toBe(true);
    }
    for (const bad of ['x', '1.2.3', '-1.5', '123456789.1']) {
      const page = await src.page('alice', {}, { cursor: bad, limit: 5 });
      expect(page.restarted).toBe(true);
      expect(page.items.map((i) => i.id)).toEqual(['r297', 'r294', 'r291', 'r288', 'r285']);
    }
  });

  it('a cursor survives a rotation (it follows the file by inode)', async () => {
    const p2 = join(dir, 'rot.jsonl');
    writeFileSync(p2, Array.from({ length: 30 }, (_, n) => line('carol', n)).join('\n') + '\n');
    const src = decisionLogReader(p2, 3);
    const first = await src.page('carol', {}, { limit: 10 });
    expect(first.items.map((i) => i.id)[0]).toBe('r29');
    renameSync(p2, `${p2}.1`);
    writeFileSync(p2, line('carol', 30) + '\n');
    appendFileSync(p2, line('carol', 31) + '\n');
    const second = await src.page('carol', {}, { cursor: first.next, limit: 10 });
    expect(second.restarted).toBeUndefined();
    expect(second.items.map((i) => i.id)).toEqual(Array.from({ length: 10 }, (_, i) => `r${19 - i}`));
  });
});
