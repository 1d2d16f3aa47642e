/**
 * Path rules over many draws from a synthetic consensus: no path breaks the
 * family, network (/16, /32), exit-policy or BadExit rules, and each
 * position's frequencies follow bandwidth × the injected position weights.
 *
 * Tolerance: the expected probability of every relay in every position is
 * computed exactly (by enumeration, independently of the code under test);
 * each observed frequency must lie within 5 standard errors
 * (5·sqrt(p(1-p)/N)) of it, and the total variation distance of each
 * position's distribution must be below 0.01. The random source is a seeded
 * generator, so the result is the same on every run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  canExitTo,
  choosePath,
  chooseGuardByWeight,
  related,
  relayNetwork,
  type PathRelay,
  type StreamTarget,
} from '../../client/path-selection.js';
import { WEIGHT_SCALE, type PositionWeights } from '../../client/position-weights.js';
import { parseExitPolicy } from '../../src/netdoc/exit-policy.js';
import { AlliumError } from '../../src/errors.js';
import { ALL_PORTS, consensusRelay } from '../support/consensus-relay.js';
import { sfc32 } from '../support/seeded-random.js';

const RV = ['Running', 'Valid'];

function relay(nickname: string, address: string, flags: string[], bandwidth: number, opts: { summary?: string; family?: string[]; policy?: string[] } = {}): PathRelay {
  const r: PathRelay = consensusRelay(nickname, address, [...RV, ...flags], bandwidth, opts.summary ?? (flags.includes('Exit') ? ALL_PORTS : 'reject 1-65535'));
  if (opts.family !== undefined) r.familyIds = opts.family;
  if (opts.policy !== undefined) r.exitPolicy = parseExitPolicy(opts.policy);
  return r;
}

/**
 * 40 relays: guards, middles, exits, guard+exits; two families spanning
 * classes; several shared /16s and a shared IPv6 /32; a BadExit with the
 * largest bandwidth; an exit whose full policy refuses the test address; an
 * exit for other ports only; and relays that are not Running or not Valid.
 */
function syntheticConsensus(): PathRelay[] {
  const rs: PathRelay[] = [];
  for (let i = 1; i <= 8; i++) rs.push(relay(`g${i}`, `10.${i}.0.1`, ['Guard', 'Fast'], 1000 * i));
  rs.push(relay('g9', '10.1.7.7', ['Guard'], 5000)); // shares g1's /16
  rs.push(relay('g6b', '2001:db8:1::1', ['Guard'], 3000)); // IPv6, shares m6b's /32
  for (let i = 1; i <= 10; i++) rs.push(relay(`m${i}`, `20.${i}.0.1`, [], 700 * i));
  rs.push(relay('m6b', '2001:db8:2::1', [], 4000));
  rs.push(relay('m11', '30.1.5.5', [], 2500)); // shares e1's /16
  for (let i = 1; i <= 5; i++) rs.push(relay(`e${i}`, `30.${i}.0.1`, ['Exit'], 1500 * i));
  rs.push(relay('e443', '30.6.0.1', ['Exit'], 6000, { summary: 'accept 443' }));
  rs.push(relay('e22', '30.7.0.1', ['Exit'], 6000, { summary: 'accept 22' }));
  rs.push(relay('epol', '30.8.0.1', ['Exit'], 6000, { policy: ['reject 203.0.113.0/24:*', 'accept *:*'] }));
  rs.push(relay('bad', '30.9.0.1', ['Exit', 'BadExit'], 50_000));
  for (let i = 1; i <= 4; i++) rs.push(relay(`d${i}`, `40.${i}.0.1`, ['Guard', 'Exit'], 2000 * i));
  // Families across classes.
  const famA = ['familyA'];
  rs.push(relay('fa-g', '50.1.0.1', ['Guard'], 4000, { family: famA }));
  rs.push(relay('fa-m', '50.2.0.1', [], 4000, { family: famA }));
  rs.push(relay('fa-e', '50.3.0.1', ['Exit'], 4000, { family: famA }));
  const famB = ['familyB', 'familyC'];
  rs.push(relay('fb-d', '50.4.0.1', ['Guard', 'Exit'], 3000, { family: famB }));
  rs.push(relay('fb-m', '50.5.0.1', [], 3000, { family: ['familyC'] }));
  // Never usable.
  rs.push(consensusRelay('down', '60.1.0.1', ['Valid', 'Guard', 'Exit'], 90_000, ALL_PORTS));
  rs.push(consensusRelay('invalid', '60.2.0.1', ['Running', 'Guard', 'Exit'], 90_000, ALL_PORTS));
  return rs;
}

