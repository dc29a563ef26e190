/**
 * Tool pinning: the first definition of a tool seen on a route (SHA-256 of the
 * canonical JSON of the whole definition, every field) is trusted; a later,
 * different definition blocks the tool (hidden from tools/list, tools/call
 * refused) until an operator accepts it. Records live in the store so every
 * instance agrees and a restart forgets nothing.
 *
 * Why the whole definition: the tools/list filter forwards each tool object
 * as the upstream sent it, and clients act on more than name, description and
 * inputSchema (`annotations.readOnlyHint` is auto-approved by some,
 * `outputSchema` and `title` reach the model, `_meta` and fields added to the
 * protocol later may mean anything). Forwarding only the pinned fields would
 * strip what clients need (`outputSchema` validates structured results) and
 * every field the protocol adds later; pinning every field keeps what the
 * agent receives exactly what was pinned, at the cost that a server changing
 * any field (even a volatile `_meta`) needs a review.
 *
 * Formats: pins made before every field was pinned (format 1, key
 * `mcp:tool:…`, hash of name, description and inputSchema only) are migrated
 * on first sight after the upgrade into format 2 (key `mcp:pin:…`, a new key
 * so replicas still running the old version during a rolling upgrade keep
 * their own records and never see a hash they would call a change). A format
 * 1 pin without a pending change whose old hash, and the annotations it kept
 * for review if any, still match the listed definition is re-pinned as that
 * definition (once: compare-and-set on the new key); anything else becomes a
 * change to review. Until a tool is listed again, its format 1 record decides
 * tools/call as before the upgrade.
 */

import type { Store } from '../store/store.js';
import { canonicalJson, sha256Hex } from '../core/canonical-json.js';

/** A tool definition as the upstream lists it: every field is pinned and forwarded as is. */
export interface ToolDefinition {
  name: string;
  [field: string]: unknown;
}

/** The review copy an older Warden kept (format 1): partial, never enough to accept from. */
export interface LegacyReviewCopy {
  /** Cut at 2,000 characters. */
  description?: string;
  /** Absent on pins made before it was kept, or over 16 KiB. */
  input_schema?: unknown;
  annotations?: unknown;
}

/** A definition seen and not yet accepted. */
export interface PendingDefinition {
  /** Hash of the whole definition (what accepting pins). */
  hash: string;
  seen_at: string;
  /** The whole definition exactly as hashed; absent when over MAX_KEPT_DEFINITION_BYTES (it cannot be reviewed, so not accepted). */
  definition?: ToolDefinition;
  /** Size of its canonical JSON in bytes. */
  bytes?: number;
  /** Set instead of `definition` on a change recorded by an older Warden (not acceptable; recorded whole when next listed). */
  legacy?: LegacyReviewCopy;
}

/** A pin (one per route and tool). Times are ISO strings. */
export interface ToolPinRecord {
  /** 2: every field pinned (key `mcp:pin:`); 1: stored by an older Warden and not listed since the upgrade (read-only here). */
  format: 1 | 2;
  route: string;
  tool: string;
  /** Hash of the accepted definition (the old, partial hash while `legacy` is set). */
  pinned: string;
  pinned_at: string;
  /** The whole pinned definition, as hashed; absent when over MAX_KEPT_DEFINITION_BYTES or while `legacy` is set. */
  definition?: ToolDefinition;
  bytes?: number;
  /**
   * The partial review copy an older Warden kept of the pinned definition: on format 1 records, and on format 2
   * records whose migration found a change (`pinned` is then the old hash, and a change is always pending).
   */
  legacy?: LegacyReviewCopy;
  /** Set while a different definition has been seen and not yet accepted. */
  changed?: PendingDefinition;
  accepted_at?: string;
  /** When a format 1 pin was re-pinned in format 2 (or found changed). */
  migrated_at?: string;
}

/** `pinned` usable; `changed` blocked; `unknown` never seen on this route. */
export type PinStatus = 'pinned' | 'changed' | 'unknown';

/** Why `accept` accepted nothing although a change is pending. */
export type AcceptRefusal = 'not_kept' | 'legacy';

