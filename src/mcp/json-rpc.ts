/**
 * Strict parsing of the JSON-RPC 2.0 messages an MCP client POSTs (one message
 * or a batch). Anything malformed is `bad_request`: Warden only forwards what
 * it understood, and forwards the form it parsed (see `serializeMessages`).
 */

import { WardenError } from '../core/errors.js';

export type JsonRpcId = string | number;

/** One client→server JSON-RPC message. */
export type JsonRpcMessage =
  | { kind: 'request'; id: JsonRpcId; method: string; params?: Record<string, unknown> | unknown[]; raw: Record<string, unknown> }
  | { kind: 'notification'; method: string; params?: Record<string, unknown> | unknown[]; raw: Record<string, unknown> }
  | { kind: 'response'; id: JsonRpcId | null; raw: Record<string, unknown> };

export interface ParsedMcpBody {
  /** True when the body was a JSON array (a batch), even of one message. */
  batch: boolean;
  messages: JsonRpcMessage[];
}

/** A `tools/call` request's tool name and arguments. */
export interface ToolCallParams {
  name: string;
  args: Record<string, unknown>;
}

/** Upper bound on messages in one batch (each is evaluated). */
export const MAX_BATCH = 64;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function bad(detail: string, reason = 'invalid_json_rpc'): WardenError {
  return new WardenError('bad_request', detail, { reason });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function validId(id: unknown): id is JsonRpcId {
  return (typeof id === 'string' && id.length <= 256) || (typeof id === 'number' && Number.isSafeInteger(id));
}

function parseOne(value: unknown, index: number | null): JsonRpcMessage {
  const where = index === null ? 'message' : `batch[${index}]`;
  if (!isPlainObject(value)) throw bad(`${where} is not a JSON-RPC object`);
  if (value.jsonrpc !== '2.0') throw bad(`${where}: jsonrpc must be "2.0"`);
  const params = value.params;
  if (params !== undefined && !isPlainObject(params) && !Array.isArray(params)) throw bad(`${where}: params must be an object or array`);
  if ('method' in value) {
    if (typeof value.method !== 'string' || value.method.length === 0 || value.method.length > 256) {
      throw bad(`${where}: method must be a non-empty string`);
    }
    if ('result' in value || 'error' in value) throw bad(`${where}: a request cannot carry result or error`);
    if (!('id' in value)) return { kind: 'notification', method: value.method, params: params as never, raw: value };
    if (!validId(value.id)) throw bad(`${where}: id must be a string or an integer`);
    return { kind: 'request', id: value.id, method: value.method, params: params as never, raw: value };
  }
  // A response from the client to a server request (sampling, elicitation, roots).
  const hasResult = 'result' in value;
  const hasError = 'error' in value;
  if (hasResult === hasError) throw bad(`${where}: a response carries exactly one of result or error`);
  if (!(value.id === null || validId(value.id))) throw bad(`${where}: response id must be a string, an integer or null`);
  return { kind: 'response', id: value.id as JsonRpcId | null, raw: value };
}

/** Parse a POST body; throws `bad_request` for invalid UTF-8, JSON or JSON-RPC. */
export function parseMcpBody(body: Buffer | string | undefined): ParsedMcpBody {
  if (body === undefined || body.length === 0) throw bad('empty MCP request body');
  let text: string;
  try {
    text = typeof body === 'string' ? body : utf8.decode(body);
  } catch {
    throw bad('MCP request body is not valid UTF-8', 'parse_error');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw bad('MCP request body is not valid JSON', 'parse_error');
  }
  return parseMcpMessages(json);
}

/**
 * The JSON-RPC checks of `parseMcpBody` on a body already parsed: the body
 * stage has parsed it strictly (`state.json`), and a strict parse reads
 * exactly what `JSON.parse` reads, so decoding and parsing it again would only
 * repeat the work. Same messages, same refusals.
 */
export function parseMcpMessages(json: unknown): ParsedMcpBody {
  if (Array.isArray(json)) {
    if (json.length === 0) throw bad('empty JSON-RPC batch');
    if (json.length > MAX_BATCH) throw bad(`JSON-RPC batch larger than ${MAX_BATCH}`);
    return { batch: true, messages: json.map((m, i) => parseOne(m, i)) };
  }
  return { batch: false, messages: [parseOne(json, null)] };
}

/**
 * Re-serialize what was parsed. Forwarding this (not the raw bytes) means the
 * upstream sees exactly the messages policy saw: duplicate keys, odd spacing
 * or case tricks in the original cannot be read differently upstream.
 */
export function serializeMessages(parsed: ParsedMcpBody): Buffer {
  const { batch, messages } = parsed;
  return Buffer.from(JSON.stringify(batch ? messages.map((m) => m.raw) : messages[0].raw), 'utf8');
}

/** Validate and extract `tools/call` params; throws `bad_request`. */
export function toolCallParams(message: JsonRpcMessage): ToolCallParams {
  const params = 'params' in message ? message.params : undefined;
  if (!isPlainObject(params)) throw bad('tools/call needs params { name, arguments }');
  const name = params.name;
  if (typeof name !== 'string' || name.length === 0 || name.length > 128) throw bad('tools/call params.name must be a non-empty string');
  const args = params.arguments;
  if (args !== undefined && !isPlainObject(args)) throw bad('tools/call params.arguments must be an object');
  return { name, args: (args as Record<string, unknown> | undefined) ?? {} };
}

/**
 * Whether a response id answers a request id the way the MCP SDK client
 * decides it: the response id must be a string or an integer (the SDK's
 * `RequestIdSchema`), and it is looked up as `Number(id)`, so `"2"`, `"02"`,
 * `" 2 "` and `"2e0"` all answer request `2`. A client that is not the SDK may
 * compare strictly; that is covered too (identical ids always match).
 */
export function answersRequest(responseId: unknown, requestId: JsonRpcId): boolean {
  if (responseId === requestId) return true;
  if (typeof responseId === 'number' ? !Number.isInteger(responseId) : typeof responseId !== 'string') return false;
  const key = Number(responseId);
  return !Number.isNaN(key) && key === Number(requestId);
}

/** Whether `method` may be sent as a notification (the client→server notifications are all `notifications/…`). */
export function isNotificationMethod(method: string): boolean {
  return method.startsWith('notifications/');
}
