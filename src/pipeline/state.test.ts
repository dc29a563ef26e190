import { describe, expect, it } from 'vitest';
import type { RequestState } from './context.js';
import { newState } from './state.js';

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
