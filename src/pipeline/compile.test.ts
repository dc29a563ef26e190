import { describe, expect, it } from 'vitest';
import type { Config } from '../config/schema.js';
import { compileRoutes } from './compile.js';

describe('compileRoutes', () => {
  it("precomputes the lower-case names of a route's upstream.headers (the agent's headers of those names are dropped)", () => {
    const config = {
      server: { limits: { request_timeout: 30_000 } },
      routes: [
        { match: { path: '/a/*' }, upstream: { url: 'http://127.0.0.1:9000', headers: { 'X-Tenant': 'acme', 'x-REGION': 'eu' } } },
        { match: { path: '/b/*' }, upstream: { url: 'http://127.0.0.1:9000' } },
      ],
    } as unknown as Config;
    const [withHeaders, without] = compileRoutes(config);
    expect([...withHeaders.headerNames]).toEqual(['x-tenant', 'x-region']);
    expect(withHeaders.headers).toEqual([
      ['X-Tenant', 'acme'],
      ['x-REGION', 'eu'],
    ]);
    expect(without.headerNames.size).toBe(0);
  });
});
