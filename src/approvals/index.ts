/** Public surface of the approvals feature. */
export { createApprovalsFeature } from './feature.js';
export { compileApprovalRules, checkApprovalRules, approvalRuleIssues, createRuleCompiler, approvalRuleSites, type CelVars, type RuleCompiler } from './rules.js';
export { signWebhook, verifyWebhookSignature, type ApprovalNotice } from './notifiers.js';
export { createApprovalService, type ApprovalService } from './service.js';
