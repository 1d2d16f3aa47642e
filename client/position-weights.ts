/**
 * Position weights (docs/protocol.md §11.2): how much of a relay's bandwidth
 * counts when it is chosen for the guard, middle or exit position, by its
 * flags, in the style of Tor's `bandwidth-weights` consensus line (Tor's
 * dir-spec §3.8.3; names and meaning as there). Pure.
 *
 * Classes: G = Guard only, E = Exit only (BadExit counts as no Exit), D = Guard
 * and Exit, M = neither. A weight is an integer in 0..WEIGHT_SCALE; a relay's
 * weight in a position is bandwidth × W / WEIGHT_SCALE.
 *
 * A consensus that carries a `bandwidth-weights` line (method 2, §9.7) is
 * weighed by it (`fromBandwidthWeights`); without one, the client computes
 * the weights from the consensus with Tor's balancing rules
 * (`computePositionWeights`).
 */
import type { BandwidthWeights } from '../src/netdoc/bandwidth-weights.js';

/** The denominator of every weight (Tor's default `bwweightscale`). */
export const WEIGHT_SCALE = 10_000;

/**
 * One weight per (position, class): `W<position><class>`, position g(uard),
 * m(iddle), e(xit); class g, m, e, d as above. Integers in 0..WEIGHT_SCALE.
 */
export interface PositionWeights {
  readonly Wgg: number;
  readonly Wgm: number;
  readonly Wgd: number;
  readonly Wmg: number;
  readonly Wmm: number;
  readonly Wme: number;
  readonly Wmd: number;
  readonly Weg: number;
  readonly Wem: number;
  readonly Wee: number;
  readonly Wed: number;
}

export type Position = 'guard' | 'middle' | 'exit';
export type RelayClass = 'G' | 'M' | 'E' | 'D';

/** Bandwidth totals per class (any unit, the same for all four). */
export interface ClassTotals {
  G: number;
  M: number;
  E: number;
  D: number;
}

/** Weights that leave every bandwidth as it is (every weight = WEIGHT_SCALE). */
export const UNIFORM_WEIGHTS: PositionWeights = Object.freeze({
  Wgg: WEIGHT_SCALE,
  Wgm: WEIGHT_SCALE,
  Wgd: WEIGHT_SCALE,
  Wmg: WEIGHT_SCALE,
  Wmm: WEIGHT_SCALE,
  Wme: WEIGHT_SCALE,
  Wmd: WEIGHT_SCALE,
  Weg: WEIGHT_SCALE,
  Wem: WEIGHT_SCALE,
  Wee: WEIGHT_SCALE,
  Wed: WEIGHT_SCALE,
});

/** The class of a relay by its flags: Guard and Exit, with BadExit counting as no Exit. */
export function relayClass(flags: readonly string[]): RelayClass {
  const guard = flags.includes('Guard');
  const exit = flags.includes('Exit') && !flags.includes('BadExit');
  if (guard && exit) return 'D';
  if (guard) return 'G';
  if (exit) return 'E';
  return 'M';
}

/** The weight (0..WEIGHT_SCALE) of class `cls` in `position`. */
export function positionWeight(weights: PositionWeights, position: Position, cls: RelayClass): number {
  switch (position) {
    case 'guard':
      return cls === 'G' ? weights.Wgg : cls === 'D' ? weights.Wgd : cls === 'M' ? weights.Wgm : 0;
    case 'middle':
      return cls === 'G' ? weights.Wmg : cls === 'D' ? weights.Wmd : cls === 'E' ? weights.Wme : weights.Wmm;
    case 'exit':
      return cls === 'E' ? weights.Wee : cls === 'D' ? weights.Wed : cls === 'G' ? weights.Weg : weights.Wem;
  }
}

/**
 * Bandwidth totals per class over the Running, Valid relays of a consensus,
 * each total starting at 1 (as Tor's consensus method 26 does, so that small
 * and new networks get usable weights).
 */
export function classTotals(relays: readonly { flags: readonly string[]; bandwidth: number }[]): ClassTotals {
  const totals: ClassTotals = { G: 1, M: 1, E: 1, D: 1 };
  for (const r of relays) {
    if (!r.flags.includes('Running') || !r.flags.includes('Valid')) continue;
    totals[relayClass(r.flags)] += Math.max(0, r.bandwidth);
  }
  return totals;
}

const clampWeight = (w: number): number => Math.max(0, Math.min(WEIGHT_SCALE, Math.round(w)));

/**
 * Tor's balancing rules (dir-spec §3.8.3, consensus method 10 and later):
 * weights that give the guard, middle and exit positions equal bandwidth
 * where the network allows, else favour the scarce position(s). Results are
 * rounded and clamped to 0..WEIGHT_SCALE; the directory-only weights are
 * completed as Tor does (Wgm = Wgg, Wem = Wee, Weg = Wed, Wmm = WEIGHT_SCALE).
 */
