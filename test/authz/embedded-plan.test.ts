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
function expectPlanOf(ids: ModelIds, rw: Rewrite, plan: RewritePlan, shapes: Set<string>): void {
  // One object shape for every kind (the walk's property reads stay monomorphic).
  shapes.add(`${Object.getPrototypeOf(plan).constructor.name}(${Object.keys(plan).join()})`);
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
      rw.children.forEach((c, i) => expectPlanOf(ids, c, children[i], shapes));
      return;
    }
    case 'difference': {
      const p = plan as { base: RewritePlan; subtract: RewritePlan };
      expectPlanOf(ids, rw.base, p.base, shapes);
      expectPlanOf(ids, rw.subtract, p.subtract, shapes);
    }
  }
}

describe('embedded engine: definitions and node names as ids', () => {
  it('compiles every relation definition to ids that say what the definition says', () => {
    const ts = compileTypeSystem(parseModelDsl(DSL));
    const ids = new ModelIds(ts);
    const shapes = new Set<string>();
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
        expectPlanOf(ids, def.rewrite, plan.rewrite, shapes);
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
    expect([...shapes]).toHaveLength(1);
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
    const wrong: string[] = [];
    // 25,000 names, about a fifth of them repeats: the table starts at 1,024 slots and doubles five times.
    for (let i = 0; i < 25_000; i++) {
      const name = `${types[next() % types.length]}:${next() % 20_000}`;
      const id = nodes.intern(name);
      const expected = byName.get(name) ?? byName.size;
      if (id !== expected) wrong.push(`intern ${name}: ${id}, expected ${expected}`);
      byName.set(name, id);
    }
    expect(nodes.size).toBe(byName.size);
    expect(byName.size).toBeGreaterThan(16_000);
    for (const [name, id] of byName) {
      if (nodes.get(name) !== id) wrong.push(`get ${name}: ${nodes.get(name)}, expected ${id}`);
      if (nodes.names[id] !== name) wrong.push(`name ${id}: ${nodes.names[id]}, expected ${name}`);
      const type = ids.type(name.slice(0, name.indexOf(':')));
      if (nodes.type(id) !== type) wrong.push(`type ${name}: ${nodes.type(id)}, expected ${type}`);
    }
    for (let i = 0; i < 5_000; i++) {
      for (const absent of [`doc:${20_000 + i}`, `group:${i}x`]) if (nodes.get(absent) !== -1) wrong.push(`get ${absent}: ${nodes.get(absent)}`);
    }
    if (nodes.get('') !== -1) wrong.push('get of the empty name');
    expect(wrong.slice(0, 10)).toEqual([]);
  });
});