/** Injected weights, deliberately far from uniform. */
const WEIGHTS: PositionWeights = {
  Wgg: 7000,
  Wgm: 7000,
  Wgd: 1500,
  Wmg: 3000,
  Wmm: 10000,
  Wme: 800,
  Wmd: 1200,
  Weg: 0,
  Wem: 0,
  Wee: 10000,
  Wed: 7300,
};

/** The test's own table of weights, by flags (independent of the code under test). */
function expectedWeight(r: PathRelay, position: 'guard' | 'middle' | 'exit'): number {
  const guard = r.flags.includes('Guard');
  const exit = r.flags.includes('Exit') && !r.flags.includes('BadExit');
  const W = WEIGHTS;
  let w: number;
  if (position === 'guard') w = guard && exit ? W.Wgd : guard ? W.Wgg : 0;
  else if (position === 'middle') w = guard && exit ? W.Wmd : guard ? W.Wmg : exit ? W.Wme : W.Wmm;
  else w = guard && exit ? W.Wed : exit ? W.Wee : 0;
  return (Math.max(1, r.bandwidth) * w) / WEIGHT_SCALE;
}

function sameNet(a: PathRelay, b: PathRelay): boolean {
  const key = (r: PathRelay) => (r.address.includes(':') ? r.address.split(':').slice(0, 2).join(':') : r.address.split('.').slice(0, 2).join('.'));
  return key(a) === key(b);
}

function sameFam(a: PathRelay, b: PathRelay): boolean {
  return (a.familyIds ?? []).some((f) => (b.familyIds ?? []).includes(f));
}

const usable = (r: PathRelay) => r.flags.includes('Running') && r.flags.includes('Valid');

/** Exact marginal distributions of [guard, middle, exit] for `target`, by enumeration. */
function exactDistribution(relays: PathRelay[], target: StreamTarget): Map<string, number>[] {
  const ok = relays.filter(usable);
  const unrelated = (a: PathRelay, b: PathRelay) => a !== b && !sameNet(a, b) && !sameFam(a, b);
  const exits = ok.filter((r) => r.flags.includes('Exit') && !r.flags.includes('BadExit') && canExitTo(r, target));
  const guards = ok.filter((r) => r.flags.includes('Guard'));
  const dist = [new Map<string, number>(), new Map<string, number>(), new Map<string, number>()];
  const add = (m: Map<string, number>, k: string, p: number) => m.set(k, (m.get(k) ?? 0) + p);
  const exitTotal = exits.reduce((s, e) => s + expectedWeight(e, 'exit'), 0);
  for (const e of exits) {
    const pe = expectedWeight(e, 'exit') / exitTotal;
    add(dist[2]!, e.nickname, pe);
    const gs = guards.filter((g) => unrelated(g, e));
    const gTotal = gs.reduce((s, g) => s + expectedWeight(g, 'guard'), 0);
    assert.ok(gTotal > 0, `exit ${e.nickname} has a guard`);
    for (const g of gs) {
      const pg = (pe * expectedWeight(g, 'guard')) / gTotal;
      add(dist[0]!, g.nickname, pg);
      const ms = ok.filter((m) => unrelated(m, e) && unrelated(m, g));
      const mTotal = ms.reduce((s, m) => s + expectedWeight(m, 'middle'), 0);
      assert.ok(mTotal > 0, `exit ${e.nickname} and guard ${g.nickname} have a middle`);
      for (const m of ms) add(dist[1]!, m.nickname, (pg * expectedWeight(m, 'middle')) / mTotal);
    }
  }
  return dist;
}

