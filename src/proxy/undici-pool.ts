/**
 * undici's `Pool` and error classes, loaded without undici's index (#17).
 * The index loads all of undici (fetch, WebSocket, caches, mocks, EventSource:
 * ~110 files) and that stays resident in every Warden process: ~1.9 MB of heap
 * and ~4 MB of RSS that forwarding never uses. These are the same classes the
 * index exports (it re-exports these two files), so `instanceof` and the types
 * are unchanged. The paths are undici 7's layout; test/core/lazy-imports.test.ts
 * fails loudly if an upgrade moves them.
 */

import { createRequire } from 'node:module';
import type { errors as UndiciErrors, Pool as UndiciPool } from 'undici';

const require = createRequire(import.meta.url);

export const Pool = require('undici/lib/dispatcher/pool.js') as typeof UndiciPool;
export type Pool = UndiciPool;
export const errors = require('undici/lib/core/errors.js') as typeof UndiciErrors;

/** undici's own header parsing (what pool.request hands its caller), loaded by the Pool already. */
export const util = require('undici/lib/core/util.js') as {
  parseHeaders(raw: Buffer[] | string[]): Record<string, string | string[]>;
  /** A raw header name in lower case: well-known names come from undici's lookup tree as interned strings (no copy, no case mapping). */
  bufferToLowerCasedHeaderName(name: Buffer): string;
};
