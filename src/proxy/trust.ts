/** `server.trusted_proxies`: which peers' X-Forwarded-* headers are believed. */

import { BlockList, isIPv4 } from 'node:net';

export interface TrustedProxies {
  readonly size: number;
  check(ip: string): boolean;
}

/** Build the matcher once at load. */
export function trustedProxies(cidrs: readonly string[]): TrustedProxies {
  const list = new BlockList();
  for (const c of cidrs) {
    const [addr, bits] = c.split('/');
    const type = isIPv4(addr) ? 'ipv4' : 'ipv6';
    if (bits === undefined) list.addAddress(addr, type);
    else list.addSubnet(addr, Number(bits), type);
  }
  return { size: cidrs.length, check: (ip) => list.check(ip, isIPv4(ip) ? 'ipv4' : 'ipv6') };
}

export function isTrusted(t: TrustedProxies, ip: string): boolean {
  const plain = ip.startsWith('::ffff:') ? ip.slice(7) : ip;
  try {
    return t.check(plain);
  } catch {
    return false;
  }
}
