/**
 * Header hygiene, table-driven: every header Warden strips or sets is listed
 * here by hand (not read from the module), so removing one from the strip list
 * fails a row. The table must also cover every name the module drops.
 */

import { describe, expect, it, vi } from 'vitest';
import {
  DROPPED_UPSTREAM_HEADERS,
  downstreamRawHeaders,
  headerNames,
  isValidHost,
  latin1Value,
  lowerNameAt,
  upstreamHeaders,
  type ForwardingInfo,
} from './headers.js';
import { isTrusted, trustedProxies } from './trust.js';

const info: ForwardingInfo = {
  clientIp: '127.0.0.1',
  host: 'warden.example:8080',
  proto: 'https',
  requestId: 'req-1',
  traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  upstreamHost: 'upstream.internal:9000',
};
const NOBODY = trustedProxies([]);

/** What happens to an inbound header: never forwarded, or replaced by Warden's own value. */
type Fate = 'dropped' | 'replaced';

const TABLE: Array<[string, Fate]> = [
  // hop-by-hop
  ['connection', 'dropped'],
  ['keep-alive', 'dropped'],
  ['proxy-connection', 'dropped'],
  ['transfer-encoding', 'dropped'],
  ['te', 'dropped'],
  ['trailer', 'dropped'],
  ['upgrade', 'dropped'],
  ['proxy-authenticate', 'dropped'],
  ['proxy-authorization', 'dropped'],
  // inbound credentials
  ['authorization', 'dropped'],
  ['cookie', 'dropped'],
  // met by Warden itself (http/continue.ts)
  ['expect', 'dropped'],
  // forwarding claims Warden recomputes
  ['host', 'replaced'],
  ['forwarded', 'dropped'],
  ['x-forwarded-for', 'replaced'],
  ['x-forwarded-host', 'replaced'],
  ['x-forwarded-proto', 'replaced'],
  ['x-forwarded-port', 'dropped'],
  ['x-forwarded-prefix', 'dropped'],
  ['x-real-ip', 'dropped'],
  // URL overrides
  ['x-original-url', 'dropped'],
  ['x-rewrite-url', 'dropped'],
  ['x-original-uri', 'dropped'],
  // client-IP and forwarding headers of other proxies and CDNs (#12 A.6)
  ['true-client-ip', 'dropped'],
  ['x-client-ip', 'dropped'],
  ['cf-connecting-ip', 'dropped'],
  ['cf-connecting-ipv6', 'dropped'],
  ['fastly-client-ip', 'dropped'],
  ['x-cluster-client-ip', 'dropped'],
  ['x-original-forwarded-for', 'dropped'],
  ['x-forwarded', 'dropped'],
  ['forwarded-for', 'dropped'],
  ['x-forwarded-server', 'dropped'],
  ['x-forwarded-uri', 'dropped'],
  ['x-forwarded-path', 'dropped'],
  ['x-forwarded-scheme', 'dropped'],
  ['x-forwarded-ssl', 'dropped'],
  ['x-forwarded-protocol', 'dropped'],
  ['x-url-scheme', 'dropped'],
  ['front-end-https', 'dropped'],
  ['x-original-host', 'dropped'],
  ['x-host', 'dropped'],
  ['x-http-host-override', 'dropped'],
  ['x-envoy-original-path', 'dropped'],
  ['x-envoy-external-address', 'dropped'],
  ['x-envoy-internal', 'dropped'],
  ['x-remote-ip', 'dropped'],
  ['x-remote-addr', 'dropped'],
  ['x-originating-ip', 'dropped'],
  ['client-ip', 'dropped'],
  // Warden's own control and identity headers
  ['warden-approval', 'dropped'],
  ['warden-identity', 'dropped'],
  ['x-request-id', 'replaced'],
  ['traceparent', 'replaced'],
  ['tracestate', 'dropped'],
];

const SPOOF = 'spoofed-by-agent';

/** The values the upstream list holds for `name` (case-insensitive). */
function valuesOf(out: string[], name: string): string[] {
  const v: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (out[i].toLowerCase() === name) v.push(out[i + 1]);
  return v;
}

