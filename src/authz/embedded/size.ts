/**
 * How many tuples the embedded engine should hold. Past `EMBEDDED_TUPLES_WARN`
 * stored tuples, `warden validate` warns: every Warden process (and every
 * worker) holds the whole index in memory, a reload briefly holds two, and
 * start-up time grows with the file; an OpenFGA server (`authz.engine:
 * openfga`) keeps tuples in a database instead. The numbers behind the limit are
 * in docs/authorization.md ("How many tuples").
 */

import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { isJsonLinesPath } from '../tuple-file.js';

/** Stored tuples above which `warden validate` recommends an OpenFGA server. */
export const EMBEDDED_TUPLES_WARN = 1_000_000;

/**
 * The number of tuples in a tuples file, counted without parsing: top-level
 * YAML list items (lines starting with `-`) or non-blank JSON Lines.
 */
export function countTupleLines(text: string, jsonLines: boolean): number {
  let count = 0;
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = text.length;
    if (jsonLines ? text.slice(start, end).trim() !== '' : text.charCodeAt(start) === 0x2d /* - */ && text.startsWith('- ', start)) count++;
    start = end + 1;
  }
  return count;
}

/** A warning for `warden validate` when the embedded engine's tuples file is beyond its size, else undefined. */
export async function embeddedSizeWarning(
  authz: { engine: string; tuples?: string | null },
  baseDir: string,
): Promise<{ path: string; message: string } | undefined> {
  if (authz.engine !== 'embedded' || !authz.tuples) return undefined;
  const file = isAbsolute(authz.tuples) ? authz.tuples : resolve(baseDir, authz.tuples);
  const count = countTupleLines(await readFile(file, 'utf8'), isJsonLinesPath(file));
  if (count <= EMBEDDED_TUPLES_WARN) return undefined;
  return {
    path: 'authz.tuples',
    message: `${count.toLocaleString('en-US')} tuples is more than the embedded engine should hold (${EMBEDDED_TUPLES_WARN.toLocaleString('en-US')}): each process keeps them all in memory and loads them at start; move them to an OpenFGA server (authz.engine: openfga, warden fga push), see docs/authorization.md "How many tuples"`,
  };
}
