/**
 * Canonical JSON (sorted object keys, no whitespace) and SHA-256 digests: one
 * spelling per value, so decision-cache keys, approval digests and MCP tool
 * hashes do not change with key order. The one implementation Warden uses.
 */

import { createHash } from 'node:crypto';

/** Serialize `value` with object keys sorted recursively; `undefined` members are dropped as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortDeep(value, 0));
}

function sortDeep(value: unknown, depth: number): unknown {
  // Bounded so a hostile, deeply nested document cannot blow the stack.
  if (depth > 64) throw new RangeError('JSON nested too deeply');
  if (Array.isArray(value)) return value.map((v) => sortDeep(v, depth + 1));
  if (value === null || typeof value !== 'object') return value;
  // Null prototype: a `__proto__` key stays an ordinary member.
  const out: Record<string, unknown> = Object.create(null);
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = sortDeep(v, depth + 1);
  }
  return out;
}

/** Hex SHA-256 of a string (UTF-8) or bytes. */
export function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
