/**
 * JSON text of strings for the serializers that write a record per request
 * (the audit line, the decision record): most of their strings (ids, routes,
 * paths, names) have nothing to escape and are written between quotes as they
 * are, after one scan, without a JSON.stringify call.
 */

/** The characters JSON.stringify escapes in a string: quote, backslash, control characters, surrogates. */
export const JSON_ESCAPED = /["\\\u0000-\u001f\ud800-\udfff]/;

/** `JSON.stringify(s)`, byte for byte. */
export function jsonString(s: string): string {
  return typeof s === 'string' && !JSON_ESCAPED.test(s) ? `"${s}"` : JSON.stringify(s);
}

// Any regular expression: running one makes V8 copy its subject into one block, in place.
const ANY = /^/;

/**
 * `s`, stored as one block of characters. A string built by `+` is a tree of
 * its pieces, and every time it is copied (into a log line, into a batch
 * being joined) the tree is walked again; a text that is kept and written
 * many times is made one block once, so each copy is a single move. (A
 * regular expression's run does it: Number(s) would too, but an optimizing
 * compiler drops a conversion whose value is not used.)
 */
export function flatText(s: string): string {
  ANY.test(s);
  return s;
}
