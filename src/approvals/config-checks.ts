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
    if ('email' in n) issues.push(...recipientIssues(`approvals.notify[${i}].email.to`, n.email.to, 'the review link'));
  });
  const ciba = config.approvals.ciba;
  if (ciba) issues.push(...recipientIssues('approvals.ciba.login_hint', ciba.login_hint, 'the approval request'));
  if (env.NODE_ENV === 'production' && config.approvals.review_auth === undefined && !config.identity.login && approvalsCanHappen(config)) {
    issues.push({
      path: 'approvals.review_auth',
      message:
        'without identity.login the review link alone decides, and a link is not an identity: set identity.login so approvers sign in, or review_auth: link to accept link-only review',
    });
  }
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

/** Template roots that name the user from their verified token: the user id and the issuer's claims. */
const IDENTITY_ROOTS = new Set(['user', 'claims']);

/**
 * Who is asked to approve must come from the user's identity, never from what
 * the agent sent: `{body.approver}`, `{query.x}`, `{path.x}`, `{args.x}` (and
 * `{agent}`, `{tool}`, `{request.*}`) would let the agent have `what` sent to
 * an address it chose and approve its own request. A fixed address is fine.
 */
function recipientIssues(path: string, source: string, what: string): ConfigIssue[] {
  let refs: string[][];
  try {
    refs = compileTemplate(source).parts.flatMap((p) => ('ref' in p ? [[...p.ref]] : []));
  } catch (err) {
    return [{ path, message: (err as Error).message }];
  }
  const chosen = refs.filter((ref) => !IDENTITY_ROOTS.has(ref[0]));
  if (chosen.length === 0) return [];
  const names = [...new Set(chosen.map((ref) => `{${ref.join('.')}}`))];
  return [
    {
      path,
      message: `${names.join(', ')} ${names.length > 1 ? 'are' : 'is'} chosen by the agent, which could have ${what} sent to itself: name the approver from the user's identity ({user}, {claims.email}) or write a fixed address`,
    },
  ];
}

/** Whether any request can be held for approval: an approval rule, or a budget that asks when it would be passed. */
function approvalsCanHappen(config: Config): boolean {
  if (approvalRuleSites(config.routes).length > 0) return true;
  return config.routes.some(
    (route) => route.budget?.over === 'approve' || Object.values(route.mcp?.tools ?? {}).some((tool) => tool.budget?.over === 'approve'),
  );
}
