/**
 * #17, G2e1m (a different document per request on the embedded engine): the
 * authorizer's remembered cheap answers (`checkIfKnown`) must not carry one
 * check's key into the old generation through another's. A Map did: with one
 * new key per check and a clear every 256, each replaced hash table pointed at
 * the next, and once one of them was old every later table and key was
 * promoted (~55 MB for 400k one-off checks, ~150 bytes each). Measured in a
 * child node process (built modules, V8's own GC trace): after one full GC, a
 * churn of one-off checks promotes almost nothing.
 */

import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { REPO_ROOT } from '../support/gateway.js';
import { promotedInChild } from '../support/promotion.js';
import { KnownAnswers } from '../../src/authz/embedded/known-answers.js';
import { ModelIds, NodeOverlay, Nodes, OVERLAY_SCAN } from '../../src/authz/embedded/compact-index.js';
import { compileTypeSystem } from '../../src/authz/embedded/typesystem.js';
import { parseModelDsl } from '../../src/authz/model.js';

const MODULE = join(REPO_ROOT, 'dist/src/authz/embedded/index.js');
const MODEL = join(REPO_ROOT, 'dist/src/authz/model.js');

// Documents in folders viewed by a group the user is in: each check walks a few tuples (a cheap check).
const CHURN = `
const { createEmbeddedAuthorizer } = await import(process.argv[1]);
const { parseModelDsl } = await import(process.argv[2]);
const model = parseModelDsl(\`model
  schema 1.1
type user
type group
  relations
    define member: [user]
type folder
  relations
    define viewer: [user, group#member]
type doc
  relations
    define parent: [folder]
    define viewer: [user] or viewer from parent
\`);
const tuples = [{ user: 'user:a', relation: 'member', object: 'group:g' }];
for (let f = 0; f < 20; f++) tuples.push({ user: 'group:g#member', relation: 'viewer', object: 'folder:f' + f });
for (let d = 0; d < 5000; d++) tuples.push({ user: 'folder:f' + (d % 20), relation: 'parent', object: 'doc:' + d });
const authorizer = createEmbeddedAuthorizer({ model, tuples });
const check = (n) => {
  const request = { user: 'user:' + 'a', relation: 'viewer', object: (unknown ? 'doc:none' : 'doc:') + (n % 5000) };
  const known = authorizer.checkIfKnown(request);
  if (known === undefined && authorizer.checkIfCheap(request) !== !unknown) throw new Error('unexpected answer');
};
const unknown = process.argv[3] === 'unknown';
for (let n = 0; n < 5000; n++) check(n * 7);
// What a mark-compact under load does: everything live, the remembered answers' own structure included, is old now.
globalThis.gc();
process.stdout.write('--- churn\\n');
for (let n = 0; n < 300000; n++) check(n * 7919);
`;

/** Bytes promoted by a churn of one-off checks (`unknown`: on objects no tuple names) after a full GC. */
async function churn(kind: 'stored' | 'unknown'): Promise<{ bytes: number; scavenges: number }> {
  return promotedInChild(CHURN, { modules: [MODULE, MODEL], args: [kind] });
}

describe('remembered cheap answers and the young generation (#17)', () => {
  it('a churn of one-off checks after a full GC promotes (almost) none of their keys', async () => {
    const { bytes, scavenges } = await churn('stored');
    // Enough scavenges that a chain of tables would show.
    expect(scavenges).toBeGreaterThan(50);
    // With a Map: ~40 MB promoted here. With the fixed table: ~0.1 MB (the harness's own).
    expect(bytes).toBeLessThan(4 * 2 ** 20);
  }, 60_000);

  it('nor does a churn of checks on objects no tuple names (the request overlay of node ids)', async () => {
    const { bytes, scavenges } = await churn('unknown');
    expect(scavenges).toBeGreaterThan(50);
    // With one Map cleared per check: ~8 MB promoted here.
    expect(bytes).toBeLessThan(2 * 2 ** 20);
  }, 60_000);
});

