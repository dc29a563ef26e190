/** Config checks of approvals: `approvals:` itself and every approval rule of routes and MCP tools. */

import type { ConfigIssue } from '../config/issues.js';
import type { Config } from '../config/schema.js';
import { compileTemplate } from '../templates/template.js';
import { approvalRuleIssues, approvalRuleSites } from './rules.js';
import { vapidKeyIssue } from './push/vapid.js';

/** Every problem of approvals (no I/O): channels, messages, and `when` expressions (compiled at load). */
export function approvalsConfigIssues(config: Config, env: NodeJS.ProcessEnv): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  config.approvals.notify.forEach((n, i) => {
    if ('console' in n && env.NODE_ENV === 'production') {
      issues.push({ path: `approvals.notify[${i}].console`, message: 'the console channel prints approval links and is for development only' });
    }
  });
  const push = config.approvals.push;
  if (push) {
    if (push.allow_loopback && env.NODE_ENV === 'production') {
      issues.push({ path: 'approvals.push.allow_loopback', message: 'loopback push endpoints are for tests only' });
    }
    const keyIssue = vapidKeyIssue(push.vapid_public_key, push.vapid_private_key);
    if (keyIssue) issues.push({ path: 'approvals.push.vapid_private_key', message: keyIssue });
  }
  // Messages compile with the template engine's own wording; the rules' check words unknown variables its way.
  for (const { source, rule } of approvalRuleSites(config.routes)) {
    if (!rule.message) continue;
    try {
      compileTemplate(rule.message);
    } catch (err) {
      issues.push({ path: `${source}.message`, message: (err as Error).message });
    }
  }
  for (const issue of approvalRuleIssues(config.routes)) if (!issue.path.endsWith('.message')) issues.push(issue);
  return issues;
}