export interface ToolPins {
  /**
   * Record the definitions of a tools/list answer; returns each tool's status (by name). With `bounded`
   * (tools without a rule of their own), a tool new to the route is pinned only while the route has made
   * fewer than MAX_UNRULED_PINS such pins; past that it stays `unknown`.
   */
  observe(route: string, tools: readonly ToolDefinition[], options?: { bounded?: boolean }): Promise<Map<string, PinStatus>>;
  /** The status a tools/call must respect. */
  status(route: string, tool: string): Promise<PinStatus>;
  list(route?: string): Promise<ToolPinRecord[]>;
  get(route: string, tool: string): Promise<ToolPinRecord | null>;
  /**
   * Accept the changed definition; null when the tool is unknown; the record unchanged when nothing was pending,
   * when `expectedHash` is given and the pending definition is no longer that one (it changed again after review),
   * or when the pending definition cannot be reviewed (`refused`: not kept because too large, or recorded by an older Warden).
   */
  accept(route: string, tool: string, expectedHash?: string): Promise<{ record: ToolPinRecord; accepted: boolean; refused?: AcceptRefusal } | null>;
}

const PREFIX = 'mcp:pin:';
/** Format 1 records (read for migration, never written). */
const LEGACY_PREFIX = 'mcp:tool:';

/**
 * Definitions up to this size (canonical JSON, bytes) are kept whole in the
 * pin for review; a larger one is recorded by hash only and can never be
 * accepted (nobody could review it): the tool stays blocked.
 */
export const MAX_KEPT_DEFINITION_BYTES = 1_048_576;

/**
 * Pins are permanent and keyed by names the upstream chooses: a hostile
 * upstream listing thousands of new names on every tools/list would grow the
 * store (and the pin review) without bound. Tools without a rule are never
 * pinned (list-filter.ts); under `other_tools: allow`, tools without a rule of
 * their own get at most this many pins per route, counted in the store
 * (`mcp:pin-count:<route>`); a tool listed after that is not pinned, so it is
 * hidden and refused (`tool_not_pinned`). Tools named in `mcp.tools` are
 * bounded by the configuration and always pinned.
 */
export const MAX_UNRULED_PINS = 1_000;
const COUNT_PREFIX = 'mcp:pin-count:';
/** The counter must outlive the pins it counts, which never expire (`incr` needs a TTL): ten years. */
const COUNT_TTL_MS = 10 * 365 * 24 * 3600 * 1000;

/** The pinned hash of a tool definition: SHA-256 of the canonical JSON of every field. */
export function toolDefinitionHash(tool: ToolDefinition): string {
  return sha256Hex(canonicalJson(tool));
}

/** The hash format 1 pinned: name, description and inputSchema only (for migration). */
function legacyHash(tool: ToolDefinition): string {
  return sha256Hex(canonicalJson({ name: tool.name, description: tool.description ?? null, inputSchema: tool.inputSchema ?? null }));
}

const keyPart = (route: string, tool: string) => `${encodeURIComponent(route)}:${encodeURIComponent(tool)}`;

/** A format 1 record as stored. */
interface LegacyRecord {
  route: string;
  tool: string;
  pinned: string;
  pinned_at: string;
  description?: string;
  input_schema?: unknown;
  annotations?: unknown;
  changed?: { hash: string; seen_at: string; description?: string; input_schema?: unknown; annotations?: unknown };
  accepted_at?: string;
}

const legacyCopy = (r: LegacyReviewCopy): LegacyReviewCopy => ({ description: r.description, input_schema: r.input_schema, annotations: r.annotations });

/** A format 1 record as a (read-only) ToolPinRecord. */
function fromLegacy(r: LegacyRecord): ToolPinRecord {
  return {
    format: 1,
    route: r.route,
    tool: r.tool,
    pinned: r.pinned,
    pinned_at: r.pinned_at,
    legacy: legacyCopy(r),
    ...(r.changed ? { changed: { hash: r.changed.hash, seen_at: r.changed.seen_at, legacy: legacyCopy(r.changed) } } : {}),
    ...(r.accepted_at ? { accepted_at: r.accepted_at } : {}),
  };
}

