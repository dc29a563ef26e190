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
import { compileRenderId, compileTemplate, renderId, renderValue, type Template, type TemplateVars } from '../templates/template.js';
import type { Authorizer, CheckOptions, CheckRequest } from './authorizer.js';

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
  /**
   * The engine that answers for `state`: this generation's, except for a
   * release, which asks the generation serving now (Runtime.currentAuthorizer).
   * A request held across a reload must not be released on tuples the reload
   * removed (the embedded engine's tuples are the generation's own).
   */
  const engineFor = (state: RequestState): Authorizer => (state.releasing && rt.currentAuthorizer ? rt.currentAuthorizer() : authorizer);
  const templates = new Map<string, Template>();
  const template = (source: string) => {
    let t = templates.get(source);
    if (!t) templates.set(source, (t = compileTemplate(source)));
    return t;
  };

  /**
   * A check's user and object renderers, compiled at its first request (the
   * check objects belong to the config generation, as this stage does).
   */
  type Renderers = { user: (vars: TemplateVars) => string; object: (vars: TemplateVars) => string };
  const renderers = new WeakMap<CheckConfig, Renderers>();
  const renderersOf = (check: CheckConfig): Renderers => {
    let r = renderers.get(check);
    if (r === undefined) renderers.set(check, (r = { user: compileRenderId(template(check.user)), object: compileRenderId(template(check.object)) }));
    return r;
  };

  function buildCheck(check: CheckConfig, vars: TemplateVars): CheckRequest {
    const render = renderersOf(check);
    const request: CheckRequest = {
      user: render.user(vars),
      relation: check.relation,
      object: render.object(vars),
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

  /** Record the checks and their answers in the request's trace, when something reads it. */
  function trace(state: RequestState, by: Authorizer, requests: CheckRequest[], answers: boolean[]): void {
    // The trace is read by the decision log, audit lines (info) and `warden explain` only: don't build it for nobody.
    if (options.trace || logger.isLevelEnabled('info') || (state.routeIndex !== undefined && options.traceRoutes?.has(state.routeIndex))) {
      const model = by.modelId;
      const engine = by.engine;
      for (let i = 0; i < requests.length; i++) {
        const r = requests[i];
        // One literal per shape (the same fields in the same order as adding `model` after would give).
        const trace: CheckTrace = model
          ? { user: r.user, relation: r.relation, object: r.object, allowed: answers[i], engine, model }
          : { user: r.user, relation: r.relation, object: r.object, allowed: answers[i], engine };
        if (state.releasing) trace.consistency = 'higher_consistency';
        // A request's first record: an array of one (a push onto the empty array reserves room for 17).
        if (state.checks.length === 0 && requests.length === 1) state.checks = [trace];
        else state.checks.push(trace);
      }
    }
  }

  /** Whether one group's checks (`requests[start, end)`) allow; throws the denial. */
  function decideGroup(group: AuthorizeConfig, requests: CheckRequest[], answers: boolean[], start: number, end: number): void {
    if (group.mode === 'all') {
      for (let i = start; i < end; i++) {
        if (answers[i]) continue;
        const r = requests[i];
        throw new WardenError('forbidden', `denied: ${r.user} is not ${r.relation} of ${r.object}`, { reason: 'check_denied' });
      }
    } else if (end > start) {
      let allowed = false;
      for (let i = start; i < end && !allowed; i++) allowed = answers[i];
      if (!allowed) throw new WardenError('forbidden', `denied: none of ${end - start} alternative checks allowed`, { reason: 'check_denied' });
    }
  }

  function decide(state: RequestState, by: Authorizer, requests: CheckRequest[], spans: Span[], answers: boolean[]): void {
    trace(state, by, requests, answers);
    for (const span of spans) decideGroup(span.group, requests, answers, span.start, span.start + span.count);
  }

  /** `decide` for a policy of one group (the usual case): no spans. */
  function decideOne(state: RequestState, by: Authorizer, group: AuthorizeConfig, requests: CheckRequest[], answers: boolean[]): void {
    trace(state, by, requests, answers);
    decideGroup(group, requests, answers, 0, requests.length);
  }

  /** Render one check, recording it in the trace (not evaluated) when a template value is refused. */
  function buildTraced(state: RequestState, check: CheckConfig, vars: TemplateVars): CheckRequest {
    try {
      return buildCheck(check, vars);
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

  /**
   * The engine's answers to `requests`, in order: without a promise from an
   * in-process engine (embedded: hits and misses alike) or when the decision
   * cache holds all of them; otherwise a promise. Engine errors become
   * `engineFailure`s either way.
   */
  function answersFor(by: Authorizer, requests: CheckRequest[], opts: CheckOptions | undefined): boolean[] | Promise<boolean[]> {
    if (by.batchCheckSync) {
      try {
        return by.batchCheckSync(requests, opts);
      } catch (err) {
        throw engineFailure(err);
      }
    }
    const cached = by.peekBatch?.(requests, opts);
    if (cached) return cached;
    return by.batchCheck(requests, opts).catch((err: unknown) => {
      throw engineFailure(err);
    });
  }

  /** `authorize` for a policy of one group: the same checks, answers and errors, with no spans. */
  function authorizeOne(state: RequestState, group: AuthorizeConfig): Promise<void> | void {
    const vars = templateVars(state);
    const checks = group.checks;
    if (checks.length === 0) return;
    // Arrays of the checks' length (a push onto [] reserves room for 17).
    let requests: CheckRequest[];
    if (checks.length === 1) requests = [buildTraced(state, checks[0], vars)];
    else {
      requests = new Array<CheckRequest>(checks.length);
      for (let i = 0; i < checks.length; i++) requests[i] = buildTraced(state, checks[i], vars);
    }
    const by = engineFor(state);
    const answers = answersFor(by, requests, state.releasing ? HIGHER_CONSISTENCY : undefined);
    if (Array.isArray(answers)) return decideOne(state, by, group, requests, answers);
    return answers.then((a) => decideOne(state, by, group, requests, a));
  }

  /** Evaluate the policy's checks; without a promise when the engine runs in-process or the decision cache answers all of them. */
  function authorize(state: RequestState): Promise<void> | void {
    const groups = state.policy.authorize;
    if (groups.length === 0) return;
    if (groups.length === 1) return authorizeOne(state, groups[0]);
    const vars = templateVars(state);
    const requests: CheckRequest[] = [];
    const spans: Span[] = [];
    for (const group of groups) {
      const start = requests.length;
      for (const check of group.checks) requests.push(buildTraced(state, check, vars));
      spans.push({ group, start, count: requests.length - start });
    }
    if (requests.length === 0) return;
    const by = engineFor(state);
    const answers = answersFor(by, requests, state.releasing ? HIGHER_CONSISTENCY : undefined);
    if (Array.isArray(answers)) return decide(state, by, requests, spans, answers);
    return answers.then((a) => decide(state, by, requests, spans, a));
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
