/**
 * Small rules both store drivers share, so `memory` and `redis` agree on
 * argument validation, lock naming and lock-token strength.
 */

import { randomBytes } from 'node:crypto';
import { WardenError } from '../core/errors.js';

/** Lock names live under this key namespace in both drivers (callers must not use it). */
export const LOCK_NAMESPACE = 'lock:';

/**
 * A TTL in whole milliseconds. Zero, negative, fractional-below-1 or non-finite
 * values are programming errors: a silent "no expiry" would leak keys forever.
 */
export function checkTtlMs(ttlMs: number, what = 'ttlMs'): number {
  if (typeof ttlMs !== 'number' || !Number.isFinite(ttlMs) || ttlMs < 1) {
    throw new WardenError('internal', `store: ${what} must be a positive number of milliseconds`, { reason: 'store_bad_argument' });
  }
  return Math.ceil(ttlMs);
}

/** A list's cap: a whole number from 1 to 100 000 (a ring, never unbounded). */
export function checkListMax(max: number): number {
  if (!Number.isInteger(max) || max < 1 || max > 100_000) {
    throw new WardenError('internal', 'store: a list cap must be a whole number from 1 to 100000', { reason: 'store_bad_argument' });
  }
  return max;
}

/** A lease token: 192 random bits, so a holder cannot be impersonated by guessing. */
export function newLockToken(): string {
  return randomBytes(24).toString('base64url');
}

/** The store key that backs the lock `name`. */
export function lockKey(name: string): string {
  return `${LOCK_NAMESPACE}${name}`;
}

/** The error every operation on a closed store rejects with. */
export function storeClosed(): WardenError {
  return new WardenError('store_unavailable', 'store is closed', { reason: 'store_closed' });
}

/** A budget amount: finite and non-negative (callers validate first; this guards the store). */
export function checkAmount(amount: number, what = 'amount'): number {
  if (typeof amount !== 'number' || !Number.isFinite(amount) || amount < 0) {
    throw new WardenError('internal', `store: ${what} must be a finite non-negative number`, { reason: 'store_bad_argument' });
  }
  return amount;
}

/** A GCRA spec both drivers accept: a positive interval and a whole burst of at least 1. */
export function checkRateSpec(intervalMs: number, burst: number): { intervalUs: number; burst: number } {
  if (!Number.isFinite(intervalMs) || intervalMs <= 0 || !Number.isInteger(burst) || burst < 1) {
    throw new WardenError('internal', 'store: a rate limit needs intervalMs > 0 and a whole burst >= 1', { reason: 'store_bad_argument' });
  }
  // Microseconds as whole numbers: exact in doubles (and in Redis' Lua) for centuries.
  return { intervalUs: Math.max(1, Math.round(intervalMs * 1000)), burst };
}

/**
 * Budget sums rounded to 15 significant digits after every step, in both
 * drivers alike (Lua's %.15g), so adding and removing decimal amounts such as
 * 19.99 never leaves a residue that would refuse an exact fit.
 */
export function roundSum(x: number): number {
  // Whole sums below 1e15 are exact already: skip toPrecision (a string round trip, per settled request).
  const r = Number.isInteger(x) && x < 1e15 ? x : Number(x.toPrecision(15));
  return r > 0 ? r : 0;
}

/** Throws unless `id` and `amount` make a valid member (what budgetMember checks, without building it). */
export function checkMember(id: string, amount: number): void {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(id))
    throw new WardenError('internal', 'store: a budget reservation id must be 1-64 URL-safe characters', { reason: 'store_bad_argument' });
  checkAmount(amount);
}

/** The member a reservation or spend is stored under: its id and its amount. */
export function budgetMember(id: string, amount: number): string {
  checkMember(id, amount);
  return `${id}:${String(amount)}`;
}
