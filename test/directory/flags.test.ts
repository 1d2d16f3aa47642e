/**
 * Flag thresholds (docs/protocol.md §9.4) and the uptime history they read
 * (directory/relay-history.ts): exact thresholds for fixed inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { assignFlags, computeThresholds, TESTNET_FLAG_THRESHOLDS, TOR_FLAG_THRESHOLDS, votedFlags, type FlagInput } from '../../directory/flags.js';
import { RelayHistory, type UptimeStats } from '../../directory/relay-history.js';

const HOUR = 3600_000;
const DAY = 24 * HOUR;

function relay(bandwidth: number, stats?: Partial<UptimeStats>, over: Partial<FlagInput> = {}): FlagInput {
  return {
    running: true,
    bandwidth,
    exitEligible: false,
    badExit: false,
    stats: stats === undefined ? undefined : { timeKnownMs: 30 * DAY, currentUptimeMs: 10 * DAY, mtbfMs: 10 * DAY, wfu: 0.99, ...stats },
    ...over,
  };
}

test('thresholds: Fast at the 1/8 quantile capped at 100 kB/s; Stable at the median MTBF capped at 7 days; Guard at the top quarter capped at 2 MB/s', () => {
  // 16 active relays, 100 kB/s … 1.6 MB/s, MTBF 1..16 days, WFU 0.85..1.0.
  const relays = Array.from({ length: 16 }, (_, i) => relay((i + 1) * 100_000, { mtbfMs: (i + 1) * DAY, wfu: 0.85 + i * 0.01 }));
  const th = computeThresholds(relays, TOR_FLAG_THRESHOLDS);
  assert.equal(th.fast, 100_000); // the 1/8 quantile is 200 kB/s, the guarantee 100 kB/s
  assert.equal(th.stableMtbfMs, 7 * DAY); // the median MTBF is 8 days, the guarantee 7 days
  assert.equal(th.guardBandwidth, 1_200_000); // the lower 3/4 quantile of 100k..1.6M
  assert.ok(Math.abs(th.guardWfu - 0.92) < 1e-9); // the median WFU of the familiar ones
  const flags = assignFlags(relays, TOR_FLAG_THRESHOLDS, false).map((f) => f.join(' '));
  assert.equal(flags[0], 'Fast Running Valid'); // MTBF 1 day: not Stable
  assert.equal(flags[6], 'Fast HSDir Running Stable Valid'); // MTBF 7 days; 10 days up: HSDir; below the Guard bandwidth
  assert.equal(flags[11], 'Fast Guard HSDir Running Stable Valid'); // 1.2 MB/s, WFU 0.96
  assert.equal(flags[15], 'Fast Guard HSDir Running Stable Valid');
});

test('Guard needs familiarity and WFU; HSDir needs 96 h of current uptime; slow relays are not active', () => {
  const base = Array.from({ length: 10 }, () => relay(3_000_000, {}));
  const newcomer = relay(3_000_000, { timeKnownMs: DAY });
  const flaky = relay(3_000_000, { wfu: 0.5 });
  const fresh = relay(3_000_000, { currentUptimeMs: 95 * HOUR });
  const slow = relay(3000, {});
  const flags = assignFlags([...base, newcomer, flaky, fresh, slow], TOR_FLAG_THRESHOLDS, false).map((f) => f.join(' '));
  assert.equal(flags[0], 'Fast Guard HSDir Running Stable Valid');
  assert.equal(flags[10], 'Fast HSDir Running Stable Valid'); // known 1 day: not familiar (the newest eighth)
  assert.equal(flags[11], 'Fast HSDir Running Stable Valid'); // WFU 0.5
  assert.equal(flags[12], 'Fast Guard Running Stable Valid'); // up 95 h only
  assert.equal(flags[13], 'Running Valid'); // 3 kB/s: below 4 kB/s
});

test('small networks: every Running relay is a Guard; Exit, BadExit, Running and Valid', () => {
  const relays = [
    relay(1e6, undefined, { exitEligible: true }),
    relay(1e6, undefined, { exitEligible: true, badExit: true }),
    relay(1e6, undefined, { running: false, badExit: true }),
  ];
  assert.deepEqual(assignFlags(relays, TOR_FLAG_THRESHOLDS, true), [
    ['Exit', 'Fast', 'Guard', 'Running', 'Valid'],
    ['BadExit', 'Exit', 'Fast', 'Guard', 'Running', 'Valid'],
    ['BadExit', 'Valid'],
  ]);
  // An authority that does not vote on BadExit never writes it.
  assert.deepEqual(assignFlags(relays, TOR_FLAG_THRESHOLDS, false)[1], ['Exit', 'Fast', 'Guard', 'Running', 'Valid']);
  assert.deepEqual(votedFlags(true), ['BadExit', 'Exit', 'Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'Valid']);
  assert.deepEqual(votedFlags(false), ['Exit', 'Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'Valid']);
});

test('testnet thresholds: 30 s of uptime makes a relay Stable and HSDir', () => {
  const relays = Array.from({ length: 9 }, () => relay(1e6, { timeKnownMs: 40_000, currentUptimeMs: 40_000, mtbfMs: 40_000, wfu: 1 }));
  assert.deepEqual(assignFlags(relays, TESTNET_FLAG_THRESHOLDS, false)[0], ['Fast', 'Guard', 'HSDir', 'Running', 'Stable', 'Valid']);
  assert.deepEqual(assignFlags(relays, TOR_FLAG_THRESHOLDS, false)[0], ['Fast', 'Guard', 'Running', 'Stable', 'Valid']);
});

test('uptime history: MTBF, WFU, current uptime with decay; measurements; the stored form round-trips', () => {
  const h = new RelayHistory({ halfLifeMs: 1000 * DAY });
  const id = 'ab'.repeat(32);
  const t0 = 1_000_000;
  h.seen(id, t0);
  h.record(id, true, t0);
  h.record(id, true, t0 + 10 * HOUR); // up 10 h
  h.record(id, false, t0 + 12 * HOUR); // down: the run lasted 12 h; 2 h counted as down
  h.record(id, false, t0 + 14 * HOUR);
  h.record(id, true, t0 + 16 * HOUR); // up again; 2 + 2 h down
  let s = h.stats(id, t0 + 20 * HOUR)!;
  assert.equal(s.timeKnownMs, 20 * HOUR);
  assert.equal(s.currentUptimeMs, 4 * HOUR);
  // Runs: 12 h (ended) and 4 h (current) → mean 8 h (decay negligible at a 1000-day half-life).
  assert.ok(Math.abs(s.mtbfMs - 8 * HOUR) < 60_000, String(s.mtbfMs));
  // Observed 16 h, up 10 h + 2 h (the last interval ended in a success).
  assert.ok(Math.abs(s.wfu - 12 / 16) < 1e-3, String(s.wfu));
  h.recordBandwidth(id, 100, t0);
  h.recordBandwidth(id, 300, t0 + 1);
  h.recordBandwidth(id, 200, t0 + 2);
  assert.equal(h.measured(id, t0 + 3), 200);
  assert.equal(h.measured(id, t0 + 3 * DAY), undefined); // older than 2 days
  const copy = new RelayHistory({ halfLifeMs: 1000 * DAY });
  assert.equal(copy.load(JSON.parse(JSON.stringify(h))), 1);
  assert.deepEqual(copy.stats(id, t0 + 20 * HOUR), s);
  assert.equal(copy.measured(id, t0 + 3), 200);
  // Garbage in the stored form is skipped.
  assert.equal(copy.load({ version: 1, relays: { nothex: {}, ['cd'.repeat(32)]: { firstSeen: -1 } } }), 0);
  assert.equal(copy.load('nonsense'), 0);
  // Decay: with a one-day half-life, old downtime fades.
  const d = new RelayHistory({ halfLifeMs: DAY });
  d.record(id, true, 0);
  d.record(id, false, DAY);
  d.record(id, true, 2 * DAY);
  for (let t = 3; t <= 30; t++) d.record(id, true, t * DAY);
  s = d.stats(id, 30 * DAY)!;
  assert.ok(s.wfu > 0.99, String(s.wfu));
});
