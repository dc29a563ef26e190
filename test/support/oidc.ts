/**
 * A real OpenID provider (npm `oidc-provider` v9) as a test peer, on a free
 * loopback port. It issues RFC 9068 JWT access tokens (client credentials and
 * authorization code + PKCE with a scripted login, no HTML forms), optional
 * rotating refresh tokens, and CIBA (poll mode) whose decisions the test makes.
 * It also counts requests per path, can simulate an outage, rotate its keys,
 * and hands out its signing key so tests can forge tokens.
 *
 * Quick use:
 * ```ts
 * const op = await startOidcProvider({ audience: 'http://127.0.0.1:8080' });
 * const machine = await op.clientCredentialsToken(op.clients.machine.client_id, 'read');
 * const { access_token } = await op.userAccessToken({ accountId: 'alice', scope: 'read write' });
 * await op.stop();
 * ```
 */

import { createHash, generateKeyPairSync, randomBytes, randomUUID, type JsonWebKey } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

// oidc-provider ships no type declarations; a variable specifier keeps tsc from
// looking for them and the small interfaces below describe what is used.
const OIDC_PROVIDER_MODULE = 'oidc-provider';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- untyped library
type AnyProvider = any;

/** Client metadata as oidc-provider takes it (snake_case, RFC 7591). */
export interface OidcClientSpec {
  client_id: string;
  /** Omit for a public client (then set `token_endpoint_auth_method: 'none'`). */
  client_secret?: string;
  redirect_uris?: string[];
  /** Default `['authorization_code', 'refresh_token']`. */
  grant_types?: string[];
  /** Default `['code']`. */
  response_types?: string[];
  /** Space-separated scopes the client may request (optional). */
  scope?: string;
  /** Default `client_secret_basic` (or `none` without a secret). */
  token_endpoint_auth_method?: string;
  [metadata: string]: unknown;
}

/** What the scripted login sees for one interaction (login or consent prompt). */
export interface OidcInteraction {
  uid: string;
  /** `login` or `consent`. */
  prompt: string;
  clientId: string;
  /** The authorization request parameters (scope, login_hint, resource, state, ...). */
  params: Record<string, unknown>;
  /** Account already logged in (consent prompt), if any. */
  accountId?: string;
}

/** How the scripted login answers: log in as an account (and consent to everything), or refuse. */
export type OidcInteractionOutcome = { accountId: string } | { error: string; error_description?: string };

/** A CIBA authentication request as the provider received it. */
export interface BackchannelRequestInfo {
  authReqId: string;
  accountId: string;
  clientId: string;
  bindingMessage?: string;
  loginHint?: string;
  scope: string;
  params: Record<string, unknown>;
}

/** Options of `startOidcProvider`. All optional. */
export interface StartOidcProviderOptions {
  /**
   * Default resource indicator and `aud` of every access token (RFC 8707). Any
   * other `resource` a client asks for is accepted and becomes the `aud`.
   * Default `https://warden.test`.
   */
  audience?: string;
  /** Scopes the resource server knows (tokens only carry these). Default: read write delete admin github files mcp. */
  resourceScopes?: string[];
  /** Access token (and client credentials) lifetime in seconds; default 600. */
  accessTokenTtl?: number;
  /** JWS algorithm of access tokens: `RS256` (default), `PS256` or `ES256`. */
  accessTokenAlg?: 'RS256' | 'PS256' | 'ES256';
  /** Issue a refresh token on every code exchange (no offline_access needed) and rotate it on use. */
  refreshTokens?: boolean;
  /** Refresh token lifetime in seconds (default 1 day). */
  refreshTokenTtl?: number;
  /** More clients (e.g. a vault upstream client with a browser redirect URI). */
  clients?: OidcClientSpec[];
  /** Account used by the scripted login when the request has no `login_hint`; default `alice`. */
  defaultAccountId?: string;
  /** Replace the scripted login: decide per interaction (e.g. deny consent). */
  interaction?: (interaction: OidcInteraction) => OidcInteractionOutcome | Promise<OidcInteractionOutcome>;
  /** Extra claims in access tokens (e.g. `act`, `email`); `accountId` is undefined for client credentials. */
  extraTokenClaims?: (info: { clientId: string; accountId?: string; scope?: string }) => Record<string, unknown> | undefined;
  /** Claims of accounts for ID tokens / userinfo, by account id (default: `email` = `<id>@example.test`). */
  accounts?: Record<string, Record<string, unknown>>;
  /**
   * Account claims released with the `openid` scope and put in the ID token
   * itself (e.g. `['roles']` for a role claim a relying party reads from it).
   * Default none: the ID token of the code flow carries `sub` only.
   */
  idTokenClaims?: string[];
  /** Enable CIBA (poll mode) and register `clients.ciba`. */
  ciba?: {
    /** Called when a backchannel request arrives (after it is stored); approve/deny later with the returned helpers. */
    onBackchannelRequest?: (request: BackchannelRequestInfo) => void | Promise<void>;
    /** Map `login_hint` to an account id; return undefined to refuse the hint (unknown_user_id). Default: the hint itself. */
    processLoginHint?: (loginHint: string) => string | undefined | Promise<string | undefined>;
    /** Refuse a binding message by throwing; default accepts any. */
    validateBindingMessage?: (bindingMessage: string | undefined) => void | Promise<void>;
  };
  /** Host to bind; default 127.0.0.1. */
  host?: string;
}

