/**
 * OpenFGA conditions on the embedded engine: typed parameters (int, uint,
 * double, bool, string, duration, timestamp, ipaddress, any, list<T>, map<T>)
 * converted the way the server converts them, and CEL expressions evaluated
 * with `@marcbachmann/cel-js` plus OpenFGA's `ipaddress` extension.
 */

import { Environment } from '@marcbachmann/cel-js';
import { Duration, UnsignedInt } from '@marcbachmann/cel-js/evaluator';
import type { ConditionDefinition, ConditionParamTypeRef } from '../model.js';
import { FgaError, FGA_ERROR } from './errors.js';
import { hasControlChars } from './ids.js';

const INT64_MAX = 9223372036854775807n;
const INT64_MIN = -9223372036854775808n;

/** An IP address value inside CEL (`ipaddress("10.0.0.1")`, `ip.in_cidr("10.0.0.0/8")`). */
export class IPAddress {
  /** 4 or 16 bytes; IPv4-mapped IPv6 addresses are stored as IPv4 (Go's `Unmap`). */
  readonly bytes: Uint8Array;
  readonly zone: string;

  constructor(bytes: Uint8Array, zone = '') {
    this.bytes = bytes;
    this.zone = zone;
  }

  /** Parses like Go's `netip.ParseAddr`, then unmaps IPv4-mapped IPv6; undefined when malformed. */
  static parse(text: string): IPAddress | undefined {
    if (text.includes('.') && !text.includes(':')) {
      const v4 = parseIPv4(text);
      return v4 ? new IPAddress(v4) : undefined;
    }
    let zone = '';
    let addr = text;
    const pct = text.indexOf('%');
    if (pct !== -1) {
      zone = text.slice(pct + 1);
      addr = text.slice(0, pct);
      if (zone === '') return undefined;
    }
    const v6 = parseIPv6(addr);
    if (!v6) return undefined;
    return new IPAddress(unmap(v6), zone);
  }

  /** Go's `Prefix.Contains` after OpenFGA's IPv4-mapped-prefix adjustment. */
  inCidr(cidr: string): boolean {
    const slash = cidr.indexOf('/');
    if (slash === -1) throw new Error(`'${cidr}' is a malformed CIDR string`);
    const addrText = cidr.slice(0, slash);
    const bitsText = cidr.slice(slash + 1);
    if (!/^(0|[1-9]\d{0,2})$/.test(bitsText) || addrText.includes('%')) throw new Error(`'${cidr}' is a malformed CIDR string`);
    let bits = Number(bitsText);
    const isV4Text = addrText.includes('.') && !addrText.includes(':');
    const raw = isV4Text ? parseIPv4(addrText) : parseIPv6(addrText);
    if (!raw || bits > raw.length * 8) throw new Error(`'${cidr}' is a malformed CIDR string`);
    let network = raw;
    const unmapped = unmap(raw);
    if (unmapped.length === 4 && raw.length === 16 && bits >= 96) {
      network = unmapped;
      bits -= 96;
    } else if (unmapped.length === 4 && raw.length === 4) network = raw;
    if (this.zone !== '' || network.length !== this.bytes.length) return false;
    for (let i = 0; i < bits; i++) {
      const byte = i >> 3;
      const mask = 0x80 >> (i & 7);
      if ((network[byte] & mask) !== (this.bytes[byte] & mask)) return false;
    }
    return true;
  }

  /** Go's `Addr.String()` form, enough for equality and messages. */
  toString(): string {
    if (this.bytes.length === 4) return Array.from(this.bytes).join('.');
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) groups.push(((this.bytes[i] << 8) | this.bytes[i + 1]).toString(16));
    return groups.join(':') + (this.zone ? `%${this.zone}` : '');
  }
}

