// How the tests and the benchmarks find and run OpenFGA, in one place: the
// binary `go install` put down (scripts/test-setup.mjs) and the `openfga run`
// flags that keep a server on loopback with its extras off.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The OpenFGA release the suite installs and is checked against. */
export const OPENFGA_VERSION = 'v1.18.1';

/** Where the binary may be: `$OPENFGA_BIN`, `/root/go/bin/openfga`, `$(go env GOPATH)/bin/openfga` (in that order). */
export function openFgaCandidates() {
  const candidates = [process.env.OPENFGA_BIN, '/root/go/bin/openfga'].filter(Boolean);
  if (candidates.some((c) => existsSync(c))) return candidates;
  try {
    const gopath = execFileSync('go', ['env', 'GOPATH'], { encoding: 'utf8', timeout: 10_000 }).trim();
    if (gopath) candidates.push(join(gopath, 'bin', 'openfga'));
  } catch {
    // Go missing: only the fixed candidates remain.
  }
  return candidates;
}

/** Path of the first candidate that exists, or null. */
export function findOpenFgaBinary() {
  return openFgaCandidates().find((c) => existsSync(c)) ?? null;
}

/**
 * `openfga run` arguments: `datastore` flags (default the memory engine), the
 * HTTP and gRPC API on loopback ports, playground, metrics (they would listen
 * on 0.0.0.0:2112) and profiler off, warnings only, then `extra` flags.
 */
export function openFgaRunArgs({ http, grpc, datastore = ['--datastore-engine', 'memory'], extra = [] }) {
  return [
    'run',
    ...datastore,
    '--http-addr',
    `127.0.0.1:${http}`,
    '--grpc-addr',
    `127.0.0.1:${grpc}`,
    '--playground-enabled=false',
    '--metrics-enabled=false',
    '--profiler-enabled=false',
    '--log-level',
    'warn',
    ...extra,
  ];
}
