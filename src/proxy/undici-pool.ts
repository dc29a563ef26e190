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

// The index also attaches undici's high-level API to Dispatcher.prototype; forwarding through a response hook
// (MCP: forwardHooked) calls pool.request, so attach that one method as the index does (same function).
const Dispatcher = require('undici/lib/dispatcher/dispatcher.js') as { prototype: { request?: unknown } };
Dispatcher.prototype.request ??= require('undici/lib/api/api-request.js') as unknown;
