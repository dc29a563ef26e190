#!/usr/bin/env node
// `npm start`: the example upstreams on loopback, then Warden on the repo's
// gateway.yaml (embedded defaults), then a printed "try this".
import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist/src/cli.js');
if (!existsSync(cli) || !existsSync(join(root, 'dist/examples/start.js'))) {
  console.error('[start] building (npm run build)…');
  execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
}

const children = [];
const stopAll = (code = 0) => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  setTimeout(() => process.exit(code), 300).unref();
};
process.on('SIGINT', () => stopAll(0));
process.on('SIGTERM', () => stopAll(0));

const examples = spawn(process.execPath, [join(root, 'dist/examples/start.js')], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
children.push(examples);
await new Promise((resolve, reject) => {
  examples.once('exit', (code) => reject(new Error(`example upstreams exited (${code})`)));
  const poll = setInterval(async () => {
    try {
      const r = await fetch('http://127.0.0.1:9101/status');
      if (r.ok) {
        clearInterval(poll);
        resolve();
      }
    } catch {
      /* not up yet */
    }
  }, 100);
}).catch((err) => {
  console.error(`[start] ${err.message}`);
  stopAll(1);
});

// The same Node flags as the Dockerfile (docs/performance.md, "Memory").
const warden = spawn(process.execPath, ['--min-semi-space-size=4', '--max-semi-space-size=4', cli, 'start', '-c', join(root, 'gateway.yaml')], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
children.push(warden);
warden.once('exit', (code) => stopAll(code ?? 1));

// Wait until Warden answers, then print what to try.
for (let i = 0; i < 100; i++) {
  try {
    const r = await fetch('http://127.0.0.1:8080/.warden/healthz');
    if (r.ok) break;
  } catch {
    /* not up yet */
  }
  await new Promise((r) => setTimeout(r, 100));
}
process.stdout.write(`
──────────────────────────────────────────────────────────────────────────────
Warden is running on http://127.0.0.1:8080 (admin: http://127.0.0.1:9090/metrics)
Example upstreams: notes API http://127.0.0.1:9101, MCP server http://127.0.0.1:9100/mcp

Try this (in another terminal):

  TOKEN=$(node dist/src/cli.js token --agent demo-agent --user alice)

  # allowed: alice owns doc 1 — the notes API never sees the agent's token
  curl -s http://127.0.0.1:8080/notes/docs/1 -H "Authorization: Bearer $TOKEN"

  # 401: no token
  curl -si http://127.0.0.1:8080/notes/docs/1

  # 403: alice may not read bob's doc 2
  curl -si http://127.0.0.1:8080/notes/docs/2 -H "Authorization: Bearer $TOKEN"

  # held for approval: deleting a doc answers 202 after 10 s, and the review link is printed in Warden's terminal
  curl -si -X DELETE http://127.0.0.1:8080/notes/docs/1 -H "Authorization: Bearer $TOKEN"

  # open the review link, sign in as alice (development login), approve,
  # then send the same DELETE again: it runs exactly once

  # why was that decided? the whole trace, nothing forwarded
  node dist/src/cli.js explain --token "$TOKEN" /notes/docs/2

Stop with Ctrl-C.
──────────────────────────────────────────────────────────────────────────────
`);
