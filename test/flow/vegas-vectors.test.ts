/**
 * Tor's published test vectors for congestion control (tor's
 * src/test/test_congestion_control.c, Tor 0.4.8): the clock heuristics of
 * proposal 324 §2.1.1, the RTT / EWMA / minimum-RTT arithmetic of §2.1, and
 * the Vegas window updates of §3.3, including slow start, the gamma exit, the
 * alpha/beta/delta rules, the full/not-full state and a blocked link. Every
 * row is checked field by field against our implementation with Tor's
 * default parameters (SENDME increment 31, the "exit" Vegas parameters).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CONGESTION_PARAMS } from '../../src/flow/cc-params.js';
import { ClockHealth, RttEstimator, cwndUpdateRate, nEwma, percentMaxMix, stalledOrJumped } from '../../src/flow/rtt.js';
import { VegasController } from '../../src/flow/vegas.js';

const P = DEFAULT_CONGESTION_PARAMS;

test('clock heuristics: Tor vector (old delta, new delta, in slow start → cached "broken", result)', () => {
  // [old_delta_in, new_delta_in, in_slow_start_in, cached_result_out, result_out]
  const rows: Array<[number, number, boolean, boolean, boolean]> = [
    [0, 1, true, false, false],
    [0, 0, true, true, true],
    [1, 1, true, true, false],
    [1, 4999, false, false, false],
    [4999, 1, false, false, false],
    [5001, 1, false, false, false],
    [5001, 0, false, true, true],
    [5001, 1, false, true, true],
    [5001, 1, true, true, false],
    [0, 5001, false, true, false],
    [1, 5001, true, true, false],
    [1, 1, false, false, false],
    [5001, 1, false, false, false],
    [1, 5001, false, false, true],
    [0, 5001, false, false, false],
    [5001, 1, true, false, false],
    [1, 1, false, false, false],
  ];
  const clock = new ClockHealth();
  for (const [i, [oldDelta, newDelta, inSlowStart, cached, result]] of rows.entries()) {
    // As in Tor's test, the circuit's average is old_delta × 1000 (only whether it is 0 matters).
    const got = stalledOrJumped(clock, { inSlowStart, ewmaUs: oldDelta * 1000 }, oldDelta, newDelta);
    assert.equal(got, result, `row ${i} result`);
    assert.equal(clock.broken, cached, `row ${i} cached`);
  }
});

test('RTT: Tor vector (sent, SENDME arrival, cwnd, slow start → current, EWMA, minimum), µs', () => {
  // [sent_usec_in, got_sendme_usec_in, cwnd_in, ss_in, curr_rtt_usec_out, ewma_rtt_usec_out, min_rtt_usec_out]
  const rows: Array<[number, number, number, boolean, number, number, number]> = [
    [100000, 200000, 124, true, 100000, 100000, 100000],
    [200000, 300000, 124, true, 100000, 100000, 100000],
    [350000, 500000, 124, true, 150000, 133333, 100000],
    [500000, 550000, 124, true, 50000, 77777, 77777],
    [600000, 700000, 124, true, 100000, 92592, 77777],
    [700000, 750000, 124, true, 50000, 64197, 64197],
    [750000, 875000, 124, false, 125000, 104732, 104732],
    [875000, 900000, 124, false, 25000, 51577, 104732],
    [900000, 950000, 200, false, 50000, 50525, 50525],
  ];
  const rtt = new RttEstimator(P, new ClockHealth());
  for (const [i, [sent, got, cwnd, ss, curr, ewma, min]] of rows.entries()) {
    assert.equal(rtt.update(got - sent, cwnd, ss), curr, `row ${i} current`);
    assert.equal(rtt.ewmaUs, ewma, `row ${i} ewma`);
    assert.equal(rtt.minUs, min, `row ${i} min`);
  }
});

/** [sent_usec_in, got_sendme_usec_in, or_conn_blocked_in, inflight_in, ewma_rtt_usec_out, min_rtt_usec_out, cwnd_out, in_slow_start_out, cwnd_full_out, blocked_chan_out] */
type CwndRow = [number, number, 0 | 1, number, number, number, number, 0 | 1, 0 | 1, 0 | 1];