/** One listed definition: its canonical JSON, hash and size, and the copy kept for review. */
function seenDefinition(tool: ToolDefinition) {
  const json = canonicalJson(tool);
  const bytes = Buffer.byteLength(json);
  return {
    hash: sha256Hex(json),
    bytes,
    /** The whole definition as hashed, when small enough to keep. */
    kept: (): { definition?: ToolDefinition; bytes: number } =>
      bytes <= MAX_KEPT_DEFINITION_BYTES ? { definition: JSON.parse(json) as ToolDefinition, bytes } : { bytes },
  };
}

/** A format 1 pin still describes `tool`: no pending change, the old hash matches, and so do the annotations it kept. */
function legacyMatches(old: LegacyRecord, tool: ToolDefinition): boolean {
  if (old.changed || old.pinned !== legacyHash(tool)) return false;
  // Pins that kept an input schema or annotations kept the annotations too (absent: the tool had none).
  const keptParts = old.input_schema !== undefined || old.annotations !== undefined;
  return !keptParts || canonicalJson(old.annotations ?? null) === canonicalJson(tool.annotations ?? null);
}

/** Tool pins over `store` (state only in the store). */
export function createToolPins(store: Store, now: () => Date = () => new Date()): ToolPins {
  async function read(route: string, tool: string): Promise<{ raw: string | null; record: ToolPinRecord | null }> {
    const raw = await store.get(PREFIX + keyPart(route, tool));
    return { raw, record: raw === null ? null : (JSON.parse(raw) as ToolPinRecord) };
  }

  async function readLegacy(route: string, tool: string): Promise<LegacyRecord | null> {
    const raw = await store.get(LEGACY_PREFIX + keyPart(route, tool));
    return raw === null ? null : (JSON.parse(raw) as LegacyRecord);
  }

  /** Apply `change` with compare-and-set, retrying a few times when another instance wrote first. */
  async function update(
    route: string,
    tool: string,
    change: (current: ToolPinRecord | null) => ToolPinRecord | null | Promise<ToolPinRecord | null>,
  ): Promise<ToolPinRecord | null> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const { raw, record } = await read(route, tool);
      const next = await change(record);
      if (next === null || next === record) return record;
      const nextRaw = JSON.stringify(next);
      if (nextRaw === raw) return record;
      if (await store.compareAndSet(PREFIX + keyPart(route, tool), raw, nextRaw)) return next;
    }
    throw new Error(`tool pin ${route}/${tool} kept changing concurrently`);
  }

  function statusOf(record: ToolPinRecord | null, hash?: string): PinStatus {
    if (!record) return 'unknown';
    // A format 2 record with `legacy` (a migration that found a change) always has a change pending too.
    if (record.changed || record.legacy) return 'changed';
    if (hash !== undefined && hash !== record.pinned) return 'changed';
    return 'pinned';
  }

  return {
    async observe(route, tools, options = {}) {
      const result = new Map<string, PinStatus>();
      await Promise.all(
        tools.map(async (tool) => {
          const seen = seenDefinition(tool);
          const at = now().toISOString();
          const pending = (): PendingDefinition => ({ hash: seen.hash, seen_at: at, ...seen.kept() });
          // A bounded new pin takes its place in the route's count once, however often the write below is retried.
          let room: boolean | undefined;
          const record = await update(route, tool.name, async (current) => {
            if (!current) {
              const old = await readLegacy(route, tool.name);
              if (!old) {
                if (options.bounded) room ??= (await store.incr(COUNT_PREFIX + encodeURIComponent(route), COUNT_TTL_MS)) <= MAX_UNRULED_PINS;
                // No room: not pinned (`unknown`: hidden and refused).
                if (room === false) return null;
                return { format: 2, route, tool: tool.name, pinned: seen.hash, pinned_at: at, ...seen.kept() };
              }
              // Migration of a format 1 pin (see the top of this file): once, by compare-and-set on the new key.
              const base = {
                format: 2 as const,
                route,
                tool: tool.name,
                pinned_at: old.pinned_at,
                migrated_at: at,
                ...(old.accepted_at ? { accepted_at: old.accepted_at } : {}),
              };
              if (legacyMatches(old, tool)) return { ...base, pinned: seen.hash, ...seen.kept() };
              return { ...base, pinned: old.pinned, legacy: legacyCopy(old), changed: pending() };
            }
            if ((current.pinned === seen.hash && !current.legacy) || current.changed?.hash === seen.hash) return current;
            return { ...current, changed: pending() };
          });
          // A name listed twice with two definitions is blocked, whichever came first.
          const status = statusOf(record, seen.hash);
          result.set(tool.name, result.get(tool.name) === 'changed' ? 'changed' : status);
        }),
      );
      return result;
    },
    async status(route, tool) {
      const record = (await read(route, tool)).record;
      if (record) return statusOf(record);
      // Not listed since the upgrade: the format 1 record decides, as it did before.
      const old = await readLegacy(route, tool);
      return old ? (old.changed ? 'changed' : 'pinned') : 'unknown';
    },
    async get(route, tool) {
      const record = (await read(route, tool)).record;
      if (record) return record;
      const old = await readLegacy(route, tool);
      return old ? fromLegacy(old) : null;
    },
    async list(route) {
      const suffix = route === undefined ? '' : `${encodeURIComponent(route)}:`;
      const out = new Map<string, ToolPinRecord>();
      for await (const key of store.keys(PREFIX + suffix)) {
        const raw = await store.get(key);
        if (raw !== null) out.set(key.slice(PREFIX.length), JSON.parse(raw) as ToolPinRecord);
      }
      // Format 1 pins of tools not listed since the upgrade.
      for await (const key of store.keys(LEGACY_PREFIX + suffix)) {
        if (out.has(key.slice(LEGACY_PREFIX.length))) continue;
        const raw = await store.get(key);
        if (raw !== null) out.set(key.slice(LEGACY_PREFIX.length), fromLegacy(JSON.parse(raw) as LegacyRecord));
      }
      return [...out.values()].sort((a, b) => (a.route === b.route ? a.tool.localeCompare(b.tool) : a.route.localeCompare(b.route)));
    },
    async accept(route, tool, expectedHash) {
      let accepted = false;
      let refused: AcceptRefusal | undefined;
      const at = now().toISOString();
      const record = await update(route, tool, (current) => {
        accepted = false;
        refused = undefined;
        if (!current || !current.changed) return current;
        // Only a definition that can be shown whole can be accepted.
        if (current.changed.definition === undefined) {
          refused = current.changed.legacy ? 'legacy' : 'not_kept';
          return current;
        }
        // The operator accepts what they reviewed: a definition that changed again since is not accepted.
        if (expectedHash !== undefined && current.changed.hash !== expectedHash) return current;
        accepted = true;
        const { hash, definition, bytes } = current.changed;
        return { format: 2, route: current.route, tool: current.tool, pinned: hash, pinned_at: at, accepted_at: at, definition, bytes };
      });
      if (record) return { record, accepted, ...(refused ? { refused } : {}) };
      // A change recorded by an older Warden kept only part of the definition: it is recorded whole when next listed.
      const old = await readLegacy(route, tool);
      if (!old) return null;
      return { record: fromLegacy(old), accepted: false, ...(old.changed ? { refused: 'legacy' as const } : {}) };
    },
  };
}

