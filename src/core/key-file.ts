/**
 * A private key kept as a file in the data dir, created on first use. Shared
 * by every key Warden generates for itself (dev issuer, development assertion
 * key) so they all get the same permissions and the same race-free creation.
 */

import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * The text of `<dataDir>/<name>`, creating the dir (0700) and the file (0600)
 * with `create()`'s text when it is absent. The new file is written fully under
 * a temp name and hard-linked into place: the link fails if another process (a
 * cluster worker) won the race, so all agree on one key and nobody reads a
 * half-written one. A file readable by others is tightened to 0600.
 */
export async function loadKeyFile(dataDir: string, name: string, create: () => Promise<string> | string): Promise<{ path: string; text: string }> {
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, name);
  try {
    await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    await writeFile(tmp, await create(), { mode: 0o600, flag: 'wx' });
    try {
      await link(tmp, path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    } finally {
      await unlink(tmp).catch(() => {});
    }
  }
  const info = await stat(path);
  // The file is ours; tighten it rather than keep a world-readable signing key.
  if ((info.mode & 0o077) !== 0) await chmod(path, 0o600);
  return { path, text: await readFile(path, 'utf8') };
}
