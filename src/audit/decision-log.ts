/**
 * The decision log (`audit.decisions`): one hash-chained record per decision,
 * batched every `write_interval`, with a signed checkpoint every N records or T
 * seconds. Built once per config generation; each generation starts its own
 * chain instance on its destination's writer (writer.ts), linked to the chain
 * before it.
 */

import { generateKeyPairSync, createPrivateKey } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config, DecisionLogConfig } from '../config/schema.js';
import { loadKeyFile } from '../core/key-file.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RequestState } from '../pipeline/context.js';
import type { WardenError } from '../core/errors.js';
import { jwkThumbprint, parseAssertionKey } from '../identity/assertion/keys.js';
import type { CheckpointKey } from './chain.js';
import type { DecisionRecord } from './record.js';
import { createRecordSerializer } from './record-json.js';
import { compileRouteInputs } from './inputs.js';
import { attachWriter, type DecisionLogWriters } from './writer.js';

export interface DecisionLog {
  /** Record one finished request. Never throws, never waits. */
  record(state: RequestState, err: WardenError | undefined, latencyMs: number): void;
  /** Record an already built decision (shadow evaluations, replays of tests). */
  write(record: DecisionRecord | Record<string, unknown>, t?: string): void;
  /** Write a final checkpoint and flush (the last generation on its destination; an older one leaves that to the newer). */
  close(): Promise<void>;
}

/** File names of the generated checkpoint key in the data dir. */
export const AUDIT_KEY_FILE = 'audit-key.jwk.json';
export const AUDIT_JWKS_FILE = 'audit-key.jwks.json';

/**
 * The decision log of one config generation. `writers` are the process's
 * writers by destination, kept by the gateway across reloads: a generation's
 * chain then continues, linked, where the previous generation's ended, and
 * records still in flight over a reload go to the new chain.
 */
export async function createDecisionLog(
  config: Config,
  deps: { dataDir: string; logger: Logger; metrics: Metrics },
  writers: DecisionLogWriters = new Map(),
): Promise<DecisionLog | undefined> {
  const cfg = config.audit.decisions;
  if (!cfg) return undefined;
  const { logger, metrics } = deps;
  const key = cfg.chain ? await checkpointKey(cfg, config, deps.dataDir) : undefined;
  const labels = Object.freeze({ sink: cfg.sink });
  // Which request fields each route's rules read, once: records carry those values for replay.
  const serialize = createRecordSerializer(compileRouteInputs(config.routes));
  const out = await attachWriter(writers, cfg, key, deps);

  return {
    record(state, err, latencyMs) {
      try {
        out.push('decision', serialize(state, err, latencyMs));
      } catch (e) {
        metrics.inc('warden_decision_log_errors_total', labels);
        logger.error({ err: e }, 'decision log: could not record a decision');
      }
    },
    write(record, t = 'decision') {
      out.push(t, JSON.stringify(record));
    },
    close: () => out.close(),
  };
}

/** The key checkpoints are signed with: audit.decisions.key, else the active assertion key, else one kept in the data dir. Its public JWKS is written to the data dir (audit-key.jwks.json) for `warden audit verify --jwks`. */
async function checkpointKey(cfg: DecisionLogConfig, config: Config, dataDir: string): Promise<CheckpointKey> {
  let key: CheckpointKey;
  let jwk: Record<string, unknown>;
  const active = config.identity.assertion?.keys.find((k) => k.status === 'active');
  if (cfg.key || active) {
    const k = parseAssertionKey(cfg.key ? { id: 'audit', private_key: cfg.key, status: 'active' } : active!);
    const kid = cfg.key ? jwkThumbprint(k.publicJwk) : k.kid;
    key = { kid, alg: k.alg, privateKey: k.privateKey };
    jwk = { ...k.publicJwk, kid };
  } else {
    ({ key, jwk } = await dataDirKey(dataDir));
  }
  await mkdir(dataDir, { recursive: true, mode: 0o700 });
  await writeFile(join(dataDir, AUDIT_JWKS_FILE), JSON.stringify({ keys: [jwk] }, null, 2) + '\n', { mode: 0o644 });
  return key;
}

export async function dataDirKey(dataDir: string): Promise<{ key: CheckpointKey; jwk: Record<string, unknown> }> {
  // Written whole under a temp name and linked into place: a cluster worker never reads a half-written key.
  const { text } = await loadKeyFile(dataDir, AUDIT_KEY_FILE, () => JSON.stringify(generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' })));
  const jwk = JSON.parse(text) as Record<string, string>;
  const privateKey = createPrivateKey({ key: jwk as never, format: 'jwk' });
  const pub = { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
  const kid = jwkThumbprint(pub);
  return { key: { kid, alg: 'EdDSA', privateKey }, jwk: { ...pub, kid, alg: 'EdDSA', use: 'sig' } };
}
