/**
 * Connection records (a user's linked account at one provider) and their
 * repository over the Store. Each record is sealed whole with the vault cipher,
 * bound to its own store key, and carries a version so that a writer holding
 * an old copy (e.g. a refresher whose lock lease expired) can never overwrite a
 * newer one. A version alone repeats after a delete and a re-link (both start at
 * 1), so each link also carries a random generation that `replace` checks too.
 * Layout: `vault:conn:<user>:<provider>`, both parts URI-encoded so
 * no user id can forge the `:` separator.
 */

import { randomUUID } from 'node:crypto';
import { WardenError } from '../core/errors.js';
import type { Store } from '../store/store.js';
import type { VaultCipher } from './crypto.js';

/** Lifecycle of a connection: usable, or refresh failed permanently and the user must link again. */
export type ConnectionStatus = 'active' | 'relink_required';

/** A user's linked account at one provider, as stored (decrypted form). */
export interface Connection {
  user: string;
  provider: string;
  accessToken: string;
  refreshToken?: string;
  /** Usually `Bearer`. */
  tokenType: string;
  /** Scopes the provider granted. */
  scopes: string[];
  /** Access-token expiry, epoch ms; absent when the provider gave none. */
  expiresAt?: number;
  /** Increases by one on every write; the compare-and-set guard for `replace`. */
  version: number;
  /**
   * Random id of this link, new on every `put` and kept by `replace`; `replace`
   * compares it with the version. Absent only on records written before it
   * existed; their next write adds one.
   */
  generation?: string;
  status: ConnectionStatus;
  /** Epoch ms. */
  createdAt: number;
  /** Epoch ms. */
  updatedAt: number;
}

/** What `put` needs: the repository assigns version, generation and timestamps; `tokenType` defaults to `Bearer`, `status` to `active`. */
export type NewConnection = Omit<Connection, 'version' | 'generation' | 'createdAt' | 'updatedAt' | 'status' | 'tokenType'> & {
  status?: ConnectionStatus;
  tokenType?: string;
};

/** Outcome of one record during `rekey`. */
export type RekeyOutcome = 'rekeyed' | 'current' | 'gone' | 'failed';

/** Reported after each record `rekey` looked at. */
export interface RekeyProgress {
  /** Store key of the record (user and provider are URI-encoded in it; no secrets). */
  key: string;
  outcome: RekeyOutcome;
  scanned: number;
  rekeyed: number;
  failed: number;
}

/** Totals of a `rekey` run. */
export interface RekeySummary {
  scanned: number;
  /** Re-sealed with the current key by this run. */
  rekeyed: number;
  /** Already sealed with the current key (e.g. done by an earlier, interrupted run). */
  current: number;
  /** Deleted while the run was going. */
  gone: number;
  /** Records that cannot be opened (tampered, or sealed with a key no longer configured). */
  failed: number;
  /** Store keys of the failed records. */
  failures: string[];
}

/** Reads and writes connection records. */
export interface ConnectionRepository {
  /** The connection, or null when none. Throws `internal`/`vault_record_invalid` if the record fails to open. */
  get(user: string, provider: string): Promise<Connection | null>;
  /**
   * Store a newly linked connection (creating, or replacing an earlier link of
   * the same user and provider). The version continues from the previous record,
   * so holders of the old version can no longer `replace` it.
   */
  put(connection: NewConnection): Promise<Connection>;
  /**
   * Write `connection` only if the stored record still has `expectedVersion` and
   * the generation of `connection` (so never over a later link after a delete).
   * Returns the stored record (version `expectedVersion + 1`), or null when the
   * record changed or disappeared meanwhile (the caller is stale and must re-read).
   */
  replace(connection: Connection, expectedVersion: number): Promise<Connection | null>;
  /** Remove the connection; true when there was one. */
  delete(user: string, provider: string): Promise<boolean>;
  /** All connections of `user`, ordered by provider. */
  list(user: string): Promise<Connection[]>;
  /**
   * Re-seal every record not sealed with the current (first) key. Each record is
   * swapped with compare-and-set, so concurrent writers win and the run is
   * idempotent and resumable: rerunning after a crash only touches what is left.
   */
  rekey(onProgress?: (progress: RekeyProgress) => void | Promise<void>): Promise<RekeySummary>;
}

const PREFIX = 'vault:conn:';
/** Bound on optimistic retries when a record keeps changing under us. */
const MAX_ATTEMPTS = 10;

function encodePart(value: string, what: string): string {
  if (typeof value !== 'string' || value === '') {
    throw new WardenError('internal', `vault: ${what} must be a non-empty string`, { reason: 'vault_bad_identity' });
  }
  return encodeURIComponent(value);
}

/** The store key of the connection of `user` at `provider` (also its associated data). */
export function connectionKey(user: string, provider: string): string {
  return `${PREFIX}${encodePart(user, 'user')}:${encodePart(provider, 'provider')}`;
}

function invalid(detail: string): WardenError {
  return new WardenError('internal', `vault record cannot be opened: ${detail}`, { reason: 'vault_record_invalid' });
}

/** Parse and check a decrypted record against the identity it was stored under. */
function decode(plaintext: Buffer, user: string, provider: string): Connection {
  let value: unknown;
  try {
    value = JSON.parse(plaintext.toString('utf8'));
  } catch {
    throw invalid('not JSON');
  }
  const c = value as Partial<Connection> | null;
  if (
    c === null ||
    typeof c !== 'object' ||
    c.user !== user ||
    c.provider !== provider ||
    typeof c.accessToken !== 'string' ||
    typeof c.tokenType !== 'string' ||
    !Array.isArray(c.scopes) ||
    !Number.isSafeInteger(c.version) ||
    (c.generation !== undefined && typeof c.generation !== 'string') ||
    (c.status !== 'active' && c.status !== 'relink_required')
  ) {
    // AAD already binds the record to its key; this is defence in depth against a writer bug.
    throw invalid('unexpected content');
  }
  return c as Connection;
}