function runCwndVector(name: string, rows: CwndRow[]): void {
  const v = new VegasController(P, new ClockHealth());
  for (const [i, [sent, got, blocked, inflight, ewma, min, cwnd, ss, full, blockedOut]] of rows.entries()) {
    const at = `${name} step ${i}`;
    v.inflight = inflight;
    v.onSendme(got - sent, blocked === 1);
    if (blocked === 1) assert.equal(v.nextCcEvent, cwndUpdateRate(P, v.cwnd, v.inSlowStart), `${at}: a blocked link schedules an update`);
    assert.equal(v.rtt.ewmaUs, ewma, `${at} ewma`);
    assert.equal(v.rtt.minUs, min, `${at} min`);
    assert.equal(v.cwnd, cwnd, `${at} cwnd`);
    assert.equal(v.inSlowStart, ss === 1, `${at} slow start`);
    assert.equal(v.cwndFull, full === 1, `${at} cwnd full`);
    assert.equal(v.blockedChan, blockedOut === 1, `${at} blocked`);
    assert.equal(v.inflight, inflight - P.sendmeInc, `${at}: the SENDME acknowledged sendme_inc cells`);
  }
}

test('Vegas: Tor vector 1 (slow start, fullness expiry, gamma exit, alpha, beta, delta, blocked)', () => {
  runCwndVector('vect1', [
    [100000, 200000, 0, 124, 100000, 100000, 155, 1, 0, 0],
    [200000, 300000, 0, 155, 100000, 100000, 186, 1, 1, 0],
    [350000, 500000, 0, 186, 133333, 100000, 217, 1, 1, 0],
    [500000, 550000, 0, 217, 77777, 77777, 248, 1, 1, 0],
    [600000, 700000, 0, 248, 92592, 77777, 279, 1, 1, 0],
    [700000, 750000, 0, 279, 64197, 64197, 310, 1, 0, 0],
    [750000, 875000, 0, 310, 104732, 64197, 341, 1, 1, 0],
    [875000, 900000, 0, 341, 51577, 51577, 372, 1, 1, 0],
    [900000, 950000, 0, 279, 50525, 50525, 403, 1, 1, 0],
    [950000, 1000000, 0, 279, 50175, 50175, 434, 1, 1, 0],
    [1000000, 1050000, 0, 279, 50058, 50058, 465, 1, 1, 0],
    [1050000, 1100000, 0, 279, 50019, 50019, 496, 1, 1, 0],
    [1100000, 1150000, 0, 279, 50006, 50006, 527, 1, 1, 0],
    [1150000, 1200000, 0, 279, 50002, 50002, 558, 1, 1, 0],
    [1200000, 1250000, 0, 550, 50000, 50000, 589, 1, 1, 0],
    [1250000, 1300000, 0, 550, 50000, 50000, 620, 1, 0, 0],
    [1300000, 1350000, 0, 550, 50000, 50000, 635, 1, 1, 0],
    [1350000, 1400000, 0, 550, 50000, 50000, 650, 1, 1, 0],
    [1400000, 1450000, 0, 150, 50000, 50000, 650, 1, 0, 0],
    [1450000, 1500000, 0, 150, 50000, 50000, 650, 1, 0, 0],
    [1500000, 1550000, 0, 550, 50000, 50000, 664, 1, 1, 0],
    [1500000, 1600000, 0, 550, 83333, 50000, 584, 0, 1, 0],
    [1600000, 1650000, 0, 550, 61111, 50000, 585, 0, 1, 0],
    [1650000, 1700000, 0, 550, 53703, 50000, 586, 0, 1, 0],
    [1700000, 1750000, 0, 100, 51234, 50000, 586, 0, 0, 0],
    [1750000, 1900000, 0, 100, 117078, 50000, 559, 0, 0, 0],
    [1900000, 2000000, 0, 100, 105692, 50000, 558, 0, 0, 0],
    [2000000, 2075000, 0, 500, 85230, 50000, 558, 0, 1, 0],
    [2075000, 2125000, 1, 500, 61743, 50000, 557, 0, 1, 1],
    [2125000, 2150000, 0, 500, 37247, 37247, 558, 0, 1, 0],
    [2150000, 2350000, 0, 500, 145749, 37247, 451, 0, 1, 0],
  ]);
});

