/**
 * The console brings endpoints only (`/.warden/console…`); it runs on no
 * request of an agent. It receives the approvals service and the vault
 * services of the same config generation (dependencies are passed).
 */

import type { ApprovalService } from '../approvals/service.js';
import type { Runtime } from '../core/runtime.js';
import type { Stage } from '../pipeline/stage.js';
import type { VaultServices } from '../vault/services.js';
import type { ActivitySource } from '../audit/activity.js';
import type { LimitsService } from '../limits/service.js';
import { createConsoleRoutes } from './routes.js';
import type { PushChannel } from '../approvals/push/channel.js';

export function createConsoleStage(
  rt: Runtime,
  deps: {
    approvals: ApprovalService;
    vault: VaultServices | null;
    limits: LimitsService | null;
    activity: ActivitySource | null;
    push?: PushChannel | null;
  },
): Stage {
  return {
    name: 'console',
    appliesTo: () => false,
    run() {},
    routes: createConsoleRoutes({ rt, ...deps }),
  };
}
