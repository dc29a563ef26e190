import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, scrub, scrubString } from './logger.js';

// The full scrub, without the one-scan pre-check scrubString starts with.
const full = (s: string) =>
  s
    .replace(/eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, '[redacted-jwt]')
    .replace(/\b(Bearer|Basic|DPoP)\s+[A-Za-z0-9._~+/=-]{8,}/gi, '$1 [redacted]')
    .replace(/([?&](?:access_token|token|code|ticket|client_secret|t)=)[^&\s"]+/gi, '$1[redacted]')
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^\s/?#@"]+@/gi, '$1[redacted]@');

describe('scrubString', () => {
  it('redacts tokens in every shape the patterns know', () => {
    expect(scrubString('Authorization: Bearer abcdefgh12345678')).toBe('Authorization: Bearer [redacted]');
    expect(scrubString('bearer abcdefgh12345678')).toBe('bearer [redacted]');
    expect(scrubString('DPOP abcdefgh12345678')).toBe('DPOP [redacted]');
    expect(scrubString('x eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.sig y')).toBe('x [redacted-jwt] y');
    expect(scrubString('/cb?code=abc&state=1&T=zz')).toBe('/cb?code=[redacted]&state=1&T=[redacted]');
  });

  it('redacts the userinfo of a URL, user name included, as fetch() quotes it in its error', () => {
    expect(scrubString('Request cannot be constructed from a URL that includes credentials: https://ingest:pa55w0rd@logs.example/x')).toBe(
      'Request cannot be constructed from a URL that includes credentials: https://[redacted]@logs.example/x',
    );
    expect(scrubString('redis://:pa55w0rd@redis:6379/0')).toBe('redis://[redacted]@redis:6379/0');
    expect(scrubString('https://ghp_0123456789abcdef@github.com/o/r.git')).toBe('https://[redacted]@github.com/o/r.git');
    // An `@` after the authority is not userinfo.
    expect(scrubString('https://host/users/a@b.c')).toBe('https://host/users/a@b.c');
    expect(scrubString('mailto:a@b.c')).toBe('mailto:a@b.c');
  });

  it('the fast pre-check never skips a string the full scrub would change (20,000 generated strings)', () => {
    const pieces = [
      'a',
      'Z',
      '0',
      ' ',
      '.',
      '-',
      '_',
      '/',
      '?',
      '&',
      '=',
      'eyJ',
      'EYJ',
      'Bearer ',
      'BASIC ',
      'dPoP ',
      'token',
      'code',
      't',
      'abcdefgh',
      '12345678',
      '"',
      '://',
      'https://',
      '@',
      ':',
    ];
    let seed = 11;
    const next = () => Math.floor((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 65536);
    let changed = 0;
    for (let n = 0; n < 20_000; n++) {
      let s = '';
      const len = next() % 14;
      for (let i = 0; i < len; i++) s += pieces[next() % pieces.length];
      expect(scrubString(s), s).toBe(full(s));
      if (full(s) !== s) changed++;
    }
    expect(changed).toBeGreaterThan(100); // the generator does reach the patterns
  });
});

/** `{ a: { a: … { leaf } } }` with `leaf` at depth `depth` (the record itself is depth 0). */
function nested(depth: number, leaf: unknown): unknown {
  let value = leaf;
  for (let i = 0; i < depth; i++) value = { a: value };
  return value;
}

describe('scrub beyond its depth bound', () => {
  const BEARER = 'Bearer deepsecret12345678';
  const PASSWORD = 'hunter2-deep-password';
  const secrets = { password: PASSWORD, header: BEARER, list: [BEARER] };

  it('scrubs secrets up to the bound and writes none of them at any depth past it', () => {
    for (let depth = 0; depth <= 14; depth++) {
      const text = JSON.stringify(scrub(nested(depth, secrets)));
      expect(text, `depth ${depth}`).not.toContain(PASSWORD);
      expect(text, `depth ${depth}`).not.toContain('deepsecret12345678');
    }
    // Within the bound the record is kept, censored; past it an object or array is replaced by a marker.
    expect(scrub(nested(7, secrets))).toEqual(nested(7, { password: '[redacted]', header: 'Bearer [redacted]', list: ['Bearer [redacted]'] }));
    expect(scrub(nested(8, secrets))).toEqual(nested(8, { password: '[redacted]', header: 'Bearer [redacted]', list: '[too deep]' }));
    expect(scrub(nested(9, secrets))).toEqual(nested(9, '[too deep]'));
    expect(scrub(nested(9, [BEARER]))).toEqual(nested(9, '[too deep]'));
    // Strings and other scalars past the bound are still written, scrubbed.
    expect(scrub(nested(9, BEARER))).toEqual(nested(9, 'Bearer [redacted]'));
    expect(scrub(nested(9, 42))).toEqual(nested(9, 42));
  });

  it('a cycle ends at the marker', () => {
    const loop: Record<string, unknown> = { password: PASSWORD };
    loop.self = loop;
    const text = JSON.stringify(scrub(loop));
    expect(text).toContain('[too deep]');
    expect(text).not.toContain(PASSWORD);
  });

  it('a logged record with a password and a bearer token at depth 9 comes out without them', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer | string, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ level: 'info', destination });
    logger.info({ detail: nested(8, secrets) }, 'deep');
    logger.info(nested(9, secrets) as object, 'deeper');
    expect(lines).toHaveLength(2);
    const text = lines.join('');
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain('deepsecret12345678');
    expect(text).toContain('[too deep]');
  });
});
