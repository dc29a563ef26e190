/** Loopback networking helpers shared by every test. */

import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { createServer } from 'node:net';

/** A loopback port the OS considers free right now (for a server whose URL must be known before it starts). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Whether process `pid` holds the socket listening on loopback `port`: true or
 * false from Linux's /proc, undefined where /proc cannot tell (another OS).
 *
 * A server spawned on a port from freePort() can lose that port to another
 * process between the pick and its own bind (any test server listening on port
 * 0 may be handed it). Its readiness probe is then answered by the other
 * process, and a test that stops "its" server (SIGSTOP, SIGKILL) still gets
 * answers. Spawners check ownership once the probe answers, and pick new ports
 * when the listener is not their child's.
 */
export function listenerOwnedBy(pid: number, port: number): boolean | undefined {
  const inodes = new Set<string>();
  let readable = false;
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    readable = true;
    // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== '0A') continue; // 0A: LISTEN
      const local = fields[1];
      if (Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16) === port) inodes.add(fields[9]);
    }
  }
  if (!readable) return undefined;
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false; // the process is gone
  }
  for (const fd of fds) {
    let target: string;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`);
    } catch {
      continue; // closed meanwhile
    }
    const m = /^socket:\[(\d+)\]$/.exec(target);
    if (m && inodes.has(m[1])) return true;
  }
  return false;
}

/**
 * SIGSTOP `pid` and wait until every thread of it is stopped (state T in
 * /proc): kill() only queues the signal, and a test that asserts "nothing
 * answers now" must not race the last thread still running.
 */
export async function stopProcess(pid: number, timeoutMs = 5_000): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let states: string[];
    try {
      states = readdirSync(`/proc/${pid}/task`).map((t) => readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8').split(') ')[1]?.[0] ?? '?');
    } catch {
      return; // no /proc (another OS) or the process is gone: nothing more to wait for
    }
    if (states.every((s) => s === 'T' || s === 't')) return;
    if (Date.now() > deadline) throw new Error(`process ${pid} not stopped after ${timeoutMs} ms (thread states ${states.join('')})`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