function parseIPv4(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    // Go refuses leading zeros (ambiguous octal) and anything but decimal digits.
    if (!/^(0|[1-9]\d{0,2})$/.test(parts[i])) return undefined;
    const n = Number(parts[i]);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseIPv6(text: string): Uint8Array | undefined {
  if (text.length === 0) return undefined;
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parseGroups = (s: string): number[] | undefined => {
    if (s === '') return [];
    const out: number[] = [];
    const groups = s.split(':');
    for (let i = 0; i < groups.length; i++) {
      const g = groups[i];
      if (i === groups.length - 1 && g.includes('.')) {
        const v4 = parseIPv4(g);
        if (!v4) return undefined;
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const head = parseGroups(halves[0]);
  const tail = halves.length === 2 ? parseGroups(halves[1]) : [];
  if (!head || !tail) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length;
    if (fill < 1) return undefined;
    groups = [...head, ...new Array<number>(fill).fill(0), ...tail];
  } else groups = head;
  if (groups.length !== 8) return undefined;
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >> 8;
    out[2 * i + 1] = g & 0xff;
  });
  return out;
}

function unmap(bytes: Uint8Array): Uint8Array {
  if (bytes.length !== 16) return bytes;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return bytes;
  if (bytes[10] !== 0xff || bytes[11] !== 0xff) return bytes;
  return bytes.slice(12);
}

/** Go's `time.ParseDuration` as a count of nanoseconds. */
function parseGoDuration(text: string): bigint | undefined {
  const units: Record<string, bigint> = {
    ns: 1n,
    us: 1000n,
    µs: 1000n,
    μs: 1000n,
    ms: 1_000_000n,
    s: 1_000_000_000n,
    m: 60_000_000_000n,
    h: 3_600_000_000_000n,
  };
  let s = text;
  let neg = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') return undefined;
  let total = 0n;
  const re = /^(\d*)(?:\.(\d*))?([a-zµμ]+)/;
  while (s.length > 0) {
    const m = re.exec(s);
    if (!m || (m[1] === '' && (m[2] === undefined || m[2] === ''))) return undefined;
    const unit = units[m[3]];
    if (unit === undefined) return undefined;
    let value = BigInt(m[1] || '0') * unit;
    if (m[2]) value += (BigInt(m[2]) * unit) / 10n ** BigInt(m[2].length);
    total += value;
    s = s.slice(m[0].length);
  }
  if (total > INT64_MAX) return undefined;
  return neg ? -total : total;
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;

function parseTimestamp(text: string): Date | undefined {
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) return undefined;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day > daysInMonth) return undefined;
  const d = new Date(text.toUpperCase());
  return Number.isNaN(d.getTime()) ? undefined : d;
}

/** Parses a decimal number string the way Go's big.ParseFloat(s, 10, ...) accepts it. */
function parseDecimal(text: string): number | undefined {
  if (/^[+-]?(inf|Inf)$/.test(text)) return text.startsWith('-') ? -Infinity : Infinity;
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(text)) return undefined;
  return Number(text);
}

function clampInt64(v: bigint): bigint {
  return v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : v;
}

/** Converts a JSON number or numeric string to an int64 (Go: must be an integer; saturates). */
function toInt64(value: unknown, what: string): bigint {
  if (typeof value === 'bigint') return clampInt64(value);
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new Error(`expected ${what} value, but found numeric value '${value}'`);
    return clampInt64(BigInt(value));
  }
  if (typeof value === 'string') {
    if (/^[+-]?\d+$/.test(value)) return clampInt64(BigInt(value));
    const n = parseDecimal(value);
    if (n === undefined) throw new Error(`expected ${what} value, but found invalid string value '${value}'`);
    if (!Number.isInteger(n)) throw new Error(`expected ${what} value, but found numeric value '${value}'`);
    return clampInt64(BigInt(n));
  }
  throw new Error(`expected ${what} value, but found ${describe(value)}`);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  return typeof value;
}

/** A parameter type: its CEL declaration and its converter from JSON. */
interface ParamType {
  readonly name: string;
  readonly cel: string;
  convert(value: unknown): unknown;
}

