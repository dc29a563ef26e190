/**
 * The `redis` store driver, shared by every Warden instance. The only module
 * that imports ioredis. Every call is bounded by `timeoutMs` and fails closed
 * with `store_unavailable`; nothing is queued while Redis is unreachable, so a
 * dead Redis answers fast instead of piling up requests. See docs/store.md.
 */

import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import { WardenError } from '../core/errors.js';
import type { Logger } from '../observability/logger.js';
import type { Lock, SetOptions, Store, Unsubscribe } from './store.js';
import { createLimitsBatcher, LIMITS_LUA } from './redis-limits.js';
import { createQuotaBlocks, DEFAULT_BLOCK_OPTIONS } from './redis-blocks.js';
import { budgetMember, checkAmount, checkMember, checkListMax, checkRateSpec, checkTtlMs, lockKey, newLockToken, storeClosed } from './guards.js';

/** Options of the redis driver. */
/**
 * How long a budget block's commits wait to reach Redis together (redis-blocks.ts
 * flushMs): one script call per block every 50 ms at most instead of one per
 * round trip; a killed instance leaves at most that much of its commits unrecorded.
 */
const BLOCK_FLUSH_MS = 50;

export interface RedisStoreOptions {
  /** `redis://[user:password@]host:port[/db]` or `rediss://…` (TLS). */
  url: string;
  /** Prepended to every key and channel, so several deployments can share one Redis. */
  keyPrefix: string;
  /** Upper bound of every store call (and of the initial connection). */
  timeoutMs: number;
  logger: Logger;
  /** Sentinel addresses; when given, the master is whatever they name (failovers are followed). */
  sentinels?: ReadonlyArray<{ host: string; port: number }>;
  /** Master set name the sentinels monitor. */
  sentinelMaster?: string;
  sentinelPassword?: string;
  /** TLS material (PEM text) for rediss:// connections; the sentinels use the same. */
  tls?: { ca?: string; cert?: string; key?: string; servername?: string };
  /** Local quota blocks: how many more blocks must fit after a grant (0 = no blocks). Default 32. */
  limitBlocks?: number;
}

// Compare-and-set. ARGV: hasExpected ('1'|'0'), expected, next, ttlMs ('' = keep TTL).
// GET returns false for an absent key, which never equals a string.
const CAS_LUA = `
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if current ~= ARGV[2] then return 0 end
elseif current then
  return 0
end
if ARGV[4] ~= '' then
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
elseif current then
  redis.call('SET', KEYS[1], ARGV[3], 'KEEPTTL')
else
  redis.call('SET', KEYS[1], ARGV[3])
end
return 1`;

// Increment and make sure the counter expires, even if an earlier writer left it without a TTL.
const INCR_LUA = `
local n = redis.call('INCR', KEYS[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n`;

// Bounded lists: KEYS are distinct lists; ARGV = max, ttl, then one count per
// key, then the byte length of every value (decimal, comma-separated), then all
// the values back to back (one binary-safe blob), each key's in push order.
// Each list gets one LPUSH of all its values (in chunks: Lua's unpack is
// bounded), an LTRIM only when it grew past the cap, and its TTL (re)set; one
// atomic step. Why one blob and not one argument per value: see listPush.
const LIST_PUSH_LUA = `
local max = tonumber(ARGV[1])
local lens = ARGV[3 + #KEYS]
local blob = ARGV[4 + #KEYS]
local lp, pos = 1, 1
for i, key in ipairs(KEYS) do
  local left = tonumber(ARGV[2 + i])
  local len = 0
  while left > 0 do
    local chunk = {}
    for j = 1, math.min(left, 1000) do
      local comma = string.find(lens, ',', lp, true) or (#lens + 1)
      local size = tonumber(string.sub(lens, lp, comma - 1))
      chunk[j] = string.sub(blob, pos, pos + size - 1)
      lp = comma + 1
      pos = pos + size
    end
    left = left - #chunk
    len = redis.call('LPUSH', key, unpack(chunk))
  end
  if len > max then redis.call('LTRIM', key, 0, max - 1) end
  redis.call('PEXPIRE', key, ARGV[2])
end
return 1`;

