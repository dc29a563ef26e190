#!/usr/bin/env node
/**
 * Writes N relationship tuples of the sample policies' shape (users in groups,
 * groups viewing folders, documents in folders) for the embedded engine's
 * size benchmarks, plus the model they need.
 *
 *   node bench/gen-tuples.mjs --tuples 1000000 --out /tmp/t1m.yaml            # YAML list (tuples.yaml)
 *   node bench/gen-tuples.mjs --tuples 1000000 --out /tmp/t1m.jsonl           # JSON Lines (same tuples)
 *   node bench/gen-tuples.mjs --tuples 100000 --out t.yaml --model model.fga  # and the model
 *
 * Deterministic: the same N gives the same file. About 45% of N are documents
 * (each with a parent folder and an owner), one folder per 100 documents (a
 * group's members view it, a user edits it, and `group:everyone` views every
 * folder), and the rest are group memberships. `user:bench` is a member of
 * `group:everyone`, so it can read every document, but only through
 * doc → folder (viewer from parent) → group#member → user: a check that
 * walks the tuples rather than hitting one directly.
 */

import { parseArgs } from 'node:util';
import { createWriteStream } from 'node:fs';

/** The part of the sample model (policies/model.fga) these tuples use. */
export const DOCS_MODEL_DSL = `model
  schema 1.1

type user

type group
  relations
    define member: [user, group#member]

type folder
  relations
    define owner: [user]
    define editor: [user, group#member] or owner
    define viewer: [user, user:*, group#member] or editor

type doc
  relations
    define parent: [folder]
    define owner: [user]
    define editor: [user, group#member] or owner or editor from parent
    define viewer: [user, user:*, group#member] or editor or viewer from parent
    define can_read: viewer
    define can_write: editor
    define can_delete: owner
`;

/** The counts of each kind of object for `n` tuples. */
export function shapeFor(n) {
  const docs = Math.max(1, Math.floor(n * 0.45));
  const folders = Math.max(1, Math.ceil(docs / 100));
  const groups = Math.max(1, Math.ceil(folders / 2));
  const users = Math.max(10, Math.floor(n / 20));
  return { docs, folders, groups, users };
}

/** Yields `[user, relation, object]` for exactly `n` tuples (n ≥ 1). */
export function* tuples(n) {
  const { docs, folders, groups, users } = shapeFor(n);
  let left = n;
  const emit = function* (u, r, o) {
    if (left <= 0) return;
    left--;
    yield [u, r, o];
  };
  yield* emit('user:bench', 'member', 'group:everyone');
  for (let f = 0; f < folders; f++) {
    yield* emit('group:everyone#member', 'viewer', `folder:f${f}`);
    yield* emit(`group:g${f % groups}#member`, 'viewer', `folder:f${f}`);
    yield* emit(`user:u${(f * 7919) % users}`, 'editor', `folder:f${f}`);
  }
  for (let d = 0; d < docs; d++) {
    yield* emit(`folder:f${d % folders}`, 'parent', `doc:${d}`);
    yield* emit(`user:u${(d * 104729) % users}`, 'owner', `doc:${d}`);
  }
  // Group memberships fill the rest: each user in a few groups, spread evenly.
  for (let i = 0; left > 0; i++) {
    yield* emit(`user:u${i % users}`, 'member', `group:g${(i * 31 + Math.floor(i / users)) % groups}`);
  }
}

/** One tuple as a line of the given format. */
export function line([user, relation, object], format) {
  return format === 'jsonl'
    ? `{"user":"${user}","relation":"${relation}","object":"${object}"}\n`
    : `- { user: "${user}", relation: ${relation}, object: "${object}" }\n`;
}

/** Writes `n` tuples to `path` (format from the extension: .jsonl/.ndjson or YAML). */
export async function writeTuples(path, n) {
  const format = /\.(jsonl|ndjson)$/.test(path) ? 'jsonl' : 'yaml';
  const out = createWriteStream(path);
  let chunk = format === 'yaml' ? `# ${n} generated tuples (bench/gen-tuples.mjs)\n` : '';
  for (const t of tuples(n)) {
    chunk += line(t, format);
    if (chunk.length > 1 << 16) {
      if (!out.write(chunk)) await new Promise((r) => out.once('drain', r));
      chunk = '';
    }
  }
  out.end(chunk);
  await new Promise((resolve, reject) => {
    out.once('finish', resolve);
    out.once('error', reject);
  });
  return { path, format, tuples: n, ...shapeFor(n) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { tuples: { type: 'string', default: '100000' }, out: { type: 'string' }, model: { type: 'string' } } });
  if (!values.out) {
    process.stderr.write('usage: node bench/gen-tuples.mjs --tuples N --out FILE(.yaml|.jsonl) [--model model.fga]\n');
    process.exit(2);
  }
  const { writeFileSync } = await import('node:fs');
  const info = await writeTuples(values.out, Number(values.tuples));
  if (values.model) writeFileSync(values.model, DOCS_MODEL_DSL);
  process.stdout.write(JSON.stringify(info) + '\n');
}
