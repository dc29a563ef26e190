/**
 * A line diff for the tool-pin review: the pinned and the new definition as
 * pretty-printed canonical JSON (keys sorted), compared line by line with a
 * longest-common-subsequence table. Inputs are bounded by the pin store
 * (descriptions ≤ 2 000 characters, schemas ≤ 16 KiB), so the table is small.
 */

import { canonicalJson } from '../../core/canonical-json.js';

export type DiffLine = { op: 'same' | 'removed' | 'added'; text: string };

/** Above this many cells the diff is shown as "all removed, all added" (still correct, just coarse). */
const MAX_CELLS = 2_000_000;

/** The reviewable parts of a tool definition as pretty-printed canonical JSON lines. */
export function definitionLines(parts: { description?: unknown; inputSchema?: unknown; annotations?: unknown }): string[] {
  const doc: Record<string, unknown> = {};
  if (parts.annotations !== undefined) doc.annotations = parts.annotations;
  if (parts.description !== undefined) doc.description = parts.description;
  if (parts.inputSchema !== undefined) doc.inputSchema = parts.inputSchema;
  // canonicalJson sorts keys; re-indent it so a change shows on its own line.
  return JSON.stringify(JSON.parse(canonicalJson(doc)), null, 2).split('\n');
}

/** Lines of `a` and `b` in order, each marked same, removed (only in a) or added (only in b). */
export function lineDiff(a: readonly string[], b: readonly string[]): DiffLine[] {
  const n = a.length;
  const m = b.length;
  if (n * m > MAX_CELLS) return [...a.map((text) => ({ op: 'removed' as const, text })), ...b.map((text) => ({ op: 'added' as const, text }))];
  // lcs[i][j]: length of the longest common subsequence of a[i..] and b[j..].
  const lcs = Array.from({ length: n + 1 }, () => new Uint32Array(m + 1));
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  }
  const out: DiffLine[] = [];
  let i = 0;
  let j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) {
      out.push({ op: 'same', text: a[i] });
      i++;
      j++;
    } else if (lcs[i + 1][j] >= lcs[i][j + 1]) out.push({ op: 'removed', text: a[i++] });
    else out.push({ op: 'added', text: b[j++] });
  }
  while (i < n) out.push({ op: 'removed', text: a[i++] });
  while (j < m) out.push({ op: 'added', text: b[j++] });
  return out;
}
