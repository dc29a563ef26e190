/** Starts the example upstreams used by `npm start`: the notes API and the MCP file server. */

import { startNotesApi } from './notes-api.js';
import { startExampleMcpServer } from './mcp-server.js';

const notes = await startNotesApi(9101);
const mcp = await startExampleMcpServer({ port: 9100 });
process.stdout.write(`[examples] notes API ${notes.url}, MCP server ${mcp.url}\n`);

const stop = async () => {
  await Promise.allSettled([notes.close(), mcp.close()]);
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
process.on('SIGINT', () => void stop());
