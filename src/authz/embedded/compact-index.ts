/**
 * Relationship tuples as integer columns, indexed for the lookups a check
 * makes. Every object and user object (`doc:1`, `group:g#…` → `group:g`,
 * `user:*`) is interned once as a node id; relations and types are ids of the
 * model (`ModelIds`). A tuple is one row of five Int32Arrays (object, relation,
 * user node, user relation or 0, condition or -1); nothing per tuple is a
 * JavaScript object, so a million tuples cost about 20 MB of columns plus the
 * node names.
 *
 * Tuples of one object#relation (a bucket) are contiguous in two permutations
 * built once after load (CSR): `order` keeps insertion order (tuple-to-userset
 * reads, list objects), `byUser` holds the plain users sorted by node (binary
 * search for the exact tuple and `type:*`) followed by the userset users in
 * insertion order. The stored index maps object#relation to its bucket by
 * arithmetic (node × relation slots + slot, into an Int32Array of offsets), the
 * contextual one (a request's few tuples) through a Map.
 */

import { isValidUserset, ownCopy, splitObjectRelation, typeOf } from './ids.js';
import type { RelationDef, Rewrite, TypeSystem } from './typesystem.js';

/**
 * A rewrite with its relation names as ids (`ModelIds.rel`; -1 for a name no
 * type defines), so a resolution step compares and indexes numbers instead of
 * looking strings up. The names stay for messages.
 */
export type RewritePlan =
  | { readonly kind: 'this' }
  | { readonly kind: 'computed'; readonly relation: string; readonly relId: number }
  | { readonly kind: 'ttu'; readonly tupleset: string; readonly tuplesetId: number; readonly computedId: number }
  | { readonly kind: 'union'; readonly children: readonly RewritePlan[] }
  | { readonly kind: 'intersection'; readonly children: readonly RewritePlan[] }
  | { readonly kind: 'difference'; readonly base: RewritePlan; readonly subtract: RewritePlan };

/**
 * Every node of a rewrite plan is one object of this class, whatever its kind:
 * the walk's reads of `kind` and the other fields then see a single object
 * shape (a property read over the six shapes of the `RewritePlan` union would
 * be megamorphic, a lookup per read).
 */
class PlanNode {
  constructor(
    readonly kind: RewritePlan['kind'],
    readonly relation: string,
    readonly relId: number,
    readonly tupleset: string,
    readonly tuplesetId: number,
    readonly computedId: number,
    readonly children: readonly RewritePlan[],
    readonly base: RewritePlan | undefined,
    readonly subtract: RewritePlan | undefined,
  ) {}
}

const NO_CHILDREN: readonly RewritePlan[] = Object.freeze([]);

/** A plan node of `kind` with the fields that kind uses; the others keep neutral values. */
function planNode(
  kind: RewritePlan['kind'],
  f: {
    relation?: string;
    relId?: number;
    tupleset?: string;
    tuplesetId?: number;
    computedId?: number;
    children?: readonly RewritePlan[];
    base?: RewritePlan;
    subtract?: RewritePlan;
  } = {},
): RewritePlan {
  return new PlanNode(
    kind,
    f.relation ?? '',
    f.relId ?? -1,
    f.tupleset ?? '',
    f.tuplesetId ?? -1,
    f.computedId ?? -1,
    f.children ?? NO_CHILDREN,
    f.base,
    f.subtract,
  ) as unknown as RewritePlan;
}

/** A relation definition with the ids a check needs (see `ModelIds.plan`). */
export interface DefPlan {
  readonly def: RelationDef;
  readonly typeId: number;
  readonly relId: number;
  readonly rewrite: RewritePlan;
  /**
   * `usersetAllowed[typeId * relCount + relId]` is 1 when the restrictions allow
   * the userset `type#relation` (the same as `def.usersetRelationsByType`).
   */
  readonly usersetAllowed: Uint8Array;
}

/** A tuple's condition as written. */
export interface TupleCondition {
  readonly name: string;
  readonly context?: Readonly<Record<string, unknown>>;
}

/** Integer ids of the model's types and relation names (relation id 0 means "no relation"). */
export class ModelIds {
  readonly typeIds = new Map<string, number>();
  readonly typeNames: string[] = [];
  readonly relIds = new Map<string, number>();
  readonly relNames: string[] = [''];
  /** `defs[typeId * relCount + relId]`. */
  private readonly defs: (RelationDef | undefined)[];
  /** `plans[typeId * relCount + relId]`: the same definitions, compiled to ids. */
  private readonly plans: (DefPlan | undefined)[];

