/**
 * Computing the bandwidth weights of a consensus (docs/protocol.md §9.7),
 * following the case analysis of Tor's dir-spec ("Computing Bandwidth
 * Weights", consensus method 26 and later): balance the bandwidth available
 * in the guard, middle and exit positions given how much of it belongs to
 * relays with the Guard flag (G), the Exit flag (E), both (D) or neither (M).
 *
 * Integer arithmetic on BigInt, each division truncating toward zero, so
 * every authority writes the same numbers.
 */
import type { ConsensusRelay } from '../src/netdoc/consensus.js';
import { WEIGHT_KEYS, type BandwidthWeights, type WeightKey } from '../src/netdoc/bandwidth-weights.js';
import { clampParam, PARAM_TABLE } from '../src/netdoc/params.js';

/** Total consensus bandwidth by flag class, each starting at 1 (so tiny or empty networks still get weights). */
export interface BandwidthClasses {
  /** Guard and not Exit. */
  G: bigint;
  /** Neither. */
  M: bigint;
  /** Exit and not Guard. */
  E: bigint;
  /** Guard and Exit. */
  D: bigint;
}

/** The class totals of `relays` (a consensus's relays: BadExit relays have already lost Exit). */
export function bandwidthClasses(relays: readonly ConsensusRelay[]): BandwidthClasses {
  const c = { G: 1n, M: 1n, E: 1n, D: 1n };
  for (const r of relays) {
    const guard = r.flags.includes('Guard');
    const exit = r.flags.includes('Exit') && !r.flags.includes('BadExit');
    const bw = BigInt(r.bandwidth);
    if (guard && exit) c.D += bw;
    else if (guard) c.G += bw;
    else if (exit) c.E += bw;
    else c.M += bw;
  }
  return c;
}

interface Core {
  Wgg: bigint;
  Wgd: bigint;
  Wmg: bigint;
  Wme: bigint;
  Wmd: bigint;
  Wee: bigint;
  Wed: bigint;
}

/** The seven free weights from the class totals and the scale (dir-spec's three cases). */
export function coreWeights({ G, M, E, D }: BandwidthClasses, scale: bigint): Core {
  const T = G + M + E + D;
  const third = (x: bigint) => 3n * x;
  const inRange = (...ws: bigint[]) => ws.every((w) => w >= 0n && w <= scale);
  // Case 1: neither Exit nor Guard bandwidth is scarce.
  if (third(E) >= T && third(G) >= T) {
    const Wee = (scale * (E + G + M)) / (3n * E);
    const Wmg = (scale * (2n * G - E - M)) / (3n * G);
    return { Wgd: scale / 3n, Wed: scale / 3n, Wmd: scale / 3n, Wee, Wme: scale - Wee, Wmg, Wgg: scale - Wmg };
  }
  // Case 2: both are scarce.
  if (third(E) < T && third(G) < T) {
    const R = E < G ? E : G;
    const S = E < G ? G : E;
    if (R + D < S) {
      // Give all of D to the scarcer class.
      return E < G
        ? { Wgg: scale, Wee: scale, Wmg: 0n, Wme: 0n, Wmd: 0n, Wed: scale, Wgd: 0n }
        : { Wgg: scale, Wee: scale, Wmg: 0n, Wme: 0n, Wmd: 0n, Wed: 0n, Wgd: scale };
    }
    const Wee = (scale * (E - G + M)) / E;
    const Wed = (scale * (D - 2n * E + 4n * G - 2n * M)) / (3n * D);
    const Wme = (scale * (G - M)) / E;
    const Wmd = (scale - Wed) / 2n;
    const balanced = { Wee, Wed, Wme, Wmg: 0n, Wgg: scale, Wmd, Wgd: Wmd };
    if (inRange(Wee, Wed, Wme, Wmd)) return balanced;
    // Both positions scarce: keep them full.
    const Wed2 = (scale * (D - 2n * E + G + M)) / (3n * D);
    let Wmd2 = (scale * (D - 2n * M + G + E)) / (3n * D);
    let Wgd2 = scale - Wed2 - Wmd2;
    if (third(M) > T) {
      Wmd2 = 0n;
      Wgd2 = scale - Wed2;
    }
    return { Wgg: scale, Wee: scale, Wed: Wed2, Wmd: Wmd2, Wme: 0n, Wmg: 0n, Wgd: Wgd2 };
  }
  // Case 3: exactly one of them is scarce.
  const guardScarce = third(G) < T;
  const S = guardScarce ? G : E;
  if (third(S + D) < T) {
    if (guardScarce) {
      const Wme = E < M ? 0n : (scale * (E - M)) / (2n * E);
      return { Wgg: scale, Wgd: scale, Wmd: 0n, Wed: 0n, Wmg: 0n, Wme, Wee: scale - Wme };
    }
    const Wmg = G < M ? 0n : (scale * (G - M)) / (2n * G);
    return { Wee: scale, Wed: scale, Wmd: 0n, Wgd: 0n, Wme: 0n, Wmg, Wgg: scale - Wmg };
  }
  if (guardScarce) {
    const Wgd = (scale * (D - 2n * G + E + M)) / (3n * D);
    const Wee = (scale * (E + M)) / (2n * E);
    const Wmd = (scale - Wgd) / 2n;
    return { Wgg: scale, Wgd, Wmg: 0n, Wee, Wme: scale - Wee, Wmd, Wed: Wmd };
  }
  const Wed = (scale * (D - 2n * E + G + M)) / (3n * D);
  const Wgg = (scale * (G + M)) / (2n * G);
  const Wmd = (scale - Wed) / 2n;
  return { Wee: scale, Wed, Wme: 0n, Wgg, Wmg: scale - Wgg, Wmd, Wgd: Wmd };
}

/**
 * The `bandwidth-weights` of a consensus with these relays, at scale
 * `bwweightscale` (the consensus parameter, clamped; default 10000), or
 * undefined when a weight falls outside 0..scale (then the consensus carries
 * no line and clients weigh by bandwidth alone).
 */
export function computeBandwidthWeights(relays: readonly ConsensusRelay[], bwweightscale?: number): BandwidthWeights | undefined {
  const scaleNumber = clampParam('bwweightscale', bwweightscale ?? PARAM_TABLE.bwweightscale.default);
  const scale = BigInt(scaleNumber);
  const core = coreWeights(bandwidthClasses(relays), scale);
  const all: Record<WeightKey, bigint> = {
    ...core,
    Wgm: core.Wgg,
    Wem: core.Wee,
    Weg: core.Wed,
    Wmm: scale,
    Wbd: core.Wmd,
    Wbg: core.Wmg,
    Wbe: core.Wme,
    Wbm: scale,
    Wdb: scale,
    Web: scale,
    Wgb: scale,
    Wmb: scale,
  };
  const out: Record<string, number> = { scale: scaleNumber };
  for (const key of WEIGHT_KEYS) {
    const w = all[key];
    if (w < 0n || w > scale) return undefined;
    out[key] = Number(w);
  }
  return Object.freeze(out) as BandwidthWeights;
}
