/**
 * The approvals feature as the gateway plugs it in: the `approve` stage, the
 * `/.warden/approvals…` endpoints, the admin list, and a lifecycle.
 */

import type { FeatureFactory } from '../pipeline/feature.js';
import { createCibaClient } from './ciba.js';
import { createDecisionBus } from './decision-bus.js';
import { createApprovalAdmin, createApprovalRoutes } from './http.js';
import { createNotifiers } from './notifiers.js';
import { createApprovalRepo } from './records.js';
import { compileApprovalRules } from './rules.js';
import { createApprovalService } from './service.js';

/** Build the approvals feature for one config generation. */
export const createApprovalsFeature: FeatureFactory = async (rt, hooks) => {
  const cfg = rt.config.approvals;
  const compiler = compileApprovalRules(rt.config.routes);
  const repo = createApprovalRepo(rt.store, { ttlMs: cfg.ttl });
  const bus = await createDecisionBus(rt.store, rt.logger);
  const notifiers = createNotifiers(cfg.notify, rt.logger);
  const ciba = cfg.ciba ? createCibaClient(cfg.ciba, rt.logger) : undefined;
  const service = createApprovalService({ rt, hooks, repo, bus, compiler, notifiers, ciba });
  return {
    name: 'approvals',
    stage: (state) => service.stage(state),
    routes: createApprovalRoutes(service, rt),
    admin: createApprovalAdmin(service, rt),
    close: () => service.close(),
  };
};
