#!/usr/bin/env node
// `npm start`: the example upstreams on loopback, then Warden on the repo's
// gateway.yaml (embedded defaults), then a printed "try this" — only once
// Warden's own child process says it is listening and answers healthz. A port
// that is taken or a child that dies stops everything with a non-zero exit and
// a line saying which port and how to change it; SIGINT/SIGTERM reach every child.
import { spawn, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cli = join(root, 'dist/src/cli.js');
const examplesJs = join(root, 'dist/examples/start.js');
const say = (line) => process.stderr.write(`[start] ${line}\n`);

if (!existsSync(cli) || !existsSync(examplesJs)) {
  say('building (npm run build)…');
  execFileSync('npm', ['run', 'build'], { cwd: root, stdio: 'inherit' });
}

// Warden's listeners (gateway.yaml: 127.0.0.1:8080 and :9090; WARDEN_LISTEN /
// WARDEN_ADMIN_LISTEN override them) and the example upstreams' fixed ports.
const listen = process.env.WARDEN_LISTEN || '127.0.0.1:8080';
const adminListen = process.env.WARDEN_ADMIN_LISTEN || '127.0.0.1:9090';
const wardenUrl = `http://${listen}`;
const PORTS = [
  { address: listen, what: "Warden's agent listener", fix: 'pick another one: WARDEN_LISTEN=127.0.0.1:8180 npm start' },
  { address: adminListen, what: "Warden's admin listener (metrics)", fix: 'pick another one: WARDEN_ADMIN_LISTEN=127.0.0.1:9190 npm start' },
  {
    address: '127.0.0.1:9100',
    what: 'the example MCP server',
    fix: 'stop what uses it (often an earlier `npm start`); the example ports 9100-9102 are fixed in gateway.yaml',
  },
  {
    address: '127.0.0.1:9101',
    what: 'the example notes API',
    fix: 'stop what uses it (often an earlier `npm start`); the example ports 9100-9102 are fixed in gateway.yaml',
  },
  {
    address: '127.0.0.1:9102',
    what: 'the example OAuth provider (Notes Cloud)',
    fix: 'stop what uses it (often an earlier `npm start`); the example ports 9100-9102 are fixed in gateway.yaml',
  },
];

/** Resolve with an error code ('EADDRINUSE', …) if host:port cannot be bound right now, else null. */
function probe(address) {
  const at = address.lastIndexOf(':');
  const host = address.slice(0, at).replace(/^\[|\]$/g, '');
  const port = Number(address.slice(at + 1));
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err) => resolve(err.code ?? 'error'));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(null)));
  });
}

function portProblem(entry, code) {
  const port = entry.address.slice(entry.address.lastIndexOf(':') + 1);
  const why = code === 'EADDRINUSE' ? 'is already in use' : `cannot be used (${code})`;
  return `port ${port} (${entry.what}, ${entry.address}) ${why}: ${entry.fix}`;
}

/** The port named in a child's EADDRINUSE message, mapped back to what it is for. */
function portFromOutput(text) {
  const m = /EADDRINUSE[^\n]*?(?:address already in use\s+)?((?:\d{1,3}\.){3}\d{1,3}|\[[^\]]+\]|[\w.-]+):(\d+)/.exec(text);
  if (!m) return null;
  const entry = PORTS.find((p) => p.address.endsWith(`:${m[2]}`));
  return entry ? portProblem(entry, 'EADDRINUSE') : `port ${m[2]} is already in use`;
}

const children = [];
let stopping = false;

/** Stop every child (SIGTERM, then SIGKILL after 5 s) and exit with `code`. */
async function stopAll(code) {
  if (stopping) return;
  stopping = true;
  const alive = children.filter((c) => c.proc.exitCode === null && c.proc.signalCode === null);
  for (const c of alive) c.proc.kill('SIGTERM');
  const killer = setTimeout(() => alive.forEach((c) => c.proc.kill('SIGKILL')), 5_000);
  await Promise.all(alive.map((c) => new Promise((r) => (c.proc.exitCode !== null || c.proc.signalCode !== null ? r() : c.proc.once('exit', r)))));
  clearTimeout(killer);
  process.exit(code);
}
process.on('SIGINT', () => void stopAll(0));
process.on('SIGTERM', () => void stopAll(0));

