/**
 * Redis as a high-availability deployment runs it: a master and a replica over
 * TLS with client certificates (certificates made here with openssl), and three
 * Debian `redis-sentinel` processes (quorum 2) watching the master over TLS.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../support/net.js';
import { spawnService, type Service } from '../support/processes.js';

export interface Certificates {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/** A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files in a temp dir. */
export function makeCertificates(): Certificates {
  const dir = mkdtempSync(join(tmpdir(), 'warden-tls-'));
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=warden-test-ca',
    '-keyout',
    at('ca.key'),
    '-out',
    at('ca.pem'),
  );
  for (const [name, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    openssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-subj',
      `/CN=warden-test-${name}`,
      '-keyout',
      at(`${name}.key`),
      '-out',
      at(`${name}.csr`),
    );
    writeFileSync(at(`${name}.ext`), ext + '\n');
    openssl(
      'x509',
      '-req',
      '-in',
      at(`${name}.csr`),
      '-CA',
      at('ca.pem'),
      '-CAkey',
      at('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      at(`${name}.ext`),
      '-out',
      at(`${name}.pem`),
    );
  }
  return { dir, ca: at('ca.pem'), serverCert: at('server.pem'), serverKey: at('server.key'), clientCert: at('client.pem'), clientKey: at('client.key') };
}

/** `redis-cli` over TLS with the client certificate; returns stdout. */
export function redisCli(certs: Certificates, port: number, password: string | null, ...command: string[]): string {
  const args = ['--tls', '--cacert', certs.ca, '--cert', certs.clientCert, '--key', certs.clientKey, '-h', '127.0.0.1', '-p', String(port)];
  if (password) args.push('--no-auth-warning', '-a', password);
  const r = spawnSync('redis-cli', [...args, ...command], { encoding: 'utf8', timeout: 5_000 });
  if (r.status !== 0) throw new Error(`redis-cli ${command.join(' ')}: ${r.stderr || r.error?.message}`);
  return r.stdout.trim();
}

export interface RedisHa {
  certs: Certificates;
  password: string;
  master: { port: number; service: Service };
  replica: { port: number; service: Service };
  sentinelPorts: number[];
  /** The master address the sentinels report now. */
  currentMasterPort(): number;
  stop(): Promise<void>;
}

function tlsArgs(certs: Certificates): string[] {
  return [
    '--tls-cert-file',
    certs.serverCert,
    '--tls-key-file',
    certs.serverKey,
    '--tls-ca-cert-file',
    certs.ca,
    '--tls-auth-clients',
    'yes',
    '--tls-replication',
    'yes',
  ];
}

/** Start master, replica and three sentinels, all TLS-only on loopback, and wait until the sentinels agree. */
export async function startRedisHa(): Promise<RedisHa> {
  for (const bin of ['redis-server', 'redis-sentinel', 'redis-cli', 'openssl']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status !== 0) {
      throw new Error(`${bin} is not installed (apt-get install redis-server redis-sentinel openssl; npm test runs scripts/test-setup.mjs, which does this)`);
    }
  }
  const certs = makeCertificates();
  const password = 'ha-' + Math.random().toString(36).slice(2);
  const services: Service[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'warden-redis-ha-'));
  const node = async (name: string, port: number, extra: string[]) => {
    const service = await spawnService(
      name,
      'redis-server',
      [
        '--port',
        '0',
        '--tls-port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--dir',
        dir,
        '--requirepass',
        password,
        '--masterauth',
        password,
        '--loglevel',
        'warning',
        ...tlsArgs(certs),
        ...extra,
      ],
      { ready: async () => redisCli(certs, port, password, 'PING') === 'PONG' },
    );
    services.push(service);
    return service;
  };
  const [masterPort, replicaPort] = [await freePort(), await freePort()];
  const master = await node('redis-master', masterPort, []);
  const replica = await node('redis-replica', replicaPort, ['--replicaof', '127.0.0.1', String(masterPort)]);

  const sentinelPorts: number[] = [];
  for (let i = 0; i < 3; i++) {
    const port = await freePort();
    const conf = join(dir, `sentinel-${i}.conf`);
    writeFileSync(
      conf,
      [
        'port 0',
        `tls-port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `tls-cert-file ${certs.serverCert}`,
        `tls-key-file ${certs.serverKey}`,
        `tls-ca-cert-file ${certs.ca}`,
        'tls-auth-clients yes',
        'tls-replication yes',
        `sentinel monitor mymaster 127.0.0.1 ${masterPort} 2`,
        `sentinel auth-pass mymaster ${password}`,
        'sentinel down-after-milliseconds mymaster 1000',
        'sentinel failover-timeout mymaster 10000',
        'sentinel parallel-syncs mymaster 1',
        '',
      ].join('\n'),
    );
    services.push(await spawnService(`sentinel-${i}`, 'redis-sentinel', [conf], { ready: async () => redisCli(certs, port, null, 'PING') === 'PONG' }));
    sentinelPorts.push(port);
  }
  const currentMasterPort = () => Number(redisCli(certs, sentinelPorts[0], null, 'SENTINEL', 'get-master-addr-by-name', 'mymaster').split('\n')[1]);
  // Ready when the replica is in sync and every sentinel knows the replica and the other sentinels.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const synced = /master_link_status:up/.test(redisCli(certs, replicaPort, password, 'INFO', 'replication'));
    const known = sentinelPorts.every((p) => {
      const info = redisCli(certs, p, null, 'INFO', 'sentinel');
      return /slaves=1,sentinels=3/.test(info);
    });
    if (synced && known) break;
    if (Date.now() > deadline) throw new Error('redis replica / sentinels did not settle within 30 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    certs,
    password,
    master: { port: masterPort, service: master },
    replica: { port: replicaPort, service: replica },
    sentinelPorts,
    currentMasterPort,
    async stop() {
      for (const s of services.reverse()) await s.stop();
      rmSync(dir, { recursive: true, force: true });
      rmSync(certs.dir, { recursive: true, force: true });
    },
  };
}
