/**
 * The IETF "RateLimit header fields for HTTP" (draft-ietf-httpapi-ratelimit-headers-11):
 * `RateLimit-Policy: "name";q=100;w=60` and `RateLimit: "name";r=0;t=30`, both
 * Structured Field lists of items whose value is a String (the policy name).
 */

/** An sf-string: printable ASCII with `"` and `\` escaped; anything else becomes `_`. */
export function sfString(text: string): string {
  let out = '"';
  for (const ch of text) {
    const c = ch.codePointAt(0) as number;
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c >= 0x20 && c <= 0x7e) out += ch;
    else out += '_';
  }
  return `${out}"`;
}

/** Whole seconds, at least 1 (the draft's window and delay-seconds are non-zero integers). */
export function wholeSeconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/** `RateLimit-Policy` value: quota `q` per window `w` seconds. */
export function rateLimitPolicy(name: string, quota: number, windowMs: number): string {
  return `${sfString(name)};q=${Math.max(0, Math.floor(quota))};w=${wholeSeconds(windowMs)}`;
}

/** `RateLimit` value: `r` remaining quota units, `t` seconds of the effective window. */
export function rateLimitField(name: string, remaining: number, effectiveMs: number): string {
  return rateLimitFieldOf(name)(remaining, effectiveMs);
}

/** `rateLimitField` of one policy name, its sf-string built once (one concatenation per answer). */
export function rateLimitFieldOf(name: string): (remaining: number, effectiveMs: number) => string {
  const head = `${sfString(name)};r=`;
  return (remaining, effectiveMs) => head + Math.max(0, Math.floor(remaining)) + ';t=' + Math.max(0, Math.ceil(effectiveMs / 1000));
}