/** Spawn a child whose output is passed through and kept (the last 16 KiB) for error messages. */
function start(name, args, env = {}) {
  const proc = spawn(process.execPath, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const child = { name, proc, output: '', lineWaiters: [] };
  const onData = (stream) => (d) => {
    stream.write(d);
    child.output = (child.output + d.toString('utf8')).slice(-16_384);
    for (const w of [...child.lineWaiters]) w();
  };
  proc.stdout.on('data', onData(process.stdout));
  proc.stderr.on('data', onData(process.stderr));
  // A child that exits while we are not stopping takes everything down, non-zero.
  proc.once('exit', (code, signal) => {
    if (stopping) return;
    const port = portFromOutput(child.output);
    say(`${name} exited unexpectedly (${signal ?? `exit code ${code}`})${port ? `: ${port}` : ''}; stopping everything`);
    void stopAll(code && code !== 0 ? code : 1);
  });
  children.push(child);
  return child;
}

/** Wait until the child itself prints a line matching `pattern` (its own proof of life), or it exits. */
function waitForLine(child, pattern, timeoutMs) {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = pattern.exec(child.output);
      if (m) {
        done();
        resolve(m);
      }
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${child.name} did not report ready within ${timeoutMs / 1000} s`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      child.lineWaiters.splice(child.lineWaiters.indexOf(check), 1);
    };
    child.lineWaiters.push(check);
    check();
  });
}

async function healthy(url) {
  try {
    const r = await fetch(`${url}/.warden/healthz`, { signal: AbortSignal.timeout(1_000) });
    await r.arrayBuffer();
    return r.ok;
  } catch {
    return false;
  }
}

async function main() {
  for (const entry of PORTS) {
    const code = await probe(entry.address);
    if (code) {
      say(portProblem(entry, code));
      process.exit(1);
    }
  }

  const examples = start('example upstreams', [examplesJs], { WARDEN_PUBLIC_URL: wardenUrl });
  await waitForLine(examples, /\[examples\] notes API /, 20_000);

  // Node with Warden's V8 flags, as the bin's shebang and the Docker image give them (src/cli/node-flags.ts):
  // Warden serves in this child itself, no relay process re-executing node (#17).
  const { WARDEN_NODE_FLAGS } = await import(pathToFileURL(join(root, 'dist/src/cli/node-flags.js')).href);
  const warden = start('warden', [...WARDEN_NODE_FLAGS, cli, 'start', '-c', join(root, 'gateway.yaml')]);
  // Warden's own log line says where it listens; only then is healthz its answer, not another process's.
  const [line] = await waitForLine(warden, /\{[^\n]*"msg":"warden listening"[^\n]*\}/, 30_000);
  const url = JSON.parse(line).url ?? wardenUrl;
  let ok = false;
  for (let i = 0; i < 50 && !ok && !stopping; i++) {
    ok = await healthy(url);
    if (!ok) await new Promise((r) => setTimeout(r, 100));
  }
  if (!ok) throw new Error(`warden said it listens on ${url} but /.warden/healthz does not answer`);
  if (stopping) return;
  banner(url);
}

function banner(url) {
  const host = url.replace(/^http:\/\//, '');
  // Tokens name the listener as their issuer: other terminals need the same override.
  const env = process.env.WARDEN_LISTEN ? `WARDEN_LISTEN=${process.env.WARDEN_LISTEN} ` : '';
  process.stdout.write(`
──────────────────────────────────────────────────────────────────────────────
Warden is running on ${url} (admin: http://${adminListen}/metrics)
Console (sign in as alice): ${url}/.warden/console
Example upstreams: notes API http://127.0.0.1:9101, MCP server http://127.0.0.1:9100/mcp,
Notes Cloud OAuth provider http://127.0.0.1:9102

Try this (in another terminal):

  TOKEN=$(${env}node dist/src/cli.js token --agent demo-agent --user alice)

  # 1. identity + authorization: alice owns doc 1; the notes API never sees the agent's token
  curl -s http://${host}/notes/docs/1 -H "Authorization: Bearer $TOKEN"

  # 401: no token
  curl -si http://${host}/notes/docs/1

  # 403: alice may not read bob's doc 2
  curl -si http://${host}/notes/docs/2 -H "Authorization: Bearer $TOKEN"

  # 2. token vault: /notes/me needs alice's own Notes Cloud token. The first call
  #    answers 403 connection_required with a connect_url: open it in your browser,
  #    sign in as alice (development login), confirm, and click "Link as alice"
  curl -s http://${host}/notes/me -H "Authorization: Bearer $TOKEN"

  #    the same call again: the notes API received alice's Notes Cloud token
  #    (notes_cloud_account: alice), never the agent's (agent_token_seen: false)
  curl -s http://${host}/notes/me -H "Authorization: Bearer $TOKEN"

  # 3. held for approval: deleting a doc answers 202 after 10 s, and the review link is printed in Warden's terminal
  curl -si -X DELETE http://${host}/notes/docs/1 -H "Authorization: Bearer $TOKEN"

  #    open the console ${url}/.warden/console (or the review link), sign in as
  #    alice (development login), approve, then send the same DELETE again: it runs exactly once

  # why was that decided? the whole trace, nothing forwarded
  ${env}node dist/src/cli.js explain --token "$TOKEN" /notes/docs/2

Stop with Ctrl-C.
──────────────────────────────────────────────────────────────────────────────
`);
}

main().catch((err) => {
  if (stopping) return;
  say(err.message);
  void stopAll(1);
});
