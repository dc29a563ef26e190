/**
 * Approval records in the Store, and every state change as a compare-and-set
 * on the whole record: pending → approved | denied | expired, approved → used.
 * Exactly one transition wins across all instances; losers re-read and see it.
 *
 * Keys: `approval:rec:<id>` (record), `approval:digest:<digest>` (merging
 * identical requests), `approval:pending:<user>:<agent>` (the pending set for
 * the rate limit), `approval:grant:<user>:<match>` (time boxes). All expire by
 * TTL; nothing needs a sweeper.
 */

import type { Store } from '../store/store.js';
import { WardenError } from '../core/errors.js';
import type { StoredRequest } from './request-capture.js';
import { ID_SHAPE } from './ids.js';

export type ApprovalStatus = 'pending' | 'approved' | 'denied' | 'expired' | 'used';

/** Who or what decided. */
export type DecisionSource = 'review' | 'ciba' | 'revoked' | 'expiry';

export interface ApprovalRecord {
  v: 1;
  id: string;
  status: ApprovalStatus;
  digest: string;
  /** Short confirmation code shown to the approver. */
  code: string;
  /** The rule's message rendered from the stored request. */
  message: string;
  request: StoredRequest;
  /** YAML path of the rule that held the request. */
  source: string;
  createdAt: number;
  /** Pending: decide before this; approved: release before this (ms since epoch). */
  expiresAt: number;
  decidedAt?: number;
  decidedBy?: DecisionSource;
  /** The signed-in person who decided on the review page (identity.login). */
  decidedByUser?: string;
  /** The decision was a console admin's stop (a deny by the platform team, not the approver's own). */
  decidedAsAdmin?: boolean;
  usedAt?: number;
  /** SHA-256 of the review secret `t` (the secret itself is never stored). */
  reviewHash: string;
  /** Rendered `approvers:` of the rule. */
  approvers?: { relation: string; object: string };
  /** Grant chosen by the approver (ms) and the grant's id. */
  grantMs?: number;
  grantId?: string;
  /** The holding rule's `ttl` (ms): also the window from approval to use. */
  ttlMs?: number;
  /** What a grant made from this approval binds (see grant-binding.ts). */
  grantBinding?: string;
  /** The names of the bound values, shown to the approver next to the grant choice. */
  grantCovers?: string[];
  ciba?: { authReqId: string; interval: number; expiresAt: number };
  /** Channels that could not deliver the notice after every retry (newest last). */
  notifyFailures?: Array<{ channel: string; error: string; at: number }>;
}

/** A time box: matching requests skip the prompt until `expiresAt`. */
export interface GrantRecord {
  id: string;
  user: string;
  agent: string;
  route: string;
  method: string;
  path: string;
  tool?: string;
  /** The values the approver agreed to (grant-binding.ts); a grant without one matches nothing. */
  binding?: string;
  approvalId: string;
  createdAt: number;
  expiresAt: number;
}

/** Decision event published on the bus (a hint; the record is the truth). */
export interface ApprovalEvent {
  id: string;
  status: ApprovalStatus;
}

/** The pub/sub channel of decision events. */
export const EVENTS_CHANNEL = 'approval:events';

const enc = (s: string) => Buffer.from(s, 'utf8').toString('base64url');

/** Status as of `now` (a pending or approved record past its expiry is expired). */
export function effectiveStatus(rec: ApprovalRecord, now = Date.now()): ApprovalStatus {
  if ((rec.status === 'pending' || rec.status === 'approved') && now >= rec.expiresAt) return 'expired';
  return rec.status;
}

