/**
 * Paths around relays that failed recently (client/path-avoiding.ts,
 * docs/protocol.md §11.4), with a real RelayStatus on an injected clock and
 * the real path selection. When no path avoids every failed relay, the
 * oldest failures are let back first: an exit that is down now (failing
 * again and again) is not chosen while another exit that failed earlier, and
 * has since come back, gives a path.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { choosePath, type RandomSource } from '../../client/path-selection.js';
import { choosePathAvoiding } from '../../client/path-avoiding.js';
import { RelayStatus } from '../../client/relay-status.js';
import type { ConsensusRelay } from '../../src/netdoc/consensus.js';
import { AlliumError } from '../../src/errors.js';
import { ALL_PORTS, consensusRelay as relay } from '../support/consensus-relay.js';

const RV = ['Running', 'Valid'];

function lcg(seed: number): RandomSource {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 2 ** 32;
  };
}

/** Two guards, two middles, and two exits: `down` with far more bandwidth than `back`. */
function network(): ConsensusRelay[] {
  return [
    relay('guard1', '10.1.0.1', [...RV, 'Guard'], 1000),
    relay('guard2', '10.2.0.1', [...RV, 'Guard'], 1000),
    relay('middle1', '20.1.0.1', [...RV], 1000),
    relay('middle2', '20.2.0.1', [...RV], 1000),
    relay('down', '30.1.0.1', [...RV, 'Exit'], 50_000, ALL_PORTS),
    relay('back', '30.2.0.1', [...RV, 'Exit'], 1_000, ALL_PORTS),
  ];
}

const byName = (relays: ConsensusRelay[], name: string) => relays.find((r) => r.nickname === name)!;

test('no path without failed relays: the one that failed longest ago is let back, the one failing now stays avoided', () => {
  const relays = network();
  let now = 1_000_000;
  const status = new RelayStatus({ now: () => now, random: () => 0 });
  status.markFailed(byName(relays, 'back'), 'extend failed'); // the exit killed earlier, since restarted
  now += 2000;
  status.markFailed(byName(relays, 'down'), 'extend failed'); // the exit killed now
  now += 500;
  assert.ok(status.isAvoided(byName(relays, 'back')) && status.isAvoided(byName(relays, 'down')));
  for (let seed = 1; seed <= 200; seed++) {
    const random = lcg(seed);
    const path = choosePathAvoiding(relays, status, (avoid) => choosePath(relays, 443, { random, avoid }));
    assert.equal(path[2]!.nickname, 'back', `seed ${seed}: ${path.map((r) => r.nickname).join(',')}`);
  }
  // Dropping every avoidance at once (what the client did before) would mostly pick the 50x heavier exit that is down.
  const random = lcg(1);
  const naive = Array.from({ length: 200 }, () => choosePath(relays, 443, random)[2]!.nickname);
  assert.ok(naive.filter((n) => n === 'down').length > 150);
});

test('avoided relays stay out while a path avoids them all; the last one failing is let back only when nothing else is left', () => {
  const relays = network();
  let now = 5_000_000;
  const status = new RelayStatus({ now: () => now, random: () => 0 });
  status.markFailed(byName(relays, 'middle1'), 'link lost');
  now += 100;
  for (let seed = 1; seed <= 100; seed++) {
    const random = lcg(seed);
    const path = choosePathAvoiding(relays, status, (avoid) => choosePath(relays, 443, { random, avoid }));
    assert.ok(!path.some((r) => r.nickname === 'middle1'), 'a path exists without it');
  }
  // Only the exit that is down is left: it is tried again rather than no path at all.
  const onlyDown = relays.filter((r) => r.nickname !== 'back');
  status.markFailed(byName(onlyDown, 'down'), 'extend failed');
  const path = choosePathAvoiding(onlyDown, status, (avoid) => choosePath(onlyDown, 443, { random: lcg(3), avoid }));
  assert.equal(path[2]!.nickname, 'down');
  // No exit for the port at all: ERR_NO_PATH, after every relay was let back.
  const calls: number[] = [];
  assert.throws(
    () =>
      choosePathAvoiding(onlyDown, status, (avoid) => {
        calls.push(onlyDown.filter(avoid).length);
        return choosePath(onlyDown, 443, { random: lcg(4), avoid, refuseExit: () => true });
      }),
    (e: unknown) => e instanceof AlliumError && e.code === 'ERR_NO_PATH',
  );
  assert.deepEqual(calls, [2, 1, 0], 'both avoided, then the older failure let back, then none');
});
