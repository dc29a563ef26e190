/** Starts the example upstreams used by `npm start`: the notes API, the MCP file server and the Notes Cloud OAuth provider. */

import { startNotesApi } from './notes-api.js';
import { startExampleMcpServer } from './mcp-server.js';
import { startDemoOAuthProvider } from './oauth-provider.js';

// Ports and the client registration match gateway.yaml (routes and vault.providers.notes-cloud).
const publicUrl = process.env.WARDEN_PUBLIC_URL ?? 'http://127.0.0.1:8080';
const provider = await startDemoOAuthProvider({
  port: 9102,
  clients: [{ clientId: 'warden-demo', clientSecret: 'demo-only-client-secret', redirectUris: [`${publicUrl}/.warden/callback/notes-cloud`] }],
});
const notes = await startNotesApi(9101, (t) => provider.accountOf(t));
const mcp = await startExampleMcpServer({ port: 9100 });
process.stdout.write(`[examples] notes API ${notes.url}, MCP server ${mcp.url}, Notes Cloud OAuth provider ${provider.url}\n`);

const stop = async () => {
  await Promise.allSettled([notes.close(), mcp.close(), provider.close()]);
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