describe('upstream header hygiene (table)', () => {
  it('covers every header the module drops', () => {
    const listed = new Set(TABLE.map(([n]) => n));
    expect(DROPPED_UPSTREAM_HEADERS.filter((n) => !listed.has(n))).toEqual([]);
  });

  it.each(TABLE)('%s is %s', (name, fate) => {
    // Sent twice and in mixed case: neither spelling nor repetition gets one through.
    const mixed = name.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase());
    const out = upstreamHeaders([mixed, SPOOF, name.toUpperCase(), SPOOF], info, NOBODY, []);
    const values = valuesOf(out, name);
    expect(values.join()).not.toContain(SPOOF);
    if (fate === 'dropped') expect(values).toEqual([]);
    else expect(values).toHaveLength(1);
  });

  it('sets the forwarding headers from the connection and the validated host', () => {
    const out = upstreamHeaders(['X-Custom', 'kept'], info, NOBODY, []);
    expect(valuesOf(out, 'x-custom')).toEqual(['kept']);
    expect(valuesOf(out, 'host')).toEqual(['upstream.internal:9000']);
    expect(valuesOf(out, 'x-forwarded-for')).toEqual(['127.0.0.1']);
    expect(valuesOf(out, 'x-forwarded-proto')).toEqual(['https']);
    expect(valuesOf(out, 'x-forwarded-host')).toEqual(['warden.example:8080']);
    expect(valuesOf(out, 'x-request-id')).toEqual(['req-1']);
  });

  it("leaves Host to the HTTP client when it is the client's own, and sends it when it differs", () => {
    // undici writes its origin's host[:port] itself for a request without Host (forward.ts).
    const own = upstreamHeaders(['X-Custom', 'kept'], info, NOBODY, [], { clientHost: 'upstream.internal:9000' });
    expect(valuesOf(own, 'host')).toEqual([]);
    expect(valuesOf(own, 'x-forwarded-host')).toEqual(['warden.example:8080']);
    const other = upstreamHeaders(['Host', 'evil.example'], info, NOBODY, [], { clientHost: 'upstream.internal:9001' });
    expect(valuesOf(other, 'host')).toEqual(['upstream.internal:9000']);
  });

  it('drops headers the agent names in Connection', () => {
    const out = upstreamHeaders(['Connection', 'x-secret, close', 'X-Secret', 'v'], info, NOBODY, []);
    expect(valuesOf(out, 'x-secret')).toEqual([]);
  });

  it('drops the headers named by every Connection line, whichever comes last (a keep-alive line hides nothing)', () => {
    for (const last of ['keep-alive', 'Keep-Alive', 'close', 'x-other']) {
      const out = upstreamHeaders(['Connection', 'x-secret', 'X-Secret', 'v', 'Connection', last, 'X-Other', 'w', 'Close', 'c'], info, NOBODY, []);
      expect(valuesOf(out, 'x-secret'), last).toEqual([]);
      expect(valuesOf(out, 'x-other'), last).toEqual(last === 'x-other' ? [] : ['w']);
      expect(valuesOf(out, 'close'), last).toEqual(last === 'close' ? [] : ['c']);
      expect(valuesOf(out, 'connection'), last).toEqual([]);
    }
    // The keep-alive fast path names nothing else: what follows it is forwarded as before.
    const plain = upstreamHeaders(['Connection', 'keep-alive', 'Keep-Alive', 'timeout=5', 'X-Custom', 'kept'], info, NOBODY, []);
    expect(valuesOf(plain, 'x-custom')).toEqual(['kept']);
    expect(valuesOf(plain, 'keep-alive')).toEqual([]);
  });
});

describe('headers Warden sets cannot be shadowed (#12 A.1)', () => {
  it('drops an inbound header that credentials.header or a stage sets, in any case', () => {
    const out = upstreamHeaders(['X-API-KEY', 'mine', 'x-api-key', 'mine-too'], info, NOBODY, [['X-Api-Key', 'injected']]);
    expect(valuesOf(out, 'x-api-key')).toEqual(['injected']);
  });

  it('drops an inbound header that upstream.headers sets', () => {
    const out = upstreamHeaders(['x-tenant', 'other-tenant'], info, NOBODY, [], { routeHeaders: [['X-Tenant', 'acme']] });
    expect(valuesOf(out, 'x-tenant')).toEqual(['acme']);
  });

  it("drops an inbound header that upstream.headers sets when the route's names come precomputed (compile.ts), and one a stage sets besides", () => {
    const routeHeaders: Array<[string, string]> = [
      ['X-Tenant', 'acme'],
      ['X-Region', 'eu'],
    ];
    const out = upstreamHeaders(['x-tenant', 'other-tenant', 'X-REGION', 'us', 'x-api-key', 'mine', 'X-Kept', 'k'], info, NOBODY, [['X-Api-Key', 'injected']], {
      routeHeaders,
      routeHeaderNames: headerNames(routeHeaders),
    });
    expect(valuesOf(out, 'x-tenant')).toEqual(['acme']);
    expect(valuesOf(out, 'x-region')).toEqual(['eu']);
    expect(valuesOf(out, 'x-api-key')).toEqual(['injected']);
    expect(valuesOf(out, 'x-kept')).toEqual(['k']);
  });

  it('sends exactly one Authorization: the one the credentials stage chose', () => {
    const out = upstreamHeaders(['Authorization', 'Bearer agent-token'], info, NOBODY, [], { authorization: 'Bearer upstream-token' });
    expect(valuesOf(out, 'authorization')).toEqual(['Bearer upstream-token']);
  });

  it('forwards only the listed inbound headers when told (approval release)', () => {
    const out = upstreamHeaders(['Content-Type', 'application/json', 'X-Delete-Mode', 'purge-everything'], info, NOBODY, [], {
      only: new Set(['content-type']),
    });
    expect(valuesOf(out, 'content-type')).toEqual(['application/json']);
    expect(valuesOf(out, 'x-delete-mode')).toEqual([]);
    expect(valuesOf(out, 'x-request-id')).toEqual(['req-1']);
  });
});

