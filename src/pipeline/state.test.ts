import { describe, expect, it } from 'vitest';
import type { RequestState } from './context.js';
import { newState } from './state.js';
import type { CompiledRoute } from './compile.js';
import { matchRoute } from './match.js';
import { compileRouteTable } from './route-table.js';
import { compilePattern } from './routes.js';

/** Every field of RequestState; the type makes this list fail to compile when a field is added to RequestState and not here. */
const EVERY_FIELD: { [K in keyof Required<RequestState>]: true } = {
  id: true,
  startedAt: true,
  method: true,
  path: true,
  segments: true,
  query: true,
  headers: true,
  clientIp: true,
  params: true,
  policy: true,
  upstreamHeaders: true,
  checks: true,
  route: true,
  routeIndex: true,
  principal: true,
  token: true,
  body: true,
  json: true,
  mcp: true,
  responseHook: true,
  responseHead: true,
  responseBuffer: true,
  signal: true,
  releasing: true,
  upstreamAuthorization: true,
  forwardOnlyHeaders: true,
  approvalId: true,
  limitTrace: true,
  afterApprove: true,
  onSettled: true,
  approval: true,
  assertionHeaders: true,
  responseHeaders: true,
  streamedBody: true,
  shadow: true,
  shadowMode: true,
  decision: true,
  reason: true,
  status: true,
  cut: true,
  upstreamStartedAt: true,
  upstreamHeadersAt: true,
};

const target = { path: '/api/items/42', segments: ['api', 'items', '42'], query: '' };

describe('newState', () => {
  it('creates every field of RequestState up front, so the object keeps one shape', () => {
    const state = newState({ method: 'GET', target, headers: {}, clientIp: '127.0.0.1' });
    const missing = Object.keys(EVERY_FIELD).filter((k) => !Object.prototype.hasOwnProperty.call(state, k));
    expect(missing).toEqual([]);
    expect(Object.keys(state).sort()).toEqual(Object.keys(EVERY_FIELD).sort());
  });

  it('keeps a well-formed inbound request id and replaces any other', () => {
    expect(newState({ method: 'GET', target, headers: { 'x-request-id': 'abc-1' }, clientIp: '' }).id).toBe('abc-1');
    const fresh = newState({ method: 'GET', target, headers: { 'x-request-id': 'bad id' }, clientIp: '' }).id;
    expect(fresh).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('starts with nothing decided', () => {
    const state = newState({ method: 'POST', target, headers: {}, clientIp: '10.0.0.1' });
    expect(state).toMatchObject({ method: 'POST', path: '/api/items/42', clientIp: '10.0.0.1', params: {}, upstreamHeaders: [], checks: [] });
    expect(state.decision).toBeUndefined();
    expect(state.route).toBeUndefined();
    expect(state.status).toBeUndefined();
  });
});

describe('policy and parameters before and after a match', () => {
  const route = (index: number, path: string, config: object) =>
    ({ index, pattern: compilePattern(path), methods: null, queryReads: null, config: { name: `r${index}`, ...config } }) as unknown as CompiledRoute;
  const table = compileRouteTable([
    route(0, '/plain', {}),
    route(1, '/items/:id', { authorize: { mode: 'all', checks: [{ user: 'u', relation: 'r', object: 'o' }] }, approval: [{ message: 'm' }] }),
  ]);
  const at = (path: string) => newState({ method: 'GET', target: { path, segments: path.split('/').slice(1), query: '' }, headers: {}, clientIp: '' });

  it('shares one frozen empty policy until a route matches (nothing may write to it)', () => {
    const a = at('/plain');
    expect(a.policy).toBe(at('/x').policy);
    expect(Object.isFrozen(a.policy) && Object.isFrozen(a.policy.authorize) && Object.isFrozen(a.policy.approval) && Object.isFrozen(a.params)).toBe(true);
  });

  it('gives every matched request its own policy arrays, which stages may extend', () => {
    for (const path of ['/plain', '/items/1']) {
      const a = at(path);
      const b = at(path);
      matchRoute(table, a);
      matchRoute(table, b);
      expect(a.policy).not.toBe(b.policy);
      a.policy.authorize.push({ mode: 'all', checks: [] });
      a.policy.approval.unshift({ rule: { message: 'over budget' }, source: 'budget' });
      expect(b.policy.authorize).toHaveLength(path === '/plain' ? 0 : 1);
      expect(b.policy.approval).toHaveLength(path === '/plain' ? 0 : 1);
    }
    const c = at('/items/7');
    matchRoute(table, c);
    expect(c.params).toEqual({ id: '7' });
    expect(c.policy.approval).toEqual([{ rule: { message: 'm' }, source: 'routes[1].approval[0]' }]);
  });
});
