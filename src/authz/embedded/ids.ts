/**
 * OpenFGA's string forms of objects, users and usersets (`type:id`,
 * `type:*`, `type:id#relation`), with the exact acceptance rules of the server
 * (`pkg/tuple`): control characters, spaces and misplaced `:`/`#` are refused.
 */

/** Go's unicode.IsControl: C0, DEL and C1. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/** True when `s` contains a control character (OpenFGA's "forbidden characters"). */
export function hasControlChars(s: string): boolean {
  return CONTROL.test(s);
}

function isControl(code: number): boolean {
  return code <= 0x1f || (code >= 0x7f && code <= 0x9f);
}

/** `type:id` with a non-empty id and no `#` or space. */
export function isValidObject(s: string): boolean {
  let state = 0;
  let idLen = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isControl(c)) return false;
    if (c === 0x23 /* # */ || c === 0x20) return false;
    if (c === 0x3a /* : */) {
      if (state > 0 || i === 0) return false;
      state = 1;
    } else idLen += state;
  }
  return idLen > 0;
}

/** A relation name: non-empty, without `#`, `:`, `@` or space. */
export function isValidRelation(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isControl(c) || c === 0x23 || c === 0x3a || c === 0x40 || c === 0x20) return false;
  }
  return true;
}

function isValidUserId(s: string): boolean {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isControl(c) || c === 0x23 || c === 0x3a || c === 0x20) return false;
  }
  return true;
}

/** `type:id#relation`. */
export function isValidUserset(s: string): boolean {
  let state = 0;
  let idLen = 0;
  let relLen = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (isControl(c)) return false;
    if (c === 0x3a) {
      if (state > 0 || i === 0) return false;
      state = 1;
    } else if (c === 0x23) {
      if (state > 1 || idLen === 0) return false;
      state = 2;
    } else if (c === 0x20) return false;
    else if (c === 0x2a /* * */) {
      if (state > 0) return false;
    } else if (state === 1) idLen++;
    else if (state === 2) relLen++;
  }
  return relLen > 0;
}

/** Any user form the server's first syntax check accepts. */
export function isValidUser(s: string): boolean {
  return s === '*' || isValidUserId(s) || isValidObject(s) || isValidUserset(s);
}

/** Splits `type:id` at the first `:` (no `:` → empty type). */
export function splitObject(s: string): [type: string, id: string] {
  const i = s.indexOf(':');
  return i === -1 ? ['', s] : [s.slice(0, i), s.slice(i + 1)];
}

/** The type of `type:id` (empty when there is no `:`). */
export function typeOf(s: string): string {
  const i = s.indexOf(':');
  return i === -1 ? '' : s.slice(0, i);
}

/** Splits `object#relation` at the last `#` (a trailing `#` counts as no relation). */
export function splitObjectRelation(s: string): [object: string, relation: string] {
  const i = s.lastIndexOf('#');
  if (i === -1) return [s, ''];
  if (i === s.length - 1) return [s.slice(0, i), ''];
  return [s.slice(0, i), s.slice(i + 1)];
}

/**
 * V8 makes a substring of at least this many characters a view into its
 * parent (a "sliced string") instead of a copy, and the view keeps the whole
 * parent alive.
 */
const SLICE_MIN = 13;

/**
 * `s` as a string of its own, for strings kept as long as the engine. A name
 * read from a policy file is a substring of the file's text: kept as it is,
 * one such name kept the whole file (65 MB for a million tuples) in memory for
 * the life of the process.
 */
export function ownCopy(s: string): string {
  // Shorter substrings are copies already. The concatenation is flattened into a new string, and the slice of that keeps only it.
  return s.length < SLICE_MIN ? s : (' ' + s).slice(1);
}

/** `type:*`. */
export function isTypedWildcard(s: string): boolean {
  const [type, id] = splitObject(s);
  return type !== '' && id === '*';
}

