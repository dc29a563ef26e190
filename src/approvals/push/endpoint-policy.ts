/**
 * Which push endpoints Warden will contact. A subscription's endpoint URL is
 * chosen by whoever holds a console session, so it is attacker-influenced: a
 * push is a server-side POST to it (SSRF). The rule, checked when a browser
 * subscribes and again before every push:
 *
 * - https, default port (443), no credentials in the URL, a host name (never
 *   an IP literal) that matches `endpoint_hosts` (default: the browsers' own
 *   push services);
 * - every address the name resolves to is public unicast (no loopback,
 *   private, link-local, CGNAT, ULA, multicast, documentation or reserved
 *   ranges, no IPv4-mapped/NAT64/6to4 forms), and the connection goes to the
 *   address that was checked (no second lookup an attacker's DNS could answer
 *   differently);
 * - `allow_loopback` (tests only) additionally admits http(s) to 127.0.0.0/8 or
 *   [::1] literals on any port.
 *
 * Anything else, or a resolver error, refuses the push (fail closed).
 */

import { lookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

export interface EndpointPolicy {
  /** Host names; `*.example.com` matches any subdomain of example.com (not example.com itself). */
  readonly hosts: readonly string[];
  readonly allowLoopback: boolean;
}

/** Why an endpoint was refused (logged and counted; never the URL itself). */
export type EndpointRefusal = 'not_a_url' | 'too_long' | 'scheme' | 'credentials' | 'port' | 'ip_literal' | 'host_not_allowed' | 'address_not_public' | 'dns';

export type EndpointCheck = { ok: true; url: URL; loopback: boolean } | { ok: false; reason: EndpointRefusal };

/** Longest endpoint accepted (real ones are well under 600 characters). */
export const MAX_ENDPOINT_LENGTH = 1024;

const LOOPBACK_LITERAL = /^(127(\.\d{1,3}){3}|\[::1\])$/;

function hostAllowed(host: string, patterns: readonly string[]): boolean {
  return patterns.some((p) => (p.startsWith('*.') ? host.endsWith(p.slice(1)) && host.length > p.length - 1 : host === p));
}

/** The static part of the rule (no DNS): what a subscription may be stored with. */
export function checkEndpointUrl(raw: string, policy: EndpointPolicy): EndpointCheck {
  if (raw.length > MAX_ENDPOINT_LENGTH) return { ok: false, reason: 'too_long' };
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return { ok: false, reason: 'not_a_url' };
  }
  if (url.username || url.password) return { ok: false, reason: 'credentials' };
  if (policy.allowLoopback && LOOPBACK_LITERAL.test(url.hostname) && (url.protocol === 'https:' || url.protocol === 'http:')) {
    return { ok: true, url, loopback: true };
  }
  if (url.protocol !== 'https:') return { ok: false, reason: 'scheme' };
  if (url.port !== '') return { ok: false, reason: 'port' };
  const bare = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(bare) !== 0) return { ok: false, reason: 'ip_literal' };
  // WHATWG URL lower-cases and IDNA-encodes the host; a trailing dot would dodge an exact match.
  if (url.hostname.endsWith('.') || !hostAllowed(url.hostname, policy.hosts)) return { ok: false, reason: 'host_not_allowed' };
  return { ok: true, url, loopback: false };
}

// Two lists: a BlockList checks an IPv4 address against IPv6 rules too (as ::ffff:a.b.c.d), which would block every IPv4 address.
const blocked4 = new BlockList();
const blocked6 = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  blocked4.addSubnet(net, prefix, 'ipv4');
}
for (const [net, prefix] of [
  ['::', 96], // unspecified, loopback and IPv4-compatible (::a.b.c.d, deprecated: the embedded address would be reached)
  ['::ffff:0:0', 96], // IPv4-mapped: the embedded address would be reached
  ['64:ff9b::', 96], // NAT64
  ['64:ff9b:1::', 48],
  ['100::', 64], // discard
  ['2001::', 23], // IETF protocol assignments (Teredo, ORCHID, …)
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4: embeds an IPv4 address
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
] as const) {
  blocked6.addSubnet(net, prefix, 'ipv6');
}

/** A public unicast address (false for anything in the ranges above or not an IP at all). */
export function isPublicAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  return family === 4 ? !blocked4.check(address, 'ipv4') : !blocked6.check(address, 'ipv6');
}

/** Where to connect: the checked address, or a refusal. */
export type Resolved = { ok: true; address: string; family: 4 | 6 } | { ok: false; reason: EndpointRefusal };

/**
 * Resolve the endpoint's host and check every address; the caller connects to
 * the one returned. Loopback-allowed literals are returned as they are.
 */
export async function resolveEndpoint(
  check: Extract<EndpointCheck, { ok: true }>,
  timeoutMs: number,
  resolve: (host: string) => Promise<Array<{ address: string; family: number }>> = (host) => lookup(host, { all: true, verbatim: true }),
): Promise<Resolved> {
  const host = check.url.hostname.replace(/^\[|\]$/g, '');
  if (check.loopback) return { ok: true, address: host, family: isIP(host) === 6 ? 6 : 4 };
  let addresses: Array<{ address: string; family: number }>;
  let timer: NodeJS.Timeout | undefined;
  try {
    addresses = await Promise.race([
      resolve(host),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('dns timeout')), timeoutMs);
      }),
    ]);
  } catch {
    return { ok: false, reason: 'dns' };
  } finally {
    clearTimeout(timer);
  }
  // One non-public answer refuses the lot: a name that mixes public and internal addresses is not a push service.
  if (addresses.length === 0 || !addresses.every((a) => isPublicAddress(a.address))) return { ok: false, reason: 'address_not_public' };
  const first = addresses[0]!;
  return { ok: true, address: first.address, family: first.family === 6 ? 6 : 4 };
}