  constructor(ts: TypeSystem) {
    for (const [type, rels] of ts.types) {
      this.typeIds.set(type, this.typeNames.length);
      this.typeNames.push(type);
      for (const rel of rels.keys()) {
        if (!this.relIds.has(rel)) {
          this.relIds.set(rel, this.relNames.length);
          this.relNames.push(rel);
        }
      }
    }
    // Relation names the rewrites mention but no type defines still need an id (they resolve to no definition).
    this.defs = new Array<RelationDef | undefined>(this.typeNames.length * this.relCount).fill(undefined);
    for (const [type, rels] of ts.types) {
      const t = this.typeIds.get(type) as number;
      for (const [rel, def] of rels) this.defs[t * this.relCount + (this.relIds.get(rel) as number)] = def;
    }
    this.plans = this.defs.map((def, i) => (def === undefined ? undefined : this.compile(def, i)));
  }

  private compile(def: RelationDef, at: number): DefPlan {
    const relCount = this.relCount;
    const usersetAllowed = new Uint8Array(this.typeNames.length * relCount);
    for (const [type, rels] of def.usersetRelationsByType) {
      const t = this.type(type);
      if (t < 0) continue;
      for (const rel of rels) {
        const r = this.rel(rel);
        if (r > 0) usersetAllowed[t * relCount + r] = 1;
      }
    }
    const plan = (rw: Rewrite): RewritePlan => {
      switch (rw.kind) {
        case 'this':
          return planNode('this');
        case 'computed':
          return planNode('computed', { relation: rw.relation, relId: this.rel(rw.relation) });
        case 'ttu':
          return planNode('ttu', { tupleset: rw.tupleset, tuplesetId: this.rel(rw.tupleset), computedId: this.rel(rw.computed) });
        case 'union':
        case 'intersection':
          return planNode(rw.kind, { children: rw.children.map(plan) });
        case 'difference':
          return planNode('difference', { base: plan(rw.base), subtract: plan(rw.subtract) });
      }
    };
    return { def, typeId: Math.floor(at / relCount), relId: at % relCount, rewrite: plan(def.rewrite), usersetAllowed };
  }

  get relCount(): number {
    return this.relNames.length;
  }

  /** The id of relation `name`, or -1 when no type of the model defines it. */
  rel(name: string): number {
    return this.relIds.get(name) ?? -1;
  }

  /** The id of type `name`, or -1. */
  type(name: string): number {
    return this.typeIds.get(name) ?? -1;
  }

  /** The definition of relation `relId` on type `typeId`, if the model has it. */
  def(typeId: number, relId: number): RelationDef | undefined {
    if (typeId < 0 || relId <= 0) return undefined;
    return this.defs[typeId * this.relCount + relId];
  }

  /** `def(typeId, relId)` compiled to ids, if the model has it. */
  plan(typeId: number, relId: number): DefPlan | undefined {
    if (typeId < 0 || relId <= 0) return undefined;
    return this.plans[typeId * this.relCount + relId];
  }
}

