/**
 * Browsers' push subscriptions, per signed-in person, in the Store (memory or
 * Redis, shared by every instance). One key per person,
 * `push:user:<sha256(user)>`, holds that person's list (hashed so a user id
 * containing `:` cannot reach another's key; the record names its user and is
 * ignored unless it matches), changed by compare-and-set so concurrent
 * instances never lose an update. Reading a person's browsers is one GET — no
 * key scan on the console's page views.
 *
 * A person keeps at most MAX_PER_USER browsers (the oldest goes); the list
 * lives SUBSCRIPTION_TTL_MS after its last change (the console page re-sends a
 * stored subscription on every visit). An endpoint belongs to one browser
 * profile, so to one person at a time (`push:owner:<sha256(endpoint)>`): when
 * someone else subscribes the same browser, the previous person's entry goes.
 * `push:users` lists who has subscriptions (for rules with `approvers:`).
 */

import { sha256Hex } from '../../core/canonical-json.js';
import type { Store } from '../../store/store.js';

export const MAX_PER_USER = 10;
export const SUBSCRIPTION_TTL_MS = 180 * 24 * 3600_000;
/** People listed in `push:users` at most (the oldest entries go). */
const MAX_USERS = 10_000;
const CAS_TRIES = 8;

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
  /** Everyone who subscribed a browser (some may have none left). */
  users(): Promise<string[]>;
}

/** A short, stable id of a subscription for logs and the page (never the endpoint, which is a capability URL). */
export const subscriptionId = (endpoint: string) => sha256Hex(`endpoint:${endpoint}`).slice(0, 16);
const userKey = (user: string) => `push:user:${sha256Hex(`user:${user}`).slice(0, 40)}`;
const ownerKey = (endpoint: string) => `push:owner:${sha256Hex(`endpoint:${endpoint}`).slice(0, 40)}`;
const USERS_KEY = 'push:users';

function parseList(raw: string | null, user: string): PushSubscriptionRecord[] {
  if (!raw) return [];
  try {
    const list = JSON.parse(raw) as PushSubscriptionRecord[];
    return Array.isArray(list) ? list.filter((r) => r && r.v === 1 && r.user === user && typeof r.endpoint === 'string') : [];
  } catch {
    return [];
  }
}

export function createSubscriptionRepo(store: Store): SubscriptionRepo {
  /** Apply `change` to the JSON at `key` with compare-and-set: null = leave it; `next: null` = empty it. */
  async function update<T>(key: string, change: (raw: string | null) => { next: string | null; result: T } | null, ttlMs: number): Promise<T | undefined> {
    for (let i = 0; i < CAS_TRIES; i++) {
      const raw = await store.get(key);
      const step = change(raw);
      if (!step) return undefined;
      // Emptied: an empty list that expires in a second (a DEL could drop a list written meanwhile; a CAS cannot).
      const next = step.next ?? '[]';
      if (await store.compareAndSet(key, raw, next, { ttlMs: step.next === null ? 1000 : ttlMs })) return step.result;
    }
    throw new Error('push subscriptions: too much contention');
  }

  async function removeEndpoint(user: string, endpoint: string): Promise<boolean> {
    const removed = await update(
      userKey(user),
      (raw) => {
        const list = parseList(raw, user);
        const left = list.filter((r) => r.endpoint !== endpoint);
        if (left.length === list.length) return null;
        return { next: left.length ? JSON.stringify(left) : null, result: true };
      },
      SUBSCRIPTION_TTL_MS,
    );
    return removed === true;
  }

  return {
    async put(user, sub) {
      const now = Date.now();
      // The browser changes hands: the previous person stops getting pushes on it.
      const owner = await store.get(ownerKey(sub.endpoint));
      if (owner !== null && owner !== user) await removeEndpoint(owner, sub.endpoint);
      await store.set(ownerKey(sub.endpoint), user, { ttlMs: SUBSCRIPTION_TTL_MS });
      await update(
        userKey(user),
        (raw) => {
          const list = parseList(raw, user);
          const before = list.find((r) => r.endpoint === sub.endpoint);
          const rec: PushSubscriptionRecord = {
            v: 1,
            user,
            endpoint: sub.endpoint,
            p256dh: sub.p256dh,
            auth: sub.auth,
            createdAt: before?.createdAt ?? now,
            updatedAt: now,
          };
          const next = [...list.filter((r) => r.endpoint !== sub.endpoint), rec].sort((a, b) => a.updatedAt - b.updatedAt).slice(-MAX_PER_USER);
          return { next: JSON.stringify(next), result: true };
        },
        SUBSCRIPTION_TTL_MS,
      );
      await update(
        USERS_KEY,
        (raw) => {
          const users = raw ? (JSON.parse(raw) as string[]) : [];
          if (users.includes(user)) return null;
          return { next: JSON.stringify([...users, user].slice(-MAX_USERS)), result: true };
        },
        SUBSCRIPTION_TTL_MS,
      );
      return subscriptionId(sub.endpoint);
    },
    async list(user) {
      return parseList(await store.get(userKey(user)), user);
    },
    remove: removeEndpoint,
    async removeAll(user) {
      const n = await update(
        userKey(user),
        (raw) => {
          const list = parseList(raw, user);
          return list.length ? { next: null, result: list.length } : null;
        },
        SUBSCRIPTION_TTL_MS,
      );
      await update(
        USERS_KEY,
        (raw) => {
          const users = raw ? (JSON.parse(raw) as string[]) : [];
          return users.includes(user) ? { next: JSON.stringify(users.filter((u) => u !== user)), result: true } : null;
        },
        SUBSCRIPTION_TTL_MS,
      );
      return n ?? 0;
    },
    async users() {
      const raw = await store.get(USERS_KEY);
      if (!raw) return [];
      try {
        const users = JSON.parse(raw) as unknown;
        return Array.isArray(users) ? users.filter((u): u is string => typeof u === 'string') : [];
      } catch {
        return [];
      }
    },
  };
}
