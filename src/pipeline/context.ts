/**
 * Per-request state, typed once. Every stage reads and writes this object; the
 * order of stages is defined in `gateway/stages.ts` only.
 */

import type { IncomingHttpHeaders } from 'node:http';
import type { Principal } from '../core/principal.js';
import type { ApprovalRuleConfig, AuthorizeConfig, CredentialsConfig, RouteConfig } from '../config/schema.js';
import type { Cut, HookedResponse, ResponseBuffer, UpstreamResponse } from '../proxy/forward.js';

/** One authorization check as evaluated (for audit, explain and problem details). */
export interface CheckTrace {
  user: string;
  relation: string;
  object: string;
  allowed: boolean | null; // null = not evaluated (refused template, engine error)
  engine: string;
  /** The engine's revision the answer is from: the OpenFGA authorization model id, or the embedded engine's policy revision (model and tuples). */
  model?: string;
  /** `higher_consistency` when the check bypassed caches (release of an approved request); absent: the engine's default. */
  consistency?: 'higher_consistency';
  /** True when the decision cache answered (no engine call for this request). */
  cached?: boolean;
  error?: string;
}

/** One limit as decided for a request (audit, `warden explain`). */
export interface LimitTrace {
  kind: 'rate_limit' | 'budget';
  policy: string;
  key: string;
  outcome: 'allowed' | 'limited' | 'reserved' | 'over_approve' | 'over_deny';
  detail: Record<string, number | string>;
}

/** Evidence of the approval that released a request (set by the approvals stage). */
export interface ApprovalEvidence {
  id: string;
  /** The person who approved (the user the request was for, unless the approver is known otherwise). */
  approvedBy: string;
  /** Epoch milliseconds of the decision. */
  decidedAt: number;
  /** The request digest the approval is bound to. */
  digest: string;
  /** How it was given: the review page, a CIBA provider, or a time-boxed grant. */
  via: 'review' | 'ciba' | 'grant';
}

/** A parsed MCP JSON-RPC request (set by the MCP stage on `mcp:` routes). */
export interface McpCall {
  method: string;
  id?: string | number | null;
  tool?: string;
  args?: unknown;
  sessionId?: string;
  /** `warden explain` only: the tool was never listed on this route (a real call is refused until it is). */
  pin?: 'unlisted';
}

/**
 * The policy that applies to this request: the route's, plus what the MCP stage
 * adds for a tool call. authorize: every entry must allow; approval: the first
 * rule whose `when` matches holds the request; credentials: the last one set wins.
 */
export interface EffectivePolicy {
  authorize: AuthorizeConfig[];
  approval: ApprovalEntry[];
  credentials?: CredentialsConfig;
}

/** One approval rule of a request's policy, with where it came from. */
export interface ApprovalEntry {
  rule: ApprovalRuleConfig;
  source: string;
  /**
   * What the approver is shown that the rule's `when` and templates do not
   * name (a budget escalation's amount and key, in its message as figures): a
   * time-boxed grant binds `values` too, and the review page lists `names`
   * among what the grant covers. An entry with it comes before the route's and
   * tool's own rules, so a grant also binds the rule it took the place of.
   */
  bound?: { names: string[]; values: unknown };
}

