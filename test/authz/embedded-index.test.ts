/**
 * The embedded engine's typed-array tuple index (compact-index.ts), checked
 * against naive references on random tuple sets:
 *
 * - the index itself: every lookup a check or list objects makes (exact tuple,
 *   userset users, a bucket in insertion order, tuples by user, objects by
 *   type, repeated tuples) equals a filter over the plain list of tuples, in
 *   both layouts (stored: offsets by arithmetic; contextual: a Map) and with
 *   exact-user lookups scanning or bisecting;
 * - the engine: every check and list-objects answer of a model with recursive
 *   groups, wildcards, tuple-to-userset, exclusion and intersection equals a
 *   fixpoint computed directly from the tuples, with the tuples stored or sent
 *   as contextual tuples.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { TupleKey } from '../../src/authz/authorizer.js';
import { parseModelDsl, parseTuplesYaml } from '../../src/authz/model.js';
import { createEmbeddedAuthorizer, createEmbeddedEngine, loadEmbeddedAuthorizer } from '../../src/authz/embedded/index.js';
import { CompactIndexBuilder, ModelIds, Nodes } from '../../src/authz/embedded/compact-index.js';
import { compileTypeSystem } from '../../src/authz/embedded/typesystem.js';
import { mulberry32 } from '../support/random.js';

const DSL = `model
  schema 1.1
type user
type group
  relations
    define member: [user, user:*, group#member]
type folder
  relations
    define owner: [user]
    define viewer: [user, group#member] or owner
type doc
  relations
    define parent: [folder]
    define owner: [user]
    define blocked: [user, group#member]
    define editor: [user, group#member] or owner
    define viewer: [user, user:*, group#member] or editor or viewer from parent
    define can_read: viewer but not blocked
    define can_share: editor and viewer
`;
const MODEL = parseModelDsl(DSL);

/** A small deterministic PRNG (mulberry32), so a failure names a reproducible seed. */
function rng(seed: number): (n: number) => number {
  const next = mulberry32(seed);
  return (n) => next() % n;
}

const USERS = ['user:a', 'user:b', 'user:c', 'user:d'];
const GROUPS = ['group:g0', 'group:g1', 'group:g2', 'group:g3'];
const FOLDERS = ['folder:f0', 'folder:f1'];
const DOCS = ['doc:d0', 'doc:d1', 'doc:d2'];

/** Random tuples the model accepts, repeats included (a repeat is a plain copy: no conditions in this model). */
function randomTuples(seed: number, count: number): TupleKey[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[r(xs.length)];
  const out: TupleKey[] = [];
  for (let i = 0; i < count; i++) {
    const kind = r(10);
    if (kind < 3) {
      const user = r(8) === 0 ? 'user:*' : r(3) === 0 ? `${pick(GROUPS)}#member` : pick(USERS);
      const object = pick(GROUPS);
      // `group:g#member` as a member of itself holds by definition (OpenFGA refuses to write it).
      if (user !== `${object}#member`) out.push({ user, relation: 'member', object });
    } else if (kind < 4) {
      out.push({ user: r(2) ? pick(USERS) : `${pick(GROUPS)}#member`, relation: r(3) ? 'viewer' : 'blocked', object: r(3) ? pick(DOCS) : pick(DOCS) });
    } else if (kind < 5) {
      out.push({ user: pick(USERS), relation: 'owner', object: r(2) ? pick(DOCS) : pick(FOLDERS) });
    } else if (kind < 6) {
      out.push({ user: pick(FOLDERS), relation: 'parent', object: pick(DOCS) });
    } else if (kind < 7) {
      out.push({ user: r(2) ? pick(USERS) : `${pick(GROUPS)}#member`, relation: 'viewer', object: pick(FOLDERS) });
    } else if (kind < 8) {
      out.push({ user: r(2) ? pick(USERS) : `${pick(GROUPS)}#member`, relation: 'editor', object: pick(DOCS) });
    } else if (kind < 9) {
      out.push({ user: r(4) === 0 ? 'user:*' : pick(USERS), relation: 'viewer', object: pick(DOCS) });
    } else if (out.length > 0) {
      out.push({ ...out[r(out.length)] });
    }
  }
  return out;
}

