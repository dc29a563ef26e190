/**
 * Variant F: what a Node team would build instead — fastify with
 * @fastify/http-proxy (undici underneath), logger off, defaults otherwise.
 *
 * Usage: node bench/servers/fastify-proxy.mjs <listenPort> <upstreamOrigin>
 */

import Fastify from 'fastify';
import proxy from '@fastify/http-proxy';

const [port, origin] = [Number(process.argv[2]), process.argv[3]];
const app = Fastify({ logger: false, keepAliveTimeout: 75_000 });
await app.register(proxy, { upstream: origin, http2: false });
await app.listen({ port, host: '127.0.0.1' });
process.on('SIGTERM', () => app.close().then(() => process.exit(0)));
