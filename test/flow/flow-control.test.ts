/**
 * The flow-control interface's fixed-window implementation (src/flow/flow-control.ts,
 * docs/protocol.md §7): the same behaviour as Tor's windows, seen through
 * CircuitFlowControl / StreamFlowControl, plus the round-trip measurement a
 * congestion-control implementation would build on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FixedWindowCircuit, FixedWindowStream, STREAM_SENDME, fixedWindows, type CircuitFlowControl } from '../../src/flow/flow-control.js';
import { ProtocolError } from '../../src/errors.js';

const protocolError = (e: unknown) => e instanceof ProtocolError && e.code === 'ERR_PROTOCOL';
const digestOf = (n: number) => new Uint8Array(20).fill(n & 0xff).map((x, i) => (i === 0 ? n >> 8 : x));

/**
 * Send `n` cells, the i-th (1-based, counted from `from`) with digestOf(i),
 * given in one array overwritten for every cell as OnionLayer.sealDigest
 * gives it: the SENDMEs match only if onSent keeps copies.
 */
function sendCells(fc: CircuitFlowControl, n: number, from = 1): void {
  const layerDigest = new Uint8Array(20);
  for (let i = from; i < from + n; i++) {
    assert.equal(fc.canSend(), true);
    layerDigest.set(digestOf(i));
    fc.onSent(layerDigest);
  }
}

test('circuit: 1000 cells may be in flight; each SENDME must echo the digest after the 100th, 200th ... cell', () => {
  let now = 0;
  const fc = new FixedWindowCircuit(1000, 100, () => now);
  assert.deepEqual(fc.snapshot(), { inflight: 0, window: 1000, lastRttMs: null, minRttMs: null, algorithm: 'fixed', slowStart: false });
  sendCells(fc, 1000);
  assert.equal(fc.canSend(), false);
  assert.throws(() => fc.onSent(digestOf(1001)), protocolError);
  assert.equal(fc.snapshot().inflight, 1000);
  // Wrong digest, version 0, and the right digest of a later cell are all refused.
  assert.throws(() => fc.onSendme({ kind: 'sendme', version: 1, digest: digestOf(99) }), protocolError);
  assert.throws(() => fc.onSendme({ kind: 'sendme', version: 0, digest: null }), protocolError);
  assert.throws(() => fc.onSendme({ kind: 'sendme', version: 1, digest: digestOf(200) }), protocolError);
  now = 42;
  fc.onSendme({ kind: 'sendme', version: 1, digest: digestOf(100) });
  assert.equal(fc.canSend(), true);
  assert.deepEqual(fc.snapshot(), { inflight: 900, window: 1000, lastRttMs: 42, minRttMs: 42, algorithm: 'fixed', slowStart: false });
  now = 50;
  fc.onSendme({ kind: 'sendme', version: 1, digest: digestOf(200) });
  assert.deepEqual(fc.snapshot(), { inflight: 800, window: 1000, lastRttMs: 50, minRttMs: 42, algorithm: 'fixed', slowStart: false });
  sendCells(fc, 200, 1001);
  assert.equal(fc.canSend(), false);
  // The next owed digests: 300 ... 1000, then 1100 and 1200.
  for (const n of [300, 400, 500, 600, 700, 800, 900, 1000, 1100, 1200]) fc.onSendme({ kind: 'sendme', version: 1, digest: digestOf(n) });
  assert.equal(fc.snapshot().inflight, 0);
  // Nothing owed now.
  assert.throws(() => fc.onSendme({ kind: 'sendme', version: 1, digest: digestOf(1300) }), protocolError);
});

test('circuit: a SENDME is due after every 100th delivered cell and carries the digest after it', () => {
  const fc = fixedWindows.circuit();
  let asked = 0;
  const sendmes: Array<Uint8Array | null> = [];
  for (let i = 1; i <= 1000; i++) {
    const sendme = fc.onDelivered(() => {
      asked++;
      return digestOf(i);
    });
    if (sendme !== null) {
      assert.equal(sendme.kind, 'sendme');
      assert.equal(sendme.version, 1);
      sendmes.push(sendme.digest);
    }
  }
  assert.equal(asked, 10, 'the digest is read only when a SENDME is due');
  assert.deepEqual(sendmes, [100, 200, 300, 400, 500, 600, 700, 800, 900, 1000].map(digestOf));
  // Circuit SENDMEs go out on receipt (not on consumption), so the window reopens as each is sent:
  // a peer keeping to its window never overruns it.
  let more = 0;
  for (let i = 0; i < 10_000; i++) if (fc.onDelivered(() => digestOf(0)) !== null) more++;
  assert.equal(more, 100);
});

test('stream: 500 cells, a SENDME per 50 consumed, over-credit and overrun are ProtocolErrors; XON/XOFF have no place', () => {
  const fs = fixedWindows.stream();
  for (let i = 0; i < 500; i++) {
    assert.equal(fs.canSend(), true);
    fs.onSent(498);
  }
  assert.equal(fs.canSend(), false);
  assert.throws(() => fs.onSent(498), protocolError);
  fs.onFlowMsg(STREAM_SENDME);
  assert.equal(fs.canSend(), true);
  fs.onFlowMsg(STREAM_SENDME);
  assert.throws(() => {
    for (let i = 0; i < 20; i++) fs.onFlowMsg(STREAM_SENDME);
  }, protocolError);
  assert.throws(() => fs.onFlowMsg({ kind: 'xoff' }), protocolError);
  assert.throws(() => fs.onFlowMsg({ kind: 'xon', kbpsEwma: 0 }), protocolError);

  const rx = new FixedWindowStream();
  assert.equal(rx.takeFlowMsg(0), null);
  for (let i = 0; i < 49; i++) assert.equal(rx.onDelivered(498, 498 * (i + 1)), null, 'never an XOFF');
  assert.equal(rx.takeFlowMsg(0), null);
  rx.onDelivered(498, 0);
  assert.deepEqual(rx.takeFlowMsg(0), { kind: 'sendme', version: 0, digest: null });
  assert.equal(rx.takeFlowMsg(0), null);
  // The SENDME reopened the window to 500: exactly 500 more fit, then one more overruns.
  for (let i = 0; i < 500; i++) rx.onDelivered(498, 0);
  assert.throws(() => rx.onDelivered(498, 0), protocolError);
});
