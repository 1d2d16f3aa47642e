import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  classTotals,
  computePositionWeights,
  positionWeight,
  positionWeightsFor,
  relayClass,
  WEIGHT_SCALE as S,
  type ClassTotals,
  type PositionWeights,
} from '../../client/position-weights.js';
import { bandwidthWeights, WEIGHT_KEYS } from '../../src/netdoc/bandwidth-weights.js';
import { sfc32 } from '../support/seeded-random.js';

/** Bandwidth each position gets under `w`. */
function positionBandwidth(t: ClassTotals, w: PositionWeights): { guard: number; middle: number; exit: number } {
  return {
    guard: (w.Wgg * t.G + w.Wgd * t.D) / S,
    middle: (t.M * w.Wmm + w.Wmg * t.G + w.Wme * t.E + w.Wmd * t.D) / S,
    exit: (w.Wee * t.E + w.Wed * t.D) / S,
  };
}

function checkInvariants(t: ClassTotals, w: PositionWeights): void {
  for (const [k, v] of Object.entries(w)) assert.ok(Number.isInteger(v) && v >= 0 && v <= S, `${k}=${v} for ${JSON.stringify(t)}`);
  assert.equal(w.Wgm, w.Wgg);
  assert.equal(w.Wem, w.Wee);
  assert.equal(w.Weg, w.Wed);
  assert.equal(w.Wmm, S);
  // Each class's bandwidth is split, not created or lost (up to rounding and clamping at 0).
  assert.ok(Math.abs(w.Wgg + w.Wmg - S) <= 2, `G split ${w.Wgg}+${w.Wmg}`);
  assert.ok(Math.abs(w.Wee + w.Wme - S) <= 2, `E split ${w.Wee}+${w.Wme}`);
  assert.ok(w.Wgd + w.Wmd + w.Wed <= S + 2, `D split ${w.Wgd}+${w.Wmd}+${w.Wed}`);
}

test('case 1 (neither exits nor guards scarce): the three positions get equal bandwidth', () => {
  const t = { G: 4000, M: 1000, E: 3500, D: 1500 };
  const w = computePositionWeights(t);
  checkInvariants(t, w);
  assert.equal(w.Wgd, Math.round(S / 3));
  assert.equal(w.Wed, Math.round(S / 3));
  assert.equal(w.Wmd, Math.round(S / 3));
  const bw = positionBandwidth(t, w);
  const T = t.G + t.M + t.E + t.D;
  for (const v of Object.values(bw)) assert.ok(Math.abs(v - T / 3) < T * 1e-3, JSON.stringify(bw));
});

test('exits scarce, exits plus guard-exits enough (an Allium testnet: 3 guards, 2 guard-exits)', () => {
  const t = { G: 3 * 1000 + 1, M: 1, E: 1, D: 2 * 1000 + 1 };
  const w = computePositionWeights(t);
  checkInvariants(t, w);
  // Tor's case 3b with E scarce: Wee = 1, Wme = 0, Wgg = (G+M)/2G, Wed = (D-2E+G+M)/3D, Wmd = Wgd = (1-Wed)/2.
  assert.equal(w.Wee, S);
  assert.equal(w.Wme, 0);
  assert.equal(w.Wgg, Math.round((S * (t.G + t.M)) / (2 * t.G)));
  assert.equal(w.Wed, Math.round((S * (t.D - 2 * t.E + t.G + t.M)) / (3 * t.D)));
  assert.ok(Math.abs(w.Wmd - (S - w.Wed) / 2) <= 1);
  assert.ok(Math.abs(w.Wgd - (S - w.Wed) / 2) <= 1);
});

test('guards scarce and exits not: all guard bandwidth stays in the guard position', () => {
  const t = { G: 500, M: 2000, E: 6000, D: 200 };
  const w = computePositionWeights(t);
  checkInvariants(t, w);
  assert.equal(w.Wgg, S);
  assert.equal(w.Wgd, S);
  assert.equal(w.Wmg, 0);
});

test('both scarce, guard-exits too few: all of D to the scarcer class', () => {
  const t = { G: 1000, M: 10_000, E: 500, D: 100 };
  const w = computePositionWeights(t);
  checkInvariants(t, w);
  assert.equal(w.Wgg, S);
  assert.equal(w.Wee, S);
  assert.equal(w.Wed, S); // E < G: exits are the rarer class
  assert.equal(w.Wgd, 0);
});

test('random totals: weights always in range, bandwidth conserved', () => {
  const random = sfc32(77);
  for (let i = 0; i < 5000; i++) {
    const pick = () => 1 + Math.floor(random() * random() * 100_000);
    const t = { G: pick(), M: pick(), E: pick(), D: pick() };
    checkInvariants(t, computePositionWeights(t));
  }
});

test('classes: BadExit counts as no Exit; totals start at 1 and skip relays not Running and Valid', () => {
  assert.equal(relayClass(['Exit', 'Guard']), 'D');
  assert.equal(relayClass(['BadExit', 'Exit', 'Guard']), 'G');
  assert.equal(relayClass(['BadExit', 'Exit']), 'M');
  assert.equal(relayClass(['Exit']), 'E');
  assert.equal(relayClass([]), 'M');
  const totals = classTotals([
    { flags: ['Guard', 'Running', 'Valid'], bandwidth: 10 },
    { flags: ['Exit', 'Running', 'Valid'], bandwidth: 20 },
    { flags: ['Exit', 'Guard', 'Running', 'Valid'], bandwidth: 30 },
    { flags: ['Running', 'Valid'], bandwidth: 40 },
    { flags: ['Exit', 'Valid'], bandwidth: 1000 },
  ]);
  assert.deepEqual(totals, { G: 11, E: 21, D: 31, M: 41 });
  const w = computePositionWeights(totals);
  assert.equal(positionWeight(w, 'guard', 'E'), 0);
  assert.equal(positionWeight(w, 'exit', 'D'), w.Wed);
  assert.equal(positionWeight(w, 'middle', 'M'), S);
  // Without a bandwidth-weights line the weights are computed from the relays.
  assert.deepEqual(positionWeightsFor({ relays: [{ flags: ['Guard', 'Running', 'Valid'], bandwidth: 10 }] }), computePositionWeights(classTotals([{ flags: ['Guard', 'Running', 'Valid'], bandwidth: 10 }])));
});

test('a consensus that carries bandwidth-weights is weighed by them, rescaled from bwweightscale', () => {
  const raw = new Map<string, number>(WEIGHT_KEYS.map((k, i) => [k, i * 100]));
  const relays = [{ flags: ['Guard', 'Running', 'Valid'], bandwidth: 10 }];
  const same = positionWeightsFor({ relays, bandwidthWeights: bandwidthWeights(raw, 10_000) });
  for (const k of ['Wgg', 'Wgm', 'Wgd', 'Wmg', 'Wmm', 'Wme', 'Wmd', 'Weg', 'Wem', 'Wee', 'Wed'] as const) {
    assert.equal(same[k], raw.get(k), k);
  }
  // bwweightscale 1000: each weight counts ten times as much out of WEIGHT_SCALE; above the scale clamps to it.
  const scaled = positionWeightsFor({ relays, bandwidthWeights: bandwidthWeights(new Map([['Wgg', 250], ['Wmm', 5000]]), 1000) });
  assert.equal(scaled.Wgg, 2500);
  assert.equal(scaled.Wmm, S);
  assert.equal(scaled.Wee, S, 'a missing key takes the scale');
});
