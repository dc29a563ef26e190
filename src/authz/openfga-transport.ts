/**
 * The HTTP transport under `@openfga/sdk`: an axios instance whose adapter
 * sends through one undici Pool (keep-alive connections to the OpenFGA
 * origin), instead of the SDK's default axios over node:http and
 * follow-redirects. The SDK still builds every request, retries and reads
 * every answer; only the bytes travel differently. Redirects are not
 * followed (an OpenFGA API never redirects; following one could carry the
 * API token elsewhere).
 */

import axios, { AxiosError, AxiosHeaders, type AxiosAdapter, type AxiosInstance, type InternalAxiosRequestConfig } from 'axios';
import { Pool } from 'undici';

/** Options of `createOpenFgaTransport`. */
export interface OpenFgaTransportOptions {
  /** The OpenFGA API URL (its origin is where the pool connects). */
  apiUrl: string;
  /** Keep-alive connections at most (default 16). */
  connections?: number;
  /** Headers and body deadline of one request; the caller's own deadline is usually shorter (default 10 s). */
  timeoutMs?: number;
}

/** The axios instance for the SDK and the pool under it (closed with `close()`). */
export interface OpenFgaTransport {
  axios: AxiosInstance;
  close(): Promise<void>;
}

function headersOf(config: InternalAxiosRequestConfig): Record<string, string> {
  const out: Record<string, string> = {};
  const source = config.headers instanceof AxiosHeaders ? config.headers.toJSON(true) : ((config.headers ?? {}) as Record<string, unknown>);
  for (const [name, value] of Object.entries(source)) {
    if (value === undefined || value === null || value === false) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : String(value);
  }
  return out;
}

export function createOpenFgaTransport(options: OpenFgaTransportOptions): OpenFgaTransport {
  const origin = new URL(options.apiUrl).origin;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const pool = new Pool(origin, {
    connections: options.connections ?? 16,
    keepAliveTimeout: 30_000,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connectTimeout: Math.min(timeoutMs, 5_000),
  });

  const adapter: AxiosAdapter = async (config) => {
    const url = new URL(config.url ?? '', origin);
    if (url.origin !== origin) throw new AxiosError(`request to ${url.origin} outside the OpenFGA origin`, AxiosError.ERR_BAD_REQUEST, config);
    const method = (config.method ?? 'get').toUpperCase();
    const body = config.data === undefined || config.data === null ? undefined : typeof config.data === 'string' ? config.data : JSON.stringify(config.data);
    let res;
    try {
      res = await pool.request({
        method: method as 'GET',
        path: url.pathname + url.search,
        headers: headersOf(config),
        body,
        signal: (config.signal as AbortSignal | undefined) ?? undefined,
      });
    } catch (err) {
      // No response: the SDK treats it as a network error (retried within the caller's deadline).
      throw new AxiosError((err as Error).message, AxiosError.ERR_NETWORK, config, undefined, undefined);
    }
    let data: string;
    try {
      data = await res.body.text();
    } catch (err) {
      throw new AxiosError((err as Error).message, AxiosError.ERR_NETWORK, config, undefined, undefined);
    }
    const response = {
      data,
      status: res.statusCode,
      statusText: '',
      headers: AxiosHeaders.from(res.headers as Record<string, string>),
      config,
      request: {},
    };
    const ok = config.validateStatus ? config.validateStatus(res.statusCode) : res.statusCode >= 200 && res.statusCode < 300;
    if (ok) return response;
    throw new AxiosError(
      `Request failed with status code ${res.statusCode}`,
      res.statusCode >= 500 ? AxiosError.ERR_BAD_RESPONSE : AxiosError.ERR_BAD_REQUEST,
      config,
      response.request,
      response,
    );
  };

  return {
    // transformResponse parses the JSON text after the adapter, as with axios' own adapters.
    axios: axios.create({ adapter, timeout: 0, maxRedirects: 0 }),
    close: () => pool.close(),
  };
}
