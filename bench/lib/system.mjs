/**
 * Process plumbing for the harness: tools on PATH (installed with apt-get when
 * missing), free ports, pinned child processes, readiness polling, peak RSS.
 * Every process the harness starts is tracked here and stopped by its pid.
 */

import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, existsSync, mkdirSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

/** True when `cmd` runs (found on PATH). */
export function have(cmd) {
  const probe = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return probe.status === 0 && probe.stdout.trim() !== '';
}

/**
 * Make sure the Debian packages behind `tools` ({command: package}) are
 * installed. Idempotent: apt-get runs only for missing commands, and only as
 * root (otherwise the error says what to install).
 */
export function ensureTools(tools, log = console.error) {
  const missing = Object.entries(tools).filter(([cmd]) => !have(cmd));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map(([, pkg]) => pkg))];
  if (process.getuid?.() !== 0) {
    throw new Error(`missing ${missing.map(([c]) => c).join(', ')}: run as root or install them first (apt-get install -y ${pkgs.join(' ')})`);
  }
  log(`bench: installing ${pkgs.join(' ')} with apt-get`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  let r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env });
  if (r.status !== 0) {
    // A fresh machine may have no package lists yet.
    spawnSync('apt-get', ['update'], { stdio: 'inherit', env });
    r = spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env });
  }
  const still = missing.filter(([cmd]) => !have(cmd));
  if (still.length) throw new Error(`apt-get could not install ${still.map(([c]) => c).join(', ')}`);
}

/** A port the OS considers free right now on loopback. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Number of online CPUs the harness may use for pinning. */
export function cpuCount() {
  const r = spawnSync('nproc', [], { encoding: 'utf8' });
  return Number(r.stdout.trim()) || 1;
}

/**
 * Tracks every child the harness starts so that an error or Ctrl-C never
 * leaves a server behind. Children are stopped by pid (and their own children
 * by the process group the harness created for them).
 */
export function createProcessTracker() {
  const live = new Set();
  const killAll = () => {
    for (const p of live) {
      try {
        process.kill(-p.pid, 'SIGKILL');
      } catch {
        try {
          p.kill('SIGKILL');
        } catch {
          /* already gone */
        }
      }
    }
  };
  process.once('exit', killAll);

  /**
   * Start `cmd args`, pinned to `cpus` (a taskset list like "0" or "1"; null =
   * unpinned). stdout/stderr go to `logFile` (or are ignored). The child leads
   * its own process group so stop() reaches workers it forks.
   */
  function start(name, cmd, args, { cpus = null, env, cwd, logFile } = {}) {
    const argv = cpus === null ? [cmd, ...args] : ['taskset', '-c', String(cpus), cmd, ...args];
    const out = logFile ? openSync(logFile, 'a') : 'ignore';
    const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', out, out], env: env ?? process.env, cwd, detached: true });
    live.add(child);
    let exitInfo = null;
    const exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        exitInfo = { code, signal };
        live.delete(child);
        resolve(exitInfo);
      });
      child.once('error', (err) => {
        exitInfo = { code: -1, signal: String(err.message) };
        live.delete(child);
        resolve(exitInfo);
      });
    });
    return {
      name,
      pid: child.pid,
      exited,
      get exitInfo() {
        return exitInfo;
      },
      /** SIGTERM the group, SIGKILL after `graceMs`. */
      async stop(graceMs = 5_000) {
        if (exitInfo) return;
        const signal = (s) => {
          try {
            process.kill(-child.pid, s);
          } catch {
            try {
              child.kill(s);
            } catch {
              /* gone */
            }
          }
        };
        signal('SIGTERM');
        const timer = setTimeout(() => signal('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
        // Workers may outlive a primary that died on SIGKILL.
        signal('SIGKILL');
      },
    };
  }
  return { start, killAll };
}

/** Pids of `pid` and all its descendants (from /proc/<pid>/task/<tid>/children). */
export function processTree(pid) {
  const out = [];
  const walk = (p) => {
    out.push(p);
    let kids = [];
    try {
      const tasks = spawnSync('ls', [`/proc/${p}/task`], { encoding: 'utf8' })
        .stdout.trim()
        .split('\n')
        .filter(Boolean);
      for (const t of tasks) {
        const f = `/proc/${p}/task/${t}/children`;
        if (existsSync(f)) kids.push(...readFileSync(f, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
      }
    } catch {
      kids = [];
    }
    for (const k of new Set(kids)) walk(k);
  };
  walk(pid);
  return out;
}

/**
 * Reset the peak resident set size (VmHWM) of `pid` and its descendants to
 * their current RSS (Linux: write 5 to /proc/<pid>/clear_refs). Called after
 * the discarded warm-up, so the reported peak is that of the measured load,
 * not of start-up and JIT warm-up. Returns false when the kernel refused.
 */
export function resetPeakRss(pid) {
  let ok = true;
  for (const p of processTree(pid)) {
    try {
      writeFileSync(`/proc/${p}/clear_refs`, '5');
    } catch {
      ok = false;
    }
  }
  return ok;
}

/** Sum of peak resident set sizes (VmHWM, bytes) of `pid` and its descendants, skipping `taskset` wrappers. */
export function peakRss(pid) {
  let total = 0;
  for (const p of processTree(pid)) {
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      const m = /^VmHWM:\s+(\d+) kB/m.exec(status);
      if (m) total += Number(m[1]) * 1024;
    } catch {
      /* exited meanwhile */
    }
  }
  return total;
}

/**
 * Peak RSS (VmHWM, bytes) of `pid` split into the process tree's root and its
 * descendants. For `warden start` the root is the relay parent that
 * re-executed Node with Warden's flags and the descendant the serving process;
 * when the root has no children it is the serving process itself (relay 0).
 * `relayOwn` is the part of the relay no other process shares (see below).
 */
export function peakRssSplit(pid) {
  const tree = processTree(pid);
  const hwm = (p) => {
    try {
      const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : 0;
    } catch {
      return 0; /* exited meanwhile */
    }
  };
  // The relay's own memory: its anonymous pages. Its file-backed pages are the Node binary the serving
  // process maps too (the same physical pages, counted in both VmHWM). It is idle: now is its peak.
  const own = (p) => {
    try {
      const status = readFileSync(`/proc/${p}/status`, 'utf8');
      return ['RssAnon', 'RssShmem'].reduce((a, k) => a + Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024, 0);
    } catch {
      return 0;
    }
  };
  if (tree.length === 1) return { serving: hwm(pid), relay: 0, relayOwn: 0 };
  return { serving: tree.slice(1).reduce((a, p) => a + hwm(p), 0), relay: hwm(pid), relayOwn: own(pid) };
}

/** Resident set size now (VmRSS, bytes) of `pid` alone; 0 once it has exited. */
export function rssNow(pid) {
  try {
    return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}

/** CPU time (user + system, µs) used so far by `pid` and its descendants (/proc/<pid>/stat, clock ticks of 10 ms). */
export function cpuTimeUs(pid) {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      /* exited meanwhile */
    }
  }
  return ticks * 10_000;
}

