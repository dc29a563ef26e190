/**
 * The long-lived dependencies one Warden instance is built from. Created once
 * per config generation by `gateway.ts`; stages and endpoints receive it.
 */

import type { Config } from '../config/schema.js';
import type { Store } from '../store/store.js';
import type { Authenticator } from './principal.js';
import type { Authorizer } from '../authz/authorizer.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { Sessions } from '../http/session.js';

/** Facts about this process that outlive config generations (shown by the admin console's health view). */
export interface InstanceInfo {
  /** Warden's package version. */
  readonly version: string;
  /** When this process's gateway started (ms since epoch). */
  readonly startedAt: number;
  /** The last configuration load: the first one at start, then each reload (SIGHUP, watch), with its outcome. */
  lastLoad(): { at: number; ok: boolean; reason?: string; kind: 'start' | 'reload' };
}

export interface Runtime {
  readonly config: Config;
  readonly store: Store;
  readonly authenticator: Authenticator;
  readonly authorizer: Authorizer;
  /**
   * The authorizer of the configuration generation serving now (the gateway's;
   * absent where no gateway runs). A release re-checks with it: a request held
   * across a reload meets the tuples and model in force when it is released,
   * not those of the generation it arrived in.
   */
  readonly currentAuthorizer?: () => Authorizer;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Base URL for links Warden hands out (server.public_url or derived from listen). */
  readonly publicUrl: string;
  /** Directory for local state (dev issuer key, ...): WARDEN_DATA_DIR or `.warden/`. */
  readonly dataDir: string;
  /** Who is signed in to a browser (identity.login or the dev login); `mode` null when nobody can sign in. */
  readonly sessions: Sessions;
  /** Process facts (version, uptime, last reload); absent where no gateway runs (tests, explain). */
  readonly instance?: InstanceInfo;
}