describe('trusted proxies', () => {
  const spoofed = ['X-Forwarded-For', '6.6.6.6', 'X-Forwarded-Proto', 'https', 'X-Forwarded-Host', 'evil.example'];
  const plain = { ...info, proto: 'http' as const };

  it.each(['127.0.0.1', '::ffff:127.0.0.1', '::1', '10.0.0.1.evil', ''])('ignores X-Forwarded-* from %j, a peer outside trusted_proxies', (peer) => {
    const trusted = trustedProxies(['10.0.0.0/8', '::ffff:192.168.0.0/120', 'fd00::/8']);
    const out = upstreamHeaders(spoofed, { ...plain, clientIp: peer }, trusted, []);
    expect(valuesOf(out, 'x-forwarded-for')).toEqual([peer]);
    expect(valuesOf(out, 'x-forwarded-proto')).toEqual(['http']);
    expect(valuesOf(out, 'x-forwarded-host')).toEqual(['warden.example:8080']);
  });

  it.each(['10.1.2.3', '::ffff:10.1.2.3', '192.168.0.7', '::ffff:192.168.0.7', 'fd00::1'])('keeps the chain from %j, a trusted peer', (peer) => {
    const trusted = trustedProxies(['10.0.0.0/8', '::ffff:192.168.0.0/120', 'fd00::/8']);
    const out = upstreamHeaders(spoofed, { ...plain, clientIp: peer }, trusted, []);
    expect(valuesOf(out, 'x-forwarded-for')).toEqual([`6.6.6.6, ${peer}`]);
    expect(valuesOf(out, 'x-forwarded-proto')).toEqual(['https']);
    expect(valuesOf(out, 'x-forwarded-host')).toEqual(['evil.example']);
  });

  it('does not believe a malformed X-Forwarded-Host or -Proto even from a trusted peer', () => {
    const trusted = trustedProxies(['127.0.0.1']);
    const out = upstreamHeaders(['X-Forwarded-Host', 'evil.com/x?', 'X-Forwarded-Proto', 'javascript'], plain, trusted, []);
    expect(valuesOf(out, 'x-forwarded-host')).toEqual(['warden.example:8080']);
    expect(valuesOf(out, 'x-forwarded-proto')).toEqual(['http']);
  });

  it('matches IPv4-mapped peers against IPv4 ranges, and nothing else', () => {
    const t = trustedProxies(['10.0.0.0/8']);
    expect(isTrusted(t, '::ffff:10.9.9.9')).toBe(true);
    expect(isTrusted(t, '::ffff:127.0.0.1')).toBe(false);
    expect(isTrusted(t, '::ffff:a09:909')).toBe(false); // fail closed on forms Node never reports
    expect(isTrusted(t, 'not-an-ip')).toBe(false);
  });
});

describe('isValidHost (#12 A.6)', () => {
  it.each(['warden.example', 'warden.example:8443', 'localhost', '127.0.0.1:8080', '[::1]:80', 'warden_gw:8080', 'a.b.c.'])('accepts %s', (h) => {
    expect(isValidHost(h)).toBe(true);
  });
  it.each([
    'evil.com/x?',
    'evil.com/',
    'evil.com?x',
    'evil.com#x',
    'user@evil.com',
    'a b',
    'evil.com:80:80',
    'evil.com:',
    '',
    '-a.com',
    'a..b',
    'x'.repeat(300),
  ])('refuses %j', (h) => {
    expect(isValidHost(h)).toBe(false);
  });
});

