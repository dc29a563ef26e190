// Differential test: seeded random small models (direct, wildcard, usersets,
// computed, tuple-to-userset, union, intersection, exclusion, a condition),
// tuples and queries go to the embedded engine and to a real OpenFGA server;
// every check, batch check and listObjects answer must be equal — also when
// every tuple is sent as a contextual tuple instead (as upstream replays its
// conformance tests). Where OpenFGA itself has no single answer the generator
// stays away (see cyclesThroughAndOrButNot, queryExtras, listMatchesServerChecks).
//
// Reproduce a failure with the seed it prints:
//   WARDEN_DIFF_SEED=<seed> WARDEN_DIFF_MODELS=1 npx vitest run test/authz/differential.test.ts
// Explore more: WARDEN_DIFF_SEED=1000 WARDEN_DIFF_MODELS=200 (default: 20261128, 60).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOpenFgaAuthorizer } from '../../src/authz/openfga.js';
import type { AuthorizationModel } from '../../src/authz/model.js';
import { createEmbeddedAuthorizer } from '../../src/authz/embedded/index.js';
import { isWardenError } from '../../src/core/errors.js';
import type { Authorizer, CheckRequest, ListObjectsRequest, TupleKey } from '../../src/authz/authorizer.js';
import { createStoreWithModel, deleteStore, dslToJson, startOpenFga, type OpenFgaServer } from '../support/openfga.js';
import { seededRandom } from '../support/random.js';

const BASE_SEED = Number(process.env.WARDEN_DIFF_SEED ?? 20_261_128);
const MODELS = Number(process.env.WARDEN_DIFF_MODELS ?? 60);
const CHECKS_PER_MODEL = 40;
const LISTS_PER_MODEL = 10;
const CONTEXTUAL_REPLAYS = 12;

// ---------------------------------------------------------------- seeded generator

/** mulberry32: small, fast, good enough to spread choices; same seed → same model. */
function rng(seed: number) {
  const next = seededRandom(seed);
  return {
    int: (n: number) => Math.floor(next() * n),
    chance: (p: number) => next() < p,
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)],
  };
}
type Rng = ReturnType<typeof rng>;

/** A direct type restriction: `user`, `user:*`, `user with lt`, `tb#r0` or (for parent) `tb`. */
type Restriction =
  { kind: 'user' } | { kind: 'wildcard' } | { kind: 'conditioned' } | { kind: 'userset'; type: string; relation: string } | { kind: 'object'; type: string };

interface GenRelation {
  name: string;
  direct: Restriction[]; // empty when the relation has no direct part
  dsl: string;
}
interface GenType {
  name: string;
  relations: GenRelation[];
}
interface GenModel {
  dsl: string;
  types: GenType[];
}

const USERS = 4; // user:u0..u3 appear in tuples; u4 never does
const OBJECTS = 3; // o0..o2 appear in tuples; o3 never does

function restrictionText(r: Restriction): string {
  switch (r.kind) {
    case 'user':
      return 'user';
    case 'wildcard':
      return 'user:*';
    case 'conditioned':
      return 'user with lt';
    case 'userset':
      return `${r.type}#${r.relation}`;
    case 'object':
      return r.type;
  }
}

