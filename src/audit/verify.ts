/**
 * `warden audit verify`: walk decision-log files in order and name the first
 * record that was edited, deleted, inserted or moved (see chain.ts for the
 * format), and the first chain whose link to the previous one is broken: a
 * whole generation removed or spliced in. Signatures (checkpoints, genesis
 * records) are checked against a JWKS when one is given; then every chain that
 * starts in the files must be covered by a valid signature.
 */

import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { ZERO_HASH, sha256Hex, splitLine, verifyCheckpoint, verifyGenesis, type ChainEnd } from './chain.js';

export interface VerifyOptions {
  /** Public keys (a JWKS's `keys`) checkpoints must be signed with; without, signatures are not checked. */
  jwks?: Array<Record<string, unknown>>;
  /** The first file may start after seq 0, and a chain in it may continue one that is not given (the older files were rotated away). */
  partial?: boolean;
  /** With `jwks`: a chain no valid signature covers is reported, not failed (an unsigned log kept knowingly). */
  allowUnsigned?: boolean;
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
  /** Per instance: records after its last checkpoint (not yet pinned by a signature, its own or the next chain's link). */
  unsigned: Record<string, number>;
  /** Instances whose genesis names no previous chain in the files: a writer's first chain (fresh file, a sink that cannot link, another writer), or one continuing a chain of the older files (--partial). */
  roots: string[];
  /** Instances without a genesis record (written before chains were linked): removing or adding one whole is not detected. */
  unlinked: string[];
  /** With allowUnsigned: instances no valid signature covers. */
  unsignedInstances: string[];
}

interface InstanceState {
  seq: number;
  hash: string;
  file: string;
  line: number;
  sinceCheckpoint: number;
  /** Where its first record in the files is; whether that is its seq 0 (a chain that starts here must be signed). */
  first: { file: string; line: number; fromStart: boolean };
  /** A valid signature covers it: one of its checkpoints, its genesis, or the next chain's genesis naming its end. */
  signed: boolean;
  /** The chain that continues it (its genesis names this one's end). */
  next?: { instance: string; file: string; line: number };
}

const HEX64 = /^[0-9a-f]{64}$/;