export function computePositionWeights(totals: ClassTotals): PositionWeights {
  const { G, M, E, D } = totals;
  const T = G + M + E + D;
  const S = WEIGHT_SCALE;
  let Wgg: number, Wgd: number, Wmg: number, Wme: number, Wmd: number, Wee: number, Wed: number;
  const inRange = (...ws: number[]) => ws.every((w) => w >= 0 && w <= S);

  if (3 * E >= T && 3 * G >= T) {
    // Case 1: neither exits nor guards scarce.
    Wgd = Wed = Wmd = S / 3;
    Wee = (S * (E + G + M)) / (3 * E);
    Wme = S - Wee;
    Wmg = (S * (2 * G - E - M)) / (3 * G);
    Wgg = S - Wmg;
  } else if (3 * E < T && 3 * G < T) {
    // Case 2: both scarce.
    const R = Math.min(E, G);
    const Sc = Math.max(E, G);
    if (R + D < Sc) {
      Wgg = Wee = S;
      Wmg = Wme = Wmd = 0;
      if (E < G) {
        Wed = S;
        Wgd = 0;
      } else {
        Wed = 0;
        Wgd = S;
      }
    } else {
      Wee = (S * (E - G + M)) / E;
      Wed = (S * (D - 2 * E + 4 * G - 2 * M)) / (3 * D);
      Wme = (S * (G - M)) / E;
      Wmg = 0;
      Wgg = S;
      Wmd = (S - Wed) / 2;
      Wgd = (S - Wed) / 2;
      if (!inRange(Wee, Wed, Wme, Wmd, Wgd)) {
        Wgg = S;
        Wee = S;
        Wed = (S * (D - 2 * E + G + M)) / (3 * D);
        Wmd = (S * (D - 2 * M + G + E)) / (3 * D);
        Wme = 0;
        Wmg = 0;
        if (3 * M > T) Wmd = 0;
        Wgd = S - Wed - Wmd;
      }
    }
  } else if (3 * G < T) {
    // Case 3, guards scarce.
    if (3 * (G + D) < T) {
      Wgg = Wgd = S;
      Wmd = Wed = Wmg = 0;
      Wme = E < M ? 0 : (S * (E - M)) / (2 * E);
      Wee = S - Wme;
    } else {
      Wgg = S;
      Wgd = (S * (D - 2 * G + E + M)) / (3 * D);
      Wmg = 0;
      Wee = (S * (E + M)) / (2 * E);
      Wme = S - Wee;
      Wmd = (S - Wgd) / 2;
      Wed = (S - Wgd) / 2;
    }
  } else {
    // Case 3, exits scarce.
    if (3 * (E + D) < T) {
      Wee = Wed = S;
      Wmd = Wgd = Wme = 0;
      Wmg = G < M ? 0 : (S * (G - M)) / (2 * G);
      Wgg = S - Wmg;
    } else {
      Wee = S;
      Wed = (S * (D - 2 * E + G + M)) / (3 * D);
      Wme = 0;
      Wgg = (S * (G + M)) / (2 * G);
      Wmg = S - Wgg;
      Wmd = (S - Wed) / 2;
      Wgd = (S - Wed) / 2;
    }
  }
  const w = {
    Wgg: clampWeight(Wgg),
    Wgd: clampWeight(Wgd),
    Wmg: clampWeight(Wmg),
    Wme: clampWeight(Wme),
    Wmd: clampWeight(Wmd),
    Wee: clampWeight(Wee),
    Wed: clampWeight(Wed),
  };
  return Object.freeze({ ...w, Wgm: w.Wgg, Wmm: S, Wem: w.Wee, Weg: w.Wed });
}

/**
 * The position weights of a consensus `bandwidth-weights` line (§8.4, §9.7),
 * rescaled from its `bwweightscale` to WEIGHT_SCALE (rounded). The weights
 * the client reads are Tor's: Wgg, Wgm, Wgd, Wmg, Wmm, Wme, Wmd, Weg, Wem, Wee, Wed.
 */
export function fromBandwidthWeights(bw: BandwidthWeights): PositionWeights {
  const rescale = (w: number): number => clampWeight((w * WEIGHT_SCALE) / bw.scale);
  return Object.freeze({
    Wgg: rescale(bw.Wgg),
    Wgm: rescale(bw.Wgm),
    Wgd: rescale(bw.Wgd),
    Wmg: rescale(bw.Wmg),
    Wmm: rescale(bw.Wmm),
    Wme: rescale(bw.Wme),
    Wmd: rescale(bw.Wmd),
    Weg: rescale(bw.Weg),
    Wem: rescale(bw.Wem),
    Wee: rescale(bw.Wee),
    Wed: rescale(bw.Wed),
  });
}

/**
 * The weights the client uses for a consensus: the consensus's own
 * `bandwidth-weights` line when it carries one (consensus method 2, §9.7),
 * else computed from its relays (`computePositionWeights(classTotals(relays))`;
 * authorities omit the line when Tor's rules give no solution).
 */
export function positionWeightsFor(consensus: {
  relays: readonly { flags: readonly string[]; bandwidth: number }[];
  bandwidthWeights?: BandwidthWeights;
}): PositionWeights {
  if (consensus.bandwidthWeights !== undefined) return fromBandwidthWeights(consensus.bandwidthWeights);
  return computePositionWeights(classTotals(consensus.relays));
}
