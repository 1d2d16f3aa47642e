/**
 * The congestion-controlled flow-control implementations behind the
 * interface (docs/protocol.md §7.3, §7.4): VegasCircuit's authenticated
 * SENDMEs every sendme_inc cells and its RTT samples from SENDME timing, with
 * an injected clock; XonXoffStream's XOFF/XON decisions, the drain rate an XON
 * carries, and the messages it refuses.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DEFAULT_CONGESTION_PARAMS, congestionParams } from '../../src/flow/cc-params.js';
import { ClockHealth, cwndUpdateRate } from '../../src/flow/rtt.js';
import { VegasCircuit, VegasController } from '../../src/flow/vegas.js';
import { STREAM_BUFFER_HARD_LIMIT, XonXoffStream } from '../../src/flow/xon-xoff.js';
import { STREAM_SENDME } from '../../src/flow/flow-control.js';
import { DEFAULT_NETWORK_PARAMS } from '../../src/netdoc/params.js';
import { ProtocolError } from '../../src/errors.js';

const protocolError = (e: unknown) => e instanceof ProtocolError;
const digestOf = (n: number) => new Uint8Array(20).fill(n & 0xff).map((x, i) => (i === 0 ? (n >> 8) & 0xff : x));
const P = DEFAULT_CONGESTION_PARAMS;

test('VegasCircuit: the window starts at cc_cwnd_init; each SENDME echoes the digest after every 31st cell and is one RTT sample', () => {
  let nowUs = 0;
  const fc = new VegasCircuit(P, () => nowUs, new ClockHealth());
  assert.deepEqual(fc.snapshot(), { inflight: 0, window: 124, lastRttMs: null, minRttMs: null, algorithm: 'vegas', slowStart: true });
  // Cell i is sent at time i ms. Its digest comes in one array overwritten for every cell, as
  // OnionLayer.sealDigest gives it: the SENDMEs below match only if onSent kept copies.
  const layerDigest = new Uint8Array(20);
  for (let i = 1; i <= 124; i++) {
    assert.equal(fc.canSend(), true);
    nowUs = i * 1000;
    layerDigest.set(digestOf(i));
    fc.onSent(layerDigest);
  }
  assert.equal(fc.canSend(), false);
  assert.throws(() => fc.onSent(digestOf(125)), protocolError);
  // Only the digest after cell 31 answers the first SENDME; then 62, 93, 124.
  assert.throws(() => fc.onSendme({ kind: 'sendme', version: 1, digest: digestOf(30) }), protocolError);
  assert.throws(() => fc.onSendme({ kind: 'sendme', version: 0, digest: null }), protocolError);
  nowUs = 131_000; // 100 ms after cell 31
  fc.onSendme({ kind: 'sendme', version: 1, digest: digestOf(31) });
  let s = fc.snapshot();
  assert.equal(s.lastRttMs, 100);
  assert.equal(s.minRttMs, 100);
  assert.equal(s.inflight, 124 - 31);
  // The window was full (inflight + 4·31 ≥ 124) with no queue: slow start grew it by 31.
  assert.equal(s.window, 155);
  nowUs = 172_000; // 110 ms after cell 62
  fc.onSendme({ kind: 'sendme', version: 1, digest: digestOf(62) });
  s = fc.snapshot();
  assert.equal(s.lastRttMs, 110);
  assert.equal(s.minRttMs, 100, 'the minimum follows the average (100, then (2·110+100)/3) down only');
  assert.equal(fc.vegas.rtt.ewmaUs, 106_666);
  assert.throws(() => fc.onSendme({ kind: 'sendme', version: 1, digest: digestOf(124) }), protocolError, 'out of order');
});

test('VegasCircuit as receiver: a version-1 SENDME after every sendme_inc DATA cells, with the digest after that cell', () => {
  const fc = new VegasCircuit(congestionParams(DEFAULT_NETWORK_PARAMS, 30), () => 0, new ClockHealth());
  const due: number[] = [];
  for (let i = 1; i <= 300; i++) {
    const sendme = fc.onDelivered(() => digestOf(i));
    if (sendme !== null) {
      assert.deepEqual(sendme, { kind: 'sendme', version: 1, digest: digestOf(i) });
      due.push(i);
    }
  }
  assert.deepEqual(due, [30, 60, 90, 120, 150, 180, 210, 240, 270, 300]);
});

test('XonXoffStream: XOFF once past the XOFF limit, XON (with the drain rate) when the reader is ready again', () => {
  let now = 0;
  const limit = P.xoffExitBytes; // a relay's side
  const rx = new XonXoffStream('relay', P, () => now);
  let buffered = 0;
  let delivered = 0;
  const deliver = () => {
    buffered += 498;
    delivered += 498;
    return rx.onDelivered(498, buffered);
  };
  while (buffered + 498 <= limit) assert.equal(deliver(), null);
  assert.deepEqual(deliver(), { kind: 'xoff' });
  for (let i = 0; i < 100; i++) assert.equal(deliver(), null, 'one XOFF only');
  assert.equal(rx.takeFlowMsg(buffered), null, 'not while the buffer is still over the limit');
  // The reader, which had consumed nothing before the XOFF, drains everything in 50 ms.
  now = 50;
  buffered = 0;
  const xon = rx.takeFlowMsg(buffered);
  assert.equal(xon?.kind, 'xon');
  assert.equal((xon as { kbpsEwma: number }).kbpsEwma, Math.floor(delivered / 50), 'bytes per ms = kB/s');
  assert.equal(rx.takeFlowMsg(0), null, 'one XON per XOFF');
  assert.equal(rx.canSend(), true, 'our own sending is unaffected by our XOFF');
});

test('XonXoffStream: the client uses cc_xoff_client; a sender stops between XOFF and XON', () => {
  const p = congestionParams({ ...DEFAULT_NETWORK_PARAMS, cc_xoff_client: 10 }, 31);
  const rx = new XonXoffStream('client', p, () => 0);
  let msg = null;
  for (let b = 498; b <= 11 * 498 && msg === null; b += 498) msg = rx.onDelivered(498, b);
  assert.deepEqual(msg, { kind: 'xoff' });

  const tx = new XonXoffStream('client', P, () => 0);
  for (let i = 0; i < 600; i++) tx.onSent(498);
  tx.onFlowMsg({ kind: 'xoff' });
  assert.equal(tx.canSend(), false);
  assert.throws(() => tx.onSent(498), protocolError);
  assert.throws(() => tx.onFlowMsg({ kind: 'xoff' }), protocolError, 'a second XOFF while stopped');
  tx.onFlowMsg({ kind: 'xon', kbpsEwma: 1234 });
  assert.equal(tx.canSend(), true);
  assert.equal(tx.advisedRate, 1234);
});

test('XonXoffStream refuses a stream SENDME, an early XOFF or XON at the client, and a buffer a peer overran', () => {
  assert.throws(() => new XonXoffStream('relay', P).onFlowMsg(STREAM_SENDME), protocolError);
  // A client that sent less than one XOFF limit (500 cells) refuses an XOFF (proposal 324 §4.1.4).
  const client = new XonXoffStream('client', P, () => 0);
  for (let i = 0; i < 499; i++) client.onSent(498);
  assert.throws(() => client.onFlowMsg({ kind: 'xoff' }), protocolError);
  const client2 = new XonXoffStream('client', P, () => 0);
  assert.throws(() => client2.onFlowMsg({ kind: 'xon', kbpsEwma: 0 }), protocolError);
  // A relay has nothing to check: its peer is the client.
  const relay = new XonXoffStream('relay', P, () => 0);
  relay.onFlowMsg({ kind: 'xoff' });
  relay.onFlowMsg({ kind: 'xon', kbpsEwma: 0 });
  assert.throws(() => relay.onDelivered(498, STREAM_BUFFER_HARD_LIMIT + 1), protocolError);
});

test('VegasController: as in Tor, slow start updates at every SENDME (CWND_UPDATE_RATE 1), and the first steady-state update is one steady period after it', () => {
  const v = new VegasController(P, new ClockHealth());
  assert.equal(cwndUpdateRate(P, 5000, true), 1);
  assert.equal(v.nextCcEvent, 1);
  const fill = () => {
    while (v.canSend) v.onSent();
  };
  // Round trips of 100 ms with the window kept full: no queue, slow start grows by 31 a SENDME.
  for (let i = 0; i < 6; i++) {
    fill();
    v.onSendme(100_000, false);
    assert.equal(v.inSlowStart, true);
    assert.equal(v.nextCcEvent, 1);
  }
  assert.equal(v.cwnd, 124 + 6 * 31);
  fill();
  v.onSendme(1_000_000, false); // a queue far above gamma: slow start ends at bdp + gamma
  assert.equal(v.inSlowStart, false);
  assert.equal(v.nextCcEvent, cwndUpdateRate(P, v.cwnd, false));
});