/** The model's relations computed from the tuples as sets of plain users (least fixpoint; no depth limit is reached). */
function reference(tuples: readonly TupleKey[]): (user: string, relation: string, object: string) => boolean {
  const has = (u: string, rel: string, o: string) => tuples.some((t) => t.user === u && t.relation === rel && t.object === o);
  const users = (rel: string, o: string) => tuples.filter((t) => t.relation === rel && t.object === o).map((t) => t.user);
  const members = new Map<string, Set<string>>(GROUPS.map((g) => [g, new Set<string>()]));
  for (let changed = true; changed;) {
    changed = false;
    for (const g of GROUPS) {
      const set = members.get(g) as Set<string>;
      for (const u of users('member', g)) {
        const add = u === 'user:*' ? USERS : u.endsWith('#member') ? [...(members.get(u.slice(0, -7)) ?? [])] : [u];
        for (const x of add) if (!set.has(x)) (set.add(x), (changed = true));
      }
    }
  }
  const direct = (rel: string, o: string, user: string, wildcard: boolean): boolean =>
    users(rel, o).some((u) => u === user || (wildcard && u === 'user:*') || (u.endsWith('#member') && members.get(u.slice(0, -7))?.has(user) === true));
  const folderViewer = (f: string, u: string) => direct('viewer', f, u, false) || has(u, 'owner', f);
  const editor = (d: string, u: string) => direct('editor', d, u, false) || has(u, 'owner', d);
  const viewer = (d: string, u: string) => direct('viewer', d, u, true) || editor(d, u) || users('parent', d).some((f) => folderViewer(f, u));
  return (user, relation, object) => {
    if (object.startsWith('group:')) return members.get(object)?.has(user) === true;
    if (object.startsWith('folder:')) return relation === 'viewer' ? folderViewer(object, user) : has(user, 'owner', object);
    switch (relation) {
      case 'viewer':
        return viewer(object, user);
      case 'editor':
        return editor(object, user);
      case 'owner':
        return has(user, 'owner', object);
      case 'blocked':
        return direct('blocked', object, user, false);
      case 'can_read':
        return viewer(object, user) && !direct('blocked', object, user, false);
      case 'can_share':
        return editor(object, user) && viewer(object, user);
      default:
        throw new Error(relation);
    }
  };
}

const QUERIES: [relation: string, objects: readonly string[]][] = [
  ['member', GROUPS],
  ['viewer', FOLDERS],
  ['owner', FOLDERS],
  ['viewer', DOCS],
  ['editor', DOCS],
  ['owner', DOCS],
  ['blocked', DOCS],
  ['can_read', DOCS],
  ['can_share', DOCS],
];

