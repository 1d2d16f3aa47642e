import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RelayStatus, RELAY_BACKOFF, EXIT_REJECTION_MS } from '../../client/relay-status.js';
import { nextDelay } from '../../client/backoff.js';
import { BuildTimeoutEstimator, paretoTimeout, paretoXm } from '../../client/build-timeout.js';
import { consensusRelay, ALL_PORTS } from '../support/consensus-relay.js';
import { sfc32 } from '../support/seeded-random.js';

function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test('decorrelated jitter: base first, then between base and 3x the last delay, capped', () => {
  const schedule = { baseMs: 100, capMs: 5000 };
  const random = sfc32(3);
  assert.equal(nextDelay(schedule, 0, () => 0.999), 100);
  let last = 0;
  for (let i = 0; i < 200; i++) {
    const d = nextDelay(schedule, last, random);
    assert.ok(d >= 100 && d <= 5000 && d < Math.max(101, last * 3), `${d} after ${last}`);
    last = d;
  }
  assert.equal(nextDelay(schedule, 1e9, () => 0.5), 5000);
});

test('a relay that failed is avoided for its backoff, longer each time; success and a new descriptor forget it', () => {
  const c = clock();
  const status = new RelayStatus({ now: c.now, random: sfc32(1) });
  const relay = consensusRelay('r', '10.1.0.1', ['Running', 'Valid'], 1000, ALL_PORTS);
  assert.equal(status.isAvoided(relay), false);
  const d1 = status.markFailed(relay, 'refused');
  assert.equal(d1, RELAY_BACKOFF.baseMs);
  assert.equal(status.isAvoided(relay), true);
  c.advance(d1 - 1);
  assert.equal(status.isAvoided(relay), true);
  c.advance(1);
  assert.equal(status.isAvoided(relay), false, 'tried again once the backoff ran out');
  const d2 = status.markFailed(relay, 'refused');
  assert.ok(d2 >= RELAY_BACKOFF.baseMs && d2 < 3 * d1);
  assert.equal(status.failures(relay), 2);
  status.markSucceeded(relay);
  assert.equal(status.isAvoided(relay), false);
  assert.equal(status.failures(relay), 0);

  // Restarted and republished: a consensus with another descriptor digest clears the failure.
  status.markFailed(relay, 'link lost');
  status.onConsensus([relay]);
  assert.equal(status.isAvoided(relay), true, 'same descriptor: still avoided');
  const republished = { ...relay, descriptorDigest: new Uint8Array(32).fill(7) };
  status.onConsensus([republished]);
  assert.equal(status.isAvoided(relay), false);
});

test('an exit that refused a target by policy is not asked again for that target for a while', () => {
  const c = clock();
  const status = new RelayStatus({ now: c.now });
  const exit = consensusRelay('e', '30.1.0.1', ['Exit', 'Running', 'Valid'], 1000, ALL_PORTS);
  status.markExitRejected(exit, { host: '203.0.113.1', port: 443 });
  assert.equal(status.exitRejects(exit, { host: '203.0.113.1', port: 443 }), true);
  assert.equal(status.exitRejects(exit, { host: '203.0.113.1', port: 80 }), false);
  assert.equal(status.exitRejects(exit, { host: '203.0.113.2', port: 443 }), false);
  assert.equal(status.isAvoided(exit), false, 'a policy refusal is no failure');
  c.advance(EXIT_REJECTION_MS);
  assert.equal(status.exitRejects(exit, { host: '203.0.113.1', port: 443 }), false);
});

/** Pareto(xm, alpha) draws by inverse transform. */
function paretoSamples(n: number, xm: number, alpha: number, seed: number): number[] {
  const random = sfc32(seed);
  return Array.from({ length: n }, () => xm / Math.pow(1 - random(), 1 / alpha));
}

test('build timeout: the initial cap until enough builds, then the fitted 80th percentile', () => {
  const est = new BuildTimeoutEstimator({ initialMs: 10_000, minMs: 10, minSamples: 20 });
  assert.equal(est.timeoutMs, 10_000);
  assert.equal(est.learned, false);
  const samples = paretoSamples(1000, 200, 3, 11);
  for (let i = 0; i < 19; i++) est.recordBuild(samples[i]!);
  assert.equal(est.timeoutMs, 10_000, 'still the cap with 19 builds');
  for (let i = 19; i < 1000; i++) est.recordBuild(samples[i]!);
  assert.equal(est.learned, true);
  // True 80th percentile: 200 / 0.2^(1/3) ≈ 342 ms. Xm is estimated from 10 ms bins, so allow 25 %.
  const truth = 200 / Math.pow(0.2, 1 / 3);
  assert.ok(Math.abs(est.timeoutMs - truth) / truth < 0.25, `learned ${est.timeoutMs} ms, true quantile ${truth.toFixed(0)} ms`);
  assert.equal(est.samples().length, 1000);
});

test('build timeout: clamped to [minMs, maxMs]; timeouts count as censored samples and raise it', () => {
  const fast = new BuildTimeoutEstimator({ minMs: 1000, minSamples: 20 });
  for (let i = 0; i < 50; i++) fast.recordBuild(5 + (i % 10));
  assert.equal(fast.timeoutMs, 1000, 'loopback builds of a few ms: the floor');

  const est = new BuildTimeoutEstimator({ minMs: 10, minSamples: 20, recentTimeouts: 1000 });
  const samples = paretoSamples(200, 100, 2, 5);
  for (const s of samples) est.recordBuild(s);
  const before = est.timeoutMs;
  for (let i = 0; i < 30; i++) est.recordTimeout();
  assert.ok(est.timeoutMs > before, `timeouts raise the estimate: ${before} → ${est.timeoutMs}`);
  assert.ok(est.timeoutMs <= Math.max(...samples), 'never above the slowest build seen');
});

test('build timeout: nearly all recent builds timing out resets learning to the cap', () => {
  const est = new BuildTimeoutEstimator({ initialMs: 10_000, minMs: 10, minSamples: 20 });
  for (const s of paretoSamples(100, 100, 3, 8)) est.recordBuild(s);
  assert.ok(est.timeoutMs < 1000);
  for (let i = 0; i < 18; i++) est.recordTimeout();
  assert.equal(est.learned, false);
  assert.equal(est.timeoutMs, 10_000);
  assert.deepEqual(est.samples(), []);
  // Still timing out at the cap: double it (bounded by maxMs).
  for (let i = 0; i < 20; i++) est.recordTimeout();
  assert.equal(est.timeoutMs, 20_000);
});

test('Pareto pieces: Xm from the most frequent bins; a collapsed fit gives Xm', () => {
  assert.equal(paretoXm([12, 13, 14, 55], 1), 15);
  assert.equal(paretoXm([12, 55, 57], 2), (15 + 55 * 2) / 3);
  assert.equal(paretoTimeout([15, 15, 15], [], 10, 0.8), 15);
  const loaded = new BuildTimeoutEstimator({ minMs: 1, minSamples: 3 });
  loaded.load([100, 120, 140, NaN, -5]);
  assert.deepEqual(loaded.samples(), [100, 120, 140]);
  assert.equal(loaded.learned, true);
});
