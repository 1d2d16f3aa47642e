import { test } from 'node:test';
import assert from 'node:assert/strict';
import { choosePath, exitsForPort, type RandomSource } from '../../client/path-selection.js';
import type { ConsensusRelay } from '../../src/netdoc/consensus.js';
import { summaryAllowsPort } from '../../src/netdoc/exit-policy.js';
import { AlliumError } from '../../src/errors.js';
import { ALL_PORTS, consensusRelay } from '../support/consensus-relay.js';

const noPath = (e: unknown) => e instanceof AlliumError && e.code === 'ERR_NO_PATH';

const relay = consensusRelay;

/** Numerical Recipes LCG: a deterministic RandomSource in [0, 1). */
function lcg(seed: number): RandomSource {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const slash16 = (r: ConsensusRelay) => r.address.split('.').slice(0, 2).join('.');

const RV = ['Running', 'Valid'];

/** A mixed consensus: guards, middles, exits with different policies, and some unusable relays. */
function network(): ConsensusRelay[] {
  const relays: ConsensusRelay[] = [];
  for (let i = 1; i <= 6; i++) relays.push(relay(`guard${i}`, `10.${i}.0.1`, [...RV, 'Guard', 'Fast', 'Stable'], 500 * i));
  for (let i = 1; i <= 6; i++) relays.push(relay(`middle${i}`, `20.${i}.0.1`, [...RV, 'Fast'], 300 * i));
  // A second relay in an existing /16.
  relays.push(relay('middle1b', '20.1.9.9', [...RV], 2000));
  for (let i = 1; i <= 4; i++) relays.push(relay(`web${i}`, `30.${i}.0.1`, [...RV, 'Exit'], 400 * i, 'accept 80,443'));
  relays.push(relay('ssh', '40.1.0.1', [...RV, 'Exit', 'Guard'], 3000, 'accept 22'));
  relays.push(relay('any', '40.2.0.1', [...RV, 'Exit'], 1500, ALL_PORTS));
  // Exits that must never be used: not Running, not Valid, no Exit flag.
  relays.push(relay('down', '50.1.0.1', ['Valid', 'Exit', 'Guard'], 100_000, 'accept 25'));
  relays.push(relay('invalid', '50.2.0.1', ['Running', 'Exit', 'Guard'], 100_000, 'accept 25'));
  relays.push(relay('noflag', '50.3.0.1', [...RV, 'Guard'], 100_000, 'accept 25'));
  return relays;
}

test('choosePath returns [guard, middle, exit]: distinct, different /16s, exit allows the port, guard has Guard', () => {
  const relays = network();
  const random = lcg(1);
  const seenExits = new Set<string>();
  for (const port of [80, 443, 22, 8080]) {
    for (let i = 0; i < 300; i++) {
      const path = choosePath(relays, port, random);
      assert.equal(path.length, 3);
      const [guard, , exit] = path as [ConsensusRelay, ConsensusRelay, ConsensusRelay];
      assert.equal(new Set(path).size, 3, 'three distinct relays');
      assert.equal(new Set(path.map((r) => r.nickname)).size, 3);
      assert.equal(new Set(path.map(slash16)).size, 3, `no two in one /16: ${path.map((r) => r.address).join(' ')}`);
      assert.ok(guard.flags.includes('Guard'), `guard ${guard.nickname}`);
      assert.ok(exit.flags.includes('Exit'), `exit ${exit.nickname}`);
      assert.ok(summaryAllowsPort(exit.exitSummary, port), `exit ${exit.nickname} allows ${port}`);
      for (const r of path) {
        assert.ok(r.flags.includes('Running') && r.flags.includes('Valid'), `${r.nickname} is Running and Valid`);
        assert.ok(relays.includes(r), 'chosen from the given relays');
      }
      seenExits.add(`${port}:${exit.nickname}`);
    }
  }
  // Ports pick from the right exits.
  assert.ok(seenExits.has('22:ssh') && seenExits.has('22:any'));
  assert.ok([...seenExits].filter((s) => s.startsWith('80:')).length >= 4);
  assert.deepEqual([...seenExits].filter((s) => s.startsWith('8080:')), ['8080:any']);
});

test('exitsForPort: only Running relays with Exit whose summary allows the port', () => {
  const relays = network();
  assert.deepEqual(exitsForPort(relays, 22).map((r) => r.nickname).sort(), ['any', 'ssh']);
  assert.deepEqual(exitsForPort(relays, 443).map((r) => r.nickname).sort(), ['any', 'web1', 'web2', 'web3', 'web4']);
  // 'invalid' is Running but not Valid: exitsForPort does not look at Valid, choosePath does.
  assert.deepEqual(exitsForPort(relays, 25).map((r) => r.nickname).sort(), ['any', 'invalid']);
  assert.deepEqual(exitsForPort(relays, 0), []);
});

test('a port no usable exit allows → ERR_NO_PATH', () => {
  const relays = network().filter((r) => r.nickname !== 'any');
  // 25 is allowed only by exits that are down, not Valid, or lack the Exit flag.
  assert.throws(() => choosePath(relays, 25, lcg(2)), noPath);
  assert.throws(() => choosePath(relays, 8080, lcg(2)), noPath);
  assert.throws(() => choosePath([], 80, lcg(2)), noPath);
});

test('too few distinct /16s → ERR_NO_PATH', () => {
  // Five relays but only two /16s.
  const two = [
    relay('g1', '10.1.0.1', [...RV, 'Guard']),
    relay('g2', '10.1.0.2', [...RV, 'Guard']),
    relay('m1', '10.1.5.5', [...RV]),
    relay('e1', '30.1.0.1', [...RV, 'Exit'], 1000, ALL_PORTS),
    relay('e2', '30.1.7.7', [...RV, 'Exit', 'Guard'], 1000, ALL_PORTS),
  ];
  assert.throws(() => choosePath(two, 80, lcg(3)), noPath);
  // Three /16s, but the only guard shares the exit's /16.
  const guardClash = [
    relay('g', '30.1.0.2', [...RV, 'Guard']),
    relay('m', '20.1.0.1', [...RV]),
    relay('m2', '21.1.0.1', [...RV]),
    relay('e', '30.1.0.1', [...RV, 'Exit'], 1000, ALL_PORTS),
  ];
  assert.throws(() => choosePath(guardClash, 80, lcg(3)), noPath);
  // Enough relays, but every Running one sits in the guard's or the exit's /16: no middle left.
  const noMiddle = [
    relay('g', '10.1.0.1', [...RV, 'Guard']),
    relay('g2', '10.1.0.2', [...RV, 'Guard']),
    relay('e', '30.1.0.1', [...RV, 'Exit'], 1000, ALL_PORTS),
    relay('x', '30.1.0.9', [...RV]),
    relay('down', '40.1.0.1', ['Valid']),
  ];
  assert.throws(() => choosePath(noMiddle, 80, lcg(3)), noPath);
  // Adding one Running, Valid relay in a third /16 makes a path possible.
  const path = choosePath([...noMiddle, relay('m', '40.2.0.1', [...RV])], 80, lcg(3));
  assert.ok(['g', 'g2'].includes(path[0]!.nickname));
  assert.deepEqual(path.slice(1).map((r) => r.nickname), ['m', 'e']);
});

test('a deterministic random source gives a reproducible choice', () => {
  const relays = network();
  const run = (seed: number) => {
    const random = lcg(seed);
    return Array.from({ length: 50 }, () => choosePath(relays, 443, random).map((r) => r.nickname).join(','));
  };
  assert.deepEqual(run(42), run(42));
  assert.deepEqual(run(7), run(7));
  assert.notDeepEqual(run(42), run(7));
  // The same random values pick the same relays, whatever else is going on.
  const r1 = choosePath(relays, 80, lcg(99));
  const r2 = choosePath(relays, 80, lcg(99));
  assert.deepEqual(r1, r2);
  assert.ok(r1.every((r, i) => r === r2[i]));
});

test('a constant random source picks by cumulative bandwidth', () => {
  const relays = [
    relay('g', '10.1.0.1', [...RV, 'Guard'], 100),
    relay('m', '20.1.0.1', [...RV], 100),
    relay('lo', '30.1.0.1', [...RV, 'Exit'], 100, ALL_PORTS),
    relay('hi', '31.1.0.1', [...RV, 'Exit'], 900, ALL_PORTS),
  ];
  assert.equal(choosePath(relays, 80, () => 0)[2]!.nickname, 'lo');
  assert.equal(choosePath(relays, 80, () => 0.099)[2]!.nickname, 'lo');
  assert.equal(choosePath(relays, 80, () => 0.1)[2]!.nickname, 'hi');
  assert.equal(choosePath(relays, 80, () => 0.999999)[2]!.nickname, 'hi');
});

test('bandwidth weighting: an exit with 9x the bandwidth is chosen far more often', () => {
  const relays = [
    relay('g1', '10.1.0.1', [...RV, 'Guard'], 1000),
    relay('g2', '10.2.0.1', [...RV, 'Guard'], 1000),
    relay('m1', '20.1.0.1', [...RV], 1000),
    relay('m2', '20.2.0.1', [...RV], 1000),
    relay('light', '30.1.0.1', [...RV, 'Exit'], 1000, ALL_PORTS),
    relay('heavy', '30.2.0.1', [...RV, 'Exit'], 9000, ALL_PORTS),
  ];
  for (const [label, random] of [
    ['seeded', lcg(2024)],
    ['Math.random', Math.random],
  ] as const) {
    const counts = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      const exit = choosePath(relays, 443, random)[2]!;
      counts.set(exit.nickname, (counts.get(exit.nickname) ?? 0) + 1);
    }
    const heavy = counts.get('heavy') ?? 0;
    const light = counts.get('light') ?? 0;
    assert.equal(heavy + light, 2000, label);
    // Expected 1800 : 200. Loose bounds: the heavy one wins > 75 % and > 4x the light one,
    // and the light one still gets picked.
    assert.ok(heavy > 1500, `${label}: heavy chosen ${heavy} times`);
    assert.ok(heavy > 4 * light, `${label}: heavy ${heavy} vs light ${light}`);
    assert.ok(light > 50, `${label}: light chosen ${light} times`);
  }
});