// Lease operations act only while the caller's token still owns the lock.
const RENEW_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;
const RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

interface ScriptedRedis extends Redis {
  /** numkeys, keys…, argv…: one batch of limit operations (redis-limits.ts). */
  wardenLimits(...args: string[]): Promise<string[]>;
  wardenCas(key: string, hasExpected: string, expected: string, next: string, ttlMs: string): Promise<number>;
  wardenIncr(key: string, ttlMs: string): Promise<number>;
  wardenListPush(numberOfKeys: number, ...keysThenArgs: Array<string | Buffer>): Promise<number>;
  wardenRenew(key: string, token: string, leaseMs: string): Promise<number>;
  wardenRelease(key: string, token: string): Promise<number>;
}

/** The URL with its password replaced, for log lines. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = 'redacted';
    return parsed.toString();
  } catch {
    return '[unparseable redis url]';
  }
}

/**
 * TLS and Sentinel options. A rediss:// URL always means TLS (system CAs unless
 * `tls.ca`); with sentinels, the sentinels are reached the same way and the
 * master address comes from them, so ioredis follows a failover on reconnect.
 */
function connectionTarget(options: RedisStoreOptions): RedisOptions {
  const target: RedisOptions = {};
  const secure = options.url.toLowerCase().startsWith('rediss://');
  const tls = secure ? { ...options.tls } : undefined;
  if (tls) target.tls = tls;
  if (options.sentinels && options.sentinels.length > 0) {
    target.sentinels = options.sentinels.map(({ host, port }) => ({ host, port }));
    target.name = options.sentinelMaster ?? 'mymaster';
    if (options.sentinelPassword !== undefined) target.sentinelPassword = options.sentinelPassword;
    if (tls) {
      target.enableTLSForSentinelMode = true;
      target.sentinelTLS = tls;
    }
    // A sentinel that does not answer must not hold up the next one for long.
    target.sentinelCommandTimeout = options.timeoutMs;
    // After a failover, ask the sentinels again rather than retrying the old master.
    target.sentinelRetryStrategy = (attempt) => Math.min(100 * attempt, 2_000);
  }
  return target;
}

/** Escape Redis glob metacharacters so a prefix matches only itself. */
function globEscape(text: string): string {
  return text.replace(/[*?[\]\\^-]/g, (c) => `\\${c}`);
}

/** Errors that mean "the data is not what the command expects" rather than "Redis is away". */
function isDataError(err: unknown): boolean {
  const message = err instanceof Error ? err.message : '';
  return /^(WRONGTYPE|ERR value is not an integer)/.test(message);
}

/**
 * LIST_PUSH_LUA's numkeys and arguments for a batch of list entries (null: nothing to push).
 * Grouped by list (order kept within each): one LPUSH per list, not one per entry.
 * Only the newest `max` of a list can survive the trim, so only they are sent.
 */
function listPushArgs(
  listEntries: ReadonlyArray<{ key: string; value: string }>,
  listOptions: { max: number; ttlMs: number },
  prefixed: (key: string) => string,
): Array<string | number | Buffer> | null {
  const ttl = String(checkTtlMs(listOptions.ttlMs));
  const max = checkListMax(listOptions.max);
  if (listEntries.length === 0) return null;
  const byKey = new Map<string, string[]>();
  for (const e of listEntries) {
    let values = byKey.get(e.key);
    if (!values) byKey.set(e.key, (values = []));
    values.push(e.value);
  }
  const keys: string[] = [];
  const counts: string[] = [];
  const pushed: string[] = [];
  for (const [key, list] of byKey) {
    const from = Math.max(0, list.length - max);
    keys.push(prefixed(key));
    counts.push(String(list.length - from));
    for (let i = from; i < list.length; i++) pushed.push(list[i]);
  }
  const [lengths, blob] = packValues(pushed);
  return [keys.length, ...keys, String(max), ttl, ...counts, lengths, blob];
}

