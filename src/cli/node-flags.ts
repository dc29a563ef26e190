/**
 * The V8 flags Warden runs with (#17; docs/performance.md, "Memory"):
 * - a fixed 8 MiB young-generation semi-space instead of V8's 1–16 MiB that
 *   it resizes on its own (less RSS under load, no promotion storms when V8
 *   shrinks it; 8 MiB chosen by measurement over 2–16 MiB);
 * - the old generation collected once it has grown 20 % past what the last
 *   full collection kept, instead of V8's own factor (up to 4× on a small
 *   heap): the garbage requests promote then costs a full collection every
 *   ~10 s under load (~3 % CPU per request, measured side by side) instead
 *   of ~20 MB of RSS at steady state.
 * Heap settings are fixed when the isolate starts, so they are given on
 * node's command line: by the bin's shebang (`#!/usr/bin/env -S node …`,
 * src/cli.ts) for `warden start` and `npx warden start`, by `npm start`
 * (scripts/dev-start.mjs) and by the Docker image's entrypoint. Started any
 * other way without them (`node dist/src/cli.js start`, e.g. where `env`
 * lacks `-S`), `warden start` re-executes Node with them once (the relay
 * below), unless any of them (a semi-space size, a heap growing percent) is
 * already set: then the operator tunes the heap. Every way of starting
 * Warden therefore serves with the same flags.
 *
 * The parent only relays: signals go to the child, the child's exit code (or
 * signal) becomes the parent's, stdio is shared.
 */

import { spawn } from 'node:child_process';
import cluster from 'node:cluster';

export const WARDEN_NODE_FLAGS: readonly string[] = ['--min-semi-space-size=8', '--max-semi-space-size=8', '--heap-growing-percent=20'];

/** Set in the child's environment (to REEXEC_CHILD); any value means "do not re-exec" (also an opt-out). */
export const REEXEC_MARKER = 'WARDEN_NODE_FLAGS_APPLIED';
const REEXEC_CHILD = 'reexec';

const RELAYED: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR2'];

/** Whether this process already runs with heap flags of its own: a semi-space size or a heap growing percent (flags or NODE_OPTIONS). */
export function hasHeapFlags(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env.NODE_OPTIONS ?? ''): boolean {
  return [...execArgv, ...nodeOptions.split(/\s+/)].some((a) => /^--((min|max)[-_]semi[-_]space[-_]size|heap[-_]growing[-_]percent)(=|$)/.test(a));
}

/**
 * Re-execute this Node process with WARDEN_NODE_FLAGS when needed. Returns
 * false when the caller should go on and serve in this process; true when a
 * child now serves and this process only relays until it exits.
 */
export function reexecWithNodeFlags(): boolean {
  if (process.env[REEXEC_MARKER] !== undefined) {
    // A cluster worker inherits the marker, but its IPC channel is the cluster's
    // (its primary supervises it, and unref'ing it let workers exit before they listened).
    if (process.env[REEXEC_MARKER] === REEXEC_CHILD && !cluster.isWorker) followParent();
    return false;
  }
  if (hasHeapFlags()) return false;
  const child = spawn(process.execPath, [...process.execArgv, ...WARDEN_NODE_FLAGS, ...process.argv.slice(1)], {
    // The IPC channel only tells the child when this process is gone (followParent).
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [REEXEC_MARKER]: REEXEC_CHILD },
  });
  const relay = (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  };
  for (const s of RELAYED) process.on(s, relay);
  child.on('error', (err) => {
    process.stderr.write(`warden: could not start node with ${WARDEN_NODE_FLAGS.join(' ')}: ${err.message}\n`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    for (const s of RELAYED) process.off(s, relay);
    if (signal) {
      // Die the same way, so a supervisor sees what the child saw.
      process.kill(process.pid, signal);
      return;
    }
    process.exit(code ?? 1);
  });
  return true;
}

/**
 * In the re-executed child: the parent exits only after the child, so losing
 * it first means it was killed outright (SIGKILL, OOM killer). Die the same
 * way at once rather than serve on as an orphan nobody supervises.
 */
function followParent(): void {
  const die = (): void => void process.kill(process.pid, 'SIGKILL');
  // Gone before this module ran (the 'disconnect' event has already passed).
  if (!process.connected || !process.channel) return die();
  process.channel.unref();
  process.once('disconnect', die);
}
