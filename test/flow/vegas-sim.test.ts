/**
 * Vegas on a clean simulated path (docs/protocol.md §7.3): a deterministic
 * discrete-event model of one bottleneck of rate R behind a fixed round trip
 * B, with a sender that keeps `inflight < cwnd` and gets a SENDME for every
 * 31st cell when that cell has crossed the bottleneck and come back. No
 * timers, no sockets: only the window arithmetic. On such a path Vegas must
 * leave slow start, fill the link (throughput near R) and hold a queue
 * between its alpha and delta thresholds, for a WAN (120 ms, 100 Mbit/s)
 * and a LAN (2 ms, 1 Gbit/s). Fixed windows on the same WAN path reach only
 * 1000 cells per round trip.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CONGESTION_PARAMS } from '../../src/flow/cc-params.js';
import { ClockHealth } from '../../src/flow/rtt.js';
import { VegasController } from '../../src/flow/vegas.js';

const CELL_BYTES = 514;

interface SimResult {
  /** Cells acknowledged per ms over the last quarter of the run. */
  rate: number;
  cwnd: number;
  slowStart: boolean;
  /** Cells queued at the bottleneck at the end. */
  queue: number;
}

/**
 * Run `ms` of simulated time. `rateCellsPerMs`: the bottleneck; `baseRttMs`:
 * everything but queueing. `window` (optional) replaces Vegas by a fixed window.
 */
function simulate(rateCellsPerMs: number, baseRttMs: number, ms: number, window?: number): SimResult {
  const vegas = new VegasController(DEFAULT_CONGESTION_PARAMS, new ClockHealth());
  const inc = DEFAULT_CONGESTION_PARAMS.sendmeInc;
  const acks: Array<{ at: number; sentAt: number }> = []; // ascending `at` (FIFO bottleneck)
  let head = 0;
  let now = 0;
  let lastDeparture = 0;
  let sent = 0;
  let inflight = 0;
  const ackedAt: number[] = [];
  const canSend = () => (window === undefined ? vegas.canSend : inflight < window);
  const send = () => {
    while (canSend()) {
      sent++;
      if (window === undefined) vegas.onSent();
      else inflight++;
      lastDeparture = Math.max(now, lastDeparture) + 1 / rateCellsPerMs;
      if (sent % inc === 0) acks.push({ at: lastDeparture + baseRttMs, sentAt: now });
    }
  };
  send();
  while (head < acks.length && acks[head]!.at <= ms) {
    const ack = acks[head++]!;
    now = ack.at;
    if (window === undefined) vegas.onSendme(Math.round((now - ack.sentAt) * 1000), false);
    else inflight -= inc;
    ackedAt.push(now);
    send();
  }
  const from = ms * 0.75;
  const lateAcks = ackedAt.filter((t) => t >= from).length;
  return {
    rate: (lateAcks * inc) / (ms - from),
    cwnd: window ?? vegas.cwnd,
    slowStart: vegas.inSlowStart,
    queue: Math.max(0, (lastDeparture - now) * rateCellsPerMs),
  };
}

const cellsPerMs = (mbit: number) => (mbit * 1e6) / 8 / CELL_BYTES / 1000;

test('a clean WAN path (120 ms, 100 Mbit/s): Vegas fills the link with a bounded queue; fixed windows cannot', () => {
  const R = cellsPerMs(100); // ≈ 24.3 cells per ms
  const bdp = R * 120; // ≈ 2918 cells
  const v = simulate(R, 120, 60_000);
  assert.equal(v.slowStart, false);
  assert.ok(v.rate >= 0.95 * R, `Vegas carried ${(v.rate / R * 100).toFixed(1)} % of the link`);
  const p = DEFAULT_CONGESTION_PARAMS;
  assert.ok(v.cwnd >= bdp && v.cwnd <= bdp + p.delta, `cwnd ${v.cwnd} against a BDP of ${bdp.toFixed(0)}`);
  const fixed = simulate(R, 120, 60_000, 1000);
  assert.ok(Math.abs(fixed.rate - 1000 / 120) < 0.5, `fixed windows: ${fixed.rate.toFixed(2)} cells/ms, one window per round trip`);
  assert.ok(v.rate / fixed.rate > 2.8, 'Vegas is the faster by the ratio of BDP to the fixed window');
});

test('a clean LAN path (2 ms, 1 Gbit/s): Vegas fills it too', () => {
  const R = cellsPerMs(1000);
  const v = simulate(R, 2, 5_000);
  assert.ok(v.rate >= 0.95 * R, `Vegas carried ${(v.rate / R * 100).toFixed(1)} % of the link`);
  assert.ok(v.queue <= R * 2 + DEFAULT_CONGESTION_PARAMS.delta, `queue ${v.queue.toFixed(0)} cells`);
});
