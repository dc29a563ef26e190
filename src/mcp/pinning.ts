/**
 * Tool pinning: the first definition of a tool seen on a route (SHA-256 of the
 * canonical JSON of name, description and inputSchema) is trusted; a later,
 * different definition blocks the tool (hidden from tools/list, tools/call
 * refused) until an operator accepts it. Records live in the store so every
 * instance agrees and a restart forgets nothing.
 */

import type { Store } from '../store/store.js';
import { canonicalJson, sha256Hex } from '../core/canonical-json.js';

/** The parts of a tool definition that are pinned. */
export interface ToolDefinition {
  name: string;
  description?: unknown;
  inputSchema?: unknown;
  /** Shown to the operator next to the pinned parts; not part of the pinned hash. */
  annotations?: unknown;
}

/** A stored pin (one per route and tool). Times are ISO strings. */
export interface ToolPinRecord {
  route: string;
  tool: string;
  /** Hash of the accepted definition. */
  pinned: string;
  pinned_at: string;
  /** Description of the accepted definition (for the operator's review). */
  description?: string;
  /** inputSchema and annotations of the accepted definition (for the operator's diff; absent on pins made before they were kept, or too large). */
  input_schema?: unknown;
  annotations?: unknown;
  /** Set while a different definition has been seen and not yet accepted. */
  changed?: { hash: string; seen_at: string; description?: string; input_schema?: unknown; annotations?: unknown };
  accepted_at?: string;
}

/** `pinned` usable; `changed` blocked; `unknown` never seen on this route. */
export type PinStatus = 'pinned' | 'changed' | 'unknown';

export interface ToolPins {
  /** Record the definitions of a tools/list answer; returns each tool's status (by name). */
  observe(route: string, tools: readonly ToolDefinition[]): Promise<Map<string, PinStatus>>;
  /** The status a tools/call must respect. */
  status(route: string, tool: string): Promise<PinStatus>;
  list(route?: string): Promise<ToolPinRecord[]>;
  get(route: string, tool: string): Promise<ToolPinRecord | null>;
  /**
   * Accept the changed definition; null when the tool is unknown; the record unchanged when nothing was pending,
   * or when `expectedHash` is given and the pending definition is no longer that one (it changed again after review).
   */
  accept(route: string, tool: string, expectedHash?: string): Promise<{ record: ToolPinRecord; accepted: boolean } | null>;
}

const PREFIX = 'mcp:tool:';
const MAX_DESCRIPTION = 2_000;

/** The pinned hash of a tool definition. */
export function toolDefinitionHash(tool: ToolDefinition): string {
  return sha256Hex(canonicalJson({ name: tool.name, description: tool.description ?? null, inputSchema: tool.inputSchema ?? null }));
}

function pinKey(route: string, tool: string): string {
  return `${PREFIX}${encodeURIComponent(route)}:${encodeURIComponent(tool)}`;
}

function describe(tool: ToolDefinition): string | undefined {
  return typeof tool.description === 'string' ? tool.description.slice(0, MAX_DESCRIPTION) : undefined;
}

const MAX_KEPT_JSON = 16_384;

/** `value` when its JSON is small enough to keep in the pin for the operator's review, else undefined. */
function kept(value: unknown): unknown {
  if (value === undefined) return undefined;
  const json = canonicalJson(value);
  return json.length <= MAX_KEPT_JSON ? (JSON.parse(json) as unknown) : undefined;
}

/** The reviewable parts of `tool` (undefined values are dropped by JSON.stringify). */
function reviewParts(tool: ToolDefinition): { description?: string; input_schema?: unknown; annotations?: unknown } {
  return { description: describe(tool), input_schema: kept(tool.inputSchema), annotations: kept(tool.annotations) };
}

/** Tool pins over `store` (state only in the store). */
export function createToolPins(store: Store, now: () => Date = () => new Date()): ToolPins {
  async function read(route: string, tool: string): Promise<{ raw: string | null; record: ToolPinRecord | null }> {
    const raw = await store.get(pinKey(route, tool));
    return { raw, record: raw === null ? null : (JSON.parse(raw) as ToolPinRecord) };
  }

  /** Apply `change` with compare-and-set, retrying a few times when another instance wrote first. */
  async function update(route: string, tool: string, change: (current: ToolPinRecord | null) => ToolPinRecord | null): Promise<ToolPinRecord | null> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const { raw, record } = await read(route, tool);
      const next = change(record);
      if (next === null || next === record) return record;
      const nextRaw = JSON.stringify(next);
      if (nextRaw === raw) return record;
      if (await store.compareAndSet(pinKey(route, tool), raw, nextRaw)) return next;
    }
    throw new Error(`tool pin ${route}/${tool} kept changing concurrently`);
  }

  function statusOf(record: ToolPinRecord | null, hash?: string): PinStatus {
    if (!record) return 'unknown';
    if (record.changed) return 'changed';
    if (hash !== undefined && hash !== record.pinned) return 'changed';
    return 'pinned';
  }

  return {
    async observe(route, tools) {
      const result = new Map<string, PinStatus>();
      await Promise.all(
        tools.map(async (tool) => {
          const hash = toolDefinitionHash(tool);
          const at = now().toISOString();
          const record = await update(route, tool.name, (current) => {
            if (!current) return { route, tool: tool.name, pinned: hash, pinned_at: at, ...reviewParts(tool) };
            if (current.pinned === hash || current.changed?.hash === hash) return current;
            return { ...current, changed: { hash, seen_at: at, ...reviewParts(tool) } };
          });
          // A name listed twice with two definitions is blocked, whichever came first.
          const status = statusOf(record, hash);
          result.set(tool.name, result.get(tool.name) === 'changed' ? 'changed' : status);
        }),
      );
      return result;
    },
    async status(route, tool) {
      return statusOf((await read(route, tool)).record);
    },
    async get(route, tool) {
      return (await read(route, tool)).record;
    },
    async list(route) {
      const prefix = route === undefined ? PREFIX : `${PREFIX}${encodeURIComponent(route)}:`;
      const out: ToolPinRecord[] = [];
      for await (const key of store.keys(prefix)) {
        const raw = await store.get(key);
        if (raw !== null) out.push(JSON.parse(raw) as ToolPinRecord);
      }
      return out.sort((a, b) => (a.route === b.route ? a.tool.localeCompare(b.tool) : a.route.localeCompare(b.route)));
    },
    async accept(route, tool, expectedHash) {
      let accepted = false;
      const at = now().toISOString();
      const record = await update(route, tool, (current) => {
        accepted = false;
        if (!current || !current.changed) return current;
        // The operator accepts what they reviewed: a definition that changed again since is not accepted.
        if (expectedHash !== undefined && current.changed.hash !== expectedHash) return current;
        accepted = true;
        const { changed, description: _d, input_schema: _i, annotations: _a, ...rest } = current;
        return {
          ...rest,
          pinned: changed.hash,
          pinned_at: at,
          accepted_at: at,
          description: changed.description,
          input_schema: changed.input_schema,
          annotations: changed.annotations,
        };
      });
      return record ? { record, accepted } : null;
    },
  };
}

/**
 * Accept the changed definition of `tool` on `route` (`warden mcp accept`).
 * Resolves the new pin, or null when the tool is unknown or nothing was pending.
 */
export async function acceptToolDefinition(store: Store, route: string, tool: string): Promise<ToolPinRecord | null> {
  const result = await createToolPins(store).accept(route, tool);
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
    async observe(route, tools) {
      const statuses = await pins.observe(route, tools);
      const changed = [...statuses].filter(([, s]) => s !== 'pinned').map(([tool]) => tool);
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