export async function verifyFiles(files: string[], options: VerifyOptions = {}): Promise<VerifyResult> {
  const instances = new Map<string, InstanceState>();
  const roots: string[] = [];
  const unlinked: string[] = [];
  const unsignedInstances: string[] = [];
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
    roots,
    unlinked,
    unsignedInstances,
  });

  for (const [index, file] of files.entries()) {
    // Only the first file may begin inside what older, rotated-away files held.
    const partial = options.partial && index === 0;
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
      let rec: { t?: unknown; instance?: unknown; seq?: unknown; prev?: unknown; hash?: unknown; kid?: unknown; sig?: unknown; after?: unknown };
      try {
        rec = JSON.parse(line);
      } catch {
        return result({ file, line: n, reason: 'not valid JSON: edited' });
      }
      const { t, instance, seq, prev } = rec;
      if ((t !== 'decision' && t !== 'checkpoint' && t !== 'genesis') || typeof instance !== 'string' || typeof seq !== 'number' || typeof prev !== 'string') {
        return result({ file, line: n, reason: 'not a decision-log record: edited or inserted' });
      }
      const at = { file, line: n, instance, seq };
      if (sha256Hex(parts.prefix) !== parts.hash || rec.hash !== parts.hash)
        return result({ ...at, reason: 'record was edited (its hash does not match its content)' });
      if (t === 'genesis' && (seq !== 0 || prev !== ZERO_HASH)) return result({ ...at, reason: 'genesis record inside a chain: edited or inserted' });
      const last = instances.get(instance);
      if (!last) {
        if (seq !== 0 && !partial)
          return result({
            ...at,
            reason: `chain of instance ${instance} starts at seq ${seq}, not 0: earlier records were deleted (pass the rotated files first, or --partial)`,
          });
        if (seq === 0 && prev !== ZERO_HASH) return result({ ...at, reason: 'first record of its instance does not start the chain' });
      } else {
        if (last.next)
          return result({
            ...at,
            reason: `record of instance ${instance} after its chain was continued by ${last.next.instance} (${last.next.file}:${last.next.line}): inserted`,
          });
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
      const state: InstanceState = last ?? {
        seq,
        hash: parts.hash,
        file,
        line: n,
        sinceCheckpoint: 0,
        first: { file, line: n, fromStart: seq === 0 },
        signed: false,
      };
      if (!last && seq === 0 && t !== 'genesis') unlinked.push(instance);
      if (t === 'genesis') {
        const problem = linkGenesis(instance, rec, state, n);
        if (problem) return result({ ...at, reason: problem });
      }
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
          state.signed = true;
        }
        state.sinceCheckpoint = 0;
      } else if (t === 'decision') {
        records++;
        state.sinceCheckpoint++;
      }
    }

    /** Check a genesis record's signature and its link to the chain it continues; a reason when either is wrong. */
    function linkGenesis(instance: string, rec: { after?: unknown; kid?: unknown; sig?: unknown }, state: InstanceState, line: number): string | undefined {
      const after = chainEnd(rec.after);
      if (after === undefined) return 'genesis record with a malformed link to the previous chain: edited';
      if (options.jwks) {
        const jwk = byKid.get(String(rec.kid));
        if (!jwk) return `genesis signed with unknown key ${String(rec.kid)}`;
        if (typeof rec.sig !== 'string' || !verifyGenesis(jwk, instance, after, rec.sig))
          return 'genesis signature is invalid (forged, or its link to the previous chain was edited)';
        state.signed = true;
      }
      if (!after) {
        roots.push(instance);
        return undefined;
      }
      const previous = instances.get(after.instance);
      if (!previous) {
        if (partial) {
          roots.push(instance);
          return undefined;
        }
        return `chain of instance ${instance} continues instance ${after.instance} (ended at seq ${after.seq}), which is not in the files given: a whole generation was deleted (pass the older files first, or --partial if they were rotated away)`;
      }
      const where = `${previous.file}:${previous.line}`;
      if (previous.next)
        return `instance ${after.instance} is continued by both ${previous.next.instance} (line ${previous.next.line}) and ${instance}: a chain was spliced in`;
      if (previous.seq < after.seq)
        return `instance ${instance} continues ${after.instance} at seq ${after.seq}, but ${after.instance} ends at seq ${previous.seq} (${where}): ${after.seq - previous.seq} record(s) at the end of ${after.instance} were deleted`;
      if (previous.seq > after.seq)
        return `instance ${instance} continues ${after.instance} at seq ${after.seq}, but ${after.instance} goes on to seq ${previous.seq} (${where}): records were added after its end`;
      if (previous.hash !== after.hash)
        return `instance ${instance} continues ${after.instance} at seq ${after.seq}, but that record's hash differs (${where}): it was replaced`;
      previous.next = { instance, file: state.file, line };
      // The next chain's genesis pins this one's end: its records after its last checkpoint are covered (signed when checked).
      previous.sinceCheckpoint = 0;
      if (state.signed) previous.signed = true;
      return undefined;
    }
  }

  if (options.jwks) {
    // A chain that starts in the files with no valid signature anywhere on it: anyone can compute hashes.
    for (const [id, s] of instances) {
      if (s.signed || !s.first.fromStart) continue;
      if (options.allowUnsigned) unsignedInstances.push(id);
      else
        return result({
          file: s.first.file,
          line: s.first.line,
          instance: id,
          seq: 0,
          reason: `instance ${id} has no valid signed checkpoint: forged, or its checkpoints were stripped (--allow-unsigned accepts a log known to be unsigned)`,
        });
    }
  }
  return result();
}

/** A genesis record's `after`: null (no previous chain), the end it names, or undefined when malformed. */
function chainEnd(after: unknown): ChainEnd | null | undefined {
  if (after === null) return null;
  if (typeof after !== 'object') return undefined;
  const { instance, seq, hash } = after as Record<string, unknown>;
  if (typeof instance !== 'string' || !Number.isSafeInteger(seq) || (seq as number) < 0 || typeof hash !== 'string' || !HEX64.test(hash)) return undefined;
  return { instance, seq: seq as number, hash };
}
