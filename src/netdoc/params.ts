/**
 * Network parameters: the consensus `params` line (docs/protocol.md §8.5).
 *
 * The line is Tor-style `key=int` pairs, keys sorted, values 32-bit signed.
 * This module owns the grammar of that line and the one table of parameters
 * Allium knows, each with its default, minimum and maximum. Readers take
 * values through `networkParams()`: a missing parameter gets its default, an
 * out-of-range one is clamped, an unknown key is kept in the raw map but has
 * no effect. Names follow Tor's param-spec where the meaning is the same.
 */
import { malformedDoc } from './text.js';

/** One known parameter. Every field is an integer; `min ≤ default ≤ max`. */
export interface ParamSpec {
  readonly default: number;
  readonly min: number;
  readonly max: number;
  /** What the value means, and whether anything reads it yet. */
  readonly doc: string;
}

export const INT32_MIN = -0x8000_0000;
export const INT32_MAX = 0x7fff_ffff;
/** A key is a letter or digit, then up to 63 letters, digits, `_` or `-`. */
export const PARAM_KEY = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
const PARAM_VALUE = /^(?:0|-?[1-9][0-9]{0,9})$/;

/**
 * The known parameters (docs/protocol.md §8.5 lists the same table).
 * Adding one: add a row here and to §8.5; readers get it through `NetworkParams`.
 */
export const PARAM_TABLE = {
  /** Tor `bwweightscale`. */
  bwweightscale: {
    default: 10_000,
    min: 1,
    max: INT32_MAX,
    doc: 'The scale of the bandwidth-weights values (§8.4, §9.7): a weight W means W / bwweightscale of a relay\'s bandwidth.',
  },
  /** Tor `cc_alg`. */
  cc_alg: {
    default: 0,
    min: 0,
    max: 2,
    doc: 'Congestion-control algorithm for new circuits: 0 = fixed SENDME windows (§7); 2 = Vegas (Tor proposal 324), reserved. A node that does not implement the named algorithm uses 0.',
  },
  /** Tor `cc_cwnd_init`. */
  cc_cwnd_init: { default: 124, min: 31, max: 10_000, doc: 'Congestion control: initial congestion window, in cells. Not read yet (cc_alg 0 only).' },
  /** Tor `cc_cwnd_min`. */
  cc_cwnd_min: { default: 31, min: 31, max: 1000, doc: 'Congestion control: smallest congestion window, in cells. Not read yet.' },
  /** Tor `cc_cwnd_max`. */
  cc_cwnd_max: { default: INT32_MAX, min: 500, max: INT32_MAX, doc: 'Congestion control: largest congestion window, in cells. Not read yet.' },
  /** Tor `cc_sendme_inc`. */
  cc_sendme_inc: { default: 31, min: 1, max: 254, doc: 'Congestion control: cells acknowledged by one circuit SENDME. Not read yet.' },
  /** Tor `circwindow`. */
  circwindow: {
    default: 1000,
    min: 100,
    max: 1000,
    doc: 'Fixed windows (cc_alg 0): the circuit package and deliver window start, in cells (§7). Not read yet: circuits start at 1000.',
  },
  /** Tor `sendme_accept_min_version`. */
  sendme_accept_min_version: {
    default: 1,
    min: 0,
    max: 255,
    doc: 'Lowest circuit SENDME version a node accepts (§7). Allium accepts only version 1 whatever this says.',
  },
  /** Tor `sendme_emit_min_version`. */
  sendme_emit_min_version: {
    default: 1,
    min: 0,
    max: 255,
    doc: 'Lowest circuit SENDME version a node sends (§7). Allium always sends version 1.',
  },
} as const satisfies Record<string, ParamSpec>;

export type KnownParam = keyof typeof PARAM_TABLE;

/** Every known parameter with its effective value: present and clamped, or the default. */
export type NetworkParams = { readonly [K in KnownParam]: number };

/** The raw `params` line as parsed: every pair, known or not, value unclamped. */
export type RawParams = ReadonlyMap<string, number>;

function isKnown(key: string): key is KnownParam {
  return Object.hasOwn(PARAM_TABLE, key);
}

/** The value `value` takes for known parameter `key`: clamped into [min, max]. */
export function clampParam(key: KnownParam, value: number): number {
  const spec: ParamSpec = PARAM_TABLE[key];
  return Math.min(spec.max, Math.max(spec.min, value));
}

/** Every known parameter at its default. */
export const DEFAULT_NETWORK_PARAMS: NetworkParams = Object.freeze(
  Object.fromEntries(Object.entries(PARAM_TABLE).map(([k, spec]) => [k, spec.default])) as Record<KnownParam, number>,
);

/** Effective values from a raw map: defaults for missing keys, clamping, unknown keys ignored. */
export function networkParams(raw: RawParams): NetworkParams {
  const out: Record<string, number> = { ...DEFAULT_NETWORK_PARAMS };
  for (const [key, value] of raw) if (isKnown(key)) out[key] = clampParam(key, value);
  return Object.freeze(out as Record<KnownParam, number>);
}

/**
 * Parses the arguments of a `params` line (each `key=int`).
 * Throws DocumentError ERR_MALFORMED on a bad key, a bad or out-of-int32 value,
 * a repeated key, or keys not in ascending ASCII order.
 */
export function parseParams(args: readonly string[], what: string): RawParams {
  const out = new Map<string, number>();
  let last: string | undefined;
  for (const arg of args) {
    const eq = arg.indexOf('=');
    const key = eq < 0 ? arg : arg.slice(0, eq);
    const text = eq < 0 ? '' : arg.slice(eq + 1);
    if (eq < 0 || !PARAM_KEY.test(key)) throw malformedDoc(what, `params: bad pair ${JSON.stringify(arg.slice(0, 80))}`);
    if (!PARAM_VALUE.test(text)) throw malformedDoc(what, `params: ${key}: bad integer ${JSON.stringify(text.slice(0, 20))}`);
    const value = Number(text);
    if (value < INT32_MIN || value > INT32_MAX) throw malformedDoc(what, `params: ${key}: ${text} is not a 32-bit signed integer`);
    if (last !== undefined && key === last) throw malformedDoc(what, `params: duplicate key ${key}`);
    if (last !== undefined && key < last) throw malformedDoc(what, `params: keys not sorted (${key} after ${last})`);
    out.set(key, value);
    last = key;
  }
  return out;
}

/**
 * The arguments of a `params` line for `raw`, sorted by key. Values are
 * written as given (clamping is the reader's job). Throws DocumentError
 * ERR_MALFORMED on a key or value the grammar cannot carry.
 */
export function formatParams(raw: RawParams, what: string): string[] {
  const keys = [...raw.keys()].sort();
  const args = keys.map((key) => {
    const value = raw.get(key)!;
    if (!PARAM_KEY.test(key)) throw malformedDoc(what, `params: bad key ${JSON.stringify(key.slice(0, 80))}`);
    if (!Number.isInteger(value) || value < INT32_MIN || value > INT32_MAX) throw malformedDoc(what, `params: ${key}: ${value} is not a 32-bit signed integer`);
    return `${key}=${value}`;
  });
  return args;
}