/** A successful token endpoint answer. */
export interface OidcTokenResponse {
  access_token: string;
  token_type: string;
  expires_in?: number;
  scope?: string;
  id_token?: string;
  refresh_token?: string;
  [k: string]: unknown;
}

/** Thrown by the token helpers when the provider answers an OAuth error. */
export class OidcTokenError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly errorDescription?: string,
  ) {
    super(`${error}${errorDescription ? `: ${errorDescription}` : ''} (HTTP ${status})`);
    this.name = 'OidcTokenError';
  }
}

/** The provider's current signing key, for forging tokens in tests. */
export interface OidcSigningKey {
  kid: string;
  alg: string;
  /** Private JWK (with `kid`); import with jose `importJWK(privateJwk, alg)`. */
  privateJwk: JsonWebKey & { kid: string };
  publicJwk: JsonWebKey & { kid: string };
}

/** A running provider. */
export interface OidcTestProvider {
  /** Issuer identifier (`http://127.0.0.1:<port>`, no trailing slash) — the `iss` of its tokens. */
  readonly issuer: string;
  /** Base URL (same as `issuer`). */
  readonly url: string;
  /** Default `aud` of access tokens. */
  readonly audience: string;
  readonly jwksUri: string;
  readonly discoveryUrl: string;
  /** Path of the JWKS endpoint (for `requestCount`). */
  readonly jwksPath: string;
  /** The live oidc-provider instance (replaced by `rotateKeys`). */
  readonly provider: AnyProvider;
  /**
   * Registered clients with their secrets: `machine` (client credentials),
   * `app` (authorization code + PKCE, confidential), `ciba` (only with `ciba`),
   * plus every caller-supplied client by its id.
   */
  readonly clients: Record<string, { client_id: string; client_secret?: string }>;
  /** CIBA requests received so far, oldest first. */
  readonly backchannelRequests: readonly BackchannelRequestInfo[];

  /** Access token from the client credentials grant (a machine token: `sub` = client id). */
  clientCredentialsToken(clientId: string, scope?: string, resource?: string): Promise<string>;
  /**
   * Access token for a user via authorization code + PKCE, with the scripted
   * login (no forms). `clientId` defaults to `clients.app`; `scope` gets
   * `openid` prepended when missing (so an `id_token` comes back too) unless
   * `openid: false` (a plain OAuth 2.0 request, as a non-OIDC upstream gets).
   */
  userAccessToken(input: {
    accountId: string;
    clientId?: string;
    scope?: string;
    resource?: string;
    redirectUri?: string;
    openid?: boolean;
  }): Promise<OidcTokenResponse>;
  /** Exchange a refresh token (rotation applies when `refreshTokens` is on). */
  refresh(clientId: string, refreshToken: string, resource?: string): Promise<OidcTokenResponse>;
  /** Any token endpoint request, authenticated as `clientId` the way it is registered. */
  tokenRequest(clientId: string, params: Record<string, string>): Promise<OidcTokenResponse>;
  /** Approve a CIBA request (grants its scopes and resource); the client's next poll gets tokens. */
  approveBackchannel(authReqId: string): Promise<void>;
  /** Deny a CIBA request; the client's next poll gets `access_denied`. */
  denyBackchannel(authReqId: string): Promise<void>;
  /** The key access tokens are signed with now. */
  signingKey(): OidcSigningKey;
  /** The public key set the provider serves. */
  publicJwks(): { keys: Array<JsonWebKey & { kid: string }> };
  /**
   * Rotate: a new signing key is generated and published first, the old keys
   * stay published (so old tokens still verify). Returns the new kid. State
   * (grants, refresh tokens) survives: oidc-provider's memory adapter is shared.
   */
  rotateKeys(): Promise<string>;
  /** Requests received for a path (e.g. `jwksPath`) since start or `resetCounts`. */
  requestCount(path: string): number;
  resetCounts(): void;
  /**
   * Simulate an outage of the given paths (default JWKS and discovery):
   * `error` answers 503, `hang` never answers. `setOutage(null)` ends it.
   */
  setOutage(outage: { paths?: string[]; mode?: 'error' | 'hang' } | null): void;
  stop(): Promise<void>;
}

