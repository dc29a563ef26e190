/**
 * OpenFGA's request and tuple validation (`internal/validation`), returning
 * reasons instead of throwing so callers choose the error code the server
 * would use in that place (a bad contextual tuple is 2027 in a check, an
 * unknown type is 2021 in list objects, ...).
 */

import type { TupleKey } from '../authorizer.js';
import { contextProblem } from './conditions.js';
import {
  hasControlChars,
  isTypedWildcard,
  isValidObject,
  isValidRelation,
  isValidUser,
  isValidUserset,
  splitObject,
  splitObjectRelation,
  typeOf,
} from './ids.js';
import type { TypeSystem } from './typesystem.js';

/** Why a value is invalid, and which of OpenFGA's error families it belongs to. */
export interface Problem {
  readonly kind: 'invalid' | 'type_not_found' | 'relation_not_found' | 'invalid_condition';
  readonly message: string;
}

const invalid = (message: string): Problem => ({ kind: 'invalid', message });

/** ValidateUser: well-formed, and its type (and userset relation) defined by the model. */
export function userProblem(ts: TypeSystem, user: string): Problem | undefined {
  if (!isValidUser(user)) return invalid(`the 'user' field is malformed`);
  const isObject = isValidObject(user);
  const isUserset = isValidUserset(user);
  if (!isObject && !isUserset) {
    return invalid(`the 'user' field must be an object (e.g. document:1) or an 'object#relation' or a typed wildcard (e.g. group:*)`);
  }
  const [object, relation] = splitObjectRelation(user);
  const type = typeOf(object);
  if (!ts.types.has(type)) return { kind: 'type_not_found', message: `type '${type}' not found` };
  if (isUserset && !ts.relation(type, relation)) return { kind: 'relation_not_found', message: `relation '${type}#${relation}' not found` };
  return undefined;
}

/** ValidateObject. */
export function objectProblem(ts: TypeSystem, object: string): Problem | undefined {
  if (!isValidObject(object)) return invalid(`invalid 'object' field format`);
  const [type, id] = splitObject(object);
  if (id === '*') return invalid(`the 'object' field cannot reference a typed wildcard`);
  if (!ts.types.has(type)) return { kind: 'type_not_found', message: `type '${type}' not found` };
  return undefined;
}

/** ValidateRelation. */
export function relationProblem(ts: TypeSystem, object: string, relation: string): Problem | undefined {
  if (!isValidRelation(relation)) return invalid(`the 'relation' field is malformed`);
  return relationOfTypeProblem(ts, object, relation);
}

/** The rest of ValidateRelation for a well-formed relation name: the object's type defines it. */
export function relationOfTypeProblem(ts: TypeSystem, object: string, relation: string): Problem | undefined {
  const type = typeOf(object);
  if (!ts.types.has(type)) return { kind: 'type_not_found', message: `type '${type}' not found` };
  if (!ts.relation(type, relation)) return { kind: 'relation_not_found', message: `relation '${type}#${relation}' not found` };
  return undefined;
}

/** ValidateUserObjectRelation: the loose check of a request's own tuple key. */
export function userObjectRelationProblem(ts: TypeSystem, user: string, relation: string, object: string): Problem | undefined {
  return userProblem(ts, user) ?? objectProblem(ts, object) ?? relationProblem(ts, object, relation);
}

/**
 * ValidateTupleForRead: tupleset rules, type restrictions and the condition.
 * Tuples that fail it are invisible to evaluation (OpenFGA filters them out).
 */
export function tupleReadProblem(ts: TypeSystem, t: TupleKey): Problem | undefined {
  const objectType = typeOf(t.object);
  const def = ts.relation(objectType, t.relation);
  if (!def) return { kind: 'relation_not_found', message: `relation '${objectType}#${t.relation}' not found` };
  const user = t.user;
  if (def.isTupleset) {
    if (def.rewrite.kind !== 'this') return invalid(`unexpected rewrite encountered with tupleset relation '${objectType}#${t.relation}'`);
    if (user === '*' || isTypedWildcard(user)) return invalid(`unexpected wildcard relationship with tupleset relation '${objectType}#${t.relation}'`);
    if (!isValidObject(user)) return invalid(`unexpected user '${user}' with tupleset relation '${objectType}#${t.relation}'`);
  }
  const [userObject, userRelation] = splitObjectRelation(user);
  const userType = typeOf(userObject);
  // Type restrictions (validateTypeRestrictions).
  if (isValidUserset(user)) {
    if (!def.directTypes.some((r) => r.type === userType && (r.relation ?? '') === userRelation)) {
      return invalid(`'${userType}#${userRelation}' is not an allowed type restriction for '${objectType}#${t.relation}'`);
    }
  } else if (isTypedWildcard(user)) {
    if (!def.directTypes.some((r) => r.type === userType && r.wildcard !== undefined)) {
      return invalid(`the typed wildcard '${user}' is not an allowed type restriction for '${objectType}#${t.relation}'`);
    }
  } else if (!def.directTypes.some((r) => r.type === userType && r.wildcard === undefined && !r.relation)) {
    return invalid(`type '${userType}' is not an allowed type restriction for '${objectType}#${t.relation}'`);
  }
  // Condition (validateCondition).
  const cond = t.condition;
  if (!cond || !cond.name) {
    const ok = def.directTypes.some((r) => {
      if (r.condition) return false;
      if (r.type !== userType) return false;
      if (r.relation || r.wildcard !== undefined) {
        if (r.relation && r.relation !== userRelation) return false;
        if (r.wildcard !== undefined && !isTypedWildcard(user)) return false;
      } else if (isTypedWildcard(user)) return false;
      return true;
    });
    return ok ? undefined : { kind: 'invalid_condition', message: 'condition is missing' };
  }
  if (hasControlChars(cond.name)) return { kind: 'invalid_condition', message: 'condition name contains forbidden characters' };
  const compiled = ts.conditions.get(cond.name);
  if (!compiled) return { kind: 'invalid_condition', message: 'undefined condition' };
  if (!def.directTypes.some((r) => r.type === userType && r.condition === cond.name)) {
    return { kind: 'invalid_condition', message: 'invalid condition for type restriction' };
  }
  const problem = compiled.tupleContextProblem(cond.context);
  if (problem) return { kind: 'invalid_condition', message: problem };
  return undefined;
}

/** ValidateTupleForWrite: what a write (or a contextual tuple) must pass. */
export function tupleWriteProblem(ts: TypeSystem, t: TupleKey): Problem | undefined {
  const loose = userObjectRelationProblem(ts, t.user, t.relation, t.object);
  if (loose) return { kind: 'invalid', message: loose.message };
  return tupleReadProblem(ts, t);
}

/** The request context must be a JSON object a protobuf Struct can carry. */
export function requestContextProblem(context: unknown): string | undefined {
  if (context === undefined || context === null) return undefined;
  if (typeof context !== 'object' || Array.isArray(context)) return 'context must be an object';
  return contextProblem(context);
}

/** A tuple rendered the way OpenFGA prints it in messages. */
export function tupleString(t: TupleKey): string {
  return `${t.object}#${t.relation}@${t.user}`;
}
