/**
 * The decision log (`audit.decisions`): one hash-chained record per decision,
 * batched every `write_interval`, with a signed checkpoint every N records or T
 * seconds. Built once per config generation; each generation is its own chain
 * instance (its records start at seq 0).
 */

import { randomBytes, generateKeyPairSync, createPrivateKey } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import cluster from 'node:cluster';
import type { Config, DecisionLogConfig } from '../config/schema.js';
import { loadKeyFile } from '../core/key-file.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import type { RequestState } from '../pipeline/context.js';
import type { WardenError } from '../core/errors.js';
import { jwkThumbprint, parseAssertionKey } from '../identity/assertion/keys.js';
import { Chain, signCheckpoint, type CheckpointKey } from './chain.js';
import type { DecisionRecord } from './record.js';
import { createRecordSerializer } from './record-json.js';
import { LineBatch } from './line-batch.js';
import { compileRouteInputs } from './inputs.js';
import { fileSink, httpSink, stdoutSink, type Sink } from './sinks.js';

export interface DecisionLog {
  /** Record one finished request. Never throws, never waits. */
  record(state: RequestState, err: WardenError | undefined, latencyMs: number): void;
  /** Record an already built decision (shadow evaluations, replays of tests). */
  write(record: DecisionRecord | Record<string, unknown>, t?: string): void;
  /** Write a final checkpoint and flush. */
  close(): Promise<void>;
}

/** File names of the generated checkpoint key in the data dir. */
export const AUDIT_KEY_FILE = 'audit-key.jwk.json';
export const AUDIT_JWKS_FILE = 'audit-key.jwks.json';

export async function createDecisionLog(config: Config, deps: { dataDir: string; logger: Logger; metrics: Metrics }): Promise<DecisionLog | undefined> {
  const cfg = config.audit.decisions;
  if (!cfg) return undefined;
  const { logger, metrics } = deps;
  const sink = makeSink(cfg, logger, metrics);
  const key = cfg.chain ? await checkpointKey(cfg, config, deps.dataDir) : undefined;
  const chain = cfg.chain ? new Chain(`${Date.now().toString(36)}-${randomBytes(6).toString('base64url')}`) : undefined;
  // Records are encoded into one pending Buffer when they are decided (off the
  // V8 heap: nothing per request survives a scavenge) and go to the sink as one
  // batch at most `write_interval` later, or as soon as the buffer is full: one
  // write per batch, not one per request. A crash loses at most that window; a
  // clean shutdown (close) writes everything. The chain's prev and hash fields,
  // and checkpoint signatures, are completed at the flush (line-batch.ts).
  const pending = new LineBatch(chain, key && ((instance, seq, head) => signCheckpoint(key, instance, seq, head)));
  let flushTimer: NodeJS.Timeout | undefined;
  let flushTurn: NodeJS.Immediate | undefined;
  let sinceCheckpoint = 0;
  let timer: NodeJS.Timeout | undefined;
  const labels = Object.freeze({ sink: cfg.sink });
  // Which request fields each route's rules read, once: records carry those values for replay.
  const serialize = createRecordSerializer(compileRouteInputs(config.routes));

  const flush = () => {
    if (flushTimer) clearTimeout(flushTimer);
    if (flushTurn) clearImmediate(flushTurn);
    flushTimer = flushTurn = undefined;
    const batch = pending.take();
    if (!batch) return;
    metrics.inc('warden_decision_log_records_total', labels, batch.lines);
    sink.write(batch.chunk, batch.lines);
  };
  const queue = (t: string, body: string) => {
    if (!pending.fits(body.length)) flush();
    pending.add(t, body);
  };
  const checkpoint = () => {
    if (!key || sinceCheckpoint === 0) return;
    // Its signature covers the chain head before it, known at the flush (line-batch.ts).
    queue('checkpoint', `{"time":"${new Date().toISOString()}","records":${sinceCheckpoint},"kid":${JSON.stringify(key.kid)},"alg":"${key.alg}","sig":"`);
    sinceCheckpoint = 0;
  };
  const push = (t: string, body: string) => {
    queue(t, body);
    if (chain && ++sinceCheckpoint >= cfg.checkpoint_every) checkpoint();
    if (cfg.write_interval === 0) flushTurn ??= setImmediate(flush);
    else flushTimer ??= setTimeout(flush, cfg.write_interval).unref();
  };
  if (key) {
    timer = setInterval(() => {
      if (sinceCheckpoint === 0) return;
      checkpoint();
      flush();
    }, cfg.checkpoint_interval).unref();
  }

  return {
    record(state, err, latencyMs) {
      try {
        push('decision', serialize(state, err, latencyMs));
      } catch (e) {
        metrics.inc('warden_decision_log_errors_total', labels);
        logger.error({ err: e }, 'decision log: could not record a decision');
      }
    },
    write(record, t = 'decision') {
      push(t, JSON.stringify(record));
    },
    async close() {
      if (timer) clearInterval(timer);
      checkpoint();
      flush();
      await sink.close();
    },
  };
}

function makeSink(cfg: DecisionLogConfig, logger: Logger, metrics: Metrics): Sink {
  if (cfg.sink === 'stdout') return stdoutSink();
  if (cfg.sink === 'http') {
    return httpSink(
      {
        url: cfg.url!,
        headers: cfg.headers,
        batch: cfg.batch,
        flushIntervalMs: cfg.flush_interval,
        timeoutMs: cfg.timeout,
        retries: cfg.retries,
        maxBuffer: cfg.max_buffer,
      },
      logger,
      metrics,
    );
  }
  return fileSink(workerPath(cfg.path!), cfg.rotate, cfg.keep, logger, metrics);
}

/** With node:cluster workers each worker writes its own file (rotation needs one writer). */
export function workerPath(path: string): string {
  return cluster.isWorker && cluster.worker ? `${path}.w${cluster.worker.id}` : path;
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
