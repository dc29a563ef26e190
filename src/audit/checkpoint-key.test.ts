import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AUDIT_KEY_FILE, dataDirKey } from './decision-log.js';

describe('checkpoint key kept in the data dir', () => {
  let dir: string | undefined;
  afterEach(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('is created once when many workers ask at the same moment: all get the same key, nobody reads a half-written file', async () => {
    dir = await mkdtemp(join(tmpdir(), 'warden-audit-key-'));
    const got = await Promise.all(Array.from({ length: 24 }, () => dataDirKey(dir!)));
    const kids = new Set(got.map((g) => g.key.kid));
    expect(kids.size).toBe(1);
    expect(((await stat(join(dir, AUDIT_KEY_FILE))).mode & 0o777).toString(8)).toBe('600');
    // Asked again later, the same key comes back.
    expect((await dataDirKey(dir)).key.kid).toBe([...kids][0]);
  });
});
