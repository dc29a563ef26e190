#!/usr/bin/env node
// Finds or installs the real components the test suite runs against (DESIGN.md):
// redis-server, chromium, postgresql, nginx, redis-sentinel from Debian; OpenFGA via `go install`.
// Idempotent. Fails loudly (exit 1) with the reason when something cannot be had;
// REDIS_URL / OPENFGA_API_URL skip the local binaries for those two services.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OPENFGA_VERSION } from './openfga.mjs';

// The tracing tests' OTLP receiver (test/support/otlp-receiver.py) decodes with the
// OpenTelemetry project's protobuf bindings; no Collector binary installs here.
const OTLP_PYTHON = ['opentelemetry-proto==1.45.2', 'protobuf==7.36.2'];
const log = (msg) => process.stderr.write(`[test-setup] ${msg}\n`);

function have(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

function aptInstall(packages) {
  const missing = packages.filter(([, bin]) => !have(bin) && !existsSync(bin));
  if (missing.length === 0) return;
  const names = missing.map(([pkg]) => pkg);
  if (process.getuid?.() !== 0) {
    throw new Error(`missing ${names.join(', ')}; install them (apt-get install ${names.join(' ')}) or run as root`);
  }
  log(`apt-get install ${names.join(' ')}`);
  // The tests start these services themselves on loopback ports; keep the
  // packages' own init scripts from starting system-wide instances (port 80, 5432, 26379).
  const policy = '/usr/sbin/policy-rc.d';
  const ownPolicy = !existsSync(policy);
  if (ownPolicy) writeFileSync(policy, '#!/bin/sh\nexit 101\n', { mode: 0o755 });
  try {
    execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit' });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...names], {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    });
  } finally {
    if (ownPolicy) rmSync(policy, { force: true });
  }
  const still = missing.filter(([, bin]) => !have(bin) && !existsSync(bin)).map(([pkg]) => pkg);
  if (still.length > 0) throw new Error(`apt-get install finished but ${still.join(', ')} still missing`);
}

function goEnv(name) {
  return execFileSync('go', ['env', name], { encoding: 'utf8' }).trim();
}

function ensureOtlpBindings() {
  const target = join(import.meta.dirname, '..', '.test-deps', 'python');
  if (existsSync(join(target, 'opentelemetry', 'proto'))) return;
  if (!have('python3')) throw new Error('python3 is required for the OTLP receiver of the tracing tests');
  log(`pip install --target .test-deps/python ${OTLP_PYTHON.join(' ')}`);
  execFileSync('python3', ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-warn-script-location', '--target', target, ...OTLP_PYTHON], {
    stdio: 'inherit',
    env: { ...process.env, PIP_ROOT_USER_ACTION: 'ignore' },
  });
}

function ensureOpenFga() {
  if (process.env.OPENFGA_API_URL) return;
  if (!have('go')) throw new Error('Go is required to install OpenFGA (go install); or set OPENFGA_API_URL');
  const bin = join(goEnv('GOPATH'), 'bin', 'openfga');
  const conformance = join(goEnv('GOMODCACHE'), `github.com/openfga/openfga@${OPENFGA_VERSION}`, 'assets/tests/consolidated_1_1_tests.yaml');
  if (existsSync(bin) && existsSync(conformance)) return;
  log(`go install github.com/openfga/openfga/cmd/openfga@${OPENFGA_VERSION} (first run only; a few minutes)`);
  execFileSync('go', ['install', `github.com/openfga/openfga/cmd/openfga@${OPENFGA_VERSION}`], {
    stdio: 'inherit',
    env: { ...process.env, GOTOOLCHAIN: 'local' },
  });
}

try {
  const wanted = [['chromium', '/usr/bin/chromium']];
  if (!process.env.REDIS_URL) wanted.push(['redis-server', 'redis-server']);
  // The production topology tests (test/topology): PostgreSQL under OpenFGA, nginx
  // in front of two Wardens, Redis Sentinel over TLS (certificates made with openssl).
  wanted.push(
    ['postgresql', '/usr/lib/postgresql'],
    ['nginx', 'nginx'],
    ['redis-sentinel', 'redis-sentinel'],
    ['redis-tools', 'redis-cli'],
    ['openssl', 'openssl'],
  );
  aptInstall(wanted);
  ensureOpenFga();
  ensureOtlpBindings();
  log('real components ready');
} catch (err) {
  log(`cannot prepare the test environment: ${err.message}`);
  process.exit(1);
}