/**
 * Accept the changed definition of `tool` on `route` (with `expectedHash`, only that one).
 * Resolves the new pin, or null when the tool is unknown or nothing was accepted.
 */
export async function acceptToolDefinition(store: Store, route: string, tool: string, expectedHash?: string): Promise<ToolPinRecord | null> {
  const result = await createToolPins(store).accept(route, tool, expectedHash);
  return result?.accepted ? result.record : null;
}

const PINS_CHANGED = 'mcp:pins-changed';

/** Tool pins with the in-process memory of `withPinStatusCache`. */
export interface CachedToolPins extends ToolPins {
  /**
   * `pinned` when that status is remembered and fresh, else undefined (ask
   * `status`): lets a warm tools/call decide without a promise.
   */
  peek(route: string, tool: string): 'pinned' | undefined;
  close(): Promise<void>;
}

/**
 * `pins` with a short in-process memory of tools whose status is `pinned`, so
 * a tools/call does not read the store every time. Only `pinned` is
 * remembered (a blocked tool is always re-read, so an accept takes effect at
 * once); a definition change seen by any instance's tools/list is published
 * and drops the entry everywhere, and `ttlMs` bounds a lost message.
 *
 * One store read per tool at a time: requests that miss while a read is in
 * flight wait for it (at each expiry every concurrent tools/call of a busy
 * tool used to read the store and parse the record, a burst per TTL), and a
 * remembered entry in the last quarter of its TTL is re-read in the background
 * by the request that sees it, so a busy tool's calls keep deciding without a
 * promise. A change (`forget`) drops the read in flight with the entry: later
 * misses read afresh, and what that read finds is not remembered (it may
 * predate the change).
 */
