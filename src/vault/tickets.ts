/**
 * Single-use secrets of the linking flow: the connect ticket handed out with
 * `connection_required`, and the OAuth `state` that ties the callback to the
 * browser that started it. Only SHA-256 digests are used as store keys, so a
 * store dump does not contain a usable ticket or state (the copy of a ticket
 * kept for handing it out again is sealed with the vault key).
 */

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Store } from '../store/store.js';
import type { VaultCipher } from './crypto.js';

/** What a connect ticket is bound to. */
export interface ConnectTicket {
  user: string;
  agent: string;
  provider: string;
  /** Provider scopes the connection must have. */
  scopes: string[];
  issuedAt: number;
}

/** A linking flow in progress (between /connect and /callback). */
export interface LinkFlow {
  user: string;
  agent: string;
  provider: string;
  scopes: string[];
  codeVerifier: string;
  redirectUri: string;
  startedAt: number;
}

/** A random URL-safe secret with 256 bits of entropy. */
export function newSecret(): string {
  return randomBytes(32).toString('base64url');
}

/** SHA-256 of a secret, hex; used as the store key suffix. */
export function digest(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/** Constant-time string equality (for state vs cookie). */
export function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

// Tickets and states are 43 base64url characters; anything else is refused before a store call.
const SECRET_SHAPE = /^[A-Za-z0-9_-]{43}$/;
/** Rounds of `issueTicket` against concurrent replacements before it keeps its own ticket. */
const REUSE_ATTEMPTS = 3;

/** Store-backed tickets and flows. */
export interface LinkSecrets {
  /**
   * A ticket for this binding: the one already handed out while it is unused
   * and has at least half its life left, else a new one.
   */
  issueTicket(ticket: Omit<ConnectTicket, 'issuedAt'>): Promise<string>;
  /** Takes (single use) the ticket; null when unknown, used or expired. */
  takeTicket(ticket: string): Promise<ConnectTicket | null>;
  /** Reads the ticket without using it up (the confirmation page a link preview may also fetch). */
  peekTicket(ticket: string): Promise<ConnectTicket | null>;
  /** Stores the flow under its state; returns the state. */
  startFlow(flow: Omit<LinkFlow, 'startedAt'>): Promise<string>;
  /** Takes (single use) the flow of `state`; null when unknown, used or expired. */
  takeFlow(state: string): Promise<LinkFlow | null>;
}

/** Options of `createLinkSecrets`. */
export interface LinkSecretsOptions {
  now?: () => number;
  /**
   * Seals the ticket kept under its binding for reuse (the vault cipher).
   * Without one, every `issueTicket` makes a new ticket.
   */
  cipher?: Pick<VaultCipher, 'seal' | 'open'>;
}

/** Tickets and flows in `store`, each living `ttlMs`. */
export function createLinkSecrets(store: Store, ttlMs: number, options: LinkSecretsOptions = {}): LinkSecrets {
  const now = options.now ?? Date.now;
  const cipher = options.cipher;
  const ticketKey = (t: string) => `vault:ticket:${digest(t)}`;
  const flowKey = (s: string) => `vault:flow:${digest(s)}`;
  const reuseKey = (t: Omit<ConnectTicket, 'issuedAt'>) => `vault:ticket-for:${digest(JSON.stringify([t.user, t.agent, t.provider, [...t.scopes]]))}`;

  /** Stores `value` under a new secret's key; returns the secret. */
  async function put(key: (secret: string) => string, value: object): Promise<string> {
    const secret = newSecret();
    await store.set(key(secret), JSON.stringify(value), { ttlMs });
    return secret;
  }

  /** Reads (`take`: single use) what `secret` names; null for a malformed secret (no store call), unknown, used or expired. */
  async function read<T>(how: 'get' | 'take', key: (secret: string) => string, secret: string): Promise<T | null> {
    if (!SECRET_SHAPE.test(secret)) return null;
    const raw = await store[how](key(secret));
    if (raw === null) return null;
    try {
      return JSON.parse(raw) as T;
    } catch {
      return null;
    }
  }

  /** The ticket sealed in `raw` under `slot`; null when it does not open (tampered, or sealed with a retired key). */
  function openReusable(sealer: NonNullable<LinkSecretsOptions['cipher']>, raw: string, slot: string): string | null {
    try {
      const ticket = sealer.open(raw, slot).toString('utf8');
      return SECRET_SHAPE.test(ticket) ? ticket : null;
    } catch {
      return null;
    }
  }

  /**
   * Every refused request of an agent would otherwise leave a ticket in the store
   * for `ttlMs` (a retry loop, or an agent bent on filling the store): the binding
   * keeps the one it was handed, so the store holds at most a few per (user,
   * agent, provider, scopes). Reused only while it is unused and has at least
   * half its life left, so a link handed out always has time to be opened.
   */
  async function issueTicket(binding: Omit<ConnectTicket, 'issuedAt'>): Promise<string> {
    const fresh = () => put(ticketKey, { ...binding, issuedAt: now() } satisfies ConnectTicket);
    if (!cipher) return fresh();
    const slot = reuseKey(binding);
    for (let attempt = 1; ; attempt += 1) {
      const raw = await store.get(slot);
      const current = raw === null ? null : openReusable(cipher, raw, slot);
      if (current !== null && (await store.ttl(ticketKey(current))) >= ttlMs / 2) return current;
      const ticket = await fresh();
      if (await store.compareAndSet(slot, raw, cipher.seal(ticket, slot), { ttlMs })) return ticket;
      // Another request replaced it at the same moment: use theirs, so ours does not pile up.
      if (attempt === REUSE_ATTEMPTS) return ticket;
      await store.del(ticketKey(ticket));
    }
  }

  return {
    issueTicket,
    takeTicket: (ticket) => read<ConnectTicket>('take', ticketKey, ticket),
    peekTicket: (ticket) => read<ConnectTicket>('get', ticketKey, ticket),
    startFlow: (flow) => put(flowKey, { ...flow, startedAt: now() } satisfies LinkFlow),
    takeFlow: (state) => read<LinkFlow>('take', flowKey, state),
  };
}

/** True when `value` has the shape of a ticket or state. */
export function isSecretShaped(value: string | undefined): value is string {
  return typeof value === 'string' && SECRET_SHAPE.test(value);
}