describe('KnownAnswers', () => {
  it('finds each answer by all three fields, fresh equal strings included, and nothing else', () => {
    const known = new KnownAnswers(8);
    known.set('user:a', 'viewer', 'doc:1', true);
    known.set('user:b', 'viewer', 'doc:1', false);
    expect(known.get('user:' + 'a', 'view' + 'er', 'doc:' + '1')).toBe(true);
    expect(known.get('user:b', 'viewer', 'doc:1')).toBe(false);
    expect(known.get('user:a', 'viewer', 'doc:2')).toBeUndefined();
    expect(known.get('user:a', 'editor', 'doc:1')).toBeUndefined();
    expect(known.get('user:c', 'viewer', 'doc:1')).toBeUndefined();
    // A field's text moved into its neighbour is another key.
    expect(known.get('user:a', 'viewerdoc:1', '')).toBeUndefined();
    expect(known.size).toBe(2);
    // Storing the same key again replaces its answer, and is not a second entry.
    known.set('user:a', 'viewer', 'doc:1', false);
    expect(known.get('user:a', 'viewer', 'doc:1')).toBe(false);
    expect(known.size).toBe(2);
  });

  it('keeps at most its capacity: the next new key forgets them all, and every kept key stays findable under collisions', () => {
    const known = new KnownAnswers(64);
    for (let i = 0; i < 64; i++) known.set('user:a', 'viewer', `doc:${i}`, i % 3 === 0);
    expect(known.size).toBe(64);
    for (let i = 0; i < 64; i++) expect(known.get('user:a', 'viewer', `doc:${i}`)).toBe(i % 3 === 0);
    known.set('user:a', 'viewer', 'doc:new', true);
    expect(known.size).toBe(1);
    expect(known.get('user:a', 'viewer', 'doc:0')).toBeUndefined();
    expect(known.get('user:a', 'viewer', 'doc:new')).toBe(true);
  });

  it('the remembered last slot never answers for another key or after a clear', () => {
    const known = new KnownAnswers(4);
    expect(known.get('user:a', 'viewer', 'doc:1')).toBeUndefined();
    // Another key takes the slot the last lookup found empty.
    for (let i = 0; i < 4; i++) known.set('user:a', 'viewer', `doc:x${i}`, true);
    expect(known.get('user:a', 'viewer', 'doc:1')).toBeUndefined();
    known.set('user:a', 'viewer', 'doc:1', false);
    expect(known.get('user:a', 'viewer', 'doc:1')).toBe(false);
    known.clear();
    expect(known.size).toBe(0);
    expect(known.get('user:a', 'viewer', 'doc:1')).toBeUndefined();
    known.set('user:b', 'viewer', 'doc:1', true);
    expect(known.get('user:a', 'viewer', 'doc:1')).toBeUndefined();
    expect(known.get('user:b', 'viewer', 'doc:1')).toBe(true);
  });
});

describe('NodeOverlay', () => {
  const ts = compileTypeSystem(parseModelDsl('model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define viewer: [user]\n'));
  const ids = new ModelIds(ts);
  const base = new Nodes(ids);
  base.intern('doc:stored');

  for (const count of [1, OVERLAY_SCAN, OVERLAY_SCAN + 1, 40]) {
    it(`numbers ${count} names of a request after the stored ones, finds each again, and forgets them on reset`, () => {
      const overlay = new NodeOverlay(base);
      expect(overlay.id('doc:stored')).toBe(0);
      const names = Array.from({ length: count }, (_, i) => (i % 2 ? `user:u${i}` : `doc:d${i}`));
      const got = names.map((n) => overlay.id(n));
      expect(got).toEqual(names.map((_, i) => base.size + i));
      // Fresh equal strings find the same ids; nothing new is added.
      expect(names.map((n) => overlay.id(n.slice(0, 2) + n.slice(2)))).toEqual(got);
      expect(names.map((n) => overlay.lookup(n))).toEqual(got);
      expect(names.map((_, i) => overlay.name(base.size + i))).toEqual(names);
      expect(names.map((_, i) => overlay.type(base.size + i))).toEqual(names.map((n) => ids.type(n.startsWith('doc:') ? 'doc' : 'user')));
      expect(overlay.lookup('doc:other')).toBe(-1);
      overlay.reset();
      expect(overlay.lookup(names[0])).toBe(-1);
      // After a reset the numbering starts again after the stored nodes.
      expect(overlay.id('doc:after')).toBe(base.size);
      expect(overlay.lookup(names[names.length - 1])).toBe(-1);
    });
  }
});
