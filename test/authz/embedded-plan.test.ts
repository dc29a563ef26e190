/**
 * The id forms a check walks instead of strings (compact-index.ts): each
 * relation definition compiled to ids (`ModelIds.plan`: rewrite relation ids,
 * the allowed usersets as a table by type and relation id) must say exactly
 * what the definition says, and the node table (`Nodes`: id and hash side by
 * side in one slot array) must give every interned name its id back through
 * any number of rehashes.
 */

import { describe, expect, it } from 'vitest';
import { parseModelDsl } from '../../src/authz/model.js';
import { ModelIds, Nodes, type RewritePlan } from '../../src/authz/embedded/compact-index.js';
import { compileTypeSystem, type Rewrite } from '../../src/authz/embedded/typesystem.js';
import { mulberry32 } from '../support/random.js';

const DSL = `model
  schema 1.1
type user
type team
  relations
    define member: [user, team#member]
    define lead: [user]
type group
  relations
    define member: [user, user:*, group#member, team#member, team#lead]
    define admin: [user, team#lead]
type folder
  relations
    define owner: [user, group#admin]
    define viewer: [user, group#member] or owner
type doc
  relations
    define parent: [folder]
    define owner: [user]
    define blocked: [user, group#member]
    define editor: [user, group#member, team#member] or owner
    define viewer: [user, user:*, group#member] or editor or viewer from parent
    define can_read: viewer but not blocked
    define can_share: editor and viewer
    define audit: owner from parent
`;

/** Asserts that `plan` is `rw` with every relation name replaced by its id. */
function expectPlanOf(ids: ModelIds, rw: Rewrite, plan: RewritePlan): void {
  expect(plan.kind).toBe(rw.kind);
  switch (rw.kind) {
    case 'this':
      return;
    case 'computed':
      expect(plan).toMatchObject({ relation: rw.relation, relId: ids.rel(rw.relation) });
      expect(ids.relNames[(plan as { relId: number }).relId]).toBe(rw.relation);
      return;
    case 'ttu':
      expect(plan).toMatchObject({ tupleset: rw.tupleset, tuplesetId: ids.rel(rw.tupleset), computedId: ids.rel(rw.computed) });
      expect(ids.relNames[(plan as { computedId: number }).computedId]).toBe(rw.computed);
      return;
    case 'union':
    case 'intersection': {
      const children = (plan as { children: readonly RewritePlan[] }).children;
      expect(children).toHaveLength(rw.children.length);
      rw.children.forEach((c, i) => expectPlanOf(ids, c, children[i]));
      return;
    }
    case 'difference': {
      const p = plan as { base: RewritePlan; subtract: RewritePlan };
      expectPlanOf(ids, rw.base, p.base);
      expectPlanOf(ids, rw.subtract, p.subtract);
    }
  }
}

describe('embedded engine: definitions and node names as ids', () => {
  it('compiles every relation definition to ids that say what the definition says', () => {
    const ts = compileTypeSystem(parseModelDsl(DSL));
    const ids = new ModelIds(ts);
    let plans = 0;
    let allowedPairs = 0;
    for (const [type, rels] of ts.types) {
      const t = ids.type(type);
      for (const [rel, def] of rels) {
        const r = ids.rel(rel);
        const plan = ids.plan(t, r);
        expect(plan, `${type}#${rel}`).toBeDefined();
        if (!plan) continue;
        plans++;
        expect(plan.def).toBe(def);
        expect(ids.def(t, r)).toBe(def);
        expect([plan.typeId, plan.relId]).toEqual([t, r]);
        expectPlanOf(ids, def.rewrite, plan.rewrite);
        // Every (user type, relation) pair: allowed as a userset exactly when the restrictions list it.
        for (let u = 0; u < ids.typeNames.length; u++) {
          for (let q = 0; q < ids.relCount; q++) {
            const listed = def.usersetRelationsByType.get(ids.typeNames[u])?.has(ids.relNames[q]) === true;
            expect(plan.usersetAllowed[u * ids.relCount + q] === 1, `${type}#${rel} allows ${ids.typeNames[u]}#${ids.relNames[q]}`).toBe(listed);
            if (listed) allowedPairs++;
          }
        }
      }
    }
    expect(plans).toBe(14);
    // group#member: group#member, team#member, team#lead; group#admin: team#lead; folder#owner: group#admin; ...
    expect(allowedPairs).toBe(11);
    // Relation 0 ("no relation"), a type without the relation, an unknown type: no plan.
    expect(ids.plan(ids.type('doc'), 0)).toBeUndefined();
    expect(ids.plan(ids.type('user'), ids.rel('member'))).toBeUndefined();
    expect(ids.plan(-1, ids.rel('member'))).toBeUndefined();
  });

  it('gives every interned name its id back through rehashes; unknown names are -1', () => {
    const ids = new ModelIds(compileTypeSystem(parseModelDsl(DSL)));
    const next = mulberry32(17);
    const nodes = new Nodes(ids);
    const byName = new Map<string, number>();
    const types = ['user', 'team', 'group', 'folder', 'doc', 'nosuchtype'];
    // 40,000 names, a fifth of them repeated: the table starts at 1,024 slots and doubles six times.
    for (let i = 0; i < 50_000; i++) {
      const name = `${types[next() % types.length]}:${next() % 40_000}`;
      const id = nodes.intern(name);
      const known = byName.get(name);
      if (known === undefined) {
        expect(id).toBe(byName.size);
        byName.set(name, id);
      } else expect(id).toBe(known);
    }
    expect(nodes.size).toBe(byName.size);
    expect(byName.size).toBeGreaterThan(30_000);
    for (const [name, id] of byName) {
      expect(nodes.get(name)).toBe(id);
      expect(nodes.names[id]).toBe(name);
      expect(nodes.type(id)).toBe(ids.type(name.slice(0, name.indexOf(':'))));
    }
    for (let i = 0; i < 5_000; i++) {
      const absent = `doc:${40_000 + i}`;
      expect(nodes.get(absent)).toBe(-1);
      expect(nodes.get(`${absent}x`)).toBe(-1);
    }
    expect(nodes.get('')).toBe(-1);
  });
});
