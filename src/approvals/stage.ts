/**
 * The `approve` stage: holds a request a rule selects until a human decides
 * (see service.ts), with the `/.warden/approvals…` endpoints, the admin list,
 * and a lifecycle. It receives the authorize stage to re-check on release.
 */

import type { ServerResponse } from 'node:http';
import type { ApprovalRuleConfig } from '../config/schema.js';
import type { AuthorizeStage } from '../authz/stage.js';
import type { Runtime } from '../core/runtime.js';
import type { ShadowCapableStage } from '../pipeline/shadow.js';
import { createCibaClient } from './ciba.js';
import { userPrefixOf } from '../identity/claims.js';
import { createDecisionBus } from './decision-bus.js';
import { createApprovalAdmin, createApprovalRoutes } from './http.js';
import { createNotifiers } from './notifiers.js';
import { createApprovalRepo } from './records.js';
import { compileApprovalRules } from './rules.js';
import { createApprovalService, type ApprovalService } from './service.js';
import { createPushChannel, type PushChannel } from './push/channel.js';
import { checkHeaderReads, headerReadsOf, type HeaderReads } from './request-capture.js';

/** Build the stage (and its endpoints) for one config generation. */
/** The approve stage; `service` is what the console reads and decides with. */
/** `push`: the Web Push channel when `approvals.push` is configured and people can sign in (the console subscribes browsers to it). */
export type ApprovalsStage = ShadowCapableStage & { readonly service: ApprovalService; readonly push: PushChannel | null };

export async function createApprovalsStage(rt: Runtime, authorize: Pick<AuthorizeStage, 'reauthorize'>): Promise<ApprovalsStage> {
  const cfg = rt.config.approvals;
  const compiler = compileApprovalRules(rt.config.routes);
  const repo = createApprovalRepo(rt.store, { ttlMs: cfg.ttl });
  const bus = await createDecisionBus(rt.store, rt.logger);
  const notifiers = createNotifiers(cfg.notify, rt.logger);
  const ciba = cfg.ciba ? createCibaClient({ ...cfg.ciba, user_prefix: userPrefixOf(rt.config.identity.issuers, cfg.ciba.issuer) }, rt.logger) : undefined;
  // The push channel asks the service who may decide; the service is built with its channels, hence the late binding.
  let service: ApprovalService | undefined;
  const push = createPushChannel(rt, (rec, user) => (service ? service.mayDecide(rec, user) : Promise.resolve(false)));
  if (push) notifiers.push(push.notifier);
  service = createApprovalService({ rt, authorize, repo, bus, compiler, notifiers, ciba });
  const headerReads = new WeakMap<ApprovalRuleConfig, HeaderReads>();
  const headerReadsOfRule = (rule: ApprovalRuleConfig): HeaderReads => {
    let reads = headerReads.get(rule);
    if (reads === undefined) headerReads.set(rule, (reads = headerReadsOf(rule.when === undefined ? [] : [rule.when])));
    return reads;
  };
  return {
    name: 'approve',
    effects: true,
    run(state, req, res) {
      // Route rules and MCP tool rules both land in the policy; most requests have none.
      if (state.policy.approval.length === 0) return;
      // A header a rule reads must be the value the upstream acts on: one line, one spelling.
      if (req) for (const { rule } of state.policy.approval) checkHeaderReads(req.rawHeaders, headerReadsOfRule(rule));
      if (res) state.signal = disconnectSignal(res);
      return service.stage(state);
    },
    shadowRun(state) {
      if (state.policy.approval.length === 0) return;
      return service.wouldHold(state).then((hold) => {
        if (hold) state.shadow ??= { outcome: 'would_hold' };
      });
    },
    routes: createApprovalRoutes(service, rt),
    admin: createApprovalAdmin(service, rt),
    async collect() {
      rt.metrics.gauge('warden_approvals_pending', await repo.countPending(1_000_000));
    },
    close: () => service.close(),
    service,
    push,
  };
}

/** A signal aborted when the client goes away before the response is complete. */
function disconnectSignal(res: ServerResponse): AbortSignal {
  const controller = new AbortController();
  res.once('close', () => {
    if (!res.writableFinished) controller.abort();
  });
  return controller.signal;
}