test('Vegas: Tor vector 2 (slow start left through a blocked link)', () => {
  runCwndVector('vect2', [
    [100000, 200000, 0, 124, 100000, 100000, 155, 1, 0, 0],
    [200000, 300000, 0, 155, 100000, 100000, 186, 1, 1, 0],
    [350000, 500000, 0, 186, 133333, 100000, 217, 1, 1, 0],
    [500000, 550000, 1, 217, 77777, 77777, 403, 0, 1, 1],
    [600000, 700000, 0, 248, 92592, 77777, 404, 0, 1, 0],
    [700000, 750000, 1, 404, 64197, 64197, 403, 0, 0, 1],
    [750000, 875000, 0, 403, 104732, 64197, 404, 0, 1, 0],
  ]);
});

test('Vegas: Tor vectors 3 and 4 (two real uploads)', () => {
  runCwndVector('vect3', [
    [18258527, 19002938, 0, 83, 744411, 744411, 155, 1, 0, 0],
    [18258580, 19254257, 0, 52, 911921, 744411, 186, 1, 1, 0],
    [20003224, 20645298, 0, 164, 732023, 732023, 217, 1, 1, 0],
    [20003367, 21021444, 0, 133, 922725, 732023, 248, 1, 1, 0],
    [20003845, 21265508, 0, 102, 1148683, 732023, 279, 1, 1, 0],
    [20003975, 21429157, 0, 71, 1333015, 732023, 310, 1, 0, 0],
    [20004309, 21707677, 0, 40, 1579917, 732023, 310, 1, 0, 0],
  ]);
  runCwndVector('vect4', [
    [358297091, 358854163, 0, 83, 557072, 557072, 155, 1, 0, 0],
    [358297649, 359123845, 0, 52, 736488, 557072, 186, 1, 1, 0],
    [359492879, 359995330, 0, 186, 580463, 557072, 217, 1, 1, 0],
    [359493043, 360489243, 0, 217, 857621, 557072, 248, 1, 1, 0],
    [359493232, 360489673, 0, 248, 950167, 557072, 279, 1, 1, 0],
    [359493795, 360489971, 0, 279, 980839, 557072, 310, 1, 0, 0],
    [359493918, 360490248, 0, 310, 991166, 557072, 341, 1, 1, 0],
    [359494029, 360716465, 0, 341, 1145346, 557072, 372, 1, 1, 0],
    [359996888, 360948867, 0, 372, 1016434, 557072, 403, 1, 1, 0],
    [359996979, 360949330, 0, 403, 973712, 557072, 434, 1, 1, 0],
    [360489528, 361113615, 0, 434, 740628, 557072, 465, 1, 1, 0],
    [360489656, 361281604, 0, 465, 774841, 557072, 496, 1, 1, 0],
    [360489837, 361500461, 0, 496, 932029, 557072, 482, 0, 1, 0],
    [360489963, 361500631, 0, 482, 984455, 557072, 482, 0, 1, 0],
    [360490117, 361842481, 0, 482, 1229727, 557072, 481, 0, 1, 0],
  ]);
});

test('N-EWMA and the percentile mix are integer arithmetic as in proposal 324 §2.1.2', () => {
  assert.equal(nEwma(150000, 100000, 2), 133333);
  assert.equal(nEwma(5, 0, 10), 5, 'no history: the sample itself');
  assert.equal(percentMaxMix(10, 90, 0), 10);
  assert.equal(percentMaxMix(10, 90, 100), 90);
  assert.equal(percentMaxMix(10, 91, 50), 50);
});
