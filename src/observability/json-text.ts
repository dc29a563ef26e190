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
