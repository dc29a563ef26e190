/**
 * The embedded authorizer's remembered cheap answers (`checkIfKnown`): at most
 * `capacity` answers of checks without context or contextual tuples, keyed by
 * their three strings, forgotten all at once when full.
 *
 * An open-addressing table over fixed arrays instead of a Map: a Map that gets
 * one new key per check and is cleared every few hundred leaves each replaced
 * hash table pointing at the next, so once one of them is in the old
 * generation every later table, and every key in it, is promoted (~150 bytes
 * per one-off check: G2e1m, a different document per request; see
 * test/authz/known-answers-promotion.test.ts). Here the arrays are allocated
 * once and a clear writes empty strings over the slots, so nothing a check
 * stores outlives the next clear. Keys are compared field by field (no joined
 * string to build and hash, and no separator that a field could smuggle).
 */

/** FNV-1a step over the UTF-16 code units of `s`, from `h`. */
function mix(h: number, s: string): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h;
}

export class KnownAnswers {
  private readonly users: string[];
  private readonly relations: string[];
  private readonly objects: string[];
  /** 0 empty, 1 denied, 2 allowed. */
  private readonly answers: Uint8Array;
  private readonly mask: number;
  private count = 0;
  // The slot of the last key looked up while its fields are the same strings (checkIfKnown, then
  // checkIfCheap of one check; the same check on every request): found or placed without hashing again.
  private lastUser = '';
  private lastRelation = '';
  private lastObject = '';
  private lastSlot = -1;

  constructor(readonly capacity: number) {
    // At most half full, so probe runs stay short.
    let size = 8;
    while (size < capacity * 2) size *= 2;
    this.mask = size - 1;
    this.users = new Array<string>(size).fill('');
    this.relations = new Array<string>(size).fill('');
    this.objects = new Array<string>(size).fill('');
    this.answers = new Uint8Array(size);
  }

  get size(): number {
    return this.count;
  }

  /** The slot holding this key, or the empty slot where it would go. */
  private slot(user: string, relation: string, object: string): number {
    if (this.lastSlot >= 0 && object === this.lastObject && user === this.lastUser && relation === this.lastRelation) {
      // Still this key's slot unless a clear or another key's store has changed it since.
      const s = this.lastSlot;
      if (this.answers[s] === 0 || (this.objects[s] === object && this.users[s] === user && this.relations[s] === relation)) return s;
    }
    const mask = this.mask;
    let j = mix(mix(mix(0x811c9dc5, object), user), relation) & mask;
    for (; ; j = (j + 1) & mask) {
      if (this.answers[j] === 0) break;
      if (this.objects[j] === object && this.users[j] === user && this.relations[j] === relation) break;
    }
    this.lastUser = user;
    this.lastRelation = relation;
    this.lastObject = object;
    this.lastSlot = j;
    return j;
  }

  /** The remembered answer, or undefined. */
  get(user: string, relation: string, object: string): boolean | undefined {
    const a = this.answers[this.slot(user, relation, object)];
    return a === 0 ? undefined : a === 2;
  }

  /** Remembers an answer; when `capacity` answers are kept already, forgets them all first. */
  set(user: string, relation: string, object: string, answer: boolean): void {
    let j = this.slot(user, relation, object);
    if (this.answers[j] === 0) {
      if (this.count >= this.capacity) {
        this.clear();
        j = this.slot(user, relation, object);
      }
      this.count++;
      this.users[j] = user;
      this.relations[j] = relation;
      this.objects[j] = object;
    }
    this.answers[j] = answer ? 2 : 1;
  }

  /** Forgets every answer (and lets go of every key string). */
  clear(): void {
    if (this.count === 0) return;
    this.users.fill('');
    this.relations.fill('');
    this.objects.fill('');
    this.answers.fill(0);
    this.count = 0;
    this.lastSlot = -1;
    this.lastUser = this.lastRelation = this.lastObject = '';
  }
}