/** Only the contract fields, in a fixed order (no stray properties get sealed). */
function encode(c: Connection): string {
  const record: Connection = {
    user: c.user,
    provider: c.provider,
    accessToken: c.accessToken,
    ...(c.refreshToken === undefined ? {} : { refreshToken: c.refreshToken }),
    tokenType: c.tokenType,
    scopes: [...c.scopes],
    ...(c.expiresAt === undefined ? {} : { expiresAt: c.expiresAt }),
    version: c.version,
    ...(c.generation === undefined ? {} : { generation: c.generation }),
    status: c.status,
    createdAt: c.createdAt,
    updatedAt: c.updatedAt,
  };
  return JSON.stringify(record);
}

function contention(): WardenError {
  return new WardenError('store_unavailable', 'vault record keeps changing; try again', { reason: 'vault_contention' });
}

/** Create the repository over `store`, sealing with `cipher`. */
export function createConnectionRepository(store: Store, cipher: VaultCipher, clock: () => number = Date.now): ConnectionRepository {
  function openRecord(raw: string, key: string, user: string, provider: string): Connection {
    return decode(cipher.open(raw, key), user, provider);
  }

  async function read(user: string, provider: string): Promise<{ key: string; raw: string | null; record: Connection | null }> {
    const key = connectionKey(user, provider);
    const raw = await store.get(key);
    return { key, raw, record: raw === null ? null : openRecord(raw, key, user, provider) };
  }

  function sealRecord(record: Connection, key: string): string {
    return cipher.seal(encode(record), key);
  }

  return {
    async get(user, provider) {
      return (await read(user, provider)).record;
    },

    async put(connection) {
      const key = connectionKey(connection.user, connection.provider);
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
        const raw = await store.get(key);
        let previousVersion = 0;
        if (raw !== null) {
          try {
            previousVersion = openRecord(raw, key, connection.user, connection.provider).version;
          } catch (err) {
            // A record that no longer opens (tampered, or its key was removed) is
            // replaced by a fresh link rather than locking the user out for good.
            if (!(err instanceof WardenError && err.code === 'internal')) throw err;
          }
        }
        const now = clock();
        const record: Connection = {
          ...connection,
          tokenType: connection.tokenType ?? 'Bearer',
          status: connection.status ?? 'active',
          version: previousVersion + 1,
          generation: randomUUID(),
          createdAt: now,
          updatedAt: now,
        };
        if (await store.compareAndSet(key, raw, sealRecord(record, key))) return record;
      }
      throw contention();
    },

    async replace(connection, expectedVersion) {
      const key = connectionKey(connection.user, connection.provider);
      for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
        const raw = await store.get(key);
        if (raw === null) return null;
        const current = openRecord(raw, key, connection.user, connection.provider);
        if (current.version !== expectedVersion || current.generation !== connection.generation) return null;
        const record: Connection = {
          ...connection,
          version: expectedVersion + 1,
          generation: current.generation ?? randomUUID(),
          createdAt: current.createdAt,
          updatedAt: clock(),
        };
        // The raw value changes on every write (fresh IV), so CAS on it is a CAS on the version;
        // a miss may be a concurrent rekey of the same version, hence the re-read.
        if (await store.compareAndSet(key, raw, sealRecord(record, key))) return record;
      }
      throw contention();
    },

    async delete(user, provider) {
      return store.del(connectionKey(user, provider));
    },

    async list(user) {
      const prefix = `${PREFIX}${encodePart(user, 'user')}:`;
      const providers: string[] = [];
      for await (const key of store.keys(prefix)) {
        const rest = key.slice(prefix.length);
        // An encoded provider never contains ':'; anything else is not ours.
        if (rest !== '' && !rest.includes(':')) providers.push(decodeURIComponent(rest));
      }
      providers.sort();
      const out: Connection[] = [];
      for (const provider of providers) {
        const { record } = await read(user, provider);
        if (record !== null) out.push(record);
      }
      return out;
    },

    async rekey(onProgress) {
      const summary: RekeySummary = { scanned: 0, rekeyed: 0, current: 0, gone: 0, failed: 0, failures: [] };
      for await (const key of store.keys(PREFIX)) {
        summary.scanned += 1;
        const outcome = await rekeyOne(key);
        if (outcome === 'failed') summary.failures.push(key);
        summary[outcome] += 1;
        await onProgress?.({ key, outcome, scanned: summary.scanned, rekeyed: summary.rekeyed, failed: summary.failed });
      }
      return summary;
    },
  };

  async function rekeyOne(key: string): Promise<RekeyOutcome> {
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt += 1) {
      const raw = await store.get(key);
      if (raw === null) return 'gone';
      let resealed: string;
      try {
        if (!cipher.needsRekey(raw)) return 'current';
        // Opening with the key as associated data refuses swapped records, so
        // rekey can never launder a record into a place it does not belong.
        resealed = cipher.seal(cipher.open(raw, key), key);
      } catch (err) {
        if (err instanceof WardenError && err.code === 'internal') return 'failed';
        throw err;
      }
      // Keeps the record's TTL (if any); loses to any concurrent writer, who seals with the current key anyway.
      if (await store.compareAndSet(key, raw, resealed)) return 'rekeyed';
    }
    throw contention();
  }
}
