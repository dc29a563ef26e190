/**
 * Shared fixtures of the identity tests: config through the real schema, a
 * request-counting HTTP server, and error expectations.
 */

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { identitySchema } from '../../src/config/schema.js';
import { WardenError } from '../../src/core/errors.js';

/** `identity:` parsed by the real schema (durations become ms). */
export function identityConfig(raw: Record<string, unknown>) {
  return identitySchema.parse(raw);
}

/** Expect `promise` to reject with an `unauthenticated` WardenError of `reason` (`token_<reason>`). */
export async function expectRefused(promise: Promise<unknown>, reason: string): Promise<WardenError> {
  const err = await promise.then(
    () => {
      throw new Error(`expected refusal (${reason}) but the token was accepted`);
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WardenError);
  const we = err as WardenError;
  expect(we.code).toBe('unauthenticated');
  expect(we.status).toBe(401);
  expect(we.reason).toBe(`token_${reason}`);
  expect(we.headers['WWW-Authenticate']).toMatch(/^Bearer error="invalid_token", error_description="[^"]*"$/);
  return we;
}

/**
 * An HTTP server that records every request and answers 200 with `body` (a
 * trap for jku/x5u), or whatever `answer(path)` returns.
 */
export async function startRecordingServer(
  body: unknown = { keys: [] },
  answer?: (path: string) => { status: number; body: unknown },
): Promise<{ url: string; hits: string[]; stop(): Promise<void> }> {
  const hits: string[] = [];
  const server: Server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    const out = answer ? answer(req.url ?? '/') : { status: 200, body };
    res.writeHead(out.status, { 'content-type': 'application/json' }).end(JSON.stringify(out.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