export async function withPinStatusCache(
  pins: ToolPins,
  store: Store,
  ttlMs = 1_000,
  maxEntries = 10_000,
  now: () => number = Date.now,
): Promise<CachedToolPins> {
  // Route → tool → until (ms): a tools/call looks its tool up without building a key string.
  const pinnedUntil = new Map<string, Map<string, number>>();
  let entries = 0;
  // Store reads in flight, by keyOf(route, tool).
  const reading = new Map<string, Promise<PinStatus>>();
  const keyOf = (route: string, tool: string) => `${encodeURIComponent(route)}:${encodeURIComponent(tool)}`;
  const forget = (route: string, tool: string) => {
    const tools = pinnedUntil.get(route);
    if (tools?.delete(tool)) entries--;
    if (reading.size > 0) reading.delete(keyOf(route, tool));
  };
  const remember = (route: string, tool: string) => {
    if (entries >= maxEntries) {
      pinnedUntil.clear();
      entries = 0;
    }
    let tools = pinnedUntil.get(route);
    if (!tools) pinnedUntil.set(route, (tools = new Map()));
    if (!tools.has(tool)) entries++;
    tools.set(tool, now() + ttlMs);
  };
  /** The tool's status from the store, one read at a time (see above); remembered when `pinned` and not dropped meanwhile. */
  const read = (route: string, tool: string): Promise<PinStatus> => {
    const key = keyOf(route, tool);
    const inFlight = reading.get(key);
    if (inFlight !== undefined) return inFlight;
    const pending = pins.status(route, tool);
    reading.set(key, pending);
    // Registered before any caller awaits: the entry is updated before they go on.
    pending.then(
      (status) => {
        if (reading.get(key) !== pending) return; // dropped by a change while reading
        reading.delete(key);
        if (status === 'pinned') remember(route, tool);
        else forget(route, tool);
      },
      () => {
        if (reading.get(key) === pending) reading.delete(key);
      },
    );
    return pending;
  };
  const unsubscribe = await store.subscribe(PINS_CHANGED, (key) => {
    // The key is keyOf(route, tool): both parts are URI-encoded, so the first ':' separates them.
    const colon = key.indexOf(':');
    if (colon < 0) return;
    try {
      forget(decodeURIComponent(key.slice(0, colon)), decodeURIComponent(key.slice(colon + 1)));
    } catch {
      /* not a key this code published */
    }
  });
  /** Remaining time under which a remembered entry is re-read in the background. */
  const refreshMs = ttlMs / 4;
  const peek = (route: string, tool: string): 'pinned' | undefined => {
    const until = pinnedUntil.get(route)?.get(tool);
    if (until === undefined) return undefined;
    const left = until - now();
    if (left <= 0) return undefined;
    // A failed background read changes nothing: the entry expires as it would have.
    if (left < refreshMs) read(route, tool).catch(() => undefined);
    return 'pinned';
  };
  return {
    ...pins,
    async observe(route, tools, options) {
      const statuses = await pins.observe(route, tools, options);
      // Only `changed` can follow a remembered `pinned` (pins are never removed); an `unknown` one was never remembered.
      const changed = [...statuses].filter(([, s]) => s === 'changed').map(([tool]) => tool);
      for (const tool of changed) {
        forget(route, tool);
        await store.publish(PINS_CHANGED, keyOf(route, tool));
      }
      return statuses;
    },
    peek,
    async status(route, tool) {
      if (peek(route, tool) === 'pinned') return 'pinned';
      return read(route, tool);
    },
    async close() {
      pinnedUntil.clear();
      reading.clear();
      entries = 0;
      await unsubscribe();
    },
  };
}
