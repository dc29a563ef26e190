/**
 * The test helpers that spawn servers on a port picked by freePort() must notice
 * when another process took that port first: its readiness probe would be
 * answered by the other process, and a fault test that stops "its" server
 * (SIGSTOP) would still get answers (a flaky "expected a failure, got an
 * answer" in test/authz/openfga.test.ts).
 */

import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, listenerOwnedBy } from '../support/net.js';
import { openFgaBinary, spawnOnce } from '../support/openfga.js';

const onLinux = process.platform === 'linux';

function listen(server: Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

describe('port ownership of spawned test servers', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  it.runIf(onLinux)('tells the process that listens on a port from one that does not', async () => {
    const server = createServer((_req, res) => res.end());
    servers.push(server);
    const port = await listen(server);
    expect(listenerOwnedBy(process.pid, port)).toBe(true);

    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10_000)'], { stdio: 'ignore' });
    try {
      await new Promise((r) => child.once('spawn', r));
      expect(listenerOwnedBy(child.pid as number, port)).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
    // Nobody listens on a port just released.
    expect(listenerOwnedBy(process.pid, await freePort())).toBe(false);
  });

  it.runIf(onLinux)('spawns OpenFGA anew when another process answers /healthz on the port it was given', async () => {
    // Another HTTP server holds the port and answers every path with 200, as test upstreams do.
    const squatter = createServer((_req, res) => res.end('ok'));
    servers.push(squatter);
    const http = await listen(squatter);
    const outcome = await spawnOnce(openFgaBinary(), [], 30_000, { http, grpc: await freePort() });
    if (outcome !== 'port-taken') await outcome.stop();
    expect(outcome).toBe('port-taken');
  });
});
