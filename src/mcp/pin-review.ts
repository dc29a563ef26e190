/**
 * The tool-pin review, shared by the console and `warden mcp accept`: the
 * pinned and the new definition as pretty-printed JSON (every field, keys
 * sorted), compared line by line with a longest-common-subsequence table, and
 * a visible marker wherever anything is not shown. Accepting is offered only
 * for a new definition shown whole, and its hash is computed from exactly the
 * copy shown.
 */

import { canonicalJson, sha256Hex } from '../core/canonical-json.js';
import { revealInvisible } from '../approvals/review-page.js';
import type { LegacyReviewCopy, ToolPinRecord } from './pinning.js';

/** `elided` marks where something is not shown (never part of either definition). */
export type DiffLine = { op: 'same' | 'removed' | 'added' | 'elided'; text: string };

/** Above this many cells the diff is shown as "all removed, all added" (still correct, just coarse). */
const MAX_CELLS = 2_000_000;

/** The console shows a definition whole up to this size (canonical JSON, bytes); a larger one is reviewed with the CLI. */
export const SHOWN_DEFINITION_BYTES = 65_536;

/**
 * `value` as pretty-printed JSON lines, keys sorted, invisible characters
 * escaped as on the review page (revealInvisible: JSON escapes, which denote
 * the same string; JSON.stringify leaves no raw tab or line break in a line).
 */
export function definitionLines(value: unknown): string[] {
  // canonicalJson sorts keys; re-indent it so a change shows on its own line.
  return JSON.stringify(JSON.parse(canonicalJson(value)), null, 2)
    .split('\n')
    .map(revealInvisible);
}

/** Why a change cannot be accepted where it is reviewed. */
export type NotAcceptable = 'too_large' | 'not_kept' | 'legacy' | 'mismatch';

export interface ToolReview {
  /** Both sides (or the pinned one alone when nothing changed), markers included. */
  lines: DiffLine[];
  /** The hash of the new definition shown whole: the only hash to accept. Absent when nothing can be accepted here. */
  acceptHash?: string;
  notAcceptable?: NotAcceptable;
  /** Size of the new definition's canonical JSON, when known. */
  bytes?: number;
}

const kib = (bytes: number) => `${Math.ceil(bytes / 1024).toLocaleString('en')} KiB`;

/**
 * `definition`'s lines, whole when its canonical JSON is within `budget` bytes; else the lines that fit in `budget`
 * characters, the line that does not fit cut (ending in ⋯), and a marker for the rest.
 */
function shown(definition: unknown, budget: number, side: string): { lines: string[]; json: string; marker?: string } {
  const json = canonicalJson(definition);
  const lines = definitionLines(definition);
  const bytes = Buffer.byteLength(json);
  if (bytes <= budget) return { lines, json };
  let used = 0;
  let n = 0;
  while (n < lines.length && used + lines[n].length + 1 <= budget) used += lines[n++].length + 1;
  const kept = lines.slice(0, n);
  let room = budget - used;
  if (n < lines.length && room > 0) {
    if (/[\uD800-\uDBFF]/.test(lines[n][room - 1])) room--; // not half a surrogate pair
    kept.push(`${lines[n].slice(0, room)}⋯`);
  }
  const rest = lines.length - n - (kept.length > n ? 1 : 0);
  return {
    lines: kept,
    json,
    marker: `${side}: not shown whole (${kib(bytes)}; this page shows definitions up to ${kib(budget)}): ${kept.length > n ? `line ${n + 1} is cut at ⋯, and ` : ''}${rest.toLocaleString('en')} more lines are not shown`,
  };
}

function legacyLines(copy: LegacyReviewCopy): string[] {
  const doc: Record<string, unknown> = {};
  if (copy.annotations !== undefined) doc.annotations = copy.annotations;
  if (copy.description !== undefined) doc.description = copy.description;
  if (copy.input_schema !== undefined) doc.inputSchema = copy.input_schema;
  return definitionLines(doc);
}

const LEGACY_MARK =
  'pinned by an older Warden, which kept only part of the definition (description up to 2,000 characters, inputSchema and annotations when small, no other field)';

/**
 * The review of `pin`: its pinned definition against the pending one, with
 * definitions over `shownBytes` cut (and marked). Accepting is offered only
 * when the pending definition is kept, within `shownBytes`, and hashes to
 * the recorded hash.
 */
export function toolReview(pin: ToolPinRecord, shownBytes = SHOWN_DEFINITION_BYTES): ToolReview {
  const head: DiffLine[] = [];
  const tail: DiffLine[] = [];
  let pinned: string[] = [];
  if (pin.legacy) {
    head.push({ op: 'elided', text: `pinned: ${LEGACY_MARK}` });
    pinned = legacyLines(pin.legacy);
  } else if (pin.definition !== undefined) {
    const cut = shown(pin.definition, shownBytes, 'pinned');
    pinned = cut.lines;
    if (cut.marker) tail.push({ op: 'elided', text: cut.marker });
  } else {
    head.push({ op: 'elided', text: `pinned: not shown (${kib(pin.bytes ?? 0)}, too large to keep)` });
  }
  const changed = pin.changed;
  if (!changed) return { lines: [...head, ...pinned.map((text) => ({ op: 'same' as const, text })), ...tail] };

  let next: string[] = [];
  let notAcceptable: NotAcceptable | undefined;
  if (changed.definition === undefined) {
    notAcceptable = changed.legacy ? 'legacy' : 'not_kept';
    if (changed.legacy) {
      head.push({ op: 'elided', text: `new: recorded by an older Warden, which kept only part of the definition; listed again, it is recorded whole` });
      next = legacyLines(changed.legacy);
    } else head.push({ op: 'elided', text: `new: not shown (${kib(changed.bytes ?? 0)}, too large to keep: recorded by its hash only)` });
  } else {
    const cut = shown(changed.definition, shownBytes, 'new');
    next = cut.lines;
    if (cut.marker) {
      tail.push({ op: 'elided', text: cut.marker });
      notAcceptable = 'too_large';
    } else if (sha256Hex(cut.json) !== changed.hash) notAcceptable = 'mismatch'; // the copy shown is not what the hash pins
  }
  return {
    lines: [...head, ...lineDiff(pinned, next), ...tail],
    ...(notAcceptable ? { notAcceptable } : { acceptHash: changed.hash }),
    ...(changed.bytes !== undefined ? { bytes: changed.bytes } : {}),
  };
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
