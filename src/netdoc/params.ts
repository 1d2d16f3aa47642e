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
    default: 2,
    min: 0,
    max: 2,
    doc: 'Congestion-control algorithm clients ask for on new circuits (§7.2): 0 = fixed SENDME windows (§7.1); 2 = Vegas (Tor proposal 324, §7.3). 1 is treated as 0.',
  },
  /** Tor `cc_cwnd_init`. */
  cc_cwnd_init: { default: 124, min: 31, max: 10_000, doc: 'Vegas: initial congestion window, in cells.' },
  /** Tor `cc_cwnd_min`. */
  cc_cwnd_min: { default: 124, min: 31, max: 1000, doc: 'Vegas: smallest congestion window, in cells.' },
  /** Tor `cc_cwnd_max`. */
  cc_cwnd_max: { default: INT32_MAX, min: 500, max: INT32_MAX, doc: 'Vegas: largest congestion window, in cells.' },
  /** Tor `cc_cwnd_inc`. */
  cc_cwnd_inc: { default: 1, min: 1, max: 1000, doc: 'Vegas: cells added to (or taken from) the window at each steady-state update.' },
  /** Tor `cc_cwnd_inc_pct_ss`. */
  cc_cwnd_inc_pct_ss: { default: 100, min: 1, max: 500, doc: 'Vegas: slow-start growth per SENDME, in percent of cc_sendme_inc.' },
  /** Tor `cc_cwnd_inc_rate`. */
  cc_cwnd_inc_rate: { default: 31, min: 1, max: 250, doc: 'Vegas: steady-state window updates per congestion window.' },
  /** Tor `cc_sendme_inc`. */
  cc_sendme_inc: { default: 31, min: 1, max: 254, doc: 'Congestion control: cells acknowledged by one circuit SENDME; a relay announces its value in the handshake (§7.2).' },
  /** Tor `cc_ewma_cwnd_pct`. */
  cc_ewma_cwnd_pct: { default: 50, min: 1, max: 255, doc: 'Vegas: N of the RTT average after slow start, in percent of the SENDMEs between window updates.' },
  /** Tor `cc_ewma_max`. */
  cc_ewma_max: { default: 10, min: 2, max: INT32_MAX, doc: 'Vegas: largest N of the RTT average.' },
  /** Tor `cc_ewma_ss`. */
  cc_ewma_ss: { default: 2, min: 2, max: INT32_MAX, doc: 'Vegas: N of the RTT average in slow start.' },
  /** Tor `cc_rtt_reset_pct`. */
  cc_rtt_reset_pct: { default: 100, min: 0, max: 100, doc: 'Vegas: when the window sits at cc_cwnd_min, the minimum RTT is reset to this percentile between it and the average.' },
  /** Tor `cc_vegas_alpha_exit`. */
  cc_vegas_alpha_exit: { default: 186, min: 0, max: 1000, doc: 'Vegas: queued cells below which the window grows.' },
  /** Tor `cc_vegas_beta_exit`. */
  cc_vegas_beta_exit: { default: 248, min: 0, max: 1000, doc: 'Vegas: queued cells above which the window shrinks.' },
  /** Tor `cc_vegas_gamma_exit`. */
  cc_vegas_gamma_exit: { default: 186, min: 0, max: 1000, doc: 'Vegas: queued cells that end slow start.' },
  /** Tor `cc_vegas_delta_exit`. */
  cc_vegas_delta_exit: { default: 310, min: 0, max: INT32_MAX, doc: 'Vegas: queued cells above which the window drops to the estimated BDP plus this.' },
  /** Tor `cc_sscap_exit`. */
  cc_sscap_exit: { default: 600, min: 100, max: INT32_MAX, doc: 'Vegas: window (cells) above which slow start grows more slowly (RFC 3742).' },
  /** Tor `cc_ss_max`. */
  cc_ss_max: { default: 5000, min: 500, max: INT32_MAX, doc: 'Vegas: window (cells) at which slow start ends regardless.' },
  /** Tor `cc_cwnd_full_gap`. */
  cc_cwnd_full_gap: { default: 4, min: 0, max: 0x7fff, doc: 'Vegas: the window counts as full with up to this many cc_sendme_inc of it unused.' },
  /** Tor `cc_cwnd_full_minpct`. */
  cc_cwnd_full_minpct: { default: 25, min: 0, max: 100, doc: 'Vegas: the window counts as not full once under this percentage is in flight.' },
  /** Tor `cc_cwnd_full_per_cwnd`. */
  cc_cwnd_full_per_cwnd: { default: 1, min: 0, max: 1, doc: 'Vegas: 1 = the full state is reset once per window, 0 = at every window update.' },
  /** Allium only (no Tor equivalent): sender pacing, §7.5. */
  cc_pace_pct: {
    default: 125,
    min: 0,
    max: 1000,
    doc: 'Vegas sender pacing (§7.5, Allium only): DATA cells go out no faster than this percentage of cwnd / minimum RTT; 0 = unpaced (Tor\'s behaviour).',
  },
  /** Allium only (no Tor equivalent): one window cut per round trip, §7.3. */
  cc_cut_per_rtt: {
    default: 1,
    min: 0,
    max: 1,
    doc: 'Vegas (§7.3, Allium only): 1 = after the window is cut to the BDP (slow start\'s gamma exit or the delta rule), no further delta cut until the SENDME of a cell sent after that cut; 0 = a delta cut at every update (Tor\'s behaviour).',
  },
  /** Tor `cc_xoff_client`. */
  cc_xoff_client: { default: 500, min: 1, max: 10_000, doc: 'Stream flow control (§7.4): a client sends XOFF once more than this many cells (x 498 bytes) wait for its application.' },
  /** Tor `cc_xoff_exit`. */
  cc_xoff_exit: { default: 500, min: 1, max: 10_000, doc: 'Stream flow control (§7.4): a relay sends XOFF once more than this many cells (x 498 bytes) wait for its destination.' },
  /** Tor `cc_xon_rate`. */
  cc_xon_rate: { default: 500, min: 1, max: 5000, doc: 'Stream flow control (§7.4): cells (x 498 bytes) a client must have sent per XON it accepts.' },
  /** Tor `cc_xon_ewma_cnt`. */
  cc_xon_ewma_cnt: { default: 2, min: 2, max: 100, doc: 'Stream flow control (§7.4): N of the drain-rate average an XON carries.' },
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
