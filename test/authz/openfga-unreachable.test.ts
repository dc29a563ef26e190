/**
 * Warden started while OpenFGA is unreachable starts anyway, exactly as it
 * does for Redis: readiness is 503 with the reason, authorized routes answer
 * 503 authz_unavailable (nothing is forwarded), and the model is retried with
 * backoff until OpenFGA answers. "Unreachable" is a real closed port; OpenFGA
 * becomes reachable when a TCP forwarder to the real server opens on it.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, connect, type Server } from 'node:net';
import { startWarden, type WardenHandle } from '../support/gateway.js';
import { startUpstream, type Upstream } from '../support/upstream.js';
import { freePort } from '../support/net.js';
import { SAMPLE_TUPLES, createStoreWithModel, sampleModel, startOpenFga, type OpenFgaServer } from '../support/openfga.js';

let fga: OpenFgaServer;
let upstream: Upstream;
let warden: WardenHandle | undefined;
let forwarder: Server | undefined;
const sockets = new Set<import('node:net').Socket>();
let port: number;
let storeId: string;
let modelId: string;

beforeAll(async () => {
  fga = await startOpenFga();
  ({ storeId, modelId } = await createStoreWithModel(fga.apiUrl, sampleModel(), SAMPLE_TUPLES));
  upstream = await startUpstream();
  port = await freePort();
}, 60_000);

afterAll(async () => {
  await warden?.close();
  for (const s of sockets) s.destroy();
  await new Promise((r) => (forwarder ? forwarder.close(r) : r(undefined)));
  await upstream?.close();
  await fga?.stop();
});

/** Open the closed port: forward it to the real OpenFGA. */
async function makeReachable(): Promise<void> {
  const target = new URL(fga.apiUrl);
  forwarder = createServer((socket) => {
    const out = connect(Number(target.port), target.hostname);
    sockets.add(socket).add(out);
    socket.pipe(out).pipe(socket);
    out.on('error', () => socket.destroy());
    socket.on('error', () => out.destroy());
  });
  await new Promise<void>((r) => forwarder!.listen(port, '127.0.0.1', r));
}

describe('OpenFGA unreachable at startup', () => {
  it('starts anyway: readyz 503 with the reason, 503 authz_unavailable, then recovers with backoff', async () => {
    warden = await startWarden({
      config: `
server: { listen: "127.0.0.1:0" }
identity: { dev_issuer: true }
authz:
  engine: openfga
  openfga: { api_url: "http://127.0.0.1:${port}", store_id: "${storeId}", model_id: "${modelId}" }
routes:
  - name: docs
    match: { path: "/docs/**" }
    upstream: { url: "${upstream.url}" }
    authorize: [{ user: "user:{user}", relation: viewer, object: "document:roadmap" }]
`,
    });
    const ready = await fetch(`${warden.url}/.warden/readyz`);
    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({
      status: 'unavailable',
      checks: { authz: 'unavailable' },
      reasons: { authz: expect.stringMatching(/^openfga_/) },
    });

    const token = await warden.token('reader', 'anne');
    const refused = await fetch(`${warden.url}/docs/roadmap`, { headers: { authorization: `Bearer ${token}` } });
    expect(refused.status).toBe(503);
    expect(await refused.json()).toMatchObject({ code: 'authz_unavailable' });
    expect(upstream.requests).toHaveLength(0);

    await makeReachable();
    let status = 0;
    for (let i = 0; i < 300 && status !== 200; i++) {
      status = (await fetch(`${warden.url}/.warden/readyz`)).status;
      if (status !== 200) await new Promise((r) => setTimeout(r, 100));
    }
    expect(status).toBe(200);
    const allowed = await fetch(`${warden.url}/docs/roadmap`, { headers: { authorization: `Bearer ${token}` } });
    expect(allowed.status).toBe(200);
    expect(upstream.requests).toHaveLength(1);
  }, 60_000);
});