describe('isValidHost remembers the last host it accepted', () => {
  it('refuses the empty value as its first question (a fresh module)', async () => {
    vi.resetModules();
    const fresh = await import('./headers.js');
    expect(fresh.isValidHost('')).toBe(false);
  });

  it('answers for each value, whatever was asked before', () => {
    const sequence = [
      'warden.example:8443',
      'warden.example:8443',
      'warden.example:8443/',
      'warden.example:8443',
      'warden.example:844',
      '',
      'localhost',
      'localhost/x',
      'a b',
    ];
    for (const round of [0, 1]) for (const h of sequence) expect([round, h, isValidHost(h)]).toEqual([round, h, /^[a-z.]+(:[0-9]+)?$/.test(h)]);
  });
});

describe('downstreamRawHeaders', () => {
  const raw = (...pairs: string[]) => pairs.map((s) => Buffer.from(s, 'latin1'));

  it('sends names in lower case and values byte for byte, ending with the request id', () => {
    const { headers, eventStream } = downstreamRawHeaders(
      raw('Content-Type', 'application/json', 'Content-Length', '2', 'X-Custom-Thing', 'caf\u00e9 \u00ff', 'ETag', '"v1"'),
      'req-9',
    );
    expect(headers).toEqual([
      'content-type',
      'application/json',
      'content-length',
      '2',
      'x-custom-thing',
      'caf\u00e9 \u00ff',
      'etag',
      '"v1"',
      'x-request-id',
      'req-9',
    ]);
    expect(eventStream).toBe(false);
  });

  it('drops hop-by-hop headers, cookies, the upstream request id and reflected assertion headers whatever their case', () => {
    const { headers } = downstreamRawHeaders(
      raw(
        'Connection',
        'keep-alive',
        'Keep-Alive',
        'timeout=5',
        'Transfer-Encoding',
        'chunked',
        'Set-Cookie',
        'a=1',
        'SET-COOKIE2',
        'b=2',
        'Warden-Identity',
        'x.y.z',
        'X-Request-ID',
        'upstream-id',
        'X-User-Assertion',
        'reflected',
        'Vary',
        'Accept',
      ),
      'req-1',
      new Set(['x-user-assertion']),
    );
    expect(headers).toEqual(['vary', 'Accept', 'x-request-id', 'req-1']);
  });

  it('drops the headers the upstream names in Connection', () => {
    const { headers } = downstreamRawHeaders(
      raw('X-Secret-Hop', '1', 'Connection', 'X-Secret-Hop, Close', 'Server', 'nginx', 'x-other-hop', '2', 'connection', 'x-other-hop'),
      'r',
    );
    expect(headers).toEqual(['server', 'nginx', 'x-request-id', 'r']);
  });

  it('reports an event stream', () => {
    expect(downstreamRawHeaders(raw('Content-Type', 'text/event-stream; charset=utf-8'), 'r').eventStream).toBe(true);
    expect(downstreamRawHeaders(raw('content-type', 'text/plain'), 'r').eventStream).toBe(false);
  });

  it('reports the body length only when exactly one Content-Length of digits delimits it', () => {
    const length = (...pairs: string[]) => downstreamRawHeaders(raw(...pairs), 'r').contentLength;
    expect(length('Content-Length', '612')).toBe(612);
    expect(length('content-length', '0')).toBe(0);
    expect(length('content-type', 'text/plain')).toBe(-1);
    expect(length('Content-Length', '12', 'Transfer-Encoding', 'chunked')).toBe(-1);
    expect(length('Transfer-Encoding', 'chunked', 'Content-Length', '12')).toBe(-1);
    expect(length('Content-Length', '12', 'Content-Length', '12')).toBe(-1);
    for (const bad of ['', ' 12', '12 ', '+12', '1e3', '0x10', '12,12', '1234567890123456']) expect(length('Content-Length', bad)).toBe(-1);
  });
  it('gives every answer its own values, byte for byte, while it reuses the strings of the answer before (values by position)', () => {
    // Same names, same lengths, one byte different at the start, the middle or the end: each answer must see its own value.
    const answers = [
      ['Server', 'nginx/1.22.1', 'Date', 'Mon, 30 Nov 2026 14:43:55 GMT', 'Content-Length', '1024', 'X-Note', 'caf\u00e9'],
      ['Server', 'nginx/1.22.1', 'Date', 'Mon, 30 Nov 2026 14:43:56 GMT', 'Content-Length', '1025', 'X-Note', 'caf\u00ea'],
      ['Server', 'Nginx/1.22.1', 'Date', 'Mon, 30 Nov 2026 14:43:56 GMT', 'Content-Length', '2025', 'X-Note', 'caf\u00ea'],
      ['Server', 'nginx/1.22.1', 'Date', 'Mon, 30 Nov 2026 14:43:55 GMT', 'Content-Length', '1024', 'X-Note', 'caf\u00e9'],
      // The same positions holding other fields (another upstream), shorter and longer values.
      ['Content-Type', 'text/plain', 'ETag', '"v1"', 'Content-Length', '10240', 'X-Note', 'cafe'],
    ];
    for (let round = 0; round < 2; round++)
      for (const pairs of answers) {
        const expected: string[] = [];
        for (let i = 0; i < pairs.length; i += 2) expected.push(pairs[i].toLowerCase(), pairs[i + 1]);
        expect(downstreamRawHeaders(raw(...pairs), 'r').headers).toEqual([...expected, 'x-request-id', 'r']);
      }
  });

  it('filters every answer by its own names while it reuses the names of the answer before (names by position)', () => {
    // The same positions holding names that differ by one byte or by case only, dropped and kept ones alternating.
    const answers = [
      ['Set-Cookie', 'a=1', 'X-Request-Id', 'up-1', 'Server', 'nginx', 'Content-Length', '12'],
      ['Set-Cookiz', 'a=1', 'X-Request-Ie', 'up-1', 'server', 'nginx', 'Content-Length', '13'],
      ['set-cookie', 'a=1', 'x-request-id', 'up-1', 'SERVER', 'nginx', 'Content-Lengtj', '12'],
      ['Set-Cookie', 'a=1', 'X-Request-Id', 'up-1', 'Server', 'nginx', 'Content-Length', '12'],
      ['Keep-Alive', 'timeout=5', 'Keep-Alivf', 'x', 'Content-Length', 'abc', 'Transfer-Encoding', 'chunked'],
      ['Content-Length', '12', 'Server', 'nginx', 'Content-Length', '12', 'Server', 'nginx'],
      ['Content-Length', '7', 'Server', 'nginx'],
    ];
    const dropped = new Set(['set-cookie', 'x-request-id', 'keep-alive', 'transfer-encoding']);
    for (let round = 0; round < 2; round++)
      for (const pairs of answers) {
        const expected: string[] = [];
        let lengths = 0;
        let length = -1;
        let chunked = false;
        for (let i = 0; i < pairs.length; i += 2) {
          const name = pairs[i].toLowerCase();
          if (name === 'content-length') {
            lengths++;
            length = /^[0-9]+$/.test(pairs[i + 1]) ? Number(pairs[i + 1]) : -1;
          }
          if (name === 'transfer-encoding') chunked = true;
          if (!dropped.has(name)) expected.push(name, pairs[i + 1]);
        }
        const got = downstreamRawHeaders(raw(...pairs), 'r');
        expect(got.headers).toEqual([...expected, 'x-request-id', 'r']);
        expect(got.contentLength).toBe(lengths === 1 && !chunked ? length : -1);
      }
  });

  it('lowerNameAt is the lower-case name for any bytes, position and length', () => {
    const names = [
      'Server',
      'server',
      'SERVER',
      'Servar',
      'Serve',
      'X-Caf\u00e9',
      'X-CAF\u00c9',
      '',
      'a',
      'B',
      'x'.repeat(64),
      'x'.repeat(65),
      'x'.repeat(63) + 'Y',
    ].map((n) => Buffer.from(n, 'latin1'));
    for (const slot of [0, 1, 31, 32, 100])
      for (const n of [...names, ...names.reverse()]) expect(lowerNameAt(n, slot)).toBe(n.toString('latin1').toLowerCase());
  });

  it('latin1Value is toString("latin1") for any bytes, position and length', () => {
    const values = [Buffer.from([]), Buffer.from([0x61]), Buffer.from([0x62]), Buffer.from([0x00, 0xff, 0x80, 0x7f]), Buffer.from([0x00, 0xff, 0x80, 0x7e])];
    const long = Buffer.alloc(300, 0x61);
    const longer = Buffer.from(long);
    longer[299] = 0x62;
    for (const slot of [0, 1, 31, 32, 100])
      for (const v of [...values, long, longer, ...values.reverse()]) expect(latin1Value(v, slot)).toBe(v.toString('latin1'));
  });
});