export interface ApprovalRepo {
  recordKey(id: string): string;
  get(id: string): Promise<ApprovalRecord | null>;
  /** Write a new record (fails if the id exists). */
  create(rec: ApprovalRecord): Promise<void>;
  /**
   * Apply `change` atomically; `change` returns the next record or null to
   * leave it. Retries on concurrent writes. Returns the record after the call
   * and whether this call changed it.
   */
  update(id: string, change: (rec: ApprovalRecord) => ApprovalRecord | null): Promise<{ record: ApprovalRecord | null; changed: boolean }>;
  /** Id of the approval for this digest, if any. */
  digestOwner(digest: string): Promise<string | null>;
  /** Claim the digest for `id`; false when another approval holds it. */
  claimDigest(digest: string, id: string, ttlMs: number): Promise<boolean>;
  setDigest(digest: string, id: string, ttlMs: number): Promise<void>;
  releaseDigest(digest: string, id: string): Promise<void>;
  /** Reserve a pending slot for user+agent; false when `max` are pending. */
  reservePending(user: string, agent: string, id: string, expiresAt: number, max: number): Promise<boolean>;
  releasePending(user: string, agent: string, id: string): Promise<void>;
  putGrant(grant: GrantRecord): Promise<void>;
  getGrant(user: string, id: string): Promise<GrantRecord | null>;
  listGrants(user: string): Promise<GrantRecord[]>;
  deleteGrant(user: string, id: string): Promise<GrantRecord | null>;
  /** Approvals waiting for a decision, over every user and agent (scrape-time gauge; stops at `limit`). */
  countPending(limit: number): Promise<number>;
  /** Ids of stored approvals (admin listing; bounded by the store's iteration). */
  listIds(limit: number): Promise<string[]>;
  /**
   * Pending approvals from the per user+agent pending sets (no record is
   * read): at most `limit` entries; `complete` is false when more exist.
   */
  listPending(limit: number): Promise<{ entries: PendingEntry[]; complete: boolean }>;
  /** Remember a decision for the admin's "recently decided" list (a bounded ring in the store). */
  noteDecided(id: string): Promise<void>;
  /** Ids of the most recent decisions noted, newest first (at most `count`). */
  recentDecided(count: number): Promise<string[]>;
  publish(event: ApprovalEvent): Promise<void>;
}

/** One pending approval as its user+agent pending set holds it. */
export interface PendingEntry {
  id: string;
  expiresAt: number;
}

/** Decisions kept in the ring behind the admin's "recently decided" list. */
const DECIDED_RING_MAX = 100;

