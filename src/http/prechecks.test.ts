import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { precheck } from './prechecks.js';

const ONCE = ['Host', 'Authorization', 'Content-Length', 'Transfer-Encoding', 'Content-Type', 'Mcp-Session-Id', 'Warden-Approval'];
const VALUE: Record<string, string> = { host: 'warden.example', 'content-length': '3', 'transfer-encoding': 'chunked' };
const valueOf = (name: string) => VALUE[name.toLowerCase()] ?? 'v';

const message = (rawHeaders: string[], minor = 1) => ({ rawHeaders, httpVersionMajor: 1, httpVersionMinor: minor }) as unknown as IncomingMessage;
const refusal = (req: IncomingMessage) => {
  try {
    precheck(req);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
};

describe('precheck: headers a message may carry once', () => {
  it.each(ONCE)('refuses a second %s (any case), and only that one', (name) => {
    // Every other once-only header once (Content-Length and Transfer-Encoding exclude each other), then this one.
    const others = ONCE.filter((n) => n !== name && n !== (name === 'Content-Length' ? 'Transfer-Encoding' : 'Content-Length'));
    const one = [...others.flatMap((n) => [n, valueOf(n)]), name, valueOf(name)];
    expect(refusal(message(one))).toBeUndefined();
    expect(refusal(message([...one, name.toUpperCase(), valueOf(name)]))).toBe(`duplicate ${name.toLowerCase()} header`);
  });

  it('accepts one of each at once, and wants Host on HTTP/1.1', () => {
    const all = ONCE.filter((n) => n !== 'Content-Length').flatMap((n) => [n, valueOf(n)]);
    expect(refusal(message(all))).toBeUndefined();
    expect(refusal(message(['Content-Type', 'text/plain']))).toBe('missing Host header');
    expect(refusal(message(['Content-Type', 'text/plain'], 0))).toBeUndefined();
  });
});

describe('precheck: a JSON body in a charset other than UTF-8', () => {
  const withType = (type: string) => message(['Host', 'warden.example', 'Content-Type', type]);
  const REFUSED = 'a JSON body must be UTF-8 (a charset other than utf-8 is refused)';

  it.each([
    'application/json; charset=utf-7',
    'application/json;charset="UTF-7"',
    'Application/JSON ; CHARSET = utf-16',
    'application/json; charset=iso-8859-1',
    'application/json; charset=utf-8; charset=utf-7',
    'application/vnd.api+json; charset=utf7',
    'application/json; charset=',
    // Split on every `;`: a charset inside a quoted value counts too (refusing more, never less, than a real parser).
    'application/json; x="a;charset=utf-7"',
  ])('refuses %s', (type) => {
    expect(refusal(withType(type))).toBe(REFUSED);
  });

  it.each([
    'application/json',
    'application/json; charset=utf-8',
    'application/json;charset="UTF-8"',
    'application/problem+json; charset=UTF-8',
    'text/plain; charset=iso-8859-1',
    'application/x-www-form-urlencoded; charset=windows-1252',
  ])('accepts %s', (type) => {
    expect(refusal(withType(type))).toBeUndefined();
  });
});
