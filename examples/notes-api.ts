/**
 * The demo REST upstream behind `npm start`: a tiny document API. It reports
 * which credentials reached it, so you can see that the agent's token never
 * does.
 */

import { createServer, type Server } from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';

export interface NotesApi {
  url: string;
  close(): Promise<void>;
}

/**
 * Start the notes API on `port` (0 = any free port) on loopback. `accountOf`
 * resolves a Notes Cloud access token to its account (the demo OAuth provider
 * runs in the same process), so `GET /me` can show whose token arrived.
 */
export async function startNotesApi(port = 9101, accountOf: (accessToken: string) => string | undefined = () => undefined): Promise<NotesApi> {
  const docs = new Map<string, { id: string; title: string; body: string }>([
    ['1', { id: '1', title: "Alice's plan", body: 'Ship the gateway.' }],
    ['2', { id: '2', title: "Bob's notes", body: 'Private.' }],
    ['3', { id: '3', title: 'Team handbook', body: 'Be kind.' }],
  ]);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://notes.local');
      const send = (status: number, value: unknown) => {
        const body = JSON.stringify(value);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      const seen = {
        authorization: req.headers.authorization ? req.headers.authorization.replace(/^(\w+)\s+(.{6}).*$/, '$1 $2…') : null,
        api_key: req.headers['x-api-key'] ? 'present' : null,
      };
      if (url.pathname === '/status') return send(200, { status: 'ok', credentials_seen: seen });
      if (url.pathname === '/me') {
        // Reached through Warden's vault route: the bearer token is the user's own Notes Cloud token.
        const bearer = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '')?.[1];
        const account = bearer ? accountOf(bearer) : undefined;
        if (!account) return send(401, { error: 'no valid Notes Cloud token', credentials_seen: seen });
        return send(200, { notes_cloud_account: account, credentials_seen: seen, agent_token_seen: bearer?.split('.').length === 3 });
      }
      const m = /^\/docs\/([^/]+)$/.exec(url.pathname);
      if (!m) return send(404, { error: 'not found' });
      const id = decodeURIComponent(m[1]);
      if (req.method === 'GET') return docs.has(id) ? send(200, { ...docs.get(id), credentials_seen: seen }) : send(404, { error: 'no such doc' });
      if (req.method === 'PUT') {
        let parsed: { title?: string; body?: string } = {};
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
        } catch {
          return send(400, { error: 'invalid JSON' });
        }
        docs.set(id, { id, title: parsed.title ?? 'untitled', body: parsed.body ?? '' });
        return send(200, docs.get(id));
      }
      if (req.method === 'DELETE') return docs.delete(id) ? send(200, { deleted: id }) : send(404, { error: 'no such doc' });
      return send(405, { error: 'method not allowed' });
    });
  });
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
