/**
 * The compiled form of an authorization model that the evaluator walks: each
 * relation's rewrite as a small tree, its type restrictions pre-sorted by kind,
 * and OpenFGA's model graph reachability ("can a user of this type ever reach
 * this relation?") precomputed so a check spends no time on it.
 */

import type { AuthorizationModel, RelationReference, Userset } from '../model.js';
import { compileConditions, type CompiledCondition } from './conditions.js';

/** A relation's rewrite rule. */
export type Rewrite =
  | { readonly kind: 'this' }
  | { readonly kind: 'computed'; readonly relation: string }
  | { readonly kind: 'ttu'; readonly tupleset: string; readonly computed: string }
  | { readonly kind: 'union'; readonly children: readonly Rewrite[] }
  | { readonly kind: 'intersection'; readonly children: readonly Rewrite[] }
  | { readonly kind: 'difference'; readonly base: Rewrite; readonly subtract: Rewrite };

/** One relation of one type, ready for evaluation. */
export interface RelationDef {
  readonly type: string;
  readonly name: string;
  readonly rewrite: Rewrite;
  /** The type restrictions `[user, user:*, group#member, user with cond]` as written. */
  readonly directTypes: readonly RelationReference[];
  /** Types allowed as plain objects (`user`), with or without a condition. */
  readonly plainTypes: ReadonlySet<string>;
  /** Types allowed as typed wildcards (`user:*`). */
  readonly wildcardTypes: ReadonlySet<string>;
  /** Allowed usersets, as `type#relation`. */
  readonly usersetRefs: ReadonlySet<string>;
  /** Allowed usersets by user type (`group` → {`member`}), so a lookup needs no string building. */
  readonly usersetRelationsByType: ReadonlyMap<string, ReadonlySet<string>>;
  /** True when some tuple-to-userset rule of this type reads this relation as its tupleset. */
  readonly isTupleset: boolean;
  /** Labels (`user`, `user:*`, `group#member`) from which OpenFGA's model graph reaches this relation. */
  readonly reachableFrom: ReadonlySet<string>;
}

/** `relation: computed from tupleset` rules of one type, for reverse walks. */
export interface TupleToUsersetRule {
  readonly relation: string;
  readonly tupleset: string;
  readonly computed: string;
}

/** A compiled model. */
export interface TypeSystem {
  readonly model: AuthorizationModel;
  readonly types: ReadonlyMap<string, ReadonlyMap<string, RelationDef>>;
  /** Per type: relation → the relations whose rewrite names it as a computed userset. */
  readonly computedFrom: ReadonlyMap<string, ReadonlyMap<string, readonly string[]>>;
  /** Per type: its tuple-to-userset rules. */
  readonly ttuRules: ReadonlyMap<string, readonly TupleToUsersetRule[]>;
  readonly conditions: ReadonlyMap<string, CompiledCondition>;
  relation(type: string, relation: string): RelationDef | undefined;
}

function compileRewrite(us: Userset | undefined, where: string): Rewrite {
  if (!us) throw new Error(`${where}: missing rewrite`);
  if (us.this !== undefined) return { kind: 'this' };
  if (us.computedUserset) return { kind: 'computed', relation: us.computedUserset.relation };
  if (us.tupleToUserset) {
    return { kind: 'ttu', tupleset: us.tupleToUserset.tupleset.relation, computed: us.tupleToUserset.computedUserset.relation };
  }
  if (us.union) return { kind: 'union', children: us.union.child.map((c) => compileRewrite(c, where)) };
  if (us.intersection) {
    if (us.intersection.child.length < 2) throw new Error(`${where}: intersection needs two operands`);
    return { kind: 'intersection', children: us.intersection.child.map((c) => compileRewrite(c, where)) };
  }
  if (us.difference) {
    return { kind: 'difference', base: compileRewrite(us.difference.base, where), subtract: compileRewrite(us.difference.subtract, where) };
  }
  throw new Error(`${where}: unknown rewrite ${JSON.stringify(Object.keys(us))}`);
}

