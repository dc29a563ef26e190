/**
 * #11 like for like: the build of the commit before the architecture redesign
 * (BASELINE_REF, the committed run of 2026-11-28) measured in the same run, with
 * the same harness, configs, Node flags and pinning as today's quiet rows
 * (G0q, G3q, G4q). The committed numbers of that day are not comparable as
 * they stand: that harness ran R without the semi-space flags and Warden with
 * them; today R runs with Warden's flags. Rows `G0q@pre`, `G3q@pre`, `G4q@pre`
 * run the old build; the ratios G0/R, G3/G0 and G4/G3 of both builds then come
 * from one run.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';

/** The last commit before the redesign: its run is the committed one #11 compares against. */
export const BASELINE_REF = 'bcc2b87';
/** Today's quiet rows and their pre-redesign twins. */
export const BASELINE_ROWS = ['G0q', 'G3q', 'G4q'];
export const preId = (id) => `${id}@pre`;

/** The ratios #11 names, each from today's rows and from the old build's (R is the same process for both). */
export const BASELINE_RATIOS = [
  { name: 'G0 / R', today: ['G0q', 'R'], pre: ['G0q@pre', 'R'] },
  { name: 'G3 / G0', today: ['G3q', 'G0q'], pre: ['G3q@pre', 'G0q@pre'] },
  { name: 'G4 / G3', today: ['G4q', 'G3q'], pre: ['G4q@pre', 'G3q@pre'] },
];
/** #11: "stay within 0.05"; better than before counts as within. */
export const TOLERANCE = 0.05;

/**
 * The table: for each ratio, today's and the old build's value from the same run (median req/s of each row),
 * the difference, and whether today's is within TOLERANCE of (or better than) the old build's.
 * `byId`: { id: { rps } }.
 */
export function baselineRatios(byId) {
  const rps = (id) => byId[id]?.rps ?? null;
  const ratio = ([a, b]) => (rps(a) && rps(b) ? rps(a) / rps(b) : null);
  return BASELINE_RATIOS.map((r) => {
    const today = ratio(r.today);
    const pre = ratio(r.pre);
    const delta = today !== null && pre !== null ? today - pre : null;
    // Rounded to 1e-9 so that a difference of exactly 0.05 in decimal counts as within.
    return {
      name: r.name,
      today_rows: r.today.join(' / '),
      pre_rows: r.pre.join(' / '),
      today,
      pre,
      delta,
      pass: delta === null ? null : Math.round(delta * 1e9) / 1e9 >= -TOLERANCE,
    };
  });
}

/**
 * Build `ref` of the repository at `repo` in a temporary detached worktree: `npm ci` from the npm cache
 * (offline first) and `tsc -p tsconfig.build.json`. Returns { dir, dist, cli, sha, seconds, remove() }.
 */
export function buildBaseline(repo, ref, { log = console.error } = {}) {
  const started = performance.now();
  const git = (...args) => spawnSync('git', ['-C', repo, ...args], { encoding: 'utf8' });
  const rev = git('rev-parse', '--verify', `${ref}^{commit}`);
  if (rev.status !== 0) throw new Error(`baseline: unknown commit ${ref}: ${rev.stderr.trim()}`);
  const sha = rev.stdout.trim();
  const dir = join(tmpdir(), `warden-bench-baseline-${sha.slice(0, 10)}-${process.pid}`);
  let removed = false;
  // Idempotent: called when the run ends and again from an exit handler (a crashed or interrupted run).
  const remove = () => {
    if (removed) return;
    removed = true;
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
    git('worktree', 'prune');
  };
  log(`baseline: building ${sha.slice(0, 10)} in ${dir}`);
  const add = git('worktree', 'add', '--detach', dir, sha);
  if (add.status !== 0) throw new Error(`baseline: git worktree add failed: ${add.stderr.trim()}`);
  try {
    const npm = (extra) => spawnSync('npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund', ...extra], { cwd: dir, encoding: 'utf8', timeout: 600_000 });
    // Offline from the npm cache first (the run must not depend on the network); then the registry as a fallback.
    let r = npm(['--offline']);
    if (r.status !== 0) {
      log('baseline: npm ci --offline failed (not all packages cached); trying --prefer-offline');
      r = npm(['--prefer-offline']);
    }
    if (r.status !== 0) throw new Error(`baseline: npm ci failed: ${(r.stderr || r.stdout).slice(-800)}`);
    const tsc = spawnSync(process.execPath, [join(dir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.build.json'], {
      cwd: dir,
      encoding: 'utf8',
      timeout: 600_000,
    });
    const cli = join(dir, 'dist', 'src', 'cli.js');
    if (!existsSync(cli)) throw new Error(`baseline: tsc failed (exit ${tsc.status}): ${(tsc.stdout + tsc.stderr).slice(-800)}`);
    const seconds = (performance.now() - started) / 1000;
    log(`baseline: ${sha.slice(0, 10)} built in ${seconds.toFixed(0)} s`);
    return { dir, dist: join(dir, 'dist'), cli, sha, seconds, remove };
  } catch (err) {
    remove();
    throw err;
  }
}