/** A CEL type whose JSON value is taken as it is when it has JavaScript type `js` (bool, string). */
function primitive(name: 'bool' | 'string', js: 'boolean' | 'string'): ParamType {
  return {
    name,
    cel: name,
    convert: (v) => {
      if (typeof v !== js) throw new Error(`expected type value '${name}', but found ${describe(v)}`);
      return v;
    },
  };
}

function paramType(ref: ConditionParamTypeRef): ParamType {
  const generic = (): ParamType => {
    if (!ref.generic_types || ref.generic_types.length !== 1) throw new Error(`type ${ref.type_name} requires 1 generic type`);
    return paramType(ref.generic_types[0]);
  };
  switch (ref.type_name) {
    case 'TYPE_NAME_ANY':
      return { name: 'any', cel: 'dyn', convert: (v) => v };
    case 'TYPE_NAME_BOOL':
      return primitive('bool', 'boolean');
    case 'TYPE_NAME_STRING':
      return primitive('string', 'string');
    case 'TYPE_NAME_INT':
      return { name: 'int', cel: 'int', convert: (v) => toInt64(v, 'an int') };
    case 'TYPE_NAME_UINT':
      return {
        name: 'uint',
        cel: 'uint',
        convert: (v) => {
          const n = toInt64(v, 'a uint');
          if (n < 0n) throw new Error(`expected a uint value, but found int64 value '${n}'`);
          return new UnsignedInt(n);
        },
      };
    case 'TYPE_NAME_DOUBLE':
      return {
        name: 'double',
        cel: 'double',
        convert: (v) => {
          if (typeof v === 'number') return v;
          if (typeof v === 'string') {
            const n = parseDecimal(v);
            if (n === undefined) throw new Error(`expected a float64 value, but found invalid string value '${v}'`);
            if (!Number.isFinite(n) && !/inf/i.test(v)) throw new Error(`number cannot be represented as a float64: ${v}`);
            return n;
          }
          throw new Error(`expected type value 'float64', but found ${describe(v)}`);
        },
      };
    case 'TYPE_NAME_DURATION':
      return {
        name: 'duration',
        cel: 'google.protobuf.Duration',
        convert: (v) => {
          if (typeof v !== 'string') throw new Error(`expected a duration string, but found: ${describe(v)}`);
          const ns = parseGoDuration(v);
          if (ns === undefined) throw new Error(`expected a valid duration string, but found: '${v}'`);
          return new Duration(ns / 1_000_000_000n, Number(ns % 1_000_000_000n));
        },
      };
    case 'TYPE_NAME_TIMESTAMP':
      return {
        name: 'timestamp',
        cel: 'google.protobuf.Timestamp',
        convert: (v) => {
          if (typeof v !== 'string') throw new Error(`expected RFC 3339 formatted timestamp string, but found: ${describe(v)}`);
          const d = parseTimestamp(v);
          if (!d) throw new Error(`expected RFC 3339 formatted timestamp string, but found '${v}'`);
          return d;
        },
      };
    case 'TYPE_NAME_IPADDRESS':
      return {
        name: 'ipaddress',
        cel: 'IPAddress',
        convert: (v) => {
          if (v instanceof IPAddress) return v;
          if (typeof v !== 'string') throw new Error(`expected an ipaddress string, but found: ${describe(v)}`);
          const ip = IPAddress.parse(v);
          if (!ip) throw new Error(`expected a well-formed IP address, but found: '${v}'`);
          return ip;
        },
      };
    case 'TYPE_NAME_LIST': {
      const item = generic();
      return {
        name: `list<${item.name}>`,
        cel: `list<${item.cel}>`,
        convert: (v) => {
          if (!Array.isArray(v)) throw new Error(`list requires a list, found: ${describe(v)}`);
          return v.map((x, i) => {
            try {
              return item.convert(x);
            } catch (err) {
              throw new Error(`found an invalid list item at index \`${i}\`: ${(err as Error).message}`);
            }
          });
        },
      };
    }
    case 'TYPE_NAME_MAP': {
      const item = generic();
      return {
        name: `map<${item.name}>`,
        cel: `map<string, ${item.cel}>`,
        convert: (v) => {
          if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`map requires a map, found: ${describe(v)}`);
          const out = new Map<string, unknown>();
          for (const [k, x] of Object.entries(v)) {
            try {
              out.set(k, item.convert(x));
            } catch (err) {
              throw new Error(`found an invalid value for key '${k}': ${(err as Error).message}`);
            }
          }
          return out;
        },
      };
    }
    default:
      throw new Error(`unsupported parameter type ${ref.type_name}`);
  }
}

