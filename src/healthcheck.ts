#!/usr/bin/env node
/**
 * Container health probe: GET /.warden/healthz on the agent listener named by
 * WARDEN_LISTEN (the Dockerfile sets it), exit 0 when it answers 200. Node's
 * own HTTP client, so the image needs no curl.
 */

import { request } from 'node:http';

const TIMEOUT_MS = 3_000;

/** The loopback URL of a `host:port` listen address (a wildcard host is reached on loopback). */
function healthzUrl(listen: string): string {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(listen);
  if (!m) throw new Error(`WARDEN_LISTEN must be host:port (got ${JSON.stringify(listen)})`);
  const host = m[1] === '0.0.0.0' ? '127.0.0.1' : m[1] === '[::]' ? '[::1]' : m[1];
  return `http://${host}:${m[2]}/.warden/healthz`;
}

function probe(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

const url = healthzUrl(process.env.WARDEN_LISTEN || '127.0.0.1:8080');
probe(url).then(
  (status) => {
    if (status !== 200) process.stderr.write(`${url}: HTTP ${status}\n`);
    process.exit(status === 200 ? 0 : 1);
  },
  (err: Error) => {
    process.stderr.write(`${url}: ${err.message}\n`);
    process.exit(1);
  },
);
