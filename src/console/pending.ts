/**
 * Pending approvals as the console lists them, read in bounded steps: the ids
 * come from the per user+agent pending sets (never from a scan of every
 * record, decided ones included), at most PENDING_SCAN of them, and only the
 * records a page shows are read. The event streams compare the id lists
 * alone, so a poll reads no record at all.
 */

import { effectiveStatus, type ApprovalRecord, type ApprovalRepo, type PendingEntry } from '../approvals/records.js';

/** Pending ids read per listing; past this the count says "or more". */
export const PENDING_SCAN = 10_000;
/** Approvals shown on the admin's approvals page (newest first; the count covers the rest). */
export const ADMIN_PAGE = 200;
/** Records read at once. */
const READ_CONCURRENCY = 32;

/** The records of `ids` still pending, in the order given (missing or decided ones left out). */
export async function pendingRecords(repo: ApprovalRepo, ids: readonly string[]): Promise<ApprovalRecord[]> {
  const out: Array<ApprovalRecord | null> = [];
  for (let i = 0; i < ids.length; i += READ_CONCURRENCY) {
    out.push(...(await Promise.all(ids.slice(i, i + READ_CONCURRENCY).map((id) => repo.get(id)))));
  }
  return out.filter((rec): rec is ApprovalRecord => rec !== null && effectiveStatus(rec) === 'pending');
}

/** Newest first: the latest "decide by" first (creation order when every rule has the same ttl), then by id. */
const newestFirst = (a: PendingEntry, b: PendingEntry) => b.expiresAt - a.expiresAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

export interface PendingPage {
  /** The records shown, newest first (at most the page size). */
  shown: ApprovalRecord[];
  /** Pending approvals found (at most PENDING_SCAN). */
  total: number;
  /** False when the scan stopped at PENDING_SCAN: more are waiting than `total` says. */
  complete: boolean;
}

/** One page of every user's pending approvals: PENDING_SCAN ids at most, `size` records read. */
export async function pendingPage(repo: ApprovalRepo, size = ADMIN_PAGE): Promise<PendingPage> {
  const { entries, complete } = await repo.listPending(PENDING_SCAN);
  const ids = [...entries]
    .sort(newestFirst)
    .slice(0, size)
    .map((e) => e.id);
  return { shown: await pendingRecords(repo, ids), total: entries.length, complete };
}

/** Every pending record (up to PENDING_SCAN), newest first, for filtering by who may decide. */
export async function allPending(repo: ApprovalRepo): Promise<ApprovalRecord[]> {
  const { entries } = await repo.listPending(PENDING_SCAN);
  return pendingRecords(
    repo,
    [...entries].sort(newestFirst).map((e) => e.id),
  );
}

export interface PendingChange {
  /** The set of pending ids differs from the last look that returned `changed`. */
  changed: boolean;
  /** Pending approvals found (at most PENDING_SCAN). */
  count: number;
}

/**
 * Watches every user's pending set for the event streams, reading ids only.
 * A new id whose record is not written yet (the pending slot is reserved just
 * before the record) leaves the change unreported until the next look, so a
 * page fetched on the event finds the record; after a few looks it is
 * reported anyway.
 */
export function watchPending(repo: ApprovalRepo): () => Promise<PendingChange> {
  let known = new Set<string>();
  let waited = 0;
  return async () => {
    const { entries } = await repo.listPending(PENDING_SCAN);
    const now = new Set(entries.map((e) => e.id));
    const added = [...now].filter((id) => !known.has(id));
    const changed = added.length > 0 || [...known].some((id) => !now.has(id));
    if (!changed) return { changed, count: now.size };
    if (added.length <= READ_CONCURRENCY && waited < 3) {
      const unwritten = (await Promise.all(added.map((id) => repo.get(id)))).some((rec) => rec === null);
      if (unwritten) {
        waited++;
        return { changed: false, count: known.size };
      }
    }
    known = now;
    waited = 0;
    return { changed, count: now.size };
  };
}
