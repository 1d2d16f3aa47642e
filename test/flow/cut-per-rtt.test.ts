/**
 * cc_cut_per_rtt (docs/protocol.md §7.3, Allium only): after Vegas cuts the
 * window to the BDP (the delta rule, or slow start's gamma exit), the
 * SENDMEs of cells sent before that cut report the same round trip and cut
 * no further; a SENDME of a cell sent after it may cut again. With 0 every
 * update may cut, as Tor does. The RTTs are injected, so every window is exact.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { congestionParams } from '../../src/flow/cc-params.js';
import { ClockHealth } from '../../src/flow/rtt.js';
import { VegasController } from '../../src/flow/vegas.js';
import { DEFAULT_NETWORK_PARAMS } from '../../src/netdoc/params.js';

/** A sender that keeps its window full: before each SENDME it sends until inflight = cwnd. */
function sender(cutPerRtt: 0 | 1): { v: VegasController; sendme: (rttUs: number) => number } {
  const v = new VegasController(congestionParams({ ...DEFAULT_NETWORK_PARAMS, cc_cut_per_rtt: cutPerRtt }, 31), new ClockHealth());
  return {
    v,
    sendme: (rttUs) => {
      while (v.canSend) v.onSent();
      v.onSendme(rttUs, false);
      return v.cwnd;
    },
  };
}

/**
 * Slow start on a 100 ms path up to 1200 cells, left through one 150 ms
 * sample (gamma exit, to 1089), then 200 SENDMEs at 100 ms: steady state on
 * an empty path, the window grown to 1289.
 */
function steady(cutPerRtt: 0 | 1): { v: VegasController; sendme: (rttUs: number) => number } {
  const s = sender(cutPerRtt);
  while (s.v.cwnd < 1200) s.sendme(100_000);
  s.sendme(150_000);
  assert.equal(s.v.inSlowStart, false);
  for (let i = 0; i < 200; i++) s.sendme(100_000);
  assert.equal(s.v.cwnd, 1289);
  return s;
}

test('cc_cut_per_rtt=0 (Tor): every SENDME of a stalled window cuts again, each time to bdp + delta from an inflated average', () => {
  const { v, sendme } = steady(0);
  // A 150 ms stall: the next 20 SENDMEs (cells sent before it) all arrive 150 ms late.
  const cwnds = Array.from({ length: 20 }, () => sendme(250_000));
  assert.equal(cwnds[0], 953); // bdp + delta − 1, the average at 200 ms
  assert.deepEqual(cwnds.slice(1, 5), [717, 602, 551, 529]);
  assert.equal(cwnds[19], 503);
  assert.equal(v.inSlowStart, false);
});

test('cc_cut_per_rtt=1: the same stall cuts the window once; the other SENDMEs of that round trip only take cc_cwnd_inc each', () => {
  const { sendme } = steady(1);
  const cwnds = Array.from({ length: 20 }, () => sendme(250_000));
  assert.equal(cwnds[0], 953); // the same first cut as Tor's
  // 19 more SENDMEs, each answering a cell sent before the cut: queue > delta reads as > beta, −1 at each update.
  assert.deepEqual(cwnds, Array.from({ length: 20 }, (_, i) => 953 - i));
});

test('cc_cut_per_rtt=1: congestion that lasts into the next round trip cuts again, at the first SENDME of a cell sent after the cut', () => {
  const { v, sendme } = steady(1);
  assert.equal(sendme(250_000), 953);
  // At the cut 1289 cells were in flight; 31 were just acknowledged, and the other 1258 are answered by the next
  // 40 SENDMEs (31·40 = 1240 ≤ 1258): each takes one cell.
  const before = Array.from({ length: 40 }, () => sendme(250_000));
  assert.deepEqual(before, Array.from({ length: 40 }, (_, i) => 952 - i));
  // The 41st acknowledges cells sent after the cut: the delay still says queue > delta, so it cuts again.
  assert.equal(sendme(250_000), 674);
  assert.equal(v.inSlowStart, false);
});

test('cc_cut_per_rtt=1 changes nothing while no cut happens: the same windows as Tor on a path with a few ms of jitter', () => {
  const tor = sender(0);
  const allium = sender(1);
  for (let i = 0; i < 300; i++) {
    const rtt = 100_000 + (i % 7) * 3_000;
    assert.equal(allium.sendme(rtt), tor.sendme(rtt), `SENDME ${i}`);
  }
});

test('cc_cut_per_rtt: slow start left through a stall (gamma exit) is the one cut of that round trip', () => {
  const tor = sender(0);
  const allium = sender(1);
  while (tor.v.cwnd < 1200) tor.sendme(100_000);
  while (allium.v.cwnd < 1200) allium.sendme(100_000);
  // Ten SENDMEs of cells sent before a 150 ms stall.
  const torCwnds = Array.from({ length: 10 }, () => tor.sendme(250_000));
  const alliumCwnds = Array.from({ length: 10 }, () => allium.sendme(250_000));
  assert.equal(tor.v.inSlowStart, false);
  assert.equal(allium.v.inSlowStart, false);
  // Both leave slow start at bdp + gamma; Tor then cuts again at each update, Allium takes cc_cwnd_inc.
  assert.deepEqual(torCwnds, [788, 646, 573, 539, 525, 519, 516, 515, 514, 513]);
  assert.deepEqual(alliumCwnds, Array.from({ length: 10 }, (_, i) => 788 - i));
});
