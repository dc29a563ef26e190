/**
 * A strict parser for `WWW-Authenticate` (RFC 9110 §11.6.1, grammar in §11.3
 * and §5.6): a comma-separated list of challenges, each an auth-scheme
 * followed by one space-led token68 or a comma-separated list of auth-params
 * (`token BWS "=" BWS ( token / quoted-string )`). Anything else throws:
 * a missing comma between parameters, a duplicate parameter in one challenge
 * (§11.2: each parameter name MUST only occur once), stray characters.
 */

export interface Challenge {
  scheme: string;
  token68?: string;
  params: Record<string, string>;
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;

/** Parse a header value strictly; throws Error saying where it is malformed. */
export function parseWwwAuthenticate(value: string): Challenge[] {
  let i = 0;
  const fail = (why: string): never => {
    throw new Error(`malformed WWW-Authenticate at ${i}: ${why} in ${JSON.stringify(value)}`);
  };
  const ows = () => {
    while (value[i] === ' ' || value[i] === '\t') i++;
  };
  const token = (): string => {
    const start = i;
    while (i < value.length && TCHAR.test(value[i])) i++;
    if (i === start) fail('expected a token');
    return value.slice(start, i);
  };
  const quoted = (): string => {
    if (value[i] !== '"') fail('expected a quoted-string');
    i++;
    let out = '';
    for (;;) {
      if (i >= value.length) fail('unterminated quoted-string');
      const c = value[i];
      if (c === '"') {
        i++;
        return out;
      }
      if (c === '\\') {
        const n = value[i + 1];
        if (n === undefined || !/[\t\x20-\x7e\x80-\xff]/.test(n)) fail('bad quoted-pair');
        out += n;
        i += 2;
        continue;
      }
      if (!/[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]/.test(c)) fail('bad character in quoted-string');
      out += c;
      i++;
    }
  };
  /** At `i`, does an auth-param (`token BWS =` not followed by another `=`) start? */
  const paramAhead = (): boolean => /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+[ \t]*=[ \t]*["!#$%&'*+\-.^_`|~0-9A-Za-z]/.test(value.slice(i));

  const challenges: Challenge[] = [];
  ows();
  while (i < value.length) {
    if (value[i] === ',') {
      i++;
      ows();
      continue; // empty list elements are allowed (§5.6.1)
    }
    const scheme = token();
    const ch: Challenge = { scheme, params: {} };
    challenges.push(ch);
    if (i >= value.length) break;
    if (value[i] === ',') continue;
    if (value[i] !== ' ') fail('expected one space after the scheme');
    while (value[i] === ' ') i++;
    if (i >= value.length) break;
    if (!paramAhead()) {
      // token68
      const start = i;
      while (i < value.length && /[A-Za-z0-9\-._~+/]/.test(value[i])) i++;
      while (value[i] === '=') i++;
      if (i === start) fail('expected token68 or auth-param');
      ch.token68 = value.slice(start, i);
      ows();
      if (i < value.length && value[i] !== ',') fail('expected "," after token68');
      continue;
    }
    // auth-param list, comma separated; a following challenge starts with `token SP` not `token =`
    for (;;) {
      const name = token().toLowerCase();
      ows();
      if (value[i] !== '=') fail('expected "="');
      i++;
      ows();
      const v = value[i] === '"' ? quoted() : token();
      if (name in ch.params) fail(`duplicate parameter ${name}`);
      ch.params[name] = v;
      ows();
      if (i >= value.length) break;
      if (value[i] !== ',') fail('expected "," between parameters');
      // Skip empty elements, then see whether the next element is a parameter or a new challenge.
      while (value[i] === ',' || value[i] === ' ' || value[i] === '\t') i++;
      if (i >= value.length) break;
      if (!paramAhead()) break;
    }
  }
  if (challenges.length === 0) fail('no challenge');
  return challenges;
}
