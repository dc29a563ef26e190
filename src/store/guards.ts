/**
 * Small rules both store drivers share, so `memory` and `redis` agree on
 * argument validation, lock naming and lock-token strength.
 */

import { randomBytes } from 'node:crypto';
import { WardenError } from '../errors.js';

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