test('relays with zero bandwidth are still eligible, with minimal weight', () => {
  const relays = [
    relay('g', '10.1.0.1', [...RV, 'Guard'], 0),
    relay('m', '20.1.0.1', [...RV], 0),
    relay('e', '30.1.0.1', [...RV, 'Exit'], 0, ALL_PORTS),
  ];
  const path = choosePath(relays, 80, lcg(5));
  assert.deepEqual(path.map((r) => r.nickname), ['g', 'm', 'e']);
});

test('an exit that shares the only guards’ /16 does not hide a path through another exit', () => {
  // The heavy exit can never be used (its /16 holds every guard); the light one can.
  const relays = [
    relay('g1', '30.1.0.2', [...RV, 'Guard'], 1000),
    relay('g2', '30.1.0.3', [...RV, 'Guard'], 1000),
    relay('m', '20.1.0.1', [...RV], 1000),
    relay('heavy', '30.1.0.1', [...RV, 'Exit'], 1_000_000, ALL_PORTS),
    relay('light', '31.1.0.1', [...RV, 'Exit'], 1, ALL_PORTS),
  ];
  const random = lcg(11);
  for (let i = 0; i < 200; i++) {
    const path = choosePath(relays, 80, random);
    assert.equal(path[2]!.nickname, 'light');
    assert.ok(path[0]!.nickname.startsWith('g'));
    assert.equal(path[1]!.nickname, 'm');
  }
});
