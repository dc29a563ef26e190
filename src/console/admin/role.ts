/**
 * Who is the platform team in the console (`console.admin`): a claim of the
 * signed-in person's session, or an OpenFGA relation checked fresh with the
 * configured engine. Anything that cannot be answered means "not an admin".
 */

import type { Authorizer } from '../../authz/authorizer.js';
import type { ConsoleAdminConfig } from '../../config/schema.js';
import type { SignedInPerson } from '../../http/session.js';
import type { Logger } from '../../observability/logger.js';

/** The value at `path` (dot-separated) of `claims`, or undefined. */
function claimAt(claims: Readonly<Record<string, unknown>>, path: string): unknown {
  let at: unknown = claims;
  for (const part of path.split('.')) {
    if (!at || typeof at !== 'object' || Array.isArray(at) || !Object.hasOwn(at, part)) return undefined;
    at = (at as Record<string, unknown>)[part];
  }
  return at;
}

/** Does the claim say admin: equal to `value`, or a list holding it (exact strings only, no substring or case games)? */
export function claimGrantsAdmin(claims: Readonly<Record<string, unknown>>, claim: string, value: string): boolean {
  const v = claimAt(claims, claim);
  if (typeof v === 'string') return v === value;
  return Array.isArray(v) && v.some((x) => x === value);
}

export type AdminCheck = (person: SignedInPerson) => Promise<boolean>;

/** The admin check of this config generation; without `console.admin` nobody is an admin. */
export function createAdminCheck(config: ConsoleAdminConfig | undefined, authorizer: Authorizer, logger: Logger): AdminCheck {
  if (!config) return () => Promise.resolve(false);
  if ('claim' in config) return (person) => Promise.resolve(claimGrantsAdmin(person.claims, config.claim, config.value));
  return async (person) => {
    // A user id that would change the meaning of an OpenFGA id never builds a check.
    if (!person.sub || /[#:\s\p{Cc}]/u.test(person.sub)) return false;
    try {
      return await authorizer.check({ user: `user:${person.sub}`, relation: config.relation, object: config.object }, { consistency: 'higher_consistency' });
    } catch (err) {
      // Fail closed: an engine that cannot answer makes nobody an admin.
      logger.warn({ err, signed_in: person.sub }, 'console: admin check failed; treated as not an admin');
      return false;
    }
  };
}