/** The parts of a user string, computed once per request. */
export interface UserParts {
  readonly user: string;
  readonly type: string;
  readonly id: string;
  /** Relation of a userset user (`group:x#member` → `member`), else empty. */
  readonly relation: string;
  /** `group:x` for `group:x#member`, else the user itself. */
  readonly object: string;
  readonly isUserset: boolean;
  readonly isWildcard: boolean;
}

/** Parses a user string into its parts (no validation). */
export function userParts(user: string): UserParts {
  const [object, relation] = splitObjectRelation(user);
  const [type, id] = splitObject(object);
  return { user, type, id, relation, object, isUserset: isValidUserset(user), isWildcard: relation === '' && type !== '' && id === '*' };
}

// The API's own field patterns (protoc-gen-validate), checked before anything else.
// Go's RE2 `\s` is ASCII whitespace only.
const USER_PATTERN = /^[^\t\n\f\r ]{2,512}$/u;
const OBJECT_PATTERN = /^[^\t\n\f\r ]{2,256}$/u;
const RELATION_PATTERN = /^[^:#@\t\n\f\r ]{1,50}$/u;
const TYPE_PATTERN = /^[^:#@\t\n\f\r ]{1,254}$/u;

/** The API-level shape checks of a check request's user/relation/object; returns a reason or undefined. */
export function apiTupleKeyProblem(user: string, relation: string, object: string): string | undefined {
  return apiUserProblem(user) ?? apiRelationProblem(relation) ?? apiObjectProblem(object);
}

/** The API-level shape check of a check request's user (the first of `apiTupleKeyProblem`'s). */
export function apiUserProblem(user: string): string | undefined {
  return typeof user !== 'string' || !USER_PATTERN.test(user) ? `invalid user ${JSON.stringify(user)}` : undefined;
}

/** The API-level shape check of a check request's relation (the second of `apiTupleKeyProblem`'s). */
export function apiRelationProblem(relation: string): string | undefined {
  return typeof relation !== 'string' || !RELATION_PATTERN.test(relation) ? `invalid relation ${JSON.stringify(relation)}` : undefined;
}

/** The API-level shape check of a check request's object (the last of `apiTupleKeyProblem`'s). */
export function apiObjectProblem(object: string): string | undefined {
  return typeof object !== 'string' || !OBJECT_PATTERN.test(object) ? `invalid object ${JSON.stringify(object)}` : undefined;
}

/** The API-level shape checks of a list-objects request. */
export function apiListObjectsProblem(user: string, relation: string, type: string): string | undefined {
  if (typeof user !== 'string' || !USER_PATTERN.test(user)) return `invalid user ${JSON.stringify(user)}`;
  if (typeof relation !== 'string' || !RELATION_PATTERN.test(relation)) return `invalid relation ${JSON.stringify(relation)}`;
  if (typeof type !== 'string' || !TYPE_PATTERN.test(type)) return `invalid type ${JSON.stringify(type)}`;
  return undefined;
}

const CONDITION_NAME_PATTERN = /^[^\t\n\f\r ]{2,256}$/u;

/** The API's shape check of a written (or contextual) tuple; returns a reason or undefined. */
export function apiWriteTupleProblem(user: string, relation: string, object: string, conditionName?: string): string | undefined {
  if (typeof user !== 'string' || user.length === 0 || Buffer.byteLength(user) > 512) return `invalid user ${JSON.stringify(user)}`;
  if (typeof relation !== 'string' || !RELATION_PATTERN.test(relation)) return `invalid relation ${JSON.stringify(relation)}`;
  if (typeof object !== 'string' || !OBJECT_PATTERN.test(object)) return `invalid object ${JSON.stringify(object)}`;
  // The API requires tuple condition names of at least 2 characters, even where the model allows 1.
  if (conditionName !== undefined && !CONDITION_NAME_PATTERN.test(conditionName)) return `invalid condition name ${JSON.stringify(conditionName)}`;
  return undefined;
}