/**
 * The values of a list push as one blob (their UTF-8 bytes back to back, off
 * the V8 heap) and their byte lengths, for LIST_PUSH_LUA.
 *
 * Why (#17, G3's promotion): the activity ring writes a batch of up to 200
 * JSON items every 200 ms. Passed as one argument each, ioredis keeps every
 * item string in its command, and concatenates them into the RESP text, until
 * Redis answers; under load that spans scavenges, and ~100 KB per batch went
 * to the old generation (~75 of G3's ~190 promoted bytes per request). As one
 * Buffer, the item strings die as soon as they are copied into it.
 */
export function packValues(values: readonly string[]): [lengths: string, blob: Buffer] {
  let total = 0;
  const sizes = new Array<number>(values.length);
  for (let i = 0; i < values.length; i++) total += sizes[i] = Buffer.byteLength(values[i]);
  const blob = Buffer.allocUnsafeSlow(total);
  let at = 0;
  for (let i = 0; i < values.length; i++) at += blob.write(values[i], at);
  return [sizes.join(','), blob];
}

/**
 * Connect to Redis and return a Store. Rejects with `store_unavailable` when the
 * first connection cannot be made within `timeoutMs` (startup fails clearly);
 * after that, lost connections are re-established in the background.
 */
export async function createRedisStore(options: RedisStoreOptions): Promise<Store> {
  const { url, keyPrefix, logger } = options;
  const timeoutMs = checkTtlMs(options.timeoutMs, 'timeoutMs');
  const where = redactRedisUrl(url);
  const log = logger.child({ component: 'store', driver: 'redis', redis: where });

  const clientOptions: RedisOptions = {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    // ioredis' own timer also settles commands our race already gave up on, so
    // nothing waits forever in its queues.
    commandTimeout: timeoutMs,
    // Fail fast while disconnected instead of queueing: a queued request would
    // either hang or run long after the caller saw `store_unavailable`.
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    // A command in flight when the connection dropped may or may not have run; its
    // caller was already told it failed, so never run it a second time later.
    autoResendUnfulfilledCommands: false,
    retryStrategy: (attempt) => Math.min(100 * attempt, 2_000),
    reconnectOnError: () => false,
    ...connectionTarget(options),
  };

  const client = new Redis(url, clientOptions) as ScriptedRedis;
  // Pub/sub needs its own connection: a subscribed connection cannot run other commands.
  const subscriber = new Redis(url, clientOptions);
  client.defineCommand('wardenCas', { numberOfKeys: 1, lua: CAS_LUA });
  client.defineCommand('wardenIncr', { numberOfKeys: 1, lua: INCR_LUA });
  // The number of keys varies per call (one per entry of the batch).
  client.defineCommand('wardenListPush', { lua: LIST_PUSH_LUA });
  client.defineCommand('wardenRenew', { numberOfKeys: 1, lua: RENEW_LUA });
  client.defineCommand('wardenRelease', { numberOfKeys: 1, lua: RELEASE_LUA });
  // Rate limits and budgets: one script call per event-loop turn (EVALSHA; numkeys varies per batch).
  client.defineCommand('wardenLimits', { lua: LIMITS_LUA });

  const handlers = new Map<string, Set<(message: string) => void>>();
  let closed = false;
  let closing: Promise<void> | undefined;

  // Log each connection's transitions once (not every retry) and never the URL's password.
  for (const [role, connection] of [
    ['commands', client],
    ['subscriber', subscriber],
  ] as const) {
    let healthy = true;
    const lost = (err?: Error) => {
      if (!healthy || closed) return;
      healthy = false;
      log.warn({ role, ...(err ? { err: { message: err.message } } : {}) }, 'redis connection lost; retrying');
    };
    // A failing socket emits 'error' then 'close'; a Redis that shuts down cleanly only 'close'.
    connection.on('error', (err: Error) => lost(err));
    connection.on('close', () => lost());
    connection.on('ready', () => {
      if (!healthy) log.info({ role }, 'redis connection restored');
      healthy = true;
    });
  }

  subscriber.on('message', (fullChannel: string, message: string) => {
    if (!fullChannel.startsWith(keyPrefix)) return;
    const set = handlers.get(fullChannel.slice(keyPrefix.length));
    if (set === undefined) return;
    for (const handler of [...set]) {
      try {
        handler(message);
      } catch (err) {
        log.error({ err }, 'store subscriber threw');
      }
    }
  });

  /** Run one Redis call, bounded by the timeout, mapping every failure to a WardenError. */
  async function bounded<T>(operation: string, call: () => Promise<T>): Promise<T> {
    if (closed) throw storeClosed();
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new WardenError('store_unavailable', `store did not answer ${operation} in time`, { reason: 'store_timeout' })),
        timeoutMs,
      );
    });
    try {
      return await Promise.race([call(), deadline]);
    } catch (err) {
      if (err instanceof WardenError) throw err;
      if (isDataError(err)) {
        throw new WardenError('internal', `store: ${operation} on a value of the wrong type`, { reason: 'store_bad_value', cause: err });
      }
      throw new WardenError('store_unavailable', `store failed during ${operation}`, { reason: 'store_error', cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  const k = (key: string) => `${keyPrefix}${key}`;
  // The limits' keys, prefixed once: a limit's store key is the same string on every request
  // (the limits stage caches it), so the prefixed one is found by that string's cached hash
  // instead of being concatenated (and hashed again) on every decision.
  const limitKeys = new Map<string, string>();
  const lk = (key: string) => {
    let full = limitKeys.get(key);
    if (full === undefined) {
      if (limitKeys.size >= 4096) limitKeys.clear();
      limitKeys.set(key, (full = k(key)));
    }
    return full;
  };
  const limits = createLimitsBatcher((keys, argv) => bounded('limits', () => client.wardenLimits(String(keys.length), ...keys, ...argv)));
  const headroom = options.limitBlocks ?? DEFAULT_BLOCK_OPTIONS.headroom;
  // Block ids: a random prefix per process and a counter (no ':'; distinct from reservation ids by the leading 'q').
  const blockPrefix = `q${randomBytes(6).toString('base64url')}`;
  let blockCounter = 0;
  const blocks =
    headroom > 0
      ? createQuotaBlocks(limits, {
          ...DEFAULT_BLOCK_OPTIONS,
          headroom,
          flushMs: BLOCK_FLUSH_MS,
          newId: () => `${blockPrefix}${(blockCounter++).toString(36)}`,
        })
      : null;

  function makeLock(name: string, token: string): Lock {
    const key = k(lockKey(name));
    return {
      name,
      token,
      async renew(leaseMs: number): Promise<boolean> {
        const lease = String(checkTtlMs(leaseMs, 'leaseMs'));
        return (await bounded('lock renew', () => client.wardenRenew(key, token, lease))) === 1;
      },
      async release(): Promise<boolean> {
        return (await bounded('lock release', () => client.wardenRelease(key, token))) === 1;
      },
    };
  }

  try {
    await bounded('connect', async () => {
      await Promise.all([client.connect(), subscriber.connect()]);
    });
  } catch (err) {
    closed = true; // no "retrying" log lines for a store that was never handed out
    client.disconnect();
    subscriber.disconnect();
    throw new WardenError('store_unavailable', `cannot connect to redis at ${where}`, { reason: 'store_connect_failed', cause: err });
  }
  log.info('redis store connected');

  return {
    driver: 'redis',

    get: (key) => bounded('get', () => client.get(k(key))),

    async set(key, value, setOptions: SetOptions = {}) {
      const args: (string | number)[] = [];
      if (setOptions.ttlMs !== undefined) args.push('PX', checkTtlMs(setOptions.ttlMs));
      if (setOptions.ifAbsent) args.push('NX');
      const reply = await bounded('set', () => client.call('SET', k(key), value, ...args));
      return reply === 'OK';
    },

    async del(key) {
      return (await bounded('del', () => client.del(k(key)))) > 0;
    },

    async compareAndSet(key, expected, next, casOptions = {}) {
      const ttl = casOptions.ttlMs === undefined ? '' : String(checkTtlMs(casOptions.ttlMs));
      const reply = await bounded('compareAndSet', () => client.wardenCas(k(key), expected === null ? '0' : '1', expected ?? '', next, ttl));
      return reply === 1;
    },

    take: (key) => bounded('take', () => client.getdel(k(key))),

    async incr(key, ttlMs) {
      const ttl = String(checkTtlMs(ttlMs));
      return bounded('incr', () => client.wardenIncr(k(key), ttl));
    },

    ttl: (key) => bounded('ttl', () => client.pttl(k(key))),

    listPush(listEntries, listOptions) {
      // Not async: nothing of the batch but the script's arguments stays reachable while Redis answers (see packValues).
      let args: Array<string | number | Buffer> | null;
      try {
        args = listPushArgs(listEntries, listOptions, k);
      } catch (err) {
        return Promise.reject(err as Error);
      }
      if (args === null) return Promise.resolve();
      const call = args;
      return bounded('listPush', () => client.wardenListPush(...(call as [number, ...Array<string | Buffer>]))).then(() => undefined);
    },

    async listRange(key, count) {
      const n = Math.floor(count);
      if (!(n > 0)) return [];
      return bounded('listRange', () => client.lrange(k(key), 0, n - 1));
    },

    keys(prefix) {
      const fullPrefix = k(prefix);
      const pattern = `${globEscape(fullPrefix)}*`;
      return (async function* scan(): AsyncGenerator<string> {
        // SCAN may return a key more than once while Redis rehashes; report each once.
        const seen = new Set<string>();
        let cursor = '0';
        do {
          const [nextCursor, batch] = await bounded('keys', () => client.scan(cursor, 'MATCH', pattern, 'COUNT', 250));
          cursor = nextCursor;
          for (const full of batch) {
            if (seen.has(full)) continue;
            seen.add(full);
            yield full.slice(keyPrefix.length);
          }
        } while (cursor !== '0');
      })();
    },

    async tryLock(name, leaseMs) {
      const lease = checkTtlMs(leaseMs, 'leaseMs');
      const token = newLockToken();
      const reply = await bounded('tryLock', () => client.set(k(lockKey(name)), token, 'PX', lease, 'NX'));
      return reply === 'OK' ? makeLock(name, token) : null;
    },

    async rateLimit(key, spec, rateOptions = {}) {
      if (closed) throw storeClosed();
      const { intervalUs, burst } = checkRateSpec(spec.intervalMs, spec.burst);
      if (blocks && rateOptions.peek !== true) return blocks.rate(lk(key), intervalUs, burst);
      return limits.rate(lk(key), intervalUs, burst, rateOptions.peek === true);
    },

    async budgetReserve(key, spec, reservation, reserveOptions = {}) {
      if (closed) throw storeClosed();
      const windowMs = checkTtlMs(spec.windowMs, 'windowMs');
      const leaseMs = checkTtlMs(reservation.leaseMs, 'leaseMs');
      const max = checkAmount(spec.max, 'max');
      const member = budgetMember(reservation.id, reservation.amount);
      if (blocks && reservation.force !== true && reserveOptions.peek !== true) {
        return blocks.reserve(lk(key), windowMs, max, reservation.amount, reservation.id, member, leaseMs);
      }
      return limits.reserve(lk(key), windowMs, max, reservation.amount, member, leaseMs, reservation.force === true, reserveOptions.peek === true);
    },

    async budgetCommit(key, windowMs, id, amount) {
      if (closed) throw storeClosed();
      const member = budgetMember(id, amount);
      const window = checkTtlMs(windowMs, 'windowMs');
      return blocks?.commit(lk(key), id) ?? limits.commit(lk(key), window, member, amount);
    },

    async budgetRelease(key, id, amount) {
      if (closed) throw storeClosed();
      const member = budgetMember(id, amount);
      return blocks?.release(lk(key), id) ?? limits.release(lk(key), member, amount);
    },

    // Warm paths: decided from a local quota block now (no promise), else undefined (the caller asks Redis).
    rateLimitNow(key, spec) {
      if (closed || !blocks) return undefined;
      checkRateSpec(spec.intervalMs, spec.burst);
      return blocks.rateNow(lk(key));
    },

    budgetReserveNow(key, spec, reservation) {
      if (closed || !blocks || reservation.force === true) return undefined;
      checkTtlMs(spec.windowMs, 'windowMs');
      checkTtlMs(reservation.leaseMs, 'leaseMs');
      checkAmount(spec.max, 'max');
      checkMember(reservation.id, reservation.amount);
      return blocks.reserveNow(lk(key), reservation.amount, reservation.id);
    },

    // The same without an id per reservation: the caller's record holds the block (O(1) to settle, nothing kept per request).
    budgetReserveLocal(key, spec, reservation) {
      if (closed || !blocks || reservation.force === true) return undefined;
      checkTtlMs(spec.windowMs, 'windowMs');
      checkTtlMs(reservation.leaseMs, 'leaseMs');
      checkAmount(spec.max, 'max');
      checkAmount(reservation.amount);
      return blocks.reserveLot(lk(key), reservation.amount, reservation);
    },

    budgetSettleLocal(reservation, commit, watcher) {
      if (closed || !blocks) return undefined;
      return blocks.settleLot(reservation, reservation.amount, commit, watcher);
    },

    budgetSettleNow(key, windowMs, id, amount, commit, watcher) {
      if (closed || !blocks) return undefined;
      checkMember(id, amount);
      if (commit) checkTtlMs(windowMs, 'windowMs');
      return blocks.settleNow(lk(key), id, commit, watcher);
    },

    async budgetRead(key, windowMs) {
      if (closed) throw storeClosed();
      return limits.read(k(key), checkTtlMs(windowMs, 'windowMs'));
    },

    async publish(channel, message) {
      await bounded('publish', () => client.publish(k(channel), message));
    },

    async subscribe(channel, onMessage): Promise<Unsubscribe> {
      let set = handlers.get(channel);
      const first = set === undefined;
      if (set === undefined) handlers.set(channel, (set = new Set()));
      const handler = (message: string) => onMessage(message);
      set.add(handler);
      try {
        // Redis SUBSCRIBE is idempotent; subscribing again also covers a racing unsubscribe.
        await bounded('subscribe', () => subscriber.subscribe(k(channel)));
      } catch (err) {
        set.delete(handler);
        if (first && set.size === 0) handlers.delete(channel);
        throw err;
      }
      return async () => {
        const current = handlers.get(channel);
        if (current === undefined || !current.delete(handler)) return;
        if (current.size > 0) return;
        handlers.delete(channel);
        await bounded('unsubscribe', () => subscriber.unsubscribe(k(channel)));
      };
    },

    async ping() {
      await bounded('ping', () => client.ping());
      // Readiness also covers pub/sub: without it approvals given on another instance go unheard.
      if (subscriber.status !== 'ready') {
        throw new WardenError('store_unavailable', 'redis subscriber connection is down', { reason: 'store_subscriber_down' });
      }
    },

    close() {
      closing ??= (async () => {
        // Blocks go back, and commits and releases still queued go out first (bounded like every call).
        await blocks?.close();
        await limits.drain();
        closed = true;
        handlers.clear();
        // QUIT waits for replies already in flight; fall back to a hard disconnect if Redis is away.
        await Promise.all(
          [client, subscriber].map(async (connection) => {
            try {
              if (connection.status === 'ready') await withTimeout(connection.quit(), timeoutMs);
            } catch {
              // Closing must not fail; the socket is dropped below either way.
            } finally {
              connection.disconnect();
            }
          }),
        );
      })();
      return closing;
    },
  };
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
