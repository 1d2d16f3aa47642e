/**
 * The consensus `bandwidth-weights` line (docs/protocol.md §8.4, computed as
 * §9.7 says): Tor's position weights, integers scaled by the `bwweightscale`
 * parameter (default 10000), that tell path selection how much of a relay's
 * bandwidth to use in the guard, middle and exit positions according to its
 * Guard and Exit flags. Grammar only; the computation is the authorities'
 * (directory/bandwidth-weights.ts).
 *
 * Key names are Tor's: W<position><flags>, position g (guard), m (middle),
 * e (exit), b (directory request, "begin-dir"); flags g (Guard only),
 * m (neither), e (Exit only), d (Guard and Exit), b (bridge/any).
 */
import { malformedDoc } from './text.js';
import { INT32_MAX, parseParams, formatParams } from './params.js';

/** Every weight a consensus carries, in the (ASCII) order written. */
export const WEIGHT_KEYS = [
  'Wbd', 'Wbe', 'Wbg', 'Wbm', 'Wdb', 'Web', 'Wed', 'Wee', 'Weg', 'Wem',
  'Wgb', 'Wgd', 'Wgg', 'Wgm', 'Wmb', 'Wmd', 'Wme', 'Wmg', 'Wmm',
] as const;
export type WeightKey = (typeof WEIGHT_KEYS)[number];

/**
 * The weights of one consensus. Each is 0..`scale`; a relay's weight for a
 * position is bandwidth × W / scale. `scale` is the consensus's
 * `bwweightscale` parameter (§8.5).
 */
export type BandwidthWeights = { readonly [K in WeightKey]: number } & { readonly scale: number };

/** The weights as stated by the line, before defaults: every pair, known or not. */
export type RawWeights = ReadonlyMap<string, number>;

/**
 * Parses the arguments of a `bandwidth-weights` line: `key=int` pairs, keys
 * sorted, no repeats (the `params` grammar, §8.5), each value 0..2^31−1.
 * Throws DocumentError ERR_MALFORMED.
 */
export function parseWeightsLine(args: readonly string[], what: string): RawWeights {
  const raw = parseParams(args, `${what} bandwidth-weights`);
  for (const [key, value] of raw) if (value < 0) throw malformedDoc(what, `bandwidth-weights: ${key} is negative`);
  return raw;
}

/** The arguments of a `bandwidth-weights` line for `weights` (the WEIGHT_KEYS, sorted). */
export function formatWeightsLine(weights: BandwidthWeights, what: string): string[] {
  const raw = new Map<string, number>();
  for (const key of WEIGHT_KEYS) {
    const value = weights[key];
    if (!Number.isInteger(value) || value < 0 || value > INT32_MAX) throw malformedDoc(what, `bandwidth-weights: ${key}=${value} out of range`);
    raw.set(key, value);
  }
  return formatParams(raw, what);
}

/**
 * The typed weights of a parsed line: a known key that is missing (a later
 * consensus method may drop one) takes `scale`, a value above `scale` is
 * clamped to it, unknown keys are ignored.
 */
export function bandwidthWeights(raw: RawWeights, scale: number): BandwidthWeights {
  const out: Record<string, number> = { scale };
  for (const key of WEIGHT_KEYS) out[key] = Math.min(scale, raw.get(key) ?? scale);
  return Object.freeze(out) as BandwidthWeights;
}