/** A compiled condition of the model. */
export interface CompiledCondition {
  readonly name: string;
  readonly parameterNames: readonly string[];
  /**
   * Evaluates with the request context and the tuple's own context (the tuple's
   * values win). Throws FgaError 2000 for a missing parameter, a value of the
   * wrong type, or an evaluation error — OpenFGA's `ErrEvaluationFailed`.
   */
  evaluate(requestContext: Readonly<Record<string, unknown>> | undefined, tupleContext: Readonly<Record<string, unknown>> | undefined): boolean;
  /** Why a tuple's stored context is unacceptable for this condition, or undefined. */
  tupleContextProblem(context: Readonly<Record<string, unknown>> | undefined): string | undefined;
}

const hasOwn = (o: object, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/** CEL environment with OpenFGA's `ipaddress` extension; one per compiled model. */
function baseEnvironment(): Environment {
  return new Environment()
    .registerType('IPAddress', IPAddress)
    .registerFunction('ipaddress(string): IPAddress', (s: string) => {
      const ip = IPAddress.parse(s);
      if (!ip) throw new Error(`ParseAddr(${JSON.stringify(s)}): invalid IP address`);
      return ip;
    })
    .registerFunction('IPAddress.in_cidr(string): bool', (ip: IPAddress, cidr: string) => ip.inCidr(cidr))
    .registerOperator('IPAddress == IPAddress', (a: IPAddress, b: IPAddress) => a.toString() === b.toString());
}

/**
 * Compiles every condition of a model. Throws an Error naming the condition
 * when a parameter type is unknown or the expression is not a valid CEL
 * boolean expression over its parameters (OpenFGA refuses such models too).
 */
export function compileConditions(defs: Readonly<Record<string, ConditionDefinition>> | undefined): Map<string, CompiledCondition> {
  const out = new Map<string, CompiledCondition>();
  if (!defs || Object.keys(defs).length === 0) return out;
  const base = baseEnvironment();
  for (const [name, def] of Object.entries(defs)) {
    const params = new Map<string, ParamType>();
    const env = base.clone();
    try {
      for (const [param, ref] of Object.entries(def.parameters ?? {})) {
        const type = paramType(ref);
        params.set(param, type);
        env.registerVariable(param, type.cel);
      }
    } catch (err) {
      throw new Error(`condition ${name}: ${(err as Error).message}`);
    }
    const checked = env.check(def.expression);
    if (!checked.valid) throw new Error(`condition ${name}: ${checked.error?.message.split('\n')[0] ?? 'invalid expression'}`);
    if (String(checked.type) !== 'bool') throw new Error(`condition ${name}: expected a bool condition expression output, but got '${String(checked.type)}'`);
    const program = env.parse(def.expression);
    const names = [...params.keys()];

    const convertAll = (
      merged: (k: string) => { found: boolean; value: unknown },
      anyContext: boolean,
    ): { vars: Record<string, unknown>; missing: string[] } => {
      if (anyContext && params.size === 0) throw new Error('no parameters defined for the condition');
      const vars: Record<string, unknown> = {};
      const missing: string[] = [];
      for (const [param, type] of params) {
        const v = merged(param);
        if (!v.found) {
          missing.push(param);
          continue;
        }
        try {
          vars[param] = type.convert(v.value);
        } catch (err) {
          throw new Error(`failed to convert context parameter '${param}': ${(err as Error).message}`);
        }
      }
      return { vars, missing };
    };

    out.set(name, {
      name,
      parameterNames: names,
      evaluate(requestContext, tupleContext) {
        let converted: { vars: Record<string, unknown>; missing: string[] };
        try {
          const anyContext =
            (requestContext !== undefined && Object.keys(requestContext).length > 0) || (tupleContext !== undefined && Object.keys(tupleContext).length > 0);
          converted = convertAll((k) => {
            if (tupleContext && hasOwn(tupleContext, k)) return { found: true, value: tupleContext[k] };
            if (requestContext && hasOwn(requestContext, k)) return { found: true, value: requestContext[k] };
            return { found: false, value: undefined };
          }, anyContext);
        } catch (err) {
          throw new FgaError(FGA_ERROR.validation, `failed to evaluate relationship condition '${name}': ${(err as Error).message}`);
        }
        if (converted.missing.length > 0) {
          throw new FgaError(
            FGA_ERROR.validation,
            `failed to evaluate relationship condition '${name}': missing context parameters [${converted.missing.join(' ')}]`,
          );
        }
        let result: unknown;
        try {
          result = program(converted.vars);
        } catch (err) {
          throw new FgaError(FGA_ERROR.validation, `failed to evaluate relationship condition '${name}': ${(err as Error).message.split('\n')[0]}`);
        }
        if (typeof result !== 'boolean') {
          throw new FgaError(FGA_ERROR.validation, `failed to evaluate relationship condition '${name}': result is not a bool`);
        }
        return result;
      },
      tupleContextProblem(context) {
        if (!context) return undefined;
        const problem = contextProblem(context);
        if (problem) return problem;
        const keys = Object.keys(context);
        if (keys.length === 0) return undefined;
        if (params.size === 0) return 'no parameters defined for the condition';
        for (const [param, type] of params) {
          if (!hasOwn(context, param)) continue;
          try {
            type.convert(context[param]);
          } catch (err) {
            return `failed to convert context parameter '${param}': ${(err as Error).message}`;
          }
        }
        for (const key of keys) if (!params.has(key)) return `found invalid context parameter: ${key}`;
        return undefined;
      },
    });
  }
  return out;
}

/**
 * Why a context map could not travel in an OpenFGA request (a protobuf
 * Struct): non-JSON values, non-finite numbers, or control characters in keys
 * and strings (OpenFGA's ValidateStruct). Undefined when acceptable.
 */
export function contextProblem(context: unknown, depth = 0): string | undefined {
  if (depth > 32) return 'context is nested too deeply';
  if (context === null || typeof context === 'boolean' || typeof context === 'string') {
    if (typeof context === 'string' && hasControlChars(context)) return `context value ${JSON.stringify(context)} contains forbidden characters`;
    return undefined;
  }
  if (typeof context === 'number') return Number.isFinite(context) ? undefined : 'context contains a number that is not finite';
  if (Array.isArray(context)) {
    for (const item of context) {
      const p = contextProblem(item, depth + 1);
      if (p) return p;
    }
    return undefined;
  }
  if (typeof context === 'object') {
    const proto = Object.getPrototypeOf(context);
    if (proto !== Object.prototype && proto !== null) return 'context must be plain JSON';
    for (const [k, v] of Object.entries(context as Record<string, unknown>)) {
      if (hasControlChars(k)) return `context key ${JSON.stringify(k)} contains forbidden characters`;
      const p = contextProblem(v, depth + 1);
      if (p) return p;
    }
    return undefined;
  }
  return `context contains a ${typeof context}, which is not JSON`;
}
