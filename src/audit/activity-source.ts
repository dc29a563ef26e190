/**
 * Where the console reads activity from, chosen once per config generation:
 * the decision log's file when this process is its only writer (file sink,
 * no cluster workers), else the per-user ring in the store, which the audit
 * step then fills. Without sign-in nobody can open the console, so nothing
 * reads the ring: it is not kept (no store write per request for nothing).
 */

import cluster from 'node:cluster';
import type { Config } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Store } from '../store/store.js';
import { createActivityRing, type ActivityRing, type ActivitySource } from './activity.js';
import { decisionLogReader } from './read-back.js';

export function activitySource(config: Config, store: Store, logger: Logger, signIn: boolean): { source?: ActivitySource; ring?: ActivityRing } {
  if (!signIn) return {};
  const d = config.audit.decisions;
  if (d && d.sink === 'file' && d.path && !cluster.isWorker) return { source: decisionLogReader(d.path, d.keep) };
  const ring = createActivityRing(store, logger, { intervalMs: config.console.activity_interval });
  return { source: ring, ring };
}