/**
 * Cookie a browser test sets on the provider's origin to choose who the
 * scripted login signs in (`context.addCookies([{ name: LOGIN_AS_COOKIE,
 * value: 'bob', url: op.issuer }])`), so each Chromium context is one person.
 */
export const LOGIN_AS_COOKIE = 'test_login_as';

function loginAsOf(req: IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === LOGIN_AS_COOKIE) return decodeURIComponent(part.slice(eq + 1).trim()) || undefined;
  }
  return undefined;
}

const DEFAULT_SCOPES = ['read', 'write', 'delete', 'admin', 'github', 'files', 'mcp'];
const CIBA_GRANT = 'urn:openid:params:grant-type:ciba';
const UNUSED_REDIRECT = 'http://127.0.0.1:9/cb';

function newSigningJwk(alg: string): JsonWebKey & { kid: string } {
  const pair = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = pair.privateKey.export({ format: 'jwk' }) as JsonWebKey;
  return { ...jwk, kid: `k-${randomBytes(6).toString('hex')}`, use: 'sig' } as JsonWebKey & { kid: string };
}

function publicPart(jwk: JsonWebKey & { kid: string }): JsonWebKey & { kid: string } {
  const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
  return pub as JsonWebKey & { kid: string };
}

function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** A minimal cookie jar: name → value, ignoring paths (one flow at a time). */
function createCookieJar() {
  const cookies = new Map<string, string>();
  return {
    store(res: Response) {
      for (const line of res.headers.getSetCookie()) {
        const [pair, ...attrs] = line.split(';');
        const eq = pair.indexOf('=');
        const name = pair.slice(0, eq).trim();
        const value = pair.slice(eq + 1).trim();
        const expired = attrs.some((a) => {
          const [k, v] = a.trim().split('=');
          if (k.toLowerCase() === 'max-age') return Number(v) <= 0;
          if (k.toLowerCase() === 'expires') return Date.parse(v) <= Date.now();
          return false;
        });
        if (expired || value === '') cookies.delete(name);
        else cookies.set(name, value);
      }
    },
    header: () => [...cookies].map(([k, v]) => `${k}=${v}`).join('; '),
  };
}

/**
 * oidc-provider storage kept in this test peer's closure (not the library's
 * process-wide quick-start adapter), so a key rotation — which builds a new
 * Provider — keeps grants, sessions and refresh tokens. Bounded: oldest
 * entries go first beyond `maxEntries`.
 */
