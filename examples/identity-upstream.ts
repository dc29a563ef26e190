/**
 * An upstream that trusts nobody but Warden: every request must carry a
 * Warden-Identity assertion that verifies with `jose` against Warden's JWKS
 * (signature, `typ`, issuer, audience, max age, a well-formed `act` chain), and
 * methods that need a person's approval must carry the approval claim.
 * Anything else is refused with 401/403. It answers with what it verified.
 *
 * Run it: `node dist/examples/identity-upstream.js` with WARDEN_URL (default
 * http://127.0.0.1:8080), AUDIENCE (default its own origin) and PORT (9102).
 */

import { createServer, type IncomingMessage, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { createRemoteJWKSet, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';

/** What a verified assertion tells the upstream. */
export interface VerifiedIdentity {
  /** The user the request is for (the agent itself for a machine token). */
  user: string;
  /** Acting agents, the one calling Warden first, then the agents before it. */
  agents: string[];
  scope: string[];
  route: string;
  approval?: { id: string; approved_by: string; decided_at: number; digest: string };
  claims: JWTPayload;
}

export interface AssertionPolicy {
  /** Warden's key set: a URL (fetched and cached by jose) or a key resolver. */
  jwks: URL | JWTVerifyGetKey;
  /** Warden's `identity.assertion.issuer` (default its public URL). */
  issuer: string;
  /** This upstream's audience (default in Warden: the upstream's origin). */
  audience: string;
  /** Oldest accepted `iat`, in seconds (Warden's ttl is at most 60). */
  maxAgeSeconds?: number;
  /** Longest accepted `act` chain. */
  maxChain?: number;
  clockToleranceSeconds?: number;
}

/** Thrown when a request must be refused; `status` is 401 (no or bad assertion) or 403 (missing approval). */
export class AssertionRefused extends Error {
  constructor(
    readonly status: 401 | 403,
    message: string,
  ) {
    super(message);
  }
}

/** Verify one assertion (the header value) and return the identity it states. */
export async function verifyAssertion(token: string | undefined, policy: AssertionPolicy): Promise<VerifiedIdentity> {
  if (!token) throw new AssertionRefused(401, 'no Warden-Identity assertion');
  const keys = policy.jwks instanceof URL ? jwksFor(policy.jwks) : policy.jwks;
  let claims: JWTPayload;
  try {
    ({ payload: claims } = await jwtVerify(token, keys, {
      issuer: policy.issuer,
      audience: policy.audience,
      algorithms: ['ES256', 'EdDSA'],
      typ: 'warden-identity+jwt',
      maxTokenAge: policy.maxAgeSeconds ?? 60,
      clockTolerance: policy.clockToleranceSeconds ?? 5,
      requiredClaims: ['iss', 'aud', 'sub', 'exp', 'iat', 'jti', 'act'],
    }));
  } catch (err) {
    throw new AssertionRefused(401, `assertion refused: ${(err as { code?: string }).code ?? (err as Error).message}`);
  }
  const agents: string[] = [];
  let act = claims.act as Record<string, unknown> | undefined;
  while (act !== undefined) {
    if (typeof act !== 'object' || act === null || typeof act.sub !== 'string' || act.sub === '') throw new AssertionRefused(401, 'malformed act chain');
    agents.push(act.sub);
    if (agents.length > (policy.maxChain ?? 8)) throw new AssertionRefused(401, 'act chain too long');
    act = act.act as Record<string, unknown> | undefined;
  }
  if (agents.length === 0) throw new AssertionRefused(401, 'no acting agent');
  const approval = claims.approval as VerifiedIdentity['approval'];
  return {
    user: claims.sub as string,
    agents,
    scope: typeof claims.scope === 'string' ? claims.scope.split(' ') : [],
    route: String(claims.route ?? ''),
    ...(approval ? { approval } : {}),
    claims,
  };
}

const jwksCache = new Map<string, JWTVerifyGetKey>();
function jwksFor(url: URL): JWTVerifyGetKey {
  let keys = jwksCache.get(url.href);
  // jose refetches on an unknown kid (at most once per cooldown): a key Warden rotates in is found.
  if (!keys) jwksCache.set(url.href, (keys = createRemoteJWKSet(url, { timeoutDuration: 5_000, cooldownDuration: 10_000 })));
  return keys;
}

export interface IdentityUpstreamOptions extends Omit<AssertionPolicy, 'audience'> {
  /** Default: this server's own origin (`http://127.0.0.1:<port>`). */
  audience?: string;
  port?: number;
  /** Header the assertion arrives in (default Warden-Identity). */
  header?: string;
  /** Methods refused without an approval claim (default DELETE). */
  approvalRequiredFor?: string[];
}

export interface IdentityUpstream {
  readonly url: string;
  /** Requests accepted and refused so far. */
  readonly accepted: VerifiedIdentity[];
  readonly refused: Array<{ status: number; reason: string }>;
  close(): Promise<void>;
}

/** Start the example upstream on loopback. */
export async function startIdentityUpstream(options: IdentityUpstreamOptions): Promise<IdentityUpstream> {
  const header = (options.header ?? 'Warden-Identity').toLowerCase();
  const needsApproval = new Set(options.approvalRequiredFor ?? ['DELETE']);
  const accepted: VerifiedIdentity[] = [];
  const refused: Array<{ status: number; reason: string }> = [];
  let audience = options.audience ?? '';
  const send = (res: import('node:http').ServerResponse, status: number, value: unknown) => {
    const body = JSON.stringify(value);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const server: Server = createServer((req: IncomingMessage, res) => {
    req.resume();
    const raw = req.headers[header];
    const token = header === 'authorization' ? /^Bearer (.+)$/.exec(String(raw ?? ''))?.[1] : Array.isArray(raw) ? undefined : raw;
    verifyAssertion(token, { ...options, audience })
      .then((identity) => {
        if (needsApproval.has(req.method ?? '') && !identity.approval) throw new AssertionRefused(403, `${req.method} needs a person's approval`);
        accepted.push(identity);
        send(res, 200, {
          ok: true,
          method: req.method,
          path: req.url,
          user: identity.user,
          agents: identity.agents,
          scope: identity.scope,
          approval: identity.approval ?? null,
        });
      })
      .catch((err: unknown) => {
        const status = err instanceof AssertionRefused ? err.status : 500;
        refused.push({ status, reason: (err as Error).message });
        send(res, status, { error: status === 401 ? 'unauthenticated' : status === 403 ? 'forbidden' : 'internal', detail: (err as Error).message });
      });
  });
  server.listen(options.port ?? 0, '127.0.0.1');
  await once(server, 'listening');
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  audience ||= url;
  return {
    url,
    accepted,
    refused,
    close: () =>
      new Promise((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const warden = (process.env.WARDEN_URL ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
  const upstream = await startIdentityUpstream({
    jwks: new URL(`${warden}/.warden/jwks.json`),
    issuer: process.env.ISSUER ?? warden,
    audience: process.env.AUDIENCE,
    port: Number(process.env.PORT ?? 9102),
  });
  process.stdout.write(`[examples] identity upstream ${upstream.url} (trusts ${warden}/.warden/jwks.json)\n`);
  const stop = () => void upstream.close().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