function generateModel(rand: Rng): GenModel {
  const typeNames = ['ta', 'tb', 'tc'].slice(0, 2 + rand.int(2));
  const relCount = new Map(typeNames.map((t) => [t, 2 + rand.int(3)] as const));
  const hasParent = new Map(typeNames.map((t) => [t, rand.chance(0.65)] as const));
  const minRel = Math.min(...relCount.values());
  const types: GenType[] = [];

  for (const t of typeNames) {
    const relations: GenRelation[] = [];
    let parentTypes: string[] = [];
    if (hasParent.get(t)) {
      parentTypes = [...new Set([rand.pick(typeNames), ...(rand.chance(0.3) ? [rand.pick(typeNames)] : [])])];
      const direct = parentTypes.map((p) => ({ kind: 'object', type: p }) as Restriction);
      relations.push({ name: 'parent', direct, dsl: `[${direct.map(restrictionText).join(', ')}]` });
    }
    const directRestrictions = (): Restriction[] => {
      // Every direct part reaches `user`, so no relation lacks an entry point.
      const out: Restriction[] = [rand.pick<Restriction>([{ kind: 'user' }, { kind: 'user' }, { kind: 'conditioned' }])];
      if (rand.chance(0.3)) out.push({ kind: 'wildcard' });
      if (rand.chance(0.25) && out[0].kind === 'user') out.push({ kind: 'conditioned' });
      if (rand.chance(0.45)) {
        const ut = rand.pick(typeNames);
        out.push({ kind: 'userset', type: ut, relation: `r${rand.int(relCount.get(ut) as number)}` });
      }
      return out;
    };
    const n = relCount.get(t) as number;
    for (let i = 0; i < n; i++) {
      const name = `r${i}`;
      if (i === 0) {
        const direct = directRestrictions();
        relations.push({ name, direct, dsl: `[${direct.map(restrictionText).join(', ')}]` });
        continue;
      }
      // Operands that cannot form a rewrite cycle without an entry point:
      // computed relations point down (r_j, j < i); tuple-to-userset may recurse.
      // Under `and`/`but not` OpenFGA wants an entry point without recursion,
      // so tuple-to-userset there targets r0 (always direct); under `or` it may recurse.
      const operand = (recursive = false): string => {
        if (hasParent.get(t) && rand.chance(0.4)) return `r${recursive ? rand.int(minRel) : 0} from parent`;
        return `r${rand.int(i)}`;
      };
      let direct: Restriction[] = [];
      const shape = rand.int(7);
      let dsl: string;
      const withDirect = rand.chance(0.5);
      if (withDirect) direct = directRestrictions();
      const head = withDirect ? `[${direct.map(restrictionText).join(', ')}]` : operand();
      switch (shape) {
        case 0:
          dsl = withDirect ? head : operand();
          if (!withDirect) direct = [];
          break;
        case 1:
        case 2:
          dsl = `${head} or ${operand(true)}${rand.chance(0.4) ? ` or ${operand(true)}` : ''}`;
          break;
        case 3:
          dsl = `${head} and ${operand()}`;
          break;
        case 4:
          dsl = `${head} but not ${operand()}`;
          break;
        case 5:
          dsl = `(${head} or ${operand()}) and ${operand()}`;
          break;
        default:
          dsl = `(${head} or ${operand()}) but not (${operand()} and ${operand()})`;
      }
      relations.push({ name, direct, dsl });
    }
    types.push({ name: t, relations });
  }

  const lines = ['model', '  schema 1.1', 'type user'];
  for (const t of types) {
    lines.push(`type ${t.name}`, '  relations');
    for (const r of t.relations) lines.push(`    define ${r.name}: ${r.dsl}`);
  }
  lines.push('condition lt(x: int, limit: int) {', '  x < limit', '}', '');
  return { dsl: lines.join('\n'), types };
}

/**
 * True when a cycle of the relation graph runs through an intersection or an
 * exclusion. OpenFGA cuts a cycle by answering false for the revisited node,
 * and under `and` / `but not` that false changes the result; the server
 * evaluates branches concurrently, so which branch meets the cycle first — and
 * the answer — varies from call to call (observed: the same check true on one
 * call, false on the next; batch and single answers differing). Such models
 * have no single server answer to compare with, so the generator avoids them.
 * Cycles through unions only are kept: their answer does not depend on order.
 */