function createAdapterFactory(maxEntries = 20_000) {
  const store = new Map<string, { payload: Record<string, any>; expiresAt: number }>();
  const get = (key: string) => {
    const hit = store.get(key);
    if (!hit) return undefined;
    if (hit.expiresAt <= Date.now()) {
      store.delete(key);
      return undefined;
    }
    return hit;
  };
  const put = (key: string, payload: Record<string, any>, expiresIn?: number) => {
    store.delete(key);
    store.set(key, { payload, expiresAt: expiresIn ? Date.now() + expiresIn * 1000 : Number.POSITIVE_INFINITY });
    while (store.size > maxEntries) store.delete(store.keys().next().value as string);
  };
  return class TestAdapter {
    constructor(readonly model: string) {}
    key(id: string) {
      return `${this.model}:${id}`;
    }
    async upsert(id: string, payload: Record<string, any>, expiresIn?: number) {
      put(this.key(id), payload, expiresIn);
      if (payload.grantId) {
        const gk = `grant:${payload.grantId}`;
        const members = (get(gk)?.payload.members as string[] | undefined) ?? [];
        put(gk, { members: [...members, this.key(id)] });
      }
      if (payload.uid) put(`uid:${payload.uid}`, { id }, expiresIn);
      if (payload.userCode) put(`userCode:${payload.userCode}`, { id }, expiresIn);
    }
    async find(id: string) {
      return get(this.key(id))?.payload;
    }
    async findByUid(uid: string) {
      const ref = get(`uid:${uid}`)?.payload.id as string | undefined;
      return ref === undefined ? undefined : this.find(ref);
    }
    async findByUserCode(userCode: string) {
      const ref = get(`userCode:${userCode}`)?.payload.id as string | undefined;
      return ref === undefined ? undefined : this.find(ref);
    }
    async consume(id: string) {
      const hit = get(this.key(id));
      if (hit) hit.payload.consumed = Math.floor(Date.now() / 1000);
    }
    async destroy(id: string) {
      store.delete(this.key(id));
    }
    async revokeByGrantId(grantId: string) {
      const gk = `grant:${grantId}`;
      for (const k of (get(gk)?.payload.members as string[] | undefined) ?? []) store.delete(k);
      store.delete(gk);
    }
  };
}

/**
 * Start the provider on a free loopback port. Default clients: `machine`
 * (client credentials), `app` (authorization code + PKCE, confidential,
 * redirect URI `http://127.0.0.1:9/cb` that is never contacted), and with
 * `ciba`, a poll-mode CIBA client.
 */