/**
 * Waits until `pid` (with its descendants) is idle: less than `share` of one core over a `windowMs` window,
 * at most `maxMs`. A gateway that answers healthz may still be busy with start-up work on its other threads
 * (V8 collecting what loading a million tuples left behind): that is start-up cost, not the throughput of
 * the requests measured next. Returns the milliseconds waited.
 */
export async function waitIdle(pid, { share = 0.1, windowMs = 500, maxMs = 20_000 } = {}) {
  const started = Date.now();
  let last = cpuTimeUs(pid);
  for (;;) {
    await new Promise((r) => setTimeout(r, windowMs));
    const now = cpuTimeUs(pid);
    if (now - last < share * windowMs * 1_000 || Date.now() - started >= maxMs) return Date.now() - started;
    last = now;
  }
}

/** Re-pin a running process tree (every thread) to `cpus`. */
export function pinTree(pid, cpus) {
  for (const p of processTree(pid)) spawnSync('taskset', ['-a', '-p', '-c', String(cpus), String(p)], { stdio: 'ignore' });
}

/** Poll `url` until it answers `status` (default any 2xx) or the deadline passes; throws with `why()` context. */
export async function waitForHttp(url, { timeoutMs = 20_000, proc, init } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (proc?.exitInfo) throw new Error(`${proc.name} exited (${JSON.stringify(proc.exitInfo)}) before answering ${url}`);
    try {
      const res = await fetch(url, { ...init, signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.status < 500) return res.status;
      last = `status ${res.status}`;
    } catch (err) {
      last = err.message;
    }
    await sleep(100);
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms (${last})`);
}

/**
 * Time (µs) the threads of `pid` and its descendants have spent runnable but waiting for a CPU so far
 * (/proc/<pid>/task/<tid>/schedstat, second field, ns): on a shared host, the time other work held the core.
 */
export function runQueueWaitUs(pid) {
  let ns = 0;
  for (const p of processTree(pid)) {
    let tasks = [];
    try {
      tasks = readdirSync(`/proc/${p}/task`);
    } catch {
      continue; /* exited meanwhile */
    }
    for (const t of tasks) {
      try {
        ns += Number(readFileSync(`/proc/${p}/task/${t}/schedstat`, 'utf8').split(' ')[1]) || 0;
      } catch {
        /* exited meanwhile */
      }
    }
  }
  return ns / 1000;
}

/**
 * A bench tool's command line: `options` (parseArgs) plus -h/--help, which
 * prints the header comment of the tool's file (`moduleUrl`) and exits; and
 * `fail(message)`, which says what is wrong under the tool's `name` and exits 2.
 */
export function toolOptions(moduleUrl, name, options) {
  const fail = (message) => {
    process.stderr.write(`${name}: ${message}\n`);
    process.exit(2);
  };
  let values;
  try {
    ({ values } = parseArgs({ options: { ...options, help: { type: 'boolean', short: 'h', default: false } } }));
  } catch (err) {
    // An unknown option or a missing value: said in one line, not a stack trace.
    fail(`${err.message} (--help lists the options)`);
  }
  if (values.help) {
    process.stdout.write(readFileSync(fileURLToPath(moduleUrl), 'utf8').split('*/')[0] + '*/\n');
    process.exit(0);
  }
  return { opt: values, fail };
}

/**
 * A bench tool's work directory (`<bench>/.work/<name>-<pid>`, with `logs/`)
 * and the tracker of the processes it starts. `cleanup()` stops them and
 * removes the directory; SIGINT and SIGTERM run it and exit (130, 143).
 */
export function benchWorkspace(benchDir, name) {
  const work = join(benchDir, '.work', `${name}-${process.pid}`);
  mkdirSync(join(work, 'logs'), { recursive: true });
  const tracker = createProcessTracker();
  const cleanup = () => {
    tracker.killAll();
    rmSync(work, { recursive: true, force: true });
  };
  exitOnSignals(cleanup);
  return { work, tracker, cleanup };
}

/**
 * Ctrl-C (SIGINT) or a SIGTERM from a supervisor or `kill`: run `stop`, then
 * exit with 130 or 143. Exiting also runs every tracker's 'exit' hook
 * (createProcessTracker), so the processes a tool started never outlive it.
 */
export function exitOnSignals(stop = () => {}) {
  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ])
    process.on(signal, () => {
      stop();
      process.exit(code);
    });
}
