/**
 * Sender pacing (docs/protocol.md §7.5, an Allium addition): the Pacer's
 * virtual-clock arithmetic with the time passed in, and VegasCircuit pacing
 * the cells its window allows (with cc_pace_pct 0 it sends as Tor does, the
 * whole window at once). Every figure is exact: the intervals chosen are
 * whole microseconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PACE_BURST_MIN_CELLS, PACE_BURST_US, Pacer } from '../../src/flow/pacer.js';
import { congestionParams } from '../../src/flow/cc-params.js';
import { ClockHealth } from '../../src/flow/rtt.js';
import { VegasCircuit, performanceMicros, turnMicros } from '../../src/flow/vegas.js';
import { DEFAULT_NETWORK_PARAMS } from '../../src/netdoc/params.js';

/** Send cells at `nowUs` while the pacer lets them go; returns how many went. */
function drain(p: Pacer, nowUs: number, cwnd: number, minRttUs: number, max = 100_000): number {
  let n = 0;
  while (n < max && p.waitUs(nowUs, cwnd, minRttUs) === 0) {
    p.onSent(nowUs, cwnd, minRttUs);
    n++;
  }
  return n;
}

test('Pacer: the interval is RTTmin·100/(pct·cwnd); the burst allowance is 4 ms, or 31 intervals if longer', () => {
  assert.equal(PACE_BURST_US, 4000);
  assert.equal(PACE_BURST_MIN_CELLS, 31);
  const p = new Pacer(100);
  assert.equal(p.intervalUs(1000, 100_000), 100);
  assert.equal(p.intervalUs(2000, 100_000), 50);
  assert.equal(new Pacer(200).intervalUs(1000, 100_000), 50);
  assert.equal(new Pacer(50).intervalUs(1000, 100_000), 200);
  assert.equal(p.burstUs(100), 4000);
  assert.equal(p.burstUs(10_000), 310_000);
  assert.throws(() => new Pacer(0), RangeError);
  assert.throws(() => new Pacer(-5), RangeError);
  assert.throws(() => new Pacer(1.5), RangeError);
});

test('Pacer: a burst of 4 ms worth at once, then one cell per interval; a late wake-up catches up to the burst', () => {
  const p = new Pacer(100);
  const cwnd = 1000;
  const rtt = 100_000; // interval 100 µs, burst 4000 µs = 40 cells
  assert.equal(drain(p, 0, cwnd, rtt), 40);
  assert.equal(p.waitUs(0, cwnd, rtt), 100);
  assert.equal(p.waitUs(60, cwnd, rtt), 40);
  assert.equal(drain(p, 100, cwnd, rtt), 1);
  assert.equal(p.waitUs(100, cwnd, rtt), 100);
  assert.equal(drain(p, 250, cwnd, rtt), 1, 'the clock was at 100: one cell, due at 200');
  assert.equal(p.waitUs(250, cwnd, rtt), 50);
  assert.equal(drain(p, 1000, cwnd, rtt), 8, 'woken 700 µs late: the 8 cells due by then go');
  assert.equal(p.waitUs(1000, cwnd, rtt), 100);
  assert.equal(drain(p, 1_000_000, cwnd, rtt), 40, 'after a pause, no more than the burst');
  // A larger window paces faster: interval 50 µs, burst still 4000 µs = 80 cells.
  assert.equal(drain(p, 2_000_000, 2 * cwnd, rtt), 80);
  assert.equal(p.waitUs(2_000_000, 2 * cwnd, rtt), 50);
});

test('Pacer: a slow path gets a burst of at least 31 cells; no RTT sample yet means unpaced', () => {
  const p = new Pacer(100);
  // cwnd 100, RTTmin 1 s: interval 10 ms, burst 310 ms = 31 cells.
  assert.equal(drain(p, 5_000_000, 100, 1_000_000), 31);
  assert.equal(p.waitUs(5_000_000, 100, 1_000_000), 10_000);
  const fresh = new Pacer(100);
  assert.equal(drain(fresh, 0, 124, 0, 500), 500);
  assert.equal(fresh.waitUs(0, 124, 0), 0);
});

const digestOf = (n: number) => new Uint8Array(20).fill(n & 0xff).map((x, i) => (i === 0 ? (n >> 8) & 0xff : x));

/** A VegasCircuit with cc_pace_pct `pct` that sent its first window at t=0 and got the first SENDME 155 ms later. */
function afterFirstSendme(pct: number): { fc: VegasCircuit; setNow: (us: number) => void } {
  let nowUs = 0;
  const fc = new VegasCircuit(congestionParams({ ...DEFAULT_NETWORK_PARAMS, cc_pace_pct: pct }, 31), () => nowUs, new ClockHealth());
  for (let i = 1; i <= 124; i++) {
    assert.equal(fc.canSend(), true, 'before any RTT sample the window goes unpaced');
    fc.onSent(digestOf(i));
  }
  assert.equal(fc.canSend(), false);
  assert.equal(fc.pacingDelayMs(), 0, 'only a SENDME opens a full window');
  nowUs = 155_000;
  fc.onSendme({ kind: 'sendme', version: 1, digest: digestOf(31) });
  // RTTmin 155 ms; slow start grew the window to 155 with 93 in flight.
  assert.deepEqual([fc.vegas.rtt.minUs, fc.vegas.cwnd, fc.vegas.inflight], [155_000, 155, 93]);
  return { fc, setNow: (us) => (nowUs = us) };
}

test('VegasCircuit paces what its window allows at cwnd/RTTmin (§7.5)', () => {
  const { fc, setNow } = afterFirstSendme(100);
  // Interval 155 000·100/(100·155) = 1000 µs; burst max(4000, 31·1000) µs = 31 cells.
  let sent = 0;
  while (fc.canSend()) fc.onSent(digestOf(125 + sent++));
  assert.equal(sent, 31);
  assert.equal(fc.pacingDelayMs(), 1);
  setNow(155_500);
  assert.equal(fc.canSend(), false);
  assert.equal(fc.pacingDelayMs(), 0.5);
  setNow(156_000);
  assert.equal(fc.canSend(), true);
  fc.onSent(digestOf(125 + sent++));
  assert.equal(fc.canSend(), false);
  setNow(186_000); // 30 ms later: 30 more are due, and the window has room for 30 (155 − 125)
  while (fc.canSend()) fc.onSent(digestOf(125 + sent++));
  assert.equal(sent, 62);
  assert.equal(fc.vegas.inflight, 155);
  assert.equal(fc.pacingDelayMs(), 0, 'the window, not the pacer, holds it now');
});

test('VegasCircuit with cc_pace_pct 0 sends the whole window at once, as Tor does', () => {
  const { fc } = afterFirstSendme(0);
  let sent = 0;
  while (fc.canSend()) fc.onSent(digestOf(125 + sent++));
  assert.equal(sent, 62);
  assert.equal(fc.pacingDelayMs(), 0);
});

test('turnMicros, the pacer clock under the process clock: one reading per synchronous run, a new one after the microtask checkpoint', async () => {
  const first = turnMicros();
  // 2 ms of busy work in the same run: the reading stands.
  const until = performance.now() + 2;
  while (performance.now() < until) {
    /* spin */
  }
  assert.equal(turnMicros(), first);
  await new Promise((resolve) => setTimeout(resolve, 3));
  const later = turnMicros();
  assert.ok(later >= first + 2000, `a new reading after the turn: ${later - first} µs later`);
  assert.ok(Math.abs(later - performanceMicros()) < 1000, 'the new reading is the clock now');
});