/** FNV-1a over UTF-16 code units. */
function hashOf(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

/**
 * Interned node names (objects and user objects) with their type ids, in an
 * open-addressing hash table of Int32Arrays: a million names cost their
 * strings plus 12 bytes each, and interning is a few times faster than a Map
 * of that size. A slot holds the id and the hash side by side (`slots[2j]`,
 * `slots[2j + 1]`), so a probe reads one cache line before the name itself:
 * at a million names, every lookup of a new object is a handful of cache
 * misses, and they are most of its cost.
 */
export class Nodes {
  readonly names: string[] = [];
  /** Pairs (id or -1, hash). */
  private slots: Int32Array = emptySlots(1024);
  private mask = 1023;
  private typeCol: Int32Array = new Int32Array(512);

  constructor(readonly model: ModelIds) {}

  get size(): number {
    return this.names.length;
  }

  /** The id of `name`, or -1. */
  get(name: string): number {
    const h = hashOf(name);
    const slots = this.slots;
    const mask = this.mask;
    for (let j = h & mask; ; j = (j + 1) & mask) {
      const id = slots[2 * j];
      if (id < 0) return -1;
      if (slots[2 * j + 1] === h && this.names[id] === name) return id;
    }
  }

  /** The id of `name`, interning it when new. */
  intern(name: string): number {
    const h = hashOf(name);
    const mask = this.mask;
    const slots = this.slots;
    let j = h & mask;
    for (; ; j = (j + 1) & mask) {
      const known = slots[2 * j];
      if (known < 0) break;
      if (slots[2 * j + 1] === h && this.names[known] === name) return known;
    }
    const id = this.names.length;
    // An interned name lives as long as the engine: it must not keep the policy file it was read from.
    this.names.push(ownCopy(name));
    if (id === this.typeCol.length) this.typeCol = grown(this.typeCol, id * 2);
    this.typeCol[id] = this.model.type(typeOf(name));
    slots[2 * j] = id;
    slots[2 * j + 1] = h;
    // At most half full, so probe runs stay short.
    if (this.names.length * 2 > mask + 1) this.rehash();
    return id;
  }

  type(id: number): number {
    return this.typeCol[id];
  }

  private rehash(): void {
    const old = this.slots;
    const size = (this.mask + 1) * 2;
    const slots = emptySlots(size);
    const mask = size - 1;
    for (let k = 0; k < old.length; k += 2) {
      const id = old[k];
      if (id < 0) continue;
      const h = old[k + 1];
      let j = h & mask;
      while (slots[2 * j] >= 0) j = (j + 1) & mask;
      slots[2 * j] = id;
      slots[2 * j + 1] = h;
    }
    this.slots = slots;
    this.mask = mask;
  }
}

/** A slot table of `size` empty (id -1) slots. */
function emptySlots(size: number): Int32Array {
  const slots = new Int32Array(2 * size);
  for (let j = 0; j < slots.length; j += 2) slots[j] = -1;
  return slots;
}

function grown(a: Int32Array, size: number): Int32Array {
  const b = new Int32Array(size);
  b.set(a);
  return b;
}

/**
 * The node ids one request sees: the stored nodes, plus names only this
 * request mentions (its object, user, contextual tuples) numbered after them.
 * `reset` forgets the request's own names.
 */
export class NodeOverlay {
  /**
   * Past `OVERLAY_SCAN` names (contextual tuples), a Map of this request's names, built for it and dropped
   * by `reset`. Not one Map cleared per request: a Map that gets a key and a clear per check (an object no
   * tuple names) leaves each replaced table pointing at the next, and once one is old every later one is
   * promoted (~30 bytes per such check).
   */
  private extra: Map<string, number> | undefined;
  private readonly extraNames: string[] = [];
  private readonly extraTypes: number[] = [];

  constructor(readonly base: Nodes) {}

  /** The id of one of this request's own names, or -1. */
  private extraId(name: string): number {
    if (this.extra !== undefined) return this.extra.get(name) ?? -1;
    const names = this.extraNames;
    for (let i = 0; i < names.length; i++) if (names[i] === name) return this.base.size + i;
    return -1;
  }

  /** The id of `name`, adding it to this request's names when the stored nodes lack it. */
  id(name: string): number {
    const stored = this.base.get(name);
    if (stored >= 0) return stored;
    const known = this.extraId(name);
    if (known >= 0) return known;
    const n = this.base.size;
    const id = n + this.extraNames.length;
    this.extraNames.push(name);
    this.extraTypes.push(this.base.model.type(typeOf(name)));
    if (this.extra !== undefined) this.extra.set(name, id);
    else if (this.extraNames.length > OVERLAY_SCAN) {
      this.extra = new Map();
      for (let i = 0; i < this.extraNames.length; i++) this.extra.set(this.extraNames[i], n + i);
    }
    return id;
  }

  /** The id of `name` if any index or this request knows it, else -1 (nothing is added). */
  lookup(name: string): number {
    const stored = this.base.get(name);
    return stored >= 0 ? stored : this.extraId(name);
  }

  name(id: number): string {
    const n = this.base.size;
    return id < n ? this.base.names[id] : this.extraNames[id - n];
  }

  type(id: number): number {
    const n = this.base.size;
    return id < n ? this.base.type(id) : this.extraTypes[id - n];
  }

  reset(): void {
    if (this.extraNames.length === 0) return;
    this.extra = undefined;
    this.extraNames.length = 0;
    this.extraTypes.length = 0;
  }
}

/** Up to this many names of its own, a request's overlay is scanned instead of hashed. */
export const OVERLAY_SCAN = 8;

/** Up to this many plain users, a bucket's exact-user lookup scans instead of bisecting. */
export const SMALL = 8;

const EMPTY_IDS: readonly number[] = Object.freeze([]);

/** An immutable tuple index (see the file comment). Tuple ids are rows of the columns. */
export class CompactTupleIndex {
  /** Bucket of `object#relation` through `offsets[bucket]..offsets[bucket + 1]` of `order`/`byUser`. */
  private readonly keyMap: Map<number, number> | undefined;
  private objectsByType: Map<number, number[]> | undefined;
  private byUserKey: Map<number, number[]> | undefined;

  constructor(
    /** Tuples kept (a repeated tuple counts once). */
    readonly size: number,
    readonly relCount: number,
    readonly tObj: Int32Array,
    readonly tRel: Int32Array,
    readonly tUser: Int32Array,
    readonly tURel: Int32Array,
    readonly tCond: Int32Array,
    readonly conds: readonly TupleCondition[],
    private readonly offsets: Int32Array,
    readonly order: Int32Array,
    readonly byUser: Int32Array,
    /** Dense layout: slot of each relation id (-1: no tuples), and the node count the offsets cover. */
    private readonly slotOf: Int32Array,
    private readonly slots: number,
    private readonly nodeCount: number,
    keyMap: Map<number, number> | undefined,
    /** Rows replaced by a later copy of the same tuple (invisible), if any. */
    private readonly dead: Uint8Array | undefined,
    private readonly small: number,
  ) {
    this.keyMap = keyMap;
  }

  /** The bucket of `node#rel`, or -1 when it has no tuples. */
  bucket(node: number, rel: number): number {
    if (this.keyMap !== undefined) return this.keyMap.get(node * this.relCount + rel) ?? -1;
    if (node >= this.nodeCount || rel < 0 || rel >= this.slotOf.length) return -1;
    const slot = this.slotOf[rel];
    if (slot < 0) return -1;
    const b = node * this.slots + slot;
    return this.offsets[b] === this.offsets[b + 1] ? -1 : b;
  }

  start(bucket: number): number {
    return this.offsets[bucket];
  }

  end(bucket: number): number {
    return this.offsets[bucket + 1];
  }

  /** Where the userset users of `bucket` start in `byUser` (they run to `end(bucket)`). */
  usersetStart(bucket: number): number {
    let lo = this.offsets[bucket];
    let hi = this.offsets[bucket + 1];
    const byUser = this.byUser;
    const uRel = this.tURel;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (uRel[byUser[mid]] === 0) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The row of `node#rel@userNode[#userRel]`, or -1. */
  find(node: number, rel: number, userNode: number, userRel: number): number {
    const b = this.bucket(node, rel);
    if (b < 0) return -1;
    const byUser = this.byUser;
    const tUser = this.tUser;
    const tURel = this.tURel;
    if (userRel !== 0) {
      for (let i = this.usersetStart(b), end = this.offsets[b + 1]; i < end; i++) {
        const t = byUser[i];
        if (tUser[t] === userNode && tURel[t] === userRel) return t;
      }
      return -1;
    }
    let lo = this.offsets[b];
    let hi = this.offsets[b + 1];
    if (hi - lo <= this.small) {
      for (let i = lo; i < hi; i++) {
        const t = byUser[i];
        if (tURel[t] !== 0) return -1;
        if (tUser[t] === userNode) return t;
      }
      return -1;
    }
    hi = this.usersetStart(b);
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const u = tUser[byUser[mid]];
      if (u === userNode) return byUser[mid];
      if (u < userNode) lo = mid + 1;
      else hi = mid;
    }
    return -1;
  }

  /** The condition of row `t`, if it has one. */
  condition(t: number): TupleCondition | undefined {
    const c = this.tCond[t];
    return c < 0 ? undefined : this.conds[c];
  }

  /** Object nodes of type `typeId` that have tuples, in order of first appearance. */
  objectsOfType(typeId: number, typeOfNode: (node: number) => number): readonly number[] {
    if (!this.objectsByType) {
      const byType = new Map<number, number[]>();
      const seen = new Set<number>();
      for (let t = 0; t < this.tObj.length; t++) {
        if (this.dead?.[t]) continue;
        const o = this.tObj[t];
        if (seen.has(o)) continue;
        seen.add(o);
        const ty = typeOfNode(o);
        const list = byType.get(ty);
        if (list) list.push(o);
        else byType.set(ty, [o]);
      }
      this.objectsByType = byType;
    }
    return this.objectsByType.get(typeId) ?? EMPTY_IDS;
  }

  /** Rows whose user is `userNode` (with relation `userRel`, 0 for a plain user), in insertion order. */
  withUser(userNode: number, userRel: number): readonly number[] {
    if (userNode < 0) return EMPTY_IDS;
    if (!this.byUserKey) {
      const map = new Map<number, number[]>();
      for (let t = 0; t < this.tObj.length; t++) {
        if (this.dead?.[t]) continue;
        const key = this.tUser[t] * this.relCount + this.tURel[t];
        const list = map.get(key);
        if (list) list.push(t);
        else map.set(key, [t]);
      }
      this.byUserKey = map;
    }
    return this.byUserKey.get(userNode * this.relCount + userRel) ?? EMPTY_IDS;
  }
}

/** A growable Int32Array column. */
class Column {
  data: Int32Array;
  constructor(capacity: number) {
    this.data = new Int32Array(capacity);
  }
  set(i: number, v: number): void {
    if (i === this.data.length) {
      const grown = new Int32Array(Math.max(16, i * 2));
      grown.set(this.data);
      this.data = grown;
    }
    this.data[i] = v;
  }
  trimmed(n: number): Int32Array {
    return n === this.data.length ? this.data : this.data.slice(0, n);
  }
}

/** The finished index and the rows that repeated an earlier tuple (each replaced the earlier row's condition). */
export interface BuiltIndex {
  readonly index: CompactTupleIndex;
  /** Insertion positions (0-based, in order of `add` calls) of tuples that repeated an earlier one. */
  readonly repeats: readonly number[];
}

/**
 * Collects tuples (`add`) and builds the index (`done`). `intern` numbers node
 * names; `dense` selects the stored layout (offsets by arithmetic over
 * `nodeCount()` nodes) over the Map of the contextual one. Relation names must
 * be the model's (tuples are validated before they are added).
 */
export class CompactIndexBuilder {
  private n = 0;
  private readonly obj = new Column(1024);
  private readonly rel = new Column(1024);
  private readonly user = new Column(1024);
  private readonly uRel = new Column(1024);
  private readonly cond = new Column(1024);
  private readonly conds: TupleCondition[] = [];

  constructor(
    private readonly model: ModelIds,
    private readonly intern: (name: string) => number,
    private readonly dense: { nodeCount: () => number } | undefined,
  ) {}

  get count(): number {
    return this.n;
  }

  /** Adds `object#relation@user` (a later copy of the same tuple replaces the condition of the first). */
  add(object: string, relation: string, user: string, condition?: TupleCondition): void {
    const relId = this.model.rel(relation);
    if (relId < 0) throw new Error(`relation '${relation}' is not in the model`);
    let userNode: number;
    let userRel = 0;
    if (isValidUserset(user)) {
      const [userObject, name] = splitObjectRelation(user);
      userRel = this.model.rel(name);
      if (userRel < 0) throw new Error(`relation '${name}' is not in the model`);
      userNode = this.intern(userObject);
    } else userNode = this.intern(user);
    const i = this.n++;
    this.obj.set(i, this.intern(object));
    this.rel.set(i, relId);
    this.user.set(i, userNode);
    this.uRel.set(i, userRel);
    if (condition) {
      this.cond.set(i, this.conds.length);
      this.conds.push(condition.context === undefined ? { name: condition.name } : { name: condition.name, context: condition.context });
    } else this.cond.set(i, -1);
  }

  /** Builds the index; the builder must not be used afterwards. `small`: see SMALL. */
  done(small = SMALL): BuiltIndex {
    const n = this.n;
    const relCount = this.model.relCount;
    const tObj = this.obj.trimmed(n);
    const tRel = this.rel.trimmed(n);
    const tUser = this.user.trimmed(n);
    const tURel = this.uRel.trimmed(n);
    const tCond = this.cond.trimmed(n);

    // Bucket of every row.
    const bucketOf = new Int32Array(n);
    const slotOf = new Int32Array(relCount).fill(-1);
    let slots = 0;
    let nodeCount = 0;
    let keyMap: Map<number, number> | undefined;
    let buckets: number;
    if (this.dense) {
      for (let t = 0; t < n; t++) if (slotOf[tRel[t]] < 0) slotOf[tRel[t]] = slots++;
      nodeCount = this.dense.nodeCount();
      for (let t = 0; t < n; t++) bucketOf[t] = tObj[t] * slots + slotOf[tRel[t]];
      buckets = nodeCount * slots;
    } else {
      keyMap = new Map();
      for (let t = 0; t < n; t++) {
        const key = tObj[t] * relCount + tRel[t];
        let b = keyMap.get(key);
        if (b === undefined) {
          b = keyMap.size;
          keyMap.set(key, b);
        }
        bucketOf[t] = b;
      }
      buckets = keyMap.size;
    }

    let dead: Uint8Array | undefined;
    let layout = csr(bucketOf, buckets, undefined, tUser, tURel);
    const repeats = findRepeats(layout.offsets, layout.byUser, buckets, tUser, tURel);
    if (repeats.length > 0) {
      dead = new Uint8Array(n);
      for (const [first, later] of repeats) {
        // OpenFGA keys a tuple without its condition: the later write's condition, the first row's position.
        tCond[first] = tCond[later];
        dead[later] = 1;
      }
      layout = csr(bucketOf, buckets, dead, tUser, tURel);
    }
    const index = new CompactTupleIndex(
      n - repeats.length,
      relCount,
      tObj,
      tRel,
      tUser,
      tURel,
      tCond,
      this.conds,
      layout.offsets,
      layout.order,
      layout.byUser,
      slotOf,
      slots,
      nodeCount,
      keyMap,
      dead,
      small,
    );
    return { index, repeats: repeats.map(([, later]) => later).sort((a, b) => a - b) };
  }
}

/** Counting sort of rows into buckets (insertion order), then each bucket's `byUser` order. */
function csr(
  bucketOf: Int32Array,
  buckets: number,
  dead: Uint8Array | undefined,
  tUser: Int32Array,
  tURel: Int32Array,
): { offsets: Int32Array; order: Int32Array; byUser: Int32Array } {
  const n = bucketOf.length;
  const offsets = new Int32Array(buckets + 1);
  for (let t = 0; t < n; t++) if (!dead?.[t]) offsets[bucketOf[t] + 1]++;
  for (let b = 0; b < buckets; b++) offsets[b + 1] += offsets[b];
  const kept = offsets[buckets];
  const order = new Int32Array(kept);
  const fill = offsets.slice(0, buckets);
  for (let t = 0; t < n; t++) if (!dead?.[t]) order[fill[bucketOf[t]]++] = t;
  const byUser = order.slice();
  // Plain users first, by node (rows of one user stay in insertion order); then usersets in insertion order.
  const compare = (a: number, b: number): number => {
    const ua = tURel[a] === 0 ? 0 : 1;
    const ub = tURel[b] === 0 ? 0 : 1;
    if (ua !== ub) return ua - ub;
    if (ua === 0 && tUser[a] !== tUser[b]) return tUser[a] - tUser[b];
    return a - b;
  };
  for (let b = 0; b < buckets; b++) {
    const lo = offsets[b];
    const hi = offsets[b + 1];
    const len = hi - lo;
    if (len < 2) continue;
    if (len <= 16) {
      for (let i = lo + 1; i < hi; i++) {
        const v = byUser[i];
        let j = i - 1;
        while (j >= lo && compare(byUser[j], v) > 0) {
          byUser[j + 1] = byUser[j];
          j--;
        }
        byUser[j + 1] = v;
      }
    } else byUser.subarray(lo, hi).sort(compare);
  }
  return { offsets, order, byUser };
}

/** Pairs [first row, later row] of the same user in the same bucket (later rows in insertion order). */
function findRepeats(offsets: Int32Array, byUser: Int32Array, buckets: number, tUser: Int32Array, tURel: Int32Array): [number, number][] {
  const out: [number, number][] = [];
  for (let b = 0; b < buckets; b++) {
    const lo = offsets[b];
    const hi = offsets[b + 1];
    if (hi - lo < 2) continue;
    let firstOfRun = byUser[lo];
    let i = lo + 1;
    // Plain users: equal nodes are adjacent, the first row first.
    for (; i < hi && tURel[byUser[i]] === 0; i++) {
      const t = byUser[i];
      if (tURel[firstOfRun] === 0 && tUser[t] === tUser[firstOfRun]) out.push([firstOfRun, t]);
      else firstOfRun = t;
    }
    if (tURel[byUser[lo]] !== 0) i = lo;
    // Usersets: insertion order; few per bucket as a rule.
    if (hi - i > 1) {
      const first = new Map<number, number>();
      for (let j = i; j < hi; j++) {
        const t = byUser[j];
        const key = tUser[t] * 65536 + tURel[t];
        const seen = first.get(key);
        if (seen === undefined) first.set(key, t);
        else out.push([seen, t]);
      }
    }
  }
  // A row repeated three times: every later row points at the first, and the last one's condition wins.
  out.sort((a, b) => a[1] - b[1]);
  return out;
}
