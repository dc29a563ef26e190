/**
 * Reading the decision log's file back, newest first, for one user: the file
 * and its rotated copies (`.1` newest) are read backwards in chunks, a line
 * is parsed only when it contains the user's exact `"user":"…"` member, and
 * a page stops after `limit` matches or SCAN_BYTES read, whichever comes
 * first. The cursor names a file by inode (rotation renames files, so the
 * inode follows the data) and a byte offset in it; a cursor whose file is
 * gone starts again at the newest record.
 */

import { open, stat } from 'node:fs/promises';
import { activityItem, matches, type ActivityFilter, type ActivityItem, type ActivityPage, type ActivitySource } from './activity.js';

/** Bytes read at most for one page (a busy log holds many other users' records). */
export const SCAN_BYTES = 16 * 1024 * 1024;
const CHUNK = 256 * 1024;
/** A line longer than this is not a decision record we wrote; it is skipped. */
const MAX_LINE = 1024 * 1024;

interface Position {
  file: number; // index in the list of files (0 = the live file)
  offset: number; // read lines that end before this byte
}

/** A reader over `path`, `path.1` … `path.<keep>`. */
export function decisionLogReader(path: string, keep: number, options: { scanBytes?: number } = {}): ActivitySource {
  const files = [path, ...Array.from({ length: keep }, (_, i) => `${path}.${i + 1}`)];
  const budget = options.scanBytes ?? SCAN_BYTES;

  async function inodes(): Promise<Array<{ ino: number; size: number } | null>> {
    return Promise.all(
      files.map(async (f) => {
        try {
          const s = await stat(f);
          return { ino: s.ino, size: s.size };
        } catch {
          return null;
        }
      }),
    );
  }

  return {
    kind: 'decision-log',
    async page(user, filter: ActivityFilter, { cursor, limit }): Promise<ActivityPage> {
      const stats = await inodes();
      let start: Position = { file: 0, offset: stats[0]?.size ?? 0 };
      let restarted = false;
      const m = cursor !== undefined ? /^(\d{1,20})\.(\d{1,15})$/.exec(cursor) : null;
      if (cursor !== undefined) {
        const at = m ? stats.findIndex((s) => s !== null && s.ino === Number(m[1])) : -1;
        if (at >= 0) start = { file: at, offset: Math.min(Number(m![2]), stats[at]!.size) };
        else restarted = true;
      }
      // The exact member as JSON.stringify writes it: a cheap test before parsing.
      const needle = Buffer.from(`"user":${JSON.stringify(user)}`);
      const items: ActivityItem[] = [];
      let scanned = 0;
      for (let f = start.file; f < files.length; f++) {
        const st = stats[f];
        if (!st) continue;
        let end = f === start.file ? start.offset : st.size;
        const fh = await open(files[f], 'r').catch(() => null);
        if (!fh) continue;
        try {
          // Inode changed between stat and open (rotated meanwhile): skip it rather than mix files.
          if ((await fh.stat()).ino !== st.ino) continue;
          let tail: Buffer = Buffer.alloc(0); // bytes after the last newline seen, not yet a whole line
          let pos = end;
          while (pos > 0) {
            if (scanned >= budget) return done(items, { file: f, offset: end }, stats, true, restarted);
            const from = Math.max(0, pos - Math.min(CHUNK, budget));
            const chunk = Buffer.alloc(pos - from);
            await fh.read(chunk, 0, chunk.length, from);
            scanned += chunk.length;
            const buf = tail.length ? Buffer.concat([chunk, tail]) : chunk;
            // buf covers [from, pos + tail): walk its lines from the last one back; a line whose
            // start lies in an earlier chunk waits in `tail` (except at the file's start).
            let lineEnd = buf.length;
            for (;;) {
              const nl = lineEnd > 0 ? buf.lastIndexOf(10, lineEnd - 1) : -1;
              if (nl < 0 && from > 0) break;
              const lineStart = nl + 1;
              if (lineEnd > lineStart && lineEnd - lineStart <= MAX_LINE) {
                const hit = buf.indexOf(needle, lineStart);
                const item = hit >= 0 && hit < lineEnd ? parse(buf.subarray(lineStart, lineEnd), user) : null;
                if (item && matches(item, filter)) items.push(item);
              }
              end = from + lineStart;
              if (items.length >= limit) return done(items, { file: f, offset: end }, stats, false, restarted);
              if (nl < 0) break;
              lineEnd = nl;
            }
            tail = from === 0 ? Buffer.alloc(0) : Buffer.from(buf.subarray(0, lineEnd));
            if (tail.length > MAX_LINE) tail = Buffer.alloc(0); // a runaway line: drop it
            pos = from;
          }
        } finally {
          await fh.close();
        }
      }
      return { items, ...(restarted ? { restarted } : {}) };
    },
  };

  function done(items: ActivityItem[], at: Position, stats: Array<{ ino: number } | null>, partial: boolean, restarted: boolean): ActivityPage {
    // A position at the very start of a file continues with the next (older) file.
    let p = at;
    while (p.offset === 0 && p.file + 1 < files.length) p = { file: p.file + 1, offset: Number.MAX_SAFE_INTEGER };
    const st = stats[p.file];
    const more = st !== null && st !== undefined && p.offset > 0;
    return {
      items,
      ...(more ? { next: `${st.ino}.${Math.min(p.offset, Number.MAX_SAFE_INTEGER)}` } : {}),
      ...(partial ? { partial } : {}),
      ...(restarted ? { restarted } : {}),
    };
  }
}

function parse(line: Buffer, user: string): ActivityItem | null {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line.toString('utf8')) as Record<string, unknown>;
  } catch {
    return null; // a partly written last line, or not ours
  }
  if (rec.t !== 'decision' || rec.user !== user) return null;
  return activityItem(rec);
}