const DRAWS = 100_000;

for (const target of [{ host: '203.0.113.9', port: 443 }, { port: 80 }, { host: 'example.com', port: 22 }] as StreamTarget[]) {
  const label = `${target.host ?? '(port only)'}:${target.port}`;
  test(`${DRAWS} paths to ${label}: no rule broken, positions follow the weights`, () => {
    const relays = syntheticConsensus();
    const random = sfc32(target.port * 7919);
    const counts = [new Map<string, number>(), new Map<string, number>(), new Map<string, number>()];
    for (let i = 0; i < DRAWS; i++) {
      const path = choosePath(relays, target, { random, weights: WEIGHTS });
      assert.equal(path.length, 3);
      const [guard, middle, exit] = path as [PathRelay, PathRelay, PathRelay];
      for (const r of path) assert.ok(usable(r), `${r.nickname} is Running and Valid`);
      assert.ok(guard.flags.includes('Guard'), `guard ${guard.nickname} has Guard`);
      assert.ok(exit.flags.includes('Exit') && !exit.flags.includes('BadExit'), `exit ${exit.nickname} is an Exit and not BadExit`);
      assert.ok(canExitTo(exit, target), `exit ${exit.nickname} accepts ${label}`);
      if (target.host === '203.0.113.9') assert.notEqual(exit.nickname, 'epol', 'the full policy refuses 203.0.113.0/24');
      for (const [a, b] of [
        [guard, middle],
        [guard, exit],
        [middle, exit],
      ] as const) {
        assert.notEqual(a, b);
        assert.ok(!sameNet(a, b), `${a.nickname} and ${b.nickname} share a network`);
        assert.ok(!sameFam(a, b), `${a.nickname} and ${b.nickname} share a family`);
      }
      path.forEach((r, pos) => counts[pos]!.set(r.nickname, (counts[pos]!.get(r.nickname) ?? 0) + 1));
    }
    const expected = exactDistribution(relays, target);
    ['guard', 'middle', 'exit'].forEach((position, pos) => {
      let tv = 0;
      const names = new Set([...expected[pos]!.keys(), ...counts[pos]!.keys()]);
      for (const name of names) {
        const p = expected[pos]!.get(name) ?? 0;
        const f = (counts[pos]!.get(name) ?? 0) / DRAWS;
        tv += Math.abs(f - p) / 2;
        const tolerance = 5 * Math.sqrt((p * (1 - p)) / DRAWS);
        assert.ok(Math.abs(f - p) <= tolerance, `${position} ${name}: observed ${f.toFixed(5)}, expected ${p.toFixed(5)} ± ${tolerance.toFixed(5)}`);
        if (p === 0) assert.equal(f, 0, `${position} ${name} is never eligible`);
      }
      assert.ok(tv < 0.01, `${position}: total variation distance ${tv.toFixed(4)}`);
    });
    // The never-usable relays and the BadExit never appear as exits; the exits of other ports never appear.
    for (const name of ['down', 'invalid', 'bad']) assert.equal(counts[2]!.get(name) ?? 0, 0, name);
    assert.equal(counts[0]!.get('down') ?? 0, 0);
    if (target.port !== 22) assert.equal(counts[2]!.get('e22') ?? 0, 0);
    if (target.port !== 443) assert.equal(counts[2]!.get('e443') ?? 0, 0);
    // BadExit is still a middle.
    assert.ok((counts[1]!.get('bad') ?? 0) > 0, 'a BadExit relay may be a middle');
  });
}

