/** The one parser of `Authorization: Bearer <token>` (RFC 6750 section 2.1). */

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** The token of a Bearer header; null when the header is absent or not `Bearer <b64token>`. */
export function bearerToken(header: string | undefined): string | null {
  if (header === undefined) return null;
  const m = BEARER.exec(header);
  return m ? m[1] : null;
}