export interface RequestState {
  readonly id: string;
  readonly startedAt: number;
  readonly method: string;
  /** Canonical path: the only path used for matching, policy and forwarding. */
  readonly path: string;
  /** Decoded segments of the canonical path (what routes match on). */
  readonly segments: readonly string[];
  /** Canonical query string without `?` ('' when none). */
  readonly query: string;
  readonly headers: IncomingHttpHeaders;
  readonly clientIp: string;
  route?: RouteConfig;
  routeIndex?: number;
  params: Record<string, string>;
  principal?: Principal;
  /** The agent's bearer token (never forwarded). */
  token?: string;
  /** Request body, buffered only when a stage needs it (bounded by limits.body_bytes). */
  body?: Buffer;
  /** Parsed JSON body when the body is JSON and a stage asked for it. */
  json?: unknown;
  mcp?: McpCall;
  policy: EffectivePolicy;
  /**
   * Called by the proxy with the upstream response before it is sent on (MCP
   * tools/list filtering, tool pinning). Must stream, or hand back a body it
   * read whole (bounded) as a Buffer; may replace the body. Answers without a
   * promise when it has nothing to wait for.
   */
  responseHook?: (res: UpstreamResponse) => HookedResponse | Promise<HookedResponse>;
  /**
   * Called by the proxy with the upstream's status and headers before anything
   * is sent to the agent (MCP session bookkeeping). A returned promise holds the
   * response until it settles; a rejection fails the request (nothing was sent).
   * Unlike responseHook it never touches the body, so the response still streams
   * on the fast path.
   */
  responseHead?: (statusCode: number, header: (name: string) => string | undefined) => Promise<void> | void;
  /** Which upstream answers the proxy reads whole for responseHook (see ForwardRequest.responseBuffer). */
  responseBuffer?: (statusCode: number, header: (name: string) => string | undefined) => ResponseBuffer | undefined;
  /** Aborted when the agent disconnects (a held request is then never released). */
  signal?: AbortSignal;
  /** True when the request is a release of an approved request (re-check with higher consistency). */
  releasing?: boolean;
  /** `Authorization` value the credentials stage chose for the upstream (if any). */
  upstreamAuthorization?: string;
  /** Extra headers stages add to the upstream request. */
  upstreamHeaders: Array<[string, string]>;
  /**
   * When set, only these inbound headers (lower case) are forwarded: a request
   * released by an approval or grant carries only what the approver was shown.
   */
  forwardOnlyHeaders?: ReadonlySet<string>;
  checks: CheckTrace[];
  /** Set by the approve stage when the request was released by an approval. */
  approvalId?: string;
  /** Rate-limit and budget decisions, recorded for `warden explain`. */
  limitTrace?: LimitTrace[];
  /** Runs once the approve stage let the request through (an approved over-budget spend is counted). */
  afterApprove?: () => Promise<void>;
  /**
   * Called once when the exchange ends: `forwarded` with the upstream's status,
   * or not (refused, held, failed before or at the upstream). Budgets commit or
   * release their reservations here.
   */
  onSettled?: (forwarded: boolean, status: number | undefined) => void;
  /** What released the request (approve stage), for the identity assertion's `approval` claim. */
  approval?: ApprovalEvidence;
  /** Lower-case names of the route's identity assertion headers: never taken from the agent, never passed back to it. */
  assertionHeaders?: ReadonlySet<string>;
  /** Header lines (name, value, name, value…) Warden adds to the upstream's answer to the agent, after the upstream's own (the RateLimit fields). */
  responseHeaders?: string[];
  /** SHA-256 of the body as it streamed to the upstream (set by the proxy when the decision log is on). */
  streamedBody?: import('node:crypto').Hash;
  /** Shadow routes: what enforce mode would have done (absent: it would have allowed). */
  shadow?: ShadowOutcome;
  /** True once a shadowed stage decided this request (a shadow route past authentication). */
  shadowMode?: boolean;
  decision?: 'allow' | 'deny' | 'pending' | 'error';
  reason?: string;
  status?: number;
  /** Set by the proxy when the answer did not reach the agent whole: the agent left, or the upstream broke off mid-answer (proxy/forward.ts Cut). */
  cut?: Cut;
  /** performance.now() when the request was handed to the proxy (upstream latency metric). */
  upstreamStartedAt?: number;
  /** performance.now() when the upstream's final status line arrived (set by the proxy). */
  upstreamHeadersAt?: number;
}

/** What a shadowed stage would have done (see shadow.ts); kept here so state has no import back into shadow.ts. */
export interface ShadowOutcome {
  outcome: 'would_deny' | 'would_hold' | 'would_error' | 'would_filter';
  code?: string;
  reason?: string;
  /** would_filter: the tools an MCP tools/list answer listed that enforce mode would have hidden. */
  tools?: string[];
}
