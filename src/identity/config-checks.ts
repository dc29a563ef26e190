/** Config checks of `identity:` (sign-in has its own, in login/config-checks.ts). */

import type { ConfigIssue } from '../config/issues.js';
import type { Config } from '../config/schema.js';

/** Every problem of `identity:` given the routes that need it. */
export function identityConfigIssues(config: Config, env: NodeJS.ProcessEnv): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (config.identity.dev_issuer && env.NODE_ENV === 'production') {
    issues.push({ path: 'identity.dev_issuer', message: 'the dev issuer must not be enabled when NODE_ENV=production' });
  }
  const needsIdentity = config.routes.some((r) => !r.public);
  if (needsIdentity && config.identity.issuers.length === 0 && !config.identity.dev_issuer) {
    issues.push({ path: 'identity', message: 'no issuers configured and dev_issuer is off: no request to a non-public route could authenticate' });
  }
  return issues;
}

/**
 * Valid, but probably not meant: two or more issuers whose users share one
 * namespace without saying so. `sub` "alice" of one and of the other are then
 * one user for authorization, the vault and approvals; `user_prefix` keeps
 * them apart, and `""` on every issuer says they share a directory on purpose.
 */
export function issuerNamespaceWarnings(config: Config): ConfigIssue[] {
  const issuers = config.identity.issuers;
  if (issuers.length < 2 || issuers.every((i) => i.user_prefix !== undefined)) return [];
  const unset = issuers.filter((i) => i.user_prefix === undefined).map((i) => i.issuer);
  return [
    {
      path: 'identity.issuers',
      message:
        `${issuers.length} issuers name users in one namespace (user_prefix unset on ${unset.join(', ')}): the same user id from two of them is one user for authorization, the vault and approvals. ` +
        'Set user_prefix on each issuer ("" where they share one directory on purpose)',
    },
  ];
}