function walk(rw: Rewrite, visit: (r: Rewrite) => void): void {
  visit(rw);
  if (rw.kind === 'union' || rw.kind === 'intersection') rw.children.forEach((c) => walk(c, visit));
  else if (rw.kind === 'difference') {
    walk(rw.base, visit);
    walk(rw.subtract, visit);
  }
}

/**
 * OpenFGA's model graph (language `graph_builder.go`), drawn from users to
 * relations: an edge for every type restriction, every computed relation,
 * every tuple-to-userset parent that defines the computed relation, and through
 * an operator node for every union/intersection/exclusion operand (subtracted
 * operands included). Returns, per `type#relation`, the labels that reach it.
 */
function reachability(model: AuthorizationModel, rewrites: Map<string, Rewrite>): Map<string, Set<string>> {
  const incoming = new Map<string, string[]>();
  const edge = (from: string, to: string): void => {
    const list = incoming.get(to);
    if (list) list.push(from);
    else incoming.set(to, [from]);
  };
  const relationsOf = new Map(model.type_definitions.map((td) => [td.type, td]));
  let operatorCount = 0;
  for (const td of model.type_definitions) {
    for (const relation of Object.keys(td.relations ?? {})) {
      const self = `${td.type}#${relation}`;
      const restrictionsOf = (rel: string): RelationReference[] => td.metadata?.relations?.[rel]?.directly_related_user_types ?? [];
      const visit = (rw: Rewrite, parent: string): void => {
        switch (rw.kind) {
          case 'this':
            for (const ref of restrictionsOf(relation)) {
              if (ref.relation) edge(`${ref.type}#${ref.relation}`, parent);
              else if (ref.wildcard) edge(`${ref.type}:*`, parent);
              else edge(ref.type, parent);
            }
            return;
          case 'computed':
            edge(`${td.type}#${rw.relation}`, parent);
            return;
          case 'ttu':
            for (const ref of restrictionsOf(rw.tupleset)) {
              if (relationsOf.get(ref.type)?.relations?.[rw.computed] !== undefined) edge(`${ref.type}#${rw.computed}`, parent);
            }
            return;
          default: {
            const op = `\u0000op${operatorCount++}`;
            edge(op, parent);
            if (rw.kind === 'difference') {
              visit(rw.base, op);
              visit(rw.subtract, op);
            } else rw.children.forEach((c) => visit(c, op));
          }
        }
      };
      visit(rewrites.get(self) as Rewrite, self);
    }
  }
  const out = new Map<string, Set<string>>();
  for (const target of rewrites.keys()) {
    // gonum's PathExistsIn counts a node as reaching itself.
    const seen = new Set<string>([target]);
    const queue = [target];
    while (queue.length > 0) {
      const node = queue.pop() as string;
      for (const from of incoming.get(node) ?? []) {
        if (!seen.has(from)) {
          seen.add(from);
          queue.push(from);
        }
      }
    }
    for (const label of [...seen]) if (label.startsWith('\u0000')) seen.delete(label);
    out.set(target, seen);
  }
  return out;
}

/**
 * Compiles a model. Throws an Error with the offending type/relation when the
 * model references something it does not define or a condition does not
 * compile; the DSL validator catches most of these earlier with a line number.
 */