describe('embedded engine: typed-array index against naive references', () => {
  it('answers every check and list objects like a fixpoint over the tuples (stored and contextual, both lookup modes)', () => {
    let checks = 0;
    for (let seed = 1; seed <= 40; seed++) {
      const tuples = randomTuples(seed, 5 + (seed % 30));
      const expected = reference(tuples);
      const unique = [...new Map(tuples.map((t) => [`${t.object}#${t.relation}@${t.user}`, t])).values()];
      const engines = [
        createEmbeddedEngine({ model: MODEL, tuples, invalidTuples: 'ignore' }),
        createEmbeddedEngine({ model: MODEL, tuples, invalidTuples: 'ignore', smallBucket: 0 }),
        createEmbeddedEngine({ model: MODEL, tuples, invalidTuples: 'ignore', smallBucket: 1000 }),
      ];
      for (const engine of engines) expect(engine.tupleCount, `seed ${seed}`).toBe(unique.length);
      const contextual = createEmbeddedEngine({ model: MODEL });
      for (const user of USERS) {
        for (const [relation, objects] of QUERIES) {
          for (const object of objects) {
            const want = expected(user, relation, object);
            const where = `seed ${seed}: ${object}#${relation}@${user}`;
            for (const engine of engines) expect(engine.check({ user, relation, object }), where).toBe(want);
            expect(contextual.check({ user, relation, object, contextualTuples: unique }), `${where} (contextual)`).toBe(want);
            checks++;
          }
          const type = objects[0].split(':')[0];
          const inTuples = new Set(tuples.map((t) => t.object));
          const listed = objects.filter((o) => inTuples.has(o) && expected(user, relation, o)).sort();
          expect(engines[0].listObjects({ user, relation, type }), `seed ${seed}: list ${type}#${relation}@${user}`).toEqual(listed);
        }
      }
    }
    expect(checks).toBeGreaterThan(3000);
  }, 120_000);

  it('indexes like a filter over the tuple list: exact tuple, usersets, buckets in order, by user, by type, repeats', () => {
    const ts = compileTypeSystem(MODEL);
    const ids = new ModelIds(ts);
    for (let seed = 1; seed <= 16; seed++) {
      const tuples = randomTuples(seed * 7919, 10 + (seed % 60));
      for (const dense of [true, false]) {
        for (const small of [0, 2, 1000]) {
          const nodes = new Nodes(ids);
          const builder = new CompactIndexBuilder(ids, (n) => nodes.intern(n), dense ? { nodeCount: () => nodes.size } : undefined);
          tuples.forEach((t, i) => builder.add(t.object, t.relation, t.user, i % 5 === 0 ? { name: `c${i}` } : undefined));
          const { index, repeats } = builder.done(small);
          const where = `seed ${seed} dense ${dense} small ${small}`;
          const key = (t: TupleKey) => `${t.object}#${t.relation}@${t.user}`;
          const firstAt = new Map<string, number>();
          const lastAt = new Map<string, number>();
          const expectedRepeats: number[] = [];
          tuples.forEach((t, i) => {
            if (firstAt.has(key(t))) expectedRepeats.push(i);
            else firstAt.set(key(t), i);
            lastAt.set(key(t), i);
          });
          expect(repeats, where).toEqual(expectedRepeats);
          expect(index.size, where).toBe(firstAt.size);
          const userOf = (u: string): [number, number] => {
            const hash = u.indexOf('#');
            return hash < 0 ? [nodes.get(u), 0] : [nodes.get(u.slice(0, hash)), ids.rel(u.slice(hash + 1))];
          };
          const render = (t: number) => {
            const u = nodes.names[index.tUser[t]] + (index.tURel[t] ? `#${ids.relNames[index.tURel[t]]}` : '');
            return `${nodes.names[index.tObj[t]]}#${ids.relNames[index.tRel[t]]}@${u}`;
          };
          for (const object of [...USERS, ...GROUPS, ...FOLDERS, ...DOCS, 'doc:absent']) {
            const known = nodes.get(object);
            const node = known >= 0 ? known : nodes.size + 5;
            for (const relation of ['member', 'viewer', 'owner', 'parent', 'blocked', 'editor', 'can_read']) {
              const rel = ids.rel(relation);
              const here = tuples.filter((t) => t.object === object && t.relation === relation);
              const firsts = [...new Set(here.map(key))];
              const b = index.bucket(node, rel);
              expect(b < 0, `${where} ${object}#${relation}`).toBe(firsts.length === 0);
              if (b >= 0) {
                // Insertion order (first occurrence) for tuple-to-userset reads.
                expect([...index.order.subarray(index.start(b), index.end(b))].map(render), where).toEqual(firsts);
                const usersets = firsts.filter((k) => k.split('@')[1].includes('#'));
                expect([...index.byUser.subarray(index.usersetStart(b), index.end(b))].map(render), where).toEqual(usersets);
              }
              for (const user of [...USERS, 'user:*', ...GROUPS.map((g) => `${g}#member`), 'user:zz', 'folder:f0', 'folder:f1']) {
                const [un, ur] = userOf(user);
                const t = un < 0 ? -1 : index.find(node, rel, un, ur);
                const k = `${object}#${relation}@${user}`;
                if (!firstAt.has(k)) {
                  expect(t, `${where} ${k}`).toBe(-1);
                  continue;
                }
                expect(t, `${where} ${k}`).toBe(firstAt.get(k));
                // The last copy's condition in the first copy's place.
                const last = lastAt.get(k) as number;
                expect(index.condition(t)?.name, `${where} ${k}`).toBe(last % 5 === 0 ? `c${last}` : undefined);
              }
            }
          }
          for (const user of [...USERS, 'user:*', ...GROUPS.map((g) => `${g}#member`), ...FOLDERS]) {
            const [un, ur] = userOf(user);
            const want = [...firstAt.entries()].filter(([k]) => k.split('@')[1] === user).map(([k]) => k);
            expect(index.withUser(un, ur).map(render), `${where} withUser ${user}`).toEqual(want);
          }
          for (const type of ['group', 'folder', 'doc']) {
            const want = [...new Set(tuples.map((t) => t.object).filter((o) => o.startsWith(`${type}:`)))];
            expect(
              index.objectsOfType(ids.type(type), (n) => nodes.type(n)).map((n) => nodes.names[n]),
              `${where} objectsOfType ${type}`,
            ).toEqual(want);
          }
        }
      }
    }
  }, 120_000);

  it('refuses a repeated tuple by its position in the file, after refused ones (strict mode)', () => {
    const tuples: TupleKey[] = [
      { user: 'user:a', relation: 'member', object: 'group:g0' },
      { user: 'user:a', relation: 'nope', object: 'group:g0' },
      { user: 'user:b', relation: 'member', object: 'group:g0' },
      { user: 'user:a', relation: 'member', object: 'group:g0' },
    ];
    let error: unknown;
    try {
      createEmbeddedEngine({ model: MODEL, tuples });
    } catch (err) {
      error = err;
    }
    const e = error as { index: number; more: { index: number; message: string }[] };
    expect(e.index).toBe(1);
    expect(e.more.map((m) => m.index)).toEqual([3]);
    expect(e.more[0].message).toContain('the same tuple appears twice');
  });

  describe('loading a tuples file straight into the index', () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-embedded-index-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    writeFileSync(join(dir, 'model.fga'), DSL);
    const load = (name: string, text: string, invalidTuples?: 'error' | 'ignore') => {
      writeFileSync(join(dir, name), text);
      return loadEmbeddedAuthorizer({ modelPath: join(dir, 'model.fga'), tuplesPath: join(dir, name), invalidTuples });
    };
    const simple = randomTuples(99, 40)
      .filter((t, i, all) => all.findIndex((u) => u.user === t.user && u.relation === t.relation && u.object === t.object) === i)
      .map((t) => `- { user: "${t.user}", relation: ${t.relation}, object: "${t.object}" }\n`)
      .join('');

    it('gives the same policy (answers and digest) from the line reader, the YAML parser and an array', async () => {
      const fast = await load('fast.yaml', simple);
      // A block-style item at the end: the line reader gives up after streaming the rest, the YAML parser reads it all.
      const block = await load('block.yaml', `${simple}- user: user:a\n  relation: owner\n  object: doc:d9\n`);
      const parsed = parseTuplesYaml(`${simple}- user: user:a\n  relation: owner\n  object: doc:d9\n`).tuples;
      const fromArray = createEmbeddedAuthorizer({ model: MODEL, tuples: parsed });
      const jsonl = await load('t.jsonl', parsed.map((t) => JSON.stringify(t)).join('\n'));
      expect(block.evaluator.tupleCount).toBe(fast.evaluator.tupleCount + 1);
      expect(block.modelId).toBe(fromArray.modelId);
      expect(jsonl.modelId).toBe(fromArray.modelId);
      expect(fast.modelId).not.toBe(block.modelId);
      expect(await block.check({ user: 'user:a', relation: 'owner', object: 'doc:d9' })).toBe(true);
      expect(await fast.check({ user: 'user:a', relation: 'owner', object: 'doc:d9' })).toBe(false);
      for (const user of USERS) {
        for (const object of DOCS) {
          const want = await fromArray.check({ user, relation: 'can_read', object });
          expect(await block.check({ user, relation: 'can_read', object })).toBe(want);
          expect(await jsonl.check({ user, relation: 'can_read', object })).toBe(want);
        }
      }
    });

    it('names the line of a refused or repeated tuple, and of a malformed JSON line', async () => {
      const text = `# header\n- { user: user:a, relation: member, object: group:g0 }\n- { user: user:a, relation: nope, object: group:g0 }\n\n- { user: user:a, relation: member, object: group:g0 }\n`;
      const err = (await load('bad.yaml', text).catch((e: unknown) => e)) as Error;
      expect(err.message).toContain(`${join(dir, 'bad.yaml')}:3: tuple 2`);
      expect(err.message).toContain(`${join(dir, 'bad.yaml')}:5: tuple 3 (group:g0#member@user:a): the same tuple appears twice`);
      const ignored = await load('bad.yaml', text, 'ignore');
      expect(ignored.evaluator.tupleCount).toBe(1);
      const jsonErr = (await load('bad.jsonl', '{"user":"user:a","relation":"member","object":"group:g0"}\n\n{"user":\n').catch((e: unknown) => e)) as Error & {
        code?: string;
      };
      expect(jsonErr).toMatchObject({ code: 'config_invalid' });
      expect(jsonErr.message).toContain('bad.jsonl:3: tuple 2: not JSON');
    });
  });
});
