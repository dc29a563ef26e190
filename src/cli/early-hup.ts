/**
 * SIGHUP's default action ends the process. `warden start` catches one from
 * its first lines on (cli.ts, before the gateway's modules load, and before it
 * reads a large config or waits for its store) and keeps it; the server takes
 * it over once it can reload, and reloads then (cli/start.ts).
 */

let catching = false;
let caught = false;
const keep = (): void => void (caught = true);

/** Keep a SIGHUP instead of ending the process (once; calling again changes nothing). */
export function catchEarlyHup(): void {
  if (catching) return;
  catching = true;
  process.on('SIGHUP', keep);
}

/** Stop keeping SIGHUPs: true when one came since catchEarlyHup (the caller handles SIGHUP from now on). */
export function handOverHup(): boolean {
  process.off('SIGHUP', keep);
  catching = false;
  const came = caught;
  caught = false;
  return came;
}
