// Coalescing and single-flight of OpenFGA checks, against a real OpenFGA server.
// A counting HTTP relay sits between the authorizer and OpenFGA: it forwards every
// request unchanged and records what went over the wire (path, body, connection).
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createOpenFgaAuthorizer, type OpenFgaAuthorizer } from '../../src/authz/openfga.js';
import { WardenError } from '../../src/core/errors.js';
import { SAMPLE_TUPLES, createStoreWithModel, sampleModel, startOpenFga, type OpenFgaServer } from '../support/openfga.js';

interface Seen {
  path: string;
  body: Record<string, unknown>;
  connection: number;
}

/** An HTTP relay to `target` that records each request. */
async function startRelay(target: string): Promise<{ url: string; seen: Seen[]; close: () => Promise<void> }> {
  const seen: Seen[] = [];
  let connections = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString();
      const connection = (req.socket as unknown as { relayId: number }).relayId;
      seen.push({ path: req.url ?? '', body: text ? (JSON.parse(text) as Record<string, unknown>) : {}, connection });
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && !['host', 'connection', 'content-length'].includes(k)) headers[k] = v;
      fetch(target + (req.url ?? ''), { method: req.method, headers, body: text || undefined, signal: AbortSignal.timeout(10_000) }).then(
        async (r) => {
          const body = await r.text();
          res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'application/json' });
          res.end(body);
        },
        () => {
          res.writeHead(502);
          res.end();
        },
      );
    });
  });
  server.on('connection', (socket) => {
    (socket as unknown as { relayId: number }).relayId = ++connections;
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const checksPosted = (seen: Seen[]) => seen.filter((s) => s.path.endsWith('/check') || s.path.endsWith('/batch-check'));

async function failure(p: Promise<unknown>): Promise<WardenError> {
  try {
    await p;
  } catch (err) {
    return err as WardenError;
  }
  throw new Error('expected a failure, got an answer');
}

describe('OpenFGA checks: single-flight and batch coalescing (real server)', () => {
  let server: OpenFgaServer;
  let relay: Awaited<ReturnType<typeof startRelay>>;
  let fga: OpenFgaAuthorizer;

  beforeAll(async () => {
    server = await startOpenFga();
    const { storeId, modelId } = await createStoreWithModel(server.apiUrl, sampleModel(), SAMPLE_TUPLES);
    relay = await startRelay(server.apiUrl);
    fga = await createOpenFgaAuthorizer({ apiUrl: relay.url, storeId, modelId, timeoutMs: 5_000, retries: 0 });
  });
  afterAll(async () => {
    await fga?.close();
    await relay?.close();
    await server?.stop();
  });
  beforeEach(() => {
    relay.seen.length = 0;
  });

  it('single-flight: concurrent identical checks make one call and all get its decision', async () => {
    const anne = { user: 'user:anne', relation: 'viewer', object: 'document:roadmap' };
    const answers = await Promise.all(Array.from({ length: 10 }, () => fga.check({ ...anne })));
    expect(answers).toEqual(Array(10).fill(true));
    const bob = { user: 'user:bob', relation: 'viewer', object: 'document:roadmap' };
    const denied = await Promise.all(Array.from({ length: 5 }, () => fga.check({ ...bob })));
    expect(denied).toEqual(Array(5).fill(false));
    // One request per distinct check (each alone in its turn: the plain check endpoint).
    const posted = checksPosted(relay.seen);
    expect(posted).toHaveLength(2);
    expect(posted.every((s) => s.path.endsWith('/check'))).toBe(true);
  });

  it('single-flight keys on context and contextual tuples: same relation, different context = different calls', async () => {
    const refund = { user: 'agent:bot', relation: 'can_call', object: 'tool:refund' };
    const [a, b, c] = await Promise.all([
      fga.check({ ...refund, context: { amount: 50 } }),
      fga.check({ ...refund, context: { amount: 500 } }),
      fga.check({ ...refund, context: { amount: 50 } }),
    ]);
    expect([a, b, c]).toEqual([true, false, true]);
    const posted = checksPosted(relay.seen);
    expect(posted).toHaveLength(1);
    expect((posted[0].body.checks as unknown[]).length).toBe(2);
  });

  it('coalesces concurrent checks into one batch-check; each caller gets its own decision, a per-check error only its caller', async () => {
    const frank = { user: 'user:frank', relation: 'viewer', object: 'document:roadmap' };
    const cases: Array<{ request: Parameters<OpenFgaAuthorizer['check']>[0]; want: boolean | 'error' }> = [
      { request: { user: 'user:anne', relation: 'viewer', object: 'document:roadmap' }, want: true },
      { request: { user: 'user:bob', relation: 'viewer', object: 'document:roadmap' }, want: false },
      { request: { user: 'user:bob', relation: 'viewer', object: 'document:budget' }, want: true },
      { request: { user: 'user:carl', relation: 'viewer', object: 'document:plan' }, want: false },
      { request: { user: 'user:dana', relation: 'editor', object: 'document:secret', context: { ip: '10.1.2.3' } }, want: true },
      { request: { user: 'user:dana', relation: 'editor', object: 'document:secret', context: { ip: '192.168.0.1' } }, want: false },
      { request: frank, want: false },
      { request: { ...frank, contextualTuples: [{ user: 'user:frank', relation: 'member', object: 'group:eng' }] }, want: true },
      // A missing condition parameter: OpenFGA answers this item with an error.
      { request: { user: 'user:dana', relation: 'editor', object: 'document:secret' }, want: 'error' },
      { request: { user: 'agent:bot', relation: 'can_call', object: 'tool:refund', context: { amount: 99 } }, want: true },
    ];
    const settled = await Promise.allSettled(cases.map((c) => fga.check(c.request)));
    settled.forEach((s, i) => {
      if (cases[i].want === 'error') {
        expect(s.status, `case ${i}`).toBe('rejected');
        const err = (s as PromiseRejectedResult).reason as WardenError;
        expect(err).toBeInstanceOf(WardenError);
        expect(err.code).toBe('authz_unavailable');
        expect(err.reason).toBe('openfga_check_invalid');
      } else {
        expect(s.status, `case ${i}`).toBe('fulfilled');
        expect((s as PromiseFulfilledResult<boolean>).value, `case ${i}`).toBe(cases[i].want);
      }
    });
    const posted = checksPosted(relay.seen);
    expect(posted).toHaveLength(1);
    expect(posted[0].path).toMatch(/\/batch-check$/);
    expect((posted[0].body.checks as unknown[]).length).toBe(cases.length);
  });

  it('batchCheck answers in input order through the batcher and fails as a whole when one check fails', async () => {
    const answers = await fga.batchCheck([
      { user: 'user:bob', relation: 'viewer', object: 'document:roadmap' },
      { user: 'user:anne', relation: 'viewer', object: 'document:roadmap' },
      { user: 'user:bob', relation: 'viewer', object: 'document:budget' },
    ]);
    expect(answers).toEqual([false, true, true]);
    expect(checksPosted(relay.seen)).toHaveLength(1);
    const err = await failure(
      fga.batchCheck([
        { user: 'user:anne', relation: 'viewer', object: 'document:roadmap' },
        { user: 'user:dana', relation: 'editor', object: 'document:secret' },
      ]),
    );
    expect(err.code).toBe('authz_unavailable');
  });

  it('higher_consistency: never joins a check in flight, is batched apart and sent with HIGHER_CONSISTENCY', async () => {
    const anne = { user: 'user:anne', relation: 'viewer', object: 'document:roadmap' };
    const bob = { user: 'user:bob', relation: 'viewer', object: 'document:budget' };
    const answers = await Promise.all([
      fga.check(anne),
      fga.check(anne, { consistency: 'higher_consistency' }),
      fga.check(bob, { consistency: 'higher_consistency' }),
      fga.check(bob),
    ]);
    expect(answers).toEqual([true, true, true, true]);
    const posted = checksPosted(relay.seen);
    expect(posted).toHaveLength(2);
    const fresh = posted.find((s) => s.body.consistency === 'HIGHER_CONSISTENCY');
    const normal = posted.find((s) => s.body.consistency !== 'HIGHER_CONSISTENCY');
    expect((fresh?.body.checks as unknown[]).length).toBe(2);
    expect((normal?.body.checks as unknown[]).length).toBe(2);
  });

  it('reuses keep-alive connections: 20 checks one after another do not open 20 connections', async () => {
    for (let i = 0; i < 20; i++) await fga.check({ user: `user:u${i}`, relation: 'viewer', object: 'document:roadmap' });
    const posted = checksPosted(relay.seen);
    expect(posted).toHaveLength(20);
    // One, or two when a check leaves before the pool has marked the previous connection idle.
    expect(new Set(posted.map((s) => s.connection)).size).toBeLessThanOrEqual(2);
  });
});

describe('OpenFGA batch failure (private server)', () => {
  it('an OpenFGA error on the batch request fails every caller in it closed', async () => {
    // The server takes at most 2 checks per batch: a batch of 3 is refused as a whole (400).
    const server = await startOpenFga({ private: true, args: ['--max-checks-per-batch-check', '2'] });
    try {
      const { storeId, modelId } = await createStoreWithModel(server.apiUrl, sampleModel(), SAMPLE_TUPLES);
      const fga = await createOpenFgaAuthorizer({ apiUrl: server.apiUrl, storeId, modelId, timeoutMs: 5_000, retries: 0 });
      try {
        const settled = await Promise.allSettled([
          fga.check({ user: 'user:anne', relation: 'viewer', object: 'document:roadmap' }),
          fga.check({ user: 'user:bob', relation: 'viewer', object: 'document:budget' }),
          fga.check({ user: 'user:erin', relation: 'viewer', object: 'document:plan' }),
        ]);
        for (const s of settled) {
          expect(s.status).toBe('rejected');
          const err = (s as PromiseRejectedResult).reason as WardenError;
          expect(err.code).toBe('authz_unavailable');
          expect(err.status).toBe(503);
        }
        // Alone, the same check is answered (the server itself is fine).
        expect(await fga.check({ user: 'user:anne', relation: 'viewer', object: 'document:roadmap' })).toBe(true);
      } finally {
        await fga.close();
      }
    } finally {
      await server.stop();
    }
  });
});
