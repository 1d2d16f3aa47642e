/**
 * CircuitEdge protocol rules, driven by calling handle() directly on a lone
 * edge (see test/support/edge-pair.ts): SENDME, DATA and END violations are
 * ProtocolErrors, cells for recently ended streams are dropped, and commands
 * the edge does not own are left to its owner.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RelayCommand } from '../../src/cell/relay-cell.js';
import { encodeSendmeV1 } from '../../src/cell/sendme.js';
import { encodeEnd } from '../../src/cell/stream-messages.js';
import { EndReason } from '../../src/cell/reasons.js';
import {
  CIRCUIT_SENDME_INCREMENT,
  RELAY_DATA_LENGTH,
  STREAM_SENDME_INCREMENT,
  STREAM_WINDOW_START,
} from '../../src/constants.js';
import { handleRaw, lone, noDigest, protocolError, within } from '../support/edge-pair.js';

// ---------------------------------------------------------------------------
// protocol violations, driven by calling handle() directly

test('circuit SENDME: the right digest credits the window, a wrong digest is a ProtocolError', () => {
  for (const wrong of [false, true]) {
    const r = lone();
    const s = r.edge.addStream(3);
    s.write(Buffer.alloc(CIRCUIT_SENDME_INCREMENT * RELAY_DATA_LENGTH, 0x41));
    const data = r.sent.filter((c) => c.command === RelayCommand.DATA);
    assert.equal(data.length, CIRCUIT_SENDME_INCREMENT);
    const expected = data[CIRCUIT_SENDME_INCREMENT - 1]!.digest;
    const digest = wrong ? Uint8Array.from(expected, (x, i) => (i === 19 ? x ^ 1 : x)) : expected;
    const call = () => handleRaw(r.edge, RelayCommand.SENDME, 0, encodeSendmeV1(digest), noDigest);
    if (wrong) assert.throws(call, protocolError);
    else assert.equal(call(), true);
  }
});

test('circuit SENDME: version 0, or one nothing was owed for, is a ProtocolError', () => {
  {
    const r = lone();
    r.edge.addStream(3).write(Buffer.alloc(CIRCUIT_SENDME_INCREMENT * RELAY_DATA_LENGTH));
    assert.throws(() => handleRaw(r.edge, RelayCommand.SENDME, 0, new Uint8Array(0), noDigest), protocolError);
  }
  {
    const r = lone();
    r.edge.addStream(3).write(Buffer.alloc(CIRCUIT_SENDME_INCREMENT * RELAY_DATA_LENGTH));
    assert.throws(() => handleRaw(r.edge, RelayCommand.SENDME, 0, new Uint8Array([0, 0, 0]), noDigest), protocolError);
  }
  {
    // 99 cells: no digest remembered yet, so even a "matching" SENDME is unexpected.
    const r = lone();
    r.edge.addStream(3).write(Buffer.alloc((CIRCUIT_SENDME_INCREMENT - 1) * RELAY_DATA_LENGTH));
    const last = r.sent[r.sent.length - 1]!.digest;
    assert.throws(() => handleRaw(r.edge, RelayCommand.SENDME, 0, encodeSendmeV1(last), noDigest), protocolError);
  }
});

test('stream SENDME beyond the stream window is a ProtocolError', () => {
  const r = lone();
  r.edge.addStream(4);
  assert.throws(() => handleRaw(r.edge, RelayCommand.SENDME, 4, new Uint8Array(0), noDigest), protocolError);
});

test('DATA for a never-opened stream, or on stream 0, is a ProtocolError; so are SENDME/END for unknown streams', () => {
  const r = lone();
  r.edge.addStream(1);
  assert.throws(() => handleRaw(r.edge, RelayCommand.DATA, 2, new Uint8Array([1]), noDigest), protocolError);
  assert.throws(() => handleRaw(r.edge, RelayCommand.DATA, 0, new Uint8Array([1]), noDigest), protocolError);
  assert.throws(() => handleRaw(r.edge, RelayCommand.SENDME, 2, new Uint8Array(0), noDigest), protocolError);
  assert.throws(() => handleRaw(r.edge, RelayCommand.END, 2, encodeEnd(EndReason.DONE), noDigest), protocolError);
  assert.throws(() => handleRaw(r.edge, RelayCommand.END, 0, encodeEnd(EndReason.DONE), noDigest), protocolError);
});

test('cells for a recently ended stream are dropped without error, and still count against the circuit window', async () => {
  const r = lone();
  // Ended by the peer.
  const s1 = r.edge.addStream(1);
  s1.on('error', () => {});
  assert.equal(handleRaw(r.edge, RelayCommand.END, 1, encodeEnd(EndReason.DONE), noDigest), true);
  assert.equal(r.edge.hasStream(1), false);
  // Ended locally.
  const s2 = r.edge.addStream(2);
  s2.destroy();
  await within(new Promise((res) => s2.once('close', res)), 'close');
  assert.equal(r.edge.hasStream(2), false);
  assert.equal(r.sent.filter((c) => c.command === RelayCommand.END && c.streamId === 2).length, 1);

  for (const id of [1, 2]) {
    for (let i = 0; i < CIRCUIT_SENDME_INCREMENT / 2; i++) {
      assert.equal(handleRaw(r.edge, RelayCommand.DATA, id, new Uint8Array(10), () => new Uint8Array(20).fill(id)), true);
    }
    assert.equal(handleRaw(r.edge, RelayCommand.SENDME, id, new Uint8Array(0), noDigest), true);
    assert.equal(handleRaw(r.edge, RelayCommand.END, id, encodeEnd(EndReason.MISC), noDigest), true);
  }
  // 100 dropped DATA cells made one circuit SENDME due.
  const sendmes = r.sent.filter((c) => c.command === RelayCommand.SENDME && c.streamId === 0);
  assert.equal(sendmes.length, 1);
  assert.deepEqual(sendmes[0]!.data, encodeSendmeV1(new Uint8Array(20).fill(2)));
  // A stream id can be reused after it ended.
  r.edge.addStream(1);
  assert.throws(() => r.edge.addStream(1), protocolError);
  assert.throws(() => r.edge.addStream(0), protocolError);
});

test('a peer overrunning a stream window whose reader is stalled is a ProtocolError', () => {
  const r = lone();
  r.edge.addStream(5);
  let accepted = 0;
  const digest = () => new Uint8Array(20);
  assert.throws(() => {
    for (;;) {
      handleRaw(r.edge, RelayCommand.DATA, 5, new Uint8Array(RELAY_DATA_LENGTH), digest);
      accepted++;
      if (accepted > 10 * STREAM_WINDOW_START) break;
    }
  }, protocolError);
  // SENDMEs went out only while the unread data fit under the readable high-water mark.
  const granted = r.sent.filter((c) => c.command === RelayCommand.SENDME && c.streamId === 5).length;
  assert.equal(accepted, STREAM_WINDOW_START + granted * STREAM_SENDME_INCREMENT);
  assert.ok(accepted <= STREAM_WINDOW_START + 3 * STREAM_SENDME_INCREMENT, `accepted ${accepted}`);
});
