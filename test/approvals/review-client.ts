/** Drives the review page like a browser without JavaScript: GET (cookie + form token), then POST the form. */

export type FetchLike = (url: string, init?: RequestInit) => Promise<Response>;

export interface ReviewForm {
  status: number;
  html: string;
  headers: Headers;
  cookie: string;
  csrf: string;
  action: string;
}

/** Open the review link. */
export async function openReview(fetchLike: FetchLike, reviewUrl: string): Promise<ReviewForm> {
  const res = await fetchLike(reviewUrl);
  const html = await res.text();
  const setCookie = res.headers.get('set-cookie') ?? '';
  const cookie = setCookie.split(';')[0];
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1] ?? '';
  return { status: res.status, html, headers: res.headers, cookie, csrf, action };
}

/** Submit a decision from an opened review form. */
export async function submitDecision(
  fetchLike: FetchLike,
  reviewUrl: string,
  form: ReviewForm,
  decision: 'approve' | 'deny',
  options: { grantMinutes?: number; omitCsrf?: boolean; omitCookie?: boolean; headers?: Record<string, string> } = {},
): Promise<{ status: number; html: string }> {
  const u = new URL(reviewUrl);
  const body = new URLSearchParams({ t: u.searchParams.get('t') ?? '', decision });
  if (!options.omitCsrf) body.set('csrf', form.csrf);
  if (options.grantMinutes) body.set('grant_minutes', String(options.grantMinutes));
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', ...(options.headers ?? {}) };
  if (!options.omitCookie && form.cookie) headers.cookie = form.cookie;
  const res = await fetchLike(`${u.origin}${u.pathname}`, { method: 'POST', headers, body: body.toString() });
  return { status: res.status, html: await res.text() };
}

/** Open and decide in one go. */
export async function decide(fetchLike: FetchLike, reviewUrl: string, decision: 'approve' | 'deny', grantMinutes?: number) {
  const form = await openReview(fetchLike, reviewUrl);
  if (form.status !== 200 || !form.csrf) throw new Error(`review page answered ${form.status}`);
  return submitDecision(fetchLike, reviewUrl, form, decision, { grantMinutes });
}