export function compileTypeSystem(model: AuthorizationModel): TypeSystem {
  if (model.schema_version !== '1.1' && model.schema_version !== '1.2') {
    throw new Error(`unsupported schema version ${JSON.stringify(model.schema_version)} (use 1.1)`);
  }
  const typeNames = new Set<string>();
  for (const td of model.type_definitions) {
    if (typeNames.has(td.type)) throw new Error(`type ${td.type} is defined twice`);
    typeNames.add(td.type);
  }
  const rewrites = new Map<string, Rewrite>();
  for (const td of model.type_definitions) {
    for (const [relation, us] of Object.entries(td.relations ?? {})) rewrites.set(`${td.type}#${relation}`, compileRewrite(us, `${td.type}#${relation}`));
  }
  const conditions = compileConditions(model.conditions);

  // References must resolve, or evaluation would meet undefined relations mid-check.
  for (const td of model.type_definitions) {
    const rels = td.relations ?? {};
    for (const relation of Object.keys(rels)) {
      const where = `${td.type}#${relation}`;
      for (const ref of td.metadata?.relations?.[relation]?.directly_related_user_types ?? []) {
        if (!typeNames.has(ref.type)) throw new Error(`${where}: unknown type ${ref.type}`);
        if (ref.relation && !rewrites.has(`${ref.type}#${ref.relation}`)) throw new Error(`${where}: unknown relation ${ref.type}#${ref.relation}`);
        if (ref.condition && !conditions.has(ref.condition)) throw new Error(`${where}: unknown condition ${ref.condition}`);
      }
      walk(rewrites.get(where) as Rewrite, (rw) => {
        if (rw.kind === 'computed' && rels[rw.relation] === undefined) throw new Error(`${where}: unknown relation ${td.type}#${rw.relation}`);
        if (rw.kind === 'ttu' && rels[rw.tupleset] === undefined) throw new Error(`${where}: unknown tupleset relation ${td.type}#${rw.tupleset}`);
      });
    }
  }

  const reach = reachability(model, rewrites);
  const types = new Map<string, Map<string, RelationDef>>();
  for (const td of model.type_definitions) {
    const tuplesets = new Set<string>();
    for (const relation of Object.keys(td.relations ?? {})) {
      walk(rewrites.get(`${td.type}#${relation}`) as Rewrite, (rw) => {
        if (rw.kind === 'ttu') tuplesets.add(rw.tupleset);
      });
    }
    const defs = new Map<string, RelationDef>();
    for (const relation of Object.keys(td.relations ?? {})) {
      const directTypes = td.metadata?.relations?.[relation]?.directly_related_user_types ?? [];
      const plainTypes = new Set<string>();
      const wildcardTypes = new Set<string>();
      const usersetRefs = new Set<string>();
      const usersetRelationsByType = new Map<string, Set<string>>();
      for (const ref of directTypes) {
        if (ref.relation) {
          usersetRefs.add(`${ref.type}#${ref.relation}`);
          const set = usersetRelationsByType.get(ref.type) ?? new Set<string>();
          set.add(ref.relation);
          usersetRelationsByType.set(ref.type, set);
        } else if (ref.wildcard) wildcardTypes.add(ref.type);
        else plainTypes.add(ref.type);
      }
      defs.set(relation, {
        type: td.type,
        name: relation,
        rewrite: rewrites.get(`${td.type}#${relation}`) as Rewrite,
        directTypes,
        plainTypes,
        wildcardTypes,
        usersetRefs,
        usersetRelationsByType,
        isTupleset: tuplesets.has(relation),
        reachableFrom: reach.get(`${td.type}#${relation}`) as Set<string>,
      });
    }
    types.set(td.type, defs);
  }
  const computedFrom = new Map<string, Map<string, string[]>>();
  const ttuRules = new Map<string, TupleToUsersetRule[]>();
  for (const td of model.type_definitions) {
    const byRel = new Map<string, string[]>();
    const rules: TupleToUsersetRule[] = [];
    for (const relation of Object.keys(td.relations ?? {})) {
      walk(rewrites.get(`${td.type}#${relation}`) as Rewrite, (rw) => {
        if (rw.kind === 'computed') {
          const list = byRel.get(rw.relation) ?? [];
          if (!list.includes(relation)) list.push(relation);
          byRel.set(rw.relation, list);
        } else if (rw.kind === 'ttu') rules.push({ relation, tupleset: rw.tupleset, computed: rw.computed });
      });
    }
    computedFrom.set(td.type, byRel);
    ttuRules.set(td.type, rules);
  }
  return {
    model,
    types,
    computedFrom,
    ttuRules,
    conditions,
    relation: (type, relation) => types.get(type)?.get(relation),
  };
}