/** How long records stay readable after they expire (so late polls get a precise answer). */
export function retentionMs(ttlMs: number): number {
  return Math.max(ttlMs, 3_600_000);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Create the repository over `store`. */
export function createApprovalRepo(store: Store, options: { ttlMs: number }): ApprovalRepo {
  const recordKey = (id: string) => `approval:rec:${id}`;
  const digestKey = (d: string) => `approval:digest:${d}`;
  const pendingKey = (user: string, agent: string) => `approval:pending:${enc(user)}:${enc(agent)}`;
  const grantPrefix = (user: string) => `approval:grant:${enc(user)}:`;
  const recordTtl = (rec: ApprovalRecord) => Math.max(1000, rec.expiresAt - Date.now() + retentionMs(options.ttlMs));

  const parse = (raw: string | null): ApprovalRecord | null => {
    if (raw === null) return null;
    try {
      return JSON.parse(raw) as ApprovalRecord;
    } catch {
      throw new WardenError('store_unavailable', 'approval record is unreadable');
    }
  };

  async function casLoop<T>(key: string, step: (raw: string | null) => { next: string | null; ttlMs?: number; result: T }): Promise<T> {
    for (let attempt = 0; attempt < 200; attempt++) {
      const raw = await store.get(key);
      const { next, ttlMs, result } = step(raw);
      if (next === null || next === raw) return result;
      if (await store.compareAndSet(key, raw, next, ttlMs === undefined ? undefined : { ttlMs })) return result;
      await sleep(Math.floor(Math.random() * Math.min(50, 2 + attempt * 2)));
    }
    throw new WardenError('store_unavailable', 'approval state is contended; try again', { reason: 'approval_contention' });
  }

  return {
    recordKey,
    async get(id) {
      if (!ID_SHAPE.test(id)) return null;
      return parse(await store.get(recordKey(id)));
    },
    async create(rec) {
      const ok = await store.set(recordKey(rec.id), JSON.stringify(rec), { ttlMs: recordTtl(rec), ifAbsent: true });
      if (!ok) throw new WardenError('internal', 'approval id collision');
    },
    async update(id, change) {
      let changed = false;
      let record: ApprovalRecord | null = null;
      await casLoop(recordKey(id), (raw) => {
        const cur = parse(raw);
        changed = false;
        record = cur;
        if (!cur) return { next: null, result: undefined };
        const next = change(structuredClone(cur));
        if (!next) return { next: null, result: undefined };
        changed = true;
        record = next;
        return { next: JSON.stringify(next), ttlMs: recordTtl(next), result: undefined };
      });
      return { record, changed };
    },
    async digestOwner(digest) {
      return store.get(digestKey(digest));
    },
    async claimDigest(digest, id, ttlMs) {
      return store.set(digestKey(digest), id, { ttlMs: Math.max(1000, ttlMs), ifAbsent: true });
    },
    async setDigest(digest, id, ttlMs) {
      // Only move our own claim forward; never overwrite another approval's.
      await store.compareAndSet(digestKey(digest), id, id, { ttlMs: Math.max(1000, ttlMs) });
    },
    async releaseDigest(digest, id) {
      if ((await store.get(digestKey(digest))) === id) await store.del(digestKey(digest));
    },
    async reservePending(user, agent, id, expiresAt, max) {
      const now = Date.now();
      return casLoop(pendingKey(user, agent), (raw) => {
        const list = (raw ? (JSON.parse(raw) as Array<[string, number]>) : []).filter(([, exp]) => exp > now);
        if (list.some(([x]) => x === id)) return { next: null, result: true };
        if (list.length >= max) return { next: null, result: false };
        list.push([id, expiresAt]);
        const ttlMs = Math.max(1000, Math.max(...list.map(([, e]) => e)) - now);
        return { next: JSON.stringify(list), ttlMs, result: true };
      });
    },
    async releasePending(user, agent, id) {
      const now = Date.now();
      await casLoop(pendingKey(user, agent), (raw) => {
        if (!raw) return { next: null, result: undefined };
        const list = (JSON.parse(raw) as Array<[string, number]>).filter(([x, exp]) => x !== id && exp > now);
        const ttlMs = list.length ? Math.max(1000, Math.max(...list.map(([, e]) => e)) - now) : 1000;
        return { next: JSON.stringify(list), ttlMs, result: undefined };
      });
    },
    async putGrant(grant) {
      await store.set(grantPrefix(grant.user) + grant.id, JSON.stringify(grant), { ttlMs: Math.max(1000, grant.expiresAt - Date.now()) });
    },
    async getGrant(user, id) {
      const raw = await store.get(grantPrefix(user) + id);
      if (!raw) return null;
      const g = JSON.parse(raw) as GrantRecord;
      return g.expiresAt > Date.now() ? g : null;
    },
    async listGrants(user) {
      const out: GrantRecord[] = [];
      for await (const key of store.keys(grantPrefix(user))) {
        const raw = await store.get(key);
        if (!raw) continue;
        const g = JSON.parse(raw) as GrantRecord;
        if (g.expiresAt > Date.now()) out.push(g);
        if (out.length >= 1000) break;
      }
      return out.sort((a, b) => a.createdAt - b.createdAt);
    },
    async deleteGrant(user, id) {
      if (!/^[a-f0-9]{32}$/.test(id)) return null;
      const raw = await store.take(grantPrefix(user) + id);
      return raw ? (JSON.parse(raw) as GrantRecord) : null;
    },
    async countPending(limit) {
      // The per user+agent pending sets are kept exact (reserved on create,
      // released on every decision); entries past their expiry no longer count.
      const now = Date.now();
      let n = 0;
      for await (const key of store.keys('approval:pending:')) {
        const raw = await store.get(key);
        if (raw) n += (JSON.parse(raw) as Array<[string, number]>).filter(([, exp]) => exp > now).length;
        if (n >= limit) return limit;
      }
      return n;
    },
    async listIds(limit) {
      const ids: string[] = [];
      for await (const key of store.keys('approval:rec:')) {
        ids.push(key.slice('approval:rec:'.length));
        if (ids.length >= limit) break;
      }
      return ids;
    },
    async listPending(limit) {
      const now = Date.now();
      const entries: PendingEntry[] = [];
      for await (const key of store.keys('approval:pending:')) {
        const raw = await store.get(key);
        if (!raw) continue;
        for (const [id, expiresAt] of JSON.parse(raw) as Array<[string, number]>) {
          if (expiresAt <= now) continue;
          if (entries.length >= limit) return { entries, complete: false };
          entries.push({ id, expiresAt });
        }
      }
      return { entries, complete: true };
    },
    async noteDecided(id) {
      await store.listPush([{ key: 'approval:decided', value: id }], { max: DECIDED_RING_MAX, ttlMs: retentionMs(options.ttlMs) });
    },
    async recentDecided(count) {
      return store.listRange('approval:decided', Math.min(count, DECIDED_RING_MAX));
    },
    async publish(event) {
      await store.publish(EVENTS_CHANNEL, JSON.stringify(event));
    },
  };
}