function cyclesThroughAndOrButNot(model: GenModel): boolean {
  const node = (type: string, rel: string) => `${type}#${rel}`;
  const edges = new Map<string, string[]>();
  const nonUnion = new Set<string>();
  for (const t of model.types) {
    const parentTypes = (t.relations.find((r) => r.name === 'parent')?.direct ?? []).map((r) => (r as { type: string }).type);
    for (const r of t.relations) {
      const out: string[] = [];
      for (const m of r.dsl.matchAll(/\b(t[a-z])#(r\d+)/g)) out.push(node(m[1], m[2]));
      for (const m of r.dsl.matchAll(/\b(r\d+) from parent/g)) for (const p of parentTypes) out.push(node(p, m[1]));
      const rest = r.dsl.replace(/\b(t[a-z])#(r\d+)/g, '').replace(/\b(r\d+) from parent/g, '');
      for (const m of rest.matchAll(/\b(r\d+)\b/g)) out.push(node(t.name, m[1]));
      edges.set(node(t.name, r.name), out);
      if (/ and | but not /.test(r.dsl)) nonUnion.add(node(t.name, r.name));
    }
  }
  const reaches = (from: string, target: string): boolean => {
    const seen = new Set<string>();
    const stack = [...(edges.get(from) ?? [])];
    while (stack.length) {
      const n = stack.pop() as string;
      if (n === target) return true;
      if (seen.has(n)) continue;
      seen.add(n);
      stack.push(...(edges.get(n) ?? []));
    }
    return false;
  };
  return [...nonUnion].some((n) => reaches(n, n));
}

function tupleFor(rand: Rng, model: GenModel): TupleKey | undefined {
  const t = rand.pick(model.types);
  const withDirect = t.relations.filter((r) => r.direct.length > 0);
  if (withDirect.length === 0) return undefined;
  const rel = rand.pick(withDirect);
  const r = rand.pick(rel.direct);
  const object = `${t.name}:o${rand.int(OBJECTS)}`;
  const u = `user:u${rand.int(USERS)}`;
  switch (r.kind) {
    case 'user':
      return { user: u, relation: rel.name, object };
    case 'wildcard':
      return { user: 'user:*', relation: rel.name, object };
    case 'conditioned':
      return { user: u, relation: rel.name, object, condition: { name: 'lt', context: rand.chance(0.7) ? { limit: rand.int(10) } : {} } };
    case 'userset':
      return { user: `${r.type}:o${rand.int(OBJECTS)}#${r.relation}`, relation: rel.name, object };
    case 'object':
      return { user: `${r.type}:o${rand.int(OBJECTS)}`, relation: rel.name, object };
  }
}

function generateTuples(rand: Rng, model: GenModel, count: number): TupleKey[] {
  const seen = new Set<string>();
  const out: TupleKey[] = [];
  for (let i = 0; i < count * 3 && out.length < count; i++) {
    const tk = tupleFor(rand, model);
    if (!tk) continue;
    const id = `${tk.user}|${tk.relation}|${tk.object}`;
    // `ta:o0#r0` as a user of `ta:o0#r0` is implicit; OpenFGA refuses to store it.
    if (seen.has(id) || tk.user === `${tk.object}#${tk.relation}`) continue;
    seen.add(id);
    out.push(tk);
  }
  return out;
}

function queryExtras(rand: Rng, model: GenModel, contextualChance: number): Pick<CheckRequest, 'context' | 'contextualTuples'> {
  // Every condition parameter is always given (tuples may still override
  // `limit` with their own context). With a parameter missing, OpenFGA v1.18.1
  // has no single answer to compare with: a batch item failed with "missing
  // context parameters" while the same check alone answered, and the same
  // ListObjects returned an error on one call and [] on the next (seed 20261136
  // with the previous generator). Missing parameters are compared in the fixed
  // cases below, where the server is deterministic.
  const extras: Pick<CheckRequest, 'context' | 'contextualTuples'> = { context: { x: rand.int(10), limit: rand.int(10) } };
  if (rand.chance(contextualChance)) {
    extras.contextualTuples = generateTuples(rand, model, 1 + rand.int(2));
  }
  return extras;
}

function generateCheck(rand: Rng, model: GenModel): CheckRequest {
  const t = rand.pick(model.types);
  const rel = rand.pick(t.relations);
  const object = `${t.name}:o${rand.int(OBJECTS + 1)}`;
  let user: string;
  const roll = rand.int(20);
  if (roll < 15) user = `user:u${rand.int(USERS + 1)}`;
  else if (roll < 17) user = 'user:*';
  else {
    const ut = rand.pick(model.types);
    user = `${ut.name}:o${rand.int(OBJECTS)}${rand.chance(0.8) ? `#${rand.pick(ut.relations).name}` : ''}`;
  }
  return { user, relation: rel.name, object, ...queryExtras(rand, model, 0.25) };
}

function generateList(rand: Rng, model: GenModel): ListObjectsRequest {
  const t = rand.pick(model.types);
  const rel = rand.pick(t.relations.filter((r) => r.name !== 'parent'));
  const extras = queryExtras(rand, model, 0.2);
  return { user: `user:u${rand.int(USERS + 1)}`, relation: rel.name, type: t.name, ...extras };
}

// ---------------------------------------------------------------- comparison

type Outcome = string; // 'true' | 'false' | '[sorted list]' | 'error'

async function outcome(run: () => Promise<boolean | string[]>, engine: string): Promise<{ outcome: Outcome; detail?: string }> {
  try {
    const v = await run();
    return { outcome: Array.isArray(v) ? JSON.stringify([...v].sort()) : String(v) };
  } catch (err) {
    if (!isWardenError(err, 'authz_unavailable')) {
      return { outcome: `crash`, detail: `${engine}: ${(err as Error)?.stack ?? String(err)}` };
    }
    // For the server only a refusal of the request counts as an answer; an
    // outage or timeout would make the comparison meaningless.
    if (engine === 'openfga' && !/^openfga_(rejected|check_invalid)$/.test(err.reason)) {
      throw new Error(`OpenFGA failed (${err.reason}: ${(err.cause as Error | undefined)?.message ?? ''}) during the differential test`, { cause: err });
    }
    const cause = err.cause as { apiErrorCode?: string; apiErrorMessage?: string; message?: string; code?: unknown } | undefined;
    return {
      outcome: 'error',
      detail: `${engine}: ${err.reason} ${cause?.apiErrorCode ?? cause?.code ?? ''} ${cause?.apiErrorMessage ?? cause?.message ?? ''}`.trim(),
    };
  }
}

/**
 * When the two lists differ, asks the server's own check about every object in
 * either list. OpenFGA v1.18.1's ListObjects sometimes returns an object that
 * its own Check denies (seen with exclusion over contextual tuples, and with a
 * contextual tuple that shadows a stored one with another condition). If the
 * embedded list is exactly what the server's checks allow, the difference is
 * the server's, and it is counted instead of failed.
 */
async function listMatchesServerChecks(server: Authorizer, q: ListObjectsRequest, embeddedList: string, serverList: string): Promise<boolean> {
  if (!embeddedList.startsWith('[') || !serverList.startsWith('[')) return false;
  const candidates = [...new Set([...(JSON.parse(embeddedList) as string[]), ...(JSON.parse(serverList) as string[])])];
  const allowed: string[] = [];
  for (const object of candidates) {
    if (await server.check({ user: q.user, relation: q.relation, object, context: q.context, contextualTuples: q.contextualTuples })) allowed.push(object);
  }
  return JSON.stringify(allowed.sort()) === embeddedList && embeddedList !== serverList;
}

describe('differential: embedded engine vs OpenFGA server', () => {
  let server: OpenFgaServer;
  beforeAll(async () => {
    server = await startOpenFga();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it(`gives the server's answers on ${MODELS} seeded random models (base seed ${BASE_SEED})`, { timeout: 600_000 }, async () => {
    const stats = {
      models: 0,
      rejectedModels: 0,
      cyclicModelsAvoided: 0,
      tuples: 0,
      checks: 0,
      lists: 0,
      batches: 0,
      batchesTimedOut: 0,
      contextualReplays: 0,
      serverListDisagreesWithItsChecks: 0,
      agreedErrors: 0,
      allowed: 0,
      nonEmptyLists: 0,
    };
    const mismatches: string[] = [];
    for (let m = 0; m < MODELS; m++) {
      const seed = BASE_SEED + m;
      const rand = rng(seed);
      let model = generateModel(rand);
      while (cyclesThroughAndOrButNot(model)) {
        stats.cyclicModelsAvoided++;
        model = generateModel(rand);
      }
      const tuples = generateTuples(rand, model, 8 + rand.int(20));
      // Both engines get the same JSON model (the DSL validator's extra style
      // rules, e.g. duplicate operands, are not what this test compares).
      const modelJson = dslToJson(model.dsl);
      let ids: { storeId: string; modelId: string };
      try {
        ids = await createStoreWithModel(server.apiUrl, modelJson, tuples);
      } catch (err) {
        // The generator avoids most invalid models; the few the server refuses are counted, not compared.
        if (/40\d/.test(String((err as Error).message))) {
          stats.rejectedModels++;
          continue;
        }
        throw err;
      }
      const where = `seed ${seed} (reproduce: WARDEN_DIFF_SEED=${seed} WARDEN_DIFF_MODELS=1)\n${model.dsl}\ntuples: ${JSON.stringify(tuples)}`;
      const server_ = await createOpenFgaAuthorizer({ apiUrl: server.apiUrl, ...ids, timeoutMs: 10_000, retries: 0 });
      let embedded: Authorizer;
      try {
        embedded = createEmbeddedAuthorizer({ model: modelJson as unknown as AuthorizationModel, tuples });
      } catch (err) {
        mismatches.push(`${where}\nembedded engine refused a model/tuples the server accepted: ${(err as Error).stack}`);
        continue;
      }
      stats.models++;
      stats.tuples += tuples.length;

      const checks = Array.from({ length: CHECKS_PER_MODEL }, () => generateCheck(rand, model));
      const serverAnswers: Outcome[] = [];
      for (const q of checks) {
        const a = await outcome(() => embedded.check(q), 'embedded');
        const b = await outcome(() => server_.check(q), 'openfga');
        stats.checks++;
        serverAnswers.push(b.outcome);
        if (a.outcome !== b.outcome) {
          mismatches.push(`${where}\ncheck ${JSON.stringify(q)}: embedded=${a.outcome} openfga=${b.outcome}\n${a.detail ?? ''}\n${b.detail ?? ''}`);
        } else if (a.outcome === 'error') stats.agreedErrors++;
        else if (a.outcome === 'true') stats.allowed++;
      }
      // The same checks as one batch on both engines (the server's answers come
      // back unordered and are put in order by correlation id), when no single
      // check failed (one failure fails the whole batch).
      if (!serverAnswers.includes('error')) {
        const want = JSON.stringify(serverAnswers);
        let embeddedBatch: string;
        try {
          embeddedBatch = JSON.stringify((await embedded.batchCheck(checks)).map(String));
        } catch (err) {
          embeddedBatch = `error (${(err as Error).message})`;
        }
        let serverBatch: string | undefined;
        try {
          serverBatch = JSON.stringify((await server_.batchCheck(checks)).map(String));
        } catch (err) {
          // The server evaluates a batch's checks concurrently under one request
          // deadline (3 s); on a loaded machine a costly random model can run out
          // of it. That is not an answer to compare, so the batch is skipped.
          const code = ((err as { cause?: { apiErrorCode?: string } }).cause ?? {}).apiErrorCode;
          if (code !== 'deadline_exceeded') throw err;
          stats.batchesTimedOut++;
        }
        if (serverBatch !== undefined) {
          stats.batches++;
          if (serverBatch !== want || embeddedBatch !== want) {
            mismatches.push(`${where}\nbatchCheck: embedded=${embeddedBatch} openfga=${serverBatch} single checks=${want}`);
          }
        }
      }
      for (let i = 0; i < LISTS_PER_MODEL; i++) {
        const q = generateList(rand, model);
        const a = await outcome(() => embedded.listObjects(q), 'embedded');
        const b = await outcome(() => server_.listObjects(q), 'openfga');
        stats.lists++;
        if (a.outcome !== b.outcome && (await listMatchesServerChecks(server_, q, a.outcome, b.outcome))) {
          stats.serverListDisagreesWithItsChecks++;
          console.log(
            `[differential] note: server ListObjects ≠ its own Check, embedded = Check: seed ${seed} ${JSON.stringify(q)} server=${b.outcome} embedded=${a.outcome}`,
          );
        } else if (a.outcome !== b.outcome) {
          mismatches.push(`${where}\nlistObjects ${JSON.stringify(q)}: embedded=${a.outcome} openfga=${b.outcome}\n${a.detail ?? ''}\n${b.detail ?? ''}`);
        } else if (a.outcome === 'error') stats.agreedErrors++;
        else if (a.outcome !== '[]') stats.nonEmptyLists++;
      }
      await embedded.close();
      await server_.close();
      await deleteStore(server.apiUrl, ids.storeId);

      // Replay like upstream does: an empty store, every tuple sent as a contextual tuple.
      const empty = await createStoreWithModel(server.apiUrl, modelJson, []);
      const serverCtx = await createOpenFgaAuthorizer({ apiUrl: server.apiUrl, ...empty, timeoutMs: 10_000, retries: 0 });
      const embeddedCtx = createEmbeddedAuthorizer({ model: modelJson as unknown as AuthorizationModel, tuples: [] });
      const asContextual = <T extends CheckRequest | ListObjectsRequest>(q: T): T => {
        const byKey = new Map<string, TupleKey>();
        for (const tk of [...tuples, ...(q.contextualTuples ?? [])])
          byKey.set(`${tk.user}|${tk.relation}|${tk.object}`, byKey.get(`${tk.user}|${tk.relation}|${tk.object}`) ?? tk);
        return { ...q, contextualTuples: [...byKey.values()] };
      };
      for (let i = 0; i < CONTEXTUAL_REPLAYS; i++) {
        const list = i % 4 === 3;
        const q = list ? asContextual(generateList(rand, model)) : asContextual(generateCheck(rand, model));
        const run = (a: Authorizer) => () => (list ? a.listObjects(q as ListObjectsRequest) : a.check(q as CheckRequest));
        const a = await outcome(run(embeddedCtx), 'embedded');
        const b = await outcome(run(serverCtx), 'openfga');
        stats.contextualReplays++;
        if (list && a.outcome !== b.outcome && (await listMatchesServerChecks(serverCtx, q as ListObjectsRequest, a.outcome, b.outcome))) {
          stats.serverListDisagreesWithItsChecks++;
          console.log(
            `[differential] note: server ListObjects ≠ its own Check, embedded = Check: seed ${seed} (all tuples contextual) server=${b.outcome} embedded=${a.outcome}`,
          );
        } else if (a.outcome !== b.outcome) {
          mismatches.push(
            `${where}\n(all tuples contextual) ${list ? 'listObjects' : 'check'} ${JSON.stringify(q)}: embedded=${a.outcome} openfga=${b.outcome}\n${a.detail ?? ''}\n${b.detail ?? ''}`,
          );
        } else if (a.outcome === 'error') stats.agreedErrors++;
      }
      await deleteStore(server.apiUrl, empty.storeId);
    }
    console.log(`[differential] ${JSON.stringify({ baseSeed: BASE_SEED, ...stats, mismatches: mismatches.length })}`);
    // Every mismatch in one line (seed and query), then the first three in full.
    for (const mm of mismatches)
      console.log(
        `[differential] mismatch ${mm
          .split('\n')
          .filter((l) => /^(seed|check|listObjects|batchCheck|\(all|embedded:|openfga:)/.test(l))
          .join(' | ')}`,
      );
    expect(mismatches.length, mismatches.slice(0, 3).join('\n\n----------------\n\n')).toBe(0);
    // The generator must produce models worth comparing.
    expect(stats.models).toBeGreaterThan(MODELS / 2);
  });

  it('never allows more than the server when a condition parameter is missing (fixed acyclic cases)', async () => {
    // OpenFGA documents a missing parameter as an error, and so it is on a
    // direct path; on its optimized tuple-to-userset path v1.18.1 sometimes
    // answers false instead, and whether it does depends on other tuples of the
    // user (`ttu` for user:u1 fails on doc:b's tuple although doc:b is not a
    // parent). Those answers are implementation artifacts, not semantics, so
    // here equality is reported, and the test fails only where the embedded
    // engine would let a request through that the server would not.
    const dsl = `model
  schema 1.1
type user
type doc
  relations
    define parent: [doc]
    define cond: [user with lt]
    define plain: [user]
    define ttu: cond from parent
    define ttu_and_cond: cond from parent and cond
    define cond_and_ttu: cond and cond from parent
    define ttu_or_cond: cond from parent or cond
    define cond_but_not_ttu: cond but not cond from parent
    define ttu_but_not_cond: cond from parent but not cond
    define computed: cond
    define computed_and_cond: computed and cond
    define cond_or_plain: cond or plain
    define cond_and_plain: cond and plain
    define plain_but_not_cond: plain but not cond
    define cond_but_not_plain: cond but not plain
condition lt(x: int, limit: int) {
  x < limit
}
`;
    const tuples: TupleKey[] = [
      { user: 'doc:p', relation: 'parent', object: 'doc:a' },
      { user: 'user:u0', relation: 'cond', object: 'doc:a', condition: { name: 'lt', context: { limit: 8 } } },
      { user: 'user:u0', relation: 'cond', object: 'doc:p', condition: { name: 'lt', context: {} } },
      { user: 'user:u0', relation: 'cond', object: 'doc:b', condition: { name: 'lt', context: {} } },
      { user: 'user:u0', relation: 'plain', object: 'doc:b' },
      { user: 'user:u1', relation: 'cond', object: 'doc:b', condition: { name: 'lt', context: {} } },
    ];
    const modelJson = dslToJson(dsl);
    const ids = await createStoreWithModel(server.apiUrl, modelJson, tuples);
    const openfga = await createOpenFgaAuthorizer({ apiUrl: server.apiUrl, ...ids, timeoutMs: 10_000, retries: 0 });
    const embedded = createEmbeddedAuthorizer({ model: modelJson as unknown as AuthorizationModel, tuples });
    const relations = [...(openfga.relations().get('doc') ?? [])].filter((r) => r !== 'parent');
    const moreLenient: string[] = [];
    const differences: string[] = [];
    let compared = 0;
    for (const object of ['doc:a', 'doc:b', 'doc:p']) {
      for (const user of ['user:u0', 'user:u1']) {
        for (const relation of relations) {
          const q = { user, relation, object, context: { x: 4 } }; // `limit` only where a tuple has it
          const a = await outcome(() => embedded.check(q), 'embedded');
          const b = await outcome(() => openfga.check(q), 'openfga');
          compared++;
          const line = `check ${JSON.stringify(q)}: embedded=${a.outcome} openfga=${b.outcome}`;
          if (a.outcome === 'true' && b.outcome !== 'true') moreLenient.push(line);
          else if (a.outcome !== b.outcome) differences.push(line);
        }
      }
    }
    console.log(
      `[differential] missing-parameter cases: ${compared} checks compared, ${compared - differences.length - moreLenient.length} equal, ` +
        `${differences.length} stricter or false-vs-error, ${moreLenient.length} more lenient`,
    );
    for (const d of differences) console.log(`[differential] difference ${d}`);
    await deleteStore(server.apiUrl, ids.storeId);
    expect(moreLenient).toEqual([]);
  });
});
