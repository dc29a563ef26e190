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
