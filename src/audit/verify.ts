/**
 * `warden audit verify`: walk decision-log files in order and name the first
 * record that was edited, deleted, inserted or moved (see chain.ts for the
 * format). Checkpoint signatures are checked against a JWKS when one is given.
 */

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { ZERO_HASH, sha256Hex, splitLine, verifyCheckpoint } from './chain.js';

export interface VerifyOptions {
  /** Public keys (a JWKS's `keys`) checkpoints must be signed with; without, signatures are not checked. */
  jwks?: Array<Record<string, unknown>>;
  /** Accept a chain that starts after seq 0 (the older files were rotated away). */
  partial?: boolean;
}

export interface VerifyProblem {
  file: string;
  line: number;
  instance?: string;
  seq?: number;
  reason: string;
}

export interface VerifyResult {
  ok: boolean;
  problem?: VerifyProblem;
  records: number;
  checkpoints: number;
  signaturesChecked: boolean;
  /** Per instance: records after its last checkpoint (not yet pinned by a signature). */
  unsigned: Record<string, number>;
}

interface InstanceState {
  seq: number;
  hash: string;
  file: string;
  line: number;
  sinceCheckpoint: number;
}

export async function verifyFiles(files: string[], options: VerifyOptions = {}): Promise<VerifyResult> {
  const instances = new Map<string, InstanceState>();
  let records = 0;
  let checkpoints = 0;
  const byKid = new Map((options.jwks ?? []).map((k) => [String(k.kid), k]));
  const result = (problem?: VerifyProblem): VerifyResult => ({
    ok: !problem,
    problem,
    records,
    checkpoints,
    signaturesChecked: Boolean(options.jwks),
    unsigned: Object.fromEntries([...instances].map(([id, s]) => [id, s.sinceCheckpoint])),
  });

  for (const file of files) {
    const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    let n = 0;
    let blank = 0;
    for await (const line of lines) {
      n++;
      if (line === '') {
        blank = blank || n;
        continue;
      }
      if (blank) return result({ file, line: blank, reason: 'blank line inside the log (a record was removed)' });
      const parts = splitLine(line);
      if (!parts) return result({ file, line: n, reason: 'not a decision-log record (no hash): edited or inserted' });
      let rec: { t?: unknown; instance?: unknown; seq?: unknown; prev?: unknown; hash?: unknown; kid?: unknown; sig?: unknown };
      try {
        rec = JSON.parse(line);
      } catch {
        return result({ file, line: n, reason: 'not valid JSON: edited' });
      }
      const { t, instance, seq, prev } = rec;
      if ((t !== 'decision' && t !== 'checkpoint') || typeof instance !== 'string' || typeof seq !== 'number' || typeof prev !== 'string') {
        return result({ file, line: n, reason: 'not a decision-log record: edited or inserted' });
      }
      const at = { file, line: n, instance, seq };
      if (sha256Hex(parts.prefix) !== parts.hash || rec.hash !== parts.hash)
        return result({ ...at, reason: 'record was edited (its hash does not match its content)' });
      const last = instances.get(instance);
      if (!last) {
        if (seq !== 0 && !options.partial)
          return result({
            ...at,
            reason: `chain of instance ${instance} starts at seq ${seq}, not 0: earlier records were deleted (pass the rotated files first, or --partial)`,
          });
        if (seq === 0 && prev !== ZERO_HASH) return result({ ...at, reason: 'first record of its instance does not start the chain' });
      } else {
        if (seq <= last.seq)
          return result({ ...at, reason: `seq ${seq} after seq ${last.seq} (line ${last.line}): records were reordered or a record was inserted` });
        if (seq !== last.seq + 1)
          return result({
            ...at,
            reason: `seq ${seq} after seq ${last.seq} (line ${last.line}): ${seq - last.seq - 1} record(s) missing before this one (deleted or moved)`,
          });
        if (prev !== last.hash)
          return result({ ...at, reason: `does not chain to the previous record of its instance (line ${last.line}): a record was replaced or inserted` });
      }
      const state: InstanceState = last ?? { seq, hash: parts.hash, file, line: n, sinceCheckpoint: 0 };
      state.seq = seq;
      state.hash = parts.hash;
      state.file = file;
      state.line = n;
      instances.set(instance, state);
      if (t === 'checkpoint') {
        checkpoints++;
        if (options.jwks) {
          const jwk = byKid.get(String(rec.kid));
          if (!jwk) return result({ ...at, reason: `checkpoint signed with unknown key ${String(rec.kid)}` });
          if (typeof rec.sig !== 'string' || !verifyCheckpoint(jwk, instance, seq, prev, rec.sig))
            return result({ ...at, reason: 'checkpoint signature is invalid (the chain before it was rewritten)' });
        }
        state.sinceCheckpoint = 0;
      } else {
        records++;
        state.sinceCheckpoint++;
      }
    }
  }
  return result();
}
