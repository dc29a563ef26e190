/**
 * The `authorize` stage: render the policy's checks from the request (refusing
 * template values that would change an OpenFGA id) and ask the authorizer;
 * every group must allow. `reauthorize` runs it again with higher consistency
 * when an approved request is released.
 */

import { WardenError } from '../core/errors.js';
import type { Runtime } from '../core/runtime.js';
import type { AuthorizeConfig, CheckConfig } from '../config/schema.js';
import type { CheckTrace, RequestState } from '../pipeline/context.js';
import type { Stage } from '../pipeline/stage.js';
import { templateVars } from '../templates/request-vars.js';
import { compileTemplate, renderId, renderValue, type Template, type TemplateVars } from '../templates/template.js';
import type { CheckRequest } from './authorizer.js';

/** The authorize stage, plus the re-check an approval release needs. */
export interface AuthorizeStage extends Stage {
  /** Run the checks again, bypassing caches (higher consistency); rejects with the denying error. */
  reauthorize(state: RequestState): Promise<void>;
}

export interface AuthorizeStageOptions {
  /** Record every check in `state.checks` even when info logging is off (`warden explain`). */
  trace?: boolean;
  /** Indexes of routes whose checks are always recorded (their identity assertion lists them). */
  traceRoutes?: ReadonlySet<number>;
}

type Span = { group: AuthorizeConfig; start: number; count: number };

/** An engine's failure as the pipeline's error (fail closed: 503). */
function engineFailure(err: unknown): WardenError {
  if (err instanceof WardenError) return err;
  return new WardenError('authz_unavailable', 'the authorization engine could not answer', { cause: err, reason: 'authz_error' });
}

const HIGHER_CONSISTENCY = Object.freeze({ consistency: 'higher_consistency' as const });

/** Build the stage for one config generation. */
export function createAuthorizeStage(rt: Runtime, options: AuthorizeStageOptions = {}): AuthorizeStage {
  const { authorizer, logger } = rt;
  const templates = new Map<string, Template>();
  const template = (source: string) => {
    let t = templates.get(source);
    if (!t) templates.set(source, (t = compileTemplate(source)));
    return t;
  };

  function buildCheck(check: CheckConfig, vars: TemplateVars): CheckRequest {
    const request: CheckRequest = {
      user: renderId(template(check.user), vars),
      relation: check.relation,
      object: renderId(template(check.object), vars),
    };
    if (check.context) {
      const ctx: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(check.context)) ctx[k] = typeof v === 'string' ? renderValue(template(v), vars) : v;
      request.context = ctx;
    }
    if (check.contextual_tuples) {
      request.contextualTuples = check.contextual_tuples.map((t) => ({
        user: renderId(template(t.user), vars),
        relation: t.relation,
        object: renderId(template(t.object), vars),
      }));
    }
    return request;
  }

  function decide(state: RequestState, requests: CheckRequest[], spans: Span[], answers: boolean[]): void {
    // The trace is read by the decision log, audit lines (info) and `warden explain` only: don't build it for nobody.
    if (options.trace || logger.isLevelEnabled('info') || (state.routeIndex !== undefined && options.traceRoutes?.has(state.routeIndex))) {
      const model = authorizer.modelId;
      for (let i = 0; i < requests.length; i++) {
        const r = requests[i];
        const trace: CheckTrace = { user: r.user, relation: r.relation, object: r.object, allowed: answers[i], engine: authorizer.engine };
        if (model) trace.model = model;
        if (state.releasing) trace.consistency = 'higher_consistency';
        state.checks.push(trace);
      }
    }
    for (const span of spans) {
      const end = span.start + span.count;
      if (span.group.mode === 'all') {
        for (let i = span.start; i < end; i++) {
          if (answers[i]) continue;
          const r = requests[i];
          throw new WardenError('forbidden', `denied: ${r.user} is not ${r.relation} of ${r.object}`, { reason: 'check_denied' });
        }
      } else if (span.count > 0) {
        let allowed = false;
        for (let i = span.start; i < end && !allowed; i++) allowed = answers[i];
        if (!allowed) throw new WardenError('forbidden', `denied: none of ${span.count} alternative checks allowed`, { reason: 'check_denied' });
      }
    }
  }

  /** Evaluate the policy's checks; without a promise when the engine runs in-process or the decision cache answers all of them. */
  function authorize(state: RequestState): Promise<void> | void {
    const groups = state.policy.authorize;
    if (groups.length === 0) return;
    const vars = templateVars(state);
    const requests: CheckRequest[] = [];
    const spans: Span[] = [];
    for (const group of groups) {
      const start = requests.length;
      for (const check of group.checks) {
        try {
          requests.push(buildCheck(check, vars));
        } catch (err) {
          state.checks.push({
            user: check.user,
            relation: check.relation,
            object: check.object,
            allowed: null,
            engine: authorizer.engine,
            error: (err as Error).message,
          });
          throw err;
        }
      }
      spans.push({ group, start, count: requests.length - start });
    }
    if (requests.length === 0) return;
    const opts = state.releasing ? HIGHER_CONSISTENCY : undefined;
    if (authorizer.batchCheckSync) {
      // An in-process engine (embedded): hits and misses alike answer without a promise.
      let answers: boolean[];
      try {
        answers = authorizer.batchCheckSync(requests, opts);
      } catch (err) {
        throw engineFailure(err);
      }
      return decide(state, requests, spans, answers);
    }
    const cached = authorizer.peekBatch?.(requests, opts);
    if (cached) return decide(state, requests, spans, cached);
    return authorizer.batchCheck(requests, opts).then(
      (answers) => decide(state, requests, spans, answers),
      (err: unknown) => {
        throw engineFailure(err);
      },
    );
  }

  return {
    name: 'authorize',
    run: authorize,
    async reauthorize(state) {
      const prior = state.releasing;
      state.releasing = true;
      state.checks = [];
      try {
        await authorize(state);
      } finally {
        state.releasing = prior;
      }
    },
  };
}