test('related(): same relay, same /16, same IPv6 /32, shared family identifier', () => {
  const a = relay('a', '10.1.0.1', [], 1, { family: ['x', 'y'] });
  const b = relay('b', '10.1.200.9', [], 1);
  const c = relay('c', '10.2.0.1', [], 1, { family: ['y'] });
  const d = relay('d', '2001:db8::1', [], 1);
  const e = relay('e', '2001:db8:ffff::1', [], 1);
  const f = relay('f', '2001:db9::1', [], 1, { family: [] });
  assert.ok(related(a, a));
  assert.ok(related(a, b), '/16');
  assert.ok(related(a, c), 'family y');
  assert.ok(!related(b, c));
  assert.ok(related(d, e), '/32');
  assert.ok(!related(d, f));
  assert.ok(!related(f, c), 'an empty family is no family');
  assert.equal(relayNetwork(d), '2001:db8::/32');
});

test('canExitTo: full policy for addresses, summary for names and bare ports; BadExit, not Running, not Exit never', () => {
  const pol = relay('pol', '30.1.0.1', ['Exit'], 1, { policy: ['reject 203.0.113.0/24:*', 'accept *:80', 'reject *:*'], summary: 'accept 80' });
  assert.equal(canExitTo(pol, { host: '203.0.113.1', port: 80 }), false);
  assert.equal(canExitTo(pol, { host: '198.51.100.1', port: 80 }), true);
  assert.equal(canExitTo(pol, { host: '198.51.100.1', port: 81 }), false);
  assert.equal(canExitTo(pol, { host: 'example.com', port: 80 }), true);
  assert.equal(canExitTo(pol, { port: 80 }), true);
  assert.equal(canExitTo(relay('bad', '30.2.0.1', ['Exit', 'BadExit'], 1), { port: 80 }), false);
  assert.equal(canExitTo(relay('mid', '30.3.0.1', [], 1, { summary: ALL_PORTS }), { port: 80 }), false);
  assert.equal(canExitTo(consensusRelay('down', '30.4.0.1', ['Valid', 'Exit'], 1, ALL_PORTS), { port: 80 }), false);
});

test('choosePath honours avoid, refuseExit and an injected guard choice', () => {
  const relays = syntheticConsensus();
  const random = sfc32(5);
  const avoid = new Set(['g8', 'm10', 'e5']);
  for (let i = 0; i < 2000; i++) {
    const path = choosePath(relays, { port: 80 }, { random, weights: WEIGHTS, avoid: (r) => avoid.has(r.nickname), refuseExit: (r) => r.nickname === 'e4' });
    for (const r of path) assert.ok(!avoid.has(r.nickname), `${r.nickname} avoided`);
    assert.notEqual(path[2]!.nickname, 'e4');
  }
  // The guard set decides the guard; choosePath only says which guards fit the exit.
  const seen = new Set<string>();
  for (let i = 0; i < 500; i++) {
    const path = choosePath(relays, { port: 80 }, {
      random,
      weights: WEIGHTS,
      chooseGuard: (compatible) => relays.find((r) => r.nickname === 'g3' && compatible(r)) ?? relays.find((r) => r.nickname === 'g4' && compatible(r)) ?? null,
    });
    seen.add(path[0]!.nickname);
  }
  assert.deepEqual([...seen], ['g3']);
  // A guard choice that never fits: no path.
  assert.throws(
    () => choosePath(relays, { port: 80 }, { random, weights: WEIGHTS, chooseGuard: () => null }),
    (e: unknown) => e instanceof AlliumError && e.code === 'ERR_NO_PATH',
  );
});

test('chooseGuardByWeight: only usable Guard relays that fit', () => {
  const relays = syntheticConsensus();
  const random = sfc32(9);
  for (let i = 0; i < 1000; i++) {
    const g = chooseGuardByWeight(relays, (r) => !r.nickname.startsWith('g'), WEIGHTS, random)!;
    assert.ok(g.flags.includes('Guard') && usable(g) && !g.nickname.startsWith('g'), g.nickname);
  }
  assert.equal(chooseGuardByWeight(relays, () => false, WEIGHTS, random), null);
});
