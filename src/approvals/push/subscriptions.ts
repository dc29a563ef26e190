/**
 * Browsers' push subscriptions, per signed-in person, in the Store (memory or
 * Redis, shared by every instance). Key: `push:sub:<sha256(user)>:<sha256(endpoint)>`
 * — hashed so a user id containing `:` cannot reach into another user's
 * prefix; each record also names its user and is ignored unless it matches.
 * A person keeps at most MAX_PER_USER browsers (the oldest goes); a record
 * lives SUBSCRIPTION_TTL_MS after the browser last confirmed it (the console
 * page re-sends it on every visit while it is stored). An endpoint belongs
 * to one browser profile, so it is stored for one person at a time: when
 * someone else subscribes the same browser, the previous person's record goes
 * (a shared browser stops getting the first person's approvals).
 */

import { sha256Hex } from '../../core/canonical-json.js';
import type { Store } from '../../store/store.js';

export const MAX_PER_USER = 10;
export const SUBSCRIPTION_TTL_MS = 180 * 24 * 3600_000;
/** Keys read when looking for every subscribed person (rules with `approvers:`). */
const MAX_SCAN = 10_000;
const PREFIX = 'push:sub:';

/** What the browser's PushSubscription gives (RFC 8030 endpoint, RFC 8291 keys). */
export interface PushSubscriptionRecord {
  v: 1;
  user: string;
  endpoint: string;
  /** The browser's P-256 ECDH public key, base64url (65 bytes). */
  p256dh: string;
  /** The browser's authentication secret, base64url (16 bytes). */
  auth: string;
  createdAt: number;
  updatedAt: number;
}

export interface SubscriptionRepo {
  /** Store (or refresh) a subscription for `user`; returns its short id. */
  put(user: string, sub: { endpoint: string; p256dh: string; auth: string }): Promise<string>;
  list(user: string): Promise<PushSubscriptionRecord[]>;
  /** Remove `user`'s subscription with this endpoint; false when there was none. */
  remove(user: string, endpoint: string): Promise<boolean>;
  /** Remove every subscription of `user`; how many went. */
  removeAll(user: string): Promise<number>;
  /** Everyone with at least one subscription (bounded scan). */
  users(): Promise<string[]>;
}

const userPart = (user: string) => sha256Hex(`user:${user}`).slice(0, 40);
/** A short, stable id of a subscription for logs (never the endpoint, which is a capability URL). */
export const subscriptionId = (endpoint: string) => sha256Hex(`endpoint:${endpoint}`).slice(0, 16);
const ownerKey = (endpoint: string) => `push:owner:${sha256Hex(`endpoint:${endpoint}`).slice(0, 40)}`;
const keyOf = (user: string, endpoint: string) => `${PREFIX}${userPart(user)}:${sha256Hex(`endpoint:${endpoint}`).slice(0, 40)}`;

function parse(raw: string | null, user?: string): PushSubscriptionRecord | null {
  if (!raw) return null;
  try {
    const rec = JSON.parse(raw) as PushSubscriptionRecord;
    if (rec.v !== 1 || typeof rec.endpoint !== 'string' || typeof rec.user !== 'string') return null;
    return user === undefined || rec.user === user ? rec : null;
  } catch {
    return null;
  }
}

export function createSubscriptionRepo(store: Store): SubscriptionRepo {
  async function entries(user: string): Promise<Array<{ key: string; rec: PushSubscriptionRecord }>> {
    const out: Array<{ key: string; rec: PushSubscriptionRecord }> = [];
    for await (const key of store.keys(`${PREFIX}${userPart(user)}:`)) {
      const rec = parse(await store.get(key), user);
      if (rec) out.push({ key, rec });
      if (out.length >= MAX_PER_USER * 4) break;
    }
    return out.sort((a, b) => a.rec.updatedAt - b.rec.updatedAt);
  }

  return {
    async put(user, sub) {
      const key = keyOf(user, sub.endpoint);
      const now = Date.now();
      const before = parse(await store.get(key), user);
      if (!before) {
        const existing = await entries(user);
        for (const old of existing.slice(0, Math.max(0, existing.length - MAX_PER_USER + 1))) await store.del(old.key);
      }
      const owner = await store.get(ownerKey(sub.endpoint));
      if (owner !== null && owner !== user) await store.del(keyOf(owner, sub.endpoint));
      await store.set(ownerKey(sub.endpoint), user, { ttlMs: SUBSCRIPTION_TTL_MS });
      const rec: PushSubscriptionRecord = {
        v: 1,
        user,
        endpoint: sub.endpoint,
        p256dh: sub.p256dh,
        auth: sub.auth,
        createdAt: before?.createdAt ?? now,
        updatedAt: now,
      };
      await store.set(key, JSON.stringify(rec), { ttlMs: SUBSCRIPTION_TTL_MS });
      return subscriptionId(sub.endpoint);
    },
    async list(user) {
      return (await entries(user)).map((e) => e.rec);
    },
    async remove(user, endpoint) {
      const key = keyOf(user, endpoint);
      if (!parse(await store.get(key), user)) return false;
      return store.del(key);
    },
    async removeAll(user) {
      let n = 0;
      for (const e of await entries(user)) if (await store.del(e.key)) n++;
      return n;
    },
    async users() {
      const seen = new Set<string>();
      let scanned = 0;
      for await (const key of store.keys(PREFIX)) {
        if (++scanned > MAX_SCAN) break;
        const rec = parse(await store.get(key));
        if (rec && key.startsWith(`${PREFIX}${userPart(rec.user)}:`)) seen.add(rec.user);
      }
      return [...seen];
    },
  };
}
