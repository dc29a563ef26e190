/**
 * The compiled route table (#17) against the linear scan it replaces: for
 * random route tables (literals, :param, *, **, method sets) and random paths
 * and methods, both choose the same route, or both answer 405, or both 404.
 */

import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { compilePattern } from './routes.js';
import type { CompiledRoute } from './compile.js';
import { compileRouteTable, findRouteLinear } from './route-table.js';

const LITERALS = ['a', 'b', 'c', 'api', 'v1'];
const METHODS = ['GET', 'POST', 'PUT', 'DELETE'];

type Piece = { kind: 'lit'; v: string } | { kind: 'param' } | { kind: 'star' };
const piece: fc.Arbitrary<Piece> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...LITERALS).map((v) => ({ kind: 'lit' as const, v })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'param' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'star' as const }) },
);
const pattern = fc.tuple(fc.array(piece, { minLength: 0, maxLength: 4 }), fc.boolean()).map(([pieces, rest]) => {
  let n = 0;
  const parts = pieces.map((p) => (p.kind === 'lit' ? p.v : p.kind === 'star' ? '*' : `:p${n++}`));
  if (rest) parts.push('**');
  return '/' + parts.join('/');
});
const methods = fc.option(fc.uniqueArray(fc.constantFrom(...METHODS), { minLength: 1, maxLength: 3 }), { nil: null });
const routeTable = fc
  .array(fc.tuple(pattern, methods), { minLength: 0, maxLength: 25 })
  .map((defs) => defs.map(([source, m], index) => ({ index, pattern: compilePattern(source), methods: m ? new Set(m) : null }) as unknown as CompiledRoute));
const segments = fc.array(fc.constantFrom(...LITERALS, 'x', 'zz', ''), { minLength: 0, maxLength: 6 });
const method = fc.constantFrom(...METHODS, 'PATCH');

describe('compiled route table', () => {
  it('chooses exactly what the linear first-match scan chooses', () => {
    fc.assert(
      fc.property(routeTable, fc.array(fc.tuple(segments, method), { minLength: 1, maxLength: 20 }), (routes, requests) => {
        const table = compileRouteTable(routes);
        for (const [segs, m] of requests) {
          const want = findRouteLinear(routes, segs, m);
          const got = table.find(segs, m);
          expect(got.route?.index).toBe(want.route?.index);
          expect(got.methodMismatch).toBe(want.methodMismatch);
          expect([...(got.allowed ?? [])].sort()).toEqual([...(want.allowed ?? [])].sort());
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('paths that hit routes: every route of the table is found where the scan finds it', () => {
    // Paths built from the table's own patterns, so most lookups hit something.
    fc.assert(
      fc.property(routeTable, fc.array(fc.constantFrom(...LITERALS, 'x'), { minLength: 0, maxLength: 3 }), method, (routes, tail, m) => {
        const table = compileRouteTable(routes);
        for (const r of routes) {
          const segs = r.pattern.source
            .split('/')
            .slice(1)
            .filter((p) => p !== '')
            .flatMap((p) => (p === '**' ? tail : p.startsWith(':') || p === '*' ? ['x'] : [p]));
          expect(table.find(segs, m).route?.index).toBe(findRouteLinear(routes, segs, m).route?.index);
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('keeps first-match order where a later literal route is more specific', () => {
    const defs: Array<[string, string[] | null]> = [
      ['/api/:id', ['GET']],
      ['/api/special', null],
      ['/api/**', ['POST']],
    ];
    const routes = defs.map(([s, m], index) => ({ index, pattern: compilePattern(s), methods: m ? new Set(m) : null }) as unknown as CompiledRoute);
    const table = compileRouteTable(routes);
    expect(table.find(['api', 'special'], 'GET').route?.index).toBe(0);
    expect(table.find(['api', 'special'], 'DELETE').route?.index).toBe(1);
    expect(table.find(['api', 'x', 'y'], 'POST').route?.index).toBe(2);
    expect(table.find(['api', 'x', 'y'], 'GET')).toEqual({ route: undefined, methodMismatch: true, allowed: new Set(['POST']) });
    expect(table.find(['other'], 'GET')).toEqual({ route: undefined, methodMismatch: false });
  });

  it('finds the last of 2,000 literal routes through the tree, not by scanning', () => {
    // Timing belongs to the bench (rows G0-2k1 / G0-2kN); here only the answer is checked.
    const routes = Array.from(
      { length: 2000 },
      (_, index) => ({ index, pattern: compilePattern(`/svc${index}/items/:id`), methods: null }) as unknown as CompiledRoute,
    );
    const table = compileRouteTable(routes);
    expect(table.find(['svc1999', 'items', '1'], 'GET').route?.index).toBe(1999);
    expect(table.find(['svc0', 'items', '1'], 'GET').route?.index).toBe(0);
    expect(table.find(['svc2000', 'items', '1'], 'GET').route).toBeUndefined();
  });
});