export async function startOidcProvider(options: StartOidcProviderOptions = {}): Promise<OidcTestProvider> {
  const mod = await import(OIDC_PROVIDER_MODULE);
  const Provider: AnyProvider = mod.Provider ?? mod.default;
  const oidcErrors: AnyProvider = mod.errors;

  const audience = options.audience ?? 'https://warden.test';
  const resourceScopes = (options.resourceScopes ?? DEFAULT_SCOPES).join(' ');
  const alg = options.accessTokenAlg ?? 'RS256';
  const accessTokenTtl = options.accessTokenTtl ?? 600;
  const host = options.host ?? '127.0.0.1';
  const cookieKeys = [randomBytes(32).toString('base64url')];
  const Adapter = createAdapterFactory();

  const clientSpecs: OidcClientSpec[] = [
    {
      client_id: 'machine-agent',
      client_secret: randomBytes(24).toString('base64url'),
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
    },
    {
      client_id: 'app-agent',
      client_secret: randomBytes(24).toString('base64url'),
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: [UNUSED_REDIRECT],
    },
  ];
  const aliases: Record<string, string> = { machine: 'machine-agent', app: 'app-agent' };
  if (options.ciba) {
    clientSpecs.push({
      client_id: 'ciba-client',
      client_secret: randomBytes(24).toString('base64url'),
      grant_types: [CIBA_GRANT],
      response_types: [],
      redirect_uris: [],
      backchannel_token_delivery_mode: 'poll',
    });
    aliases.ciba = 'ciba-client';
  }
  for (const c of options.clients ?? []) clientSpecs.push({ grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], ...c });
  const specById = new Map(clientSpecs.map((c) => [c.client_id, c]));

  const clients: Record<string, { client_id: string; client_secret?: string }> = {};
  for (const c of clientSpecs) clients[c.client_id] = { client_id: c.client_id, client_secret: c.client_secret };
  for (const [alias, id] of Object.entries(aliases)) clients[alias] = clients[id];

  const keys: Array<JsonWebKey & { kid: string }> = [newSigningJwk(alg)];
  let signingKid = keys[0].kid;
  const backchannelRequests: BackchannelRequestInfo[] = [];
  const counts = new Map<string, number>();
  let outage: { paths: string[]; mode: 'error' | 'hang' } | null = null;

  // The port must be known before the Provider exists (it is part of the issuer).
  let provider: AnyProvider;
  let issuer = '';
  const server: Server = createServer((req, res) => {
    void handle(req, res);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  issuer = `http://${host}:${port}`;

  async function scriptedOutcome(interaction: OidcInteraction, loginAs: string | undefined): Promise<OidcInteractionOutcome> {
    if (options.interaction) return options.interaction(interaction);
    if (interaction.accountId) return { accountId: interaction.accountId };
    // A browser test says who its browser is by a cookie on the provider's origin (LOGIN_AS_COOKIE).
    if (loginAs) return { accountId: loginAs };
    const hint = interaction.params.login_hint;
    return { accountId: typeof hint === 'string' && hint ? hint : (options.defaultAccountId ?? 'alice') };
  }

  async function answerInteraction(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const current = provider;
    const details = await current.interactionDetails(req, res);
    const promptName: string = details.prompt.name;
    const outcome = await scriptedOutcome(
      {
        uid: details.uid,
        prompt: promptName,
        clientId: String(details.params.client_id),
        params: { ...details.params },
        accountId: details.session?.accountId,
      },
      loginAsOf(req),
    );
    if ('error' in outcome) {
      await current.interactionFinished(req, res, { error: outcome.error, error_description: outcome.error_description }, { mergeWithLastSubmission: false });
      return;
    }
    if (promptName === 'login') {
      await current.interactionFinished(req, res, { login: { accountId: outcome.accountId } }, { mergeWithLastSubmission: false });
      return;
    }
    // Consent: grant exactly what the prompt says is missing.
    const grant = details.grantId
      ? await current.Grant.find(details.grantId)
      : new current.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    const missing = details.prompt.details ?? {};
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes as Record<string, string[]>)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    const grantId = await grant.save();
    await current.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', issuer).pathname;
    counts.set(path, (counts.get(path) ?? 0) + 1);
    if (outage && outage.paths.includes(path)) {
      if (outage.mode === 'hang') return; // never answered; stop() destroys the socket
      res.writeHead(503, { 'content-type': 'text/plain' }).end('outage');
      return;
    }
    if (path.startsWith('/interaction/')) {
      try {
        await answerInteraction(req, res);
      } catch (err) {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' }).end(`interaction failed: ${(err as Error).message}`);
      }
      return;
    }
    provider.callback()(req, res);
  }

  function build(): AnyProvider {
    const cibaOptions = options.ciba;
    const configuration: Record<string, unknown> = {
      adapter: Adapter,
      clients: clientSpecs.map((c) => {
        const { client_secret, ...rest } = c;
        return {
          ...rest,
          ...(client_secret ? { client_secret } : {}),
          token_endpoint_auth_method: c.token_endpoint_auth_method ?? (client_secret ? 'client_secret_basic' : 'none'),
        };
      }),
      jwks: { keys: [...keys].sort((a, b) => (a.kid === signingKid ? -1 : b.kid === signingKid ? 1 : 0)) },
      cookies: { keys: cookieKeys },
      pkce: { required: () => true },
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
      findAccount: (_ctx: unknown, sub: string) => ({
        accountId: sub,
        claims: () => ({ sub, email: `${sub}@example.test`, ...(options.accounts?.[sub] ?? {}) }),
      }),
      claims: { openid: ['sub', ...(options.idTokenClaims ?? [])], email: ['email'] },
      ...(options.idTokenClaims?.length ? { conformIdTokenClaims: false } : {}),
      scopes: ['openid', 'offline_access', ...resourceScopes.split(' ')],
      ttl: {
        AccessToken: accessTokenTtl,
        ClientCredentials: accessTokenTtl,
        AuthorizationCode: 60,
        IdToken: 3600,
        Interaction: 600,
        Session: 3600,
        Grant: 3600,
        RefreshToken: options.refreshTokenTtl ?? 86_400,
        BackchannelAuthenticationRequest: 600,
      },
      extraTokenClaims: options.extraTokenClaims
        ? (_ctx: unknown, token: { clientId: string; accountId?: string; scope?: string }) =>
            options.extraTokenClaims!({ clientId: token.clientId, accountId: token.accountId, scope: token.scope })
        : undefined,
      issueRefreshToken: options.refreshTokens
        ? (_ctx: unknown, client: { grantTypeAllowed(g: string): boolean }) => client.grantTypeAllowed('refresh_token')
        : undefined,
      rotateRefreshToken: options.refreshTokens ? true : undefined,
      features: {
        devInteractions: { enabled: false },
        clientCredentials: { enabled: true },
        introspection: { enabled: true },
        revocation: { enabled: true },
        resourceIndicators: {
          enabled: true,
          defaultResource: (_ctx: unknown, _client: unknown, oneOf?: string[]) => (oneOf && oneOf.length ? oneOf : audience),
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx: unknown, resourceIndicator: string) => ({
            audience: resourceIndicator,
            scope: resourceScopes,
            accessTokenTTL: accessTokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg, kid: signingKid } },
          }),
        },
        ciba: cibaOptions
          ? {
              enabled: true,
              deliveryModes: ['poll'],
              processLoginHint: async (_ctx: unknown, loginHint: string) => {
                const account = cibaOptions.processLoginHint ? await cibaOptions.processLoginHint(loginHint) : loginHint;
                if (!account) throw new oidcErrors.InvalidRequest('unknown login_hint');
                return account;
              },
              validateBindingMessage: async (_ctx: unknown, message: string | undefined) => {
                await cibaOptions.validateBindingMessage?.(message);
              },
              validateRequestContext: async () => {},
              verifyUserCode: async () => {},
              triggerAuthenticationDevice: async (
                _ctx: unknown,
                request: { jti: string; scope: string; params: Record<string, unknown> },
                account: { accountId: string },
                client: { clientId: string },
              ) => {
                const info: BackchannelRequestInfo = {
                  authReqId: request.jti,
                  accountId: account.accountId,
                  clientId: client.clientId,
                  bindingMessage: request.params.binding_message as string | undefined,
                  loginHint: request.params.login_hint as string | undefined,
                  scope: request.scope,
                  params: { ...request.params },
                };
                backchannelRequests.push(info);
                await cibaOptions.onBackchannelRequest?.(info);
              },
            }
          : { enabled: false },
      },
      enabledJWA: {
        authorizationSigningAlgValues: ['RS256', 'PS256', 'ES256'],
        idTokenSigningAlgValues: ['RS256', 'PS256', 'ES256'],
      },
      clientDefaults: { id_token_signed_response_alg: alg === 'ES256' ? 'ES256' : 'RS256' },
      renderError: (ctx: { type: string; body: unknown }, out: Record<string, unknown>) => {
        ctx.type = 'json';
        ctx.body = out;
      },
    };
    for (const k of Object.keys(configuration)) if (configuration[k] === undefined) delete configuration[k];
    return new Provider(issuer, configuration);
  }

  provider = build();

  async function postToken(clientId: string, params: Record<string, string>): Promise<OidcTokenResponse> {
    const spec = specById.get(clientId);
    if (!spec) throw new Error(`unknown client ${clientId}`);
    const body = new URLSearchParams(params);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
    const method = spec.token_endpoint_auth_method ?? (spec.client_secret ? 'client_secret_basic' : 'none');
    if (method === 'client_secret_basic') {
      const creds = `${encodeURIComponent(clientId)}:${encodeURIComponent(spec.client_secret ?? '')}`;
      headers.authorization = `Basic ${Buffer.from(creds).toString('base64')}`;
    } else if (method === 'client_secret_post') {
      body.set('client_id', clientId);
      body.set('client_secret', spec.client_secret ?? '');
    } else {
      body.set('client_id', clientId);
    }
    const res = await fetch(`${issuer}/token`, { method: 'POST', headers, body, signal: AbortSignal.timeout(10_000) });
    const json = (await res.json().catch(() => ({}))) as Record<string, unknown>;
    if (res.status !== 200) throw new OidcTokenError(res.status, String(json.error ?? 'http_error'), json.error_description as string | undefined);
    return json as OidcTokenResponse;
  }

  async function authorizationCode(input: { accountId: string; clientId: string; scope: string; resource?: string; redirectUri: string }) {
    const { verifier, challenge } = pkcePair();
    const state = randomUUID();
    const auth = new URL(`${issuer}/auth`);
    auth.search = new URLSearchParams({
      client_id: input.clientId,
      response_type: 'code',
      redirect_uri: input.redirectUri,
      scope: input.scope,
      state,
      code_challenge: challenge,
      code_challenge_method: 'S256',
      login_hint: input.accountId,
      ...(input.scope.split(' ').includes('openid') ? { nonce: randomUUID() } : {}),
      ...(input.resource ? { resource: input.resource } : {}),
    }).toString();
    const jar = createCookieJar();
    let next = auth.href;
    for (let hop = 0; hop < 12; hop++) {
      const res = await fetch(next, { redirect: 'manual', headers: { cookie: jar.header() }, signal: AbortSignal.timeout(10_000) });
      jar.store(res);
      await res.arrayBuffer().catch(() => undefined);
      const location = res.headers.get('location');
      if (res.status < 300 || res.status > 399 || !location) {
        throw new Error(`authorization flow stopped at ${new URL(next).pathname} with HTTP ${res.status}`);
      }
      const target = new URL(location, next);
      if (target.href.startsWith(input.redirectUri)) {
        const error = target.searchParams.get('error');
        if (error) throw new OidcTokenError(400, error, target.searchParams.get('error_description') ?? undefined);
        if (target.searchParams.get('state') !== state) throw new Error('state mismatch in authorization response');
        const code = target.searchParams.get('code');
        if (!code) throw new Error('authorization response without code');
        return { code, verifier };
      }
      next = target.href;
    }
    throw new Error('authorization flow did not finish within 12 redirects');
  }

  return {
    issuer,
    url: issuer,
    audience,
    jwksUri: `${issuer}/jwks`,
    discoveryUrl: `${issuer}/.well-known/openid-configuration`,
    jwksPath: '/jwks',
    get provider() {
      return provider;
    },
    clients,
    backchannelRequests,

    async clientCredentialsToken(clientId, scope, resource) {
      const params: Record<string, string> = { grant_type: 'client_credentials' };
      if (scope) params.scope = scope;
      if (resource) params.resource = resource;
      return (await postToken(clientId, params)).access_token;
    },

    async userAccessToken(input) {
      const clientId = input.clientId ?? clients.app.client_id;
      const spec = specById.get(clientId);
      const redirectUri = input.redirectUri ?? spec?.redirect_uris?.[0] ?? UNUSED_REDIRECT;
      const requested = (input.scope ?? '').split(' ').filter(Boolean);
      if (input.openid !== false && !requested.includes('openid')) requested.unshift('openid');
      const scope = requested.join(' ');
      const { code, verifier } = await authorizationCode({ accountId: input.accountId, clientId, scope, resource: input.resource, redirectUri });
      const params: Record<string, string> = { grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier };
      if (input.resource) params.resource = input.resource;
      return postToken(clientId, params);
    },

    async refresh(clientId, refreshToken, resource) {
      const params: Record<string, string> = { grant_type: 'refresh_token', refresh_token: refreshToken };
      if (resource) params.resource = resource;
      return postToken(clientId, params);
    },

    tokenRequest: postToken,

    async approveBackchannel(authReqId) {
      const request = await provider.BackchannelAuthenticationRequest.find(authReqId, { ignoreExpiration: true });
      if (!request) throw new Error(`no backchannel request ${authReqId}`);
      const grant = new provider.Grant({ accountId: request.accountId, clientId: request.clientId });
      if (request.scope) grant.addOIDCScope(request.scope);
      const resources = request.resource ? (Array.isArray(request.resource) ? request.resource : [request.resource]) : [];
      for (const r of resources) grant.addResourceScope(r, request.scope ?? '');
      await grant.save();
      await provider.backchannelResult(request, grant);
    },

    async denyBackchannel(authReqId) {
      await provider.backchannelResult(authReqId, new oidcErrors.AccessDenied('the user denied the request'));
    },

    signingKey() {
      const key = keys.find((k) => k.kid === signingKid)!;
      return { kid: key.kid, alg, privateJwk: { ...key }, publicJwk: publicPart(key) };
    },

    publicJwks() {
      return { keys: keys.map(publicPart) };
    },

    async rotateKeys() {
      const fresh = newSigningJwk(alg);
      keys.unshift(fresh);
      signingKid = fresh.kid;
      provider = build();
      return fresh.kid;
    },

    requestCount(path) {
      return counts.get(path) ?? 0;
    },
    resetCounts() {
      counts.clear();
    },
    setOutage(next) {
      outage = next === null ? null : { paths: next.paths ?? ['/jwks', '/.well-known/openid-configuration'], mode: next.mode ?? 'error' };
    },

    async stop() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
