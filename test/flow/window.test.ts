import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DeliverWindow, PackageWindow } from '../../src/flow/window.js';
import {
  CIRCUIT_SENDME_INCREMENT,
  CIRCUIT_WINDOW_START,
  STREAM_SENDME_INCREMENT,
  STREAM_WINDOW_START,
} from '../../src/constants.js';
import { ProtocolError } from '../../src/errors.js';

const protocolError = (e: unknown) => e instanceof ProtocolError && e.code === 'ERR_PROTOCOL';

test('constants are Tor’s windows', () => {
  assert.equal(CIRCUIT_WINDOW_START, 1000);
  assert.equal(CIRCUIT_SENDME_INCREMENT, 100);
  assert.equal(STREAM_WINDOW_START, 500);
  assert.equal(STREAM_SENDME_INCREMENT, 50);
});

for (const [label, start, increment] of [
  ['circuit', CIRCUIT_WINDOW_START, CIRCUIT_SENDME_INCREMENT],
  ['stream', STREAM_WINDOW_START, STREAM_SENDME_INCREMENT],
] as const) {
  test(`PackageWindow (${label}): take() is true exactly on every ${increment}th cell, until empty`, () => {
    const w = new PackageWindow(start, increment);
    assert.equal(w.value, start);
    assert.equal(w.open, true);
    const marks: number[] = [];
    for (let i = 1; i <= start; i++) {
      if (w.take()) marks.push(i);
      assert.equal(w.value, start - i);
    }
    assert.deepEqual(
      marks,
      Array.from({ length: start / increment }, (_, k) => (k + 1) * increment),
    );
    assert.equal(w.value, 0);
    assert.equal(w.open, false);
    // Sending with an empty window is a protocol violation, and changes nothing.
    assert.throws(() => w.take(), protocolError);
    assert.equal(w.value, 0);
  });

  test(`PackageWindow (${label}): credit adds one increment, over-credit is a ProtocolError`, () => {
    const w = new PackageWindow(start, increment);
    // A full window cannot take a SENDME.
    assert.throws(() => w.credit(), protocolError);
    assert.equal(w.value, start);
    for (let i = 0; i < increment; i++) w.take();
    w.credit();
    assert.equal(w.value, start);
    assert.throws(() => w.credit(), protocolError);
    // Partially used: one credit fits only once a full increment is out.
    for (let i = 0; i < increment - 1; i++) w.take();
    assert.throws(() => w.credit(), protocolError);
    assert.equal(w.value, start - increment + 1);
    w.take();
    w.credit();
    assert.equal(w.value, start);
  });

  test(`PackageWindow (${label}): the every-${increment}th marks stay aligned across credits`, () => {
    const w = new PackageWindow(start, increment);
    let sent = 0;
    let marks = 0;
    let credits = 0;
    // Interleave: send until empty, credit two increments, send again ... for several rounds.
    for (let round = 0; round < 5; round++) {
      while (w.open) {
        sent++;
        if (w.take()) {
          marks++;
          assert.equal(sent % increment, 0, `mark at cell ${sent}`);
        }
      }
      w.credit();
      w.credit();
      credits += 2;
    }
    assert.equal(sent, start + (credits - 2) * increment);
    assert.equal(marks, sent / increment);
  });

  test(`DeliverWindow (${label}): sendmeDue after each ${increment} cells, sentSendme restores, overrun throws`, () => {
    const w = new DeliverWindow(start, increment);
    assert.equal(w.value, start);
    assert.equal(w.sendmeDue, false);
    let sendmes = 0;
    for (let i = 1; i <= 3 * start; i++) {
      w.take();
      if (i % increment === 0) {
        assert.equal(w.sendmeDue, true, `due after cell ${i}`);
        w.sentSendme();
        sendmes++;
        assert.equal(w.sendmeDue, false);
        assert.equal(w.value, start);
      } else {
        assert.equal(w.sendmeDue, false, `not due after cell ${i}`);
      }
    }
    assert.equal(sendmes, (3 * start) / increment);
  });

  test(`DeliverWindow (${label}): a peer sending past the window without SENDMEs is a ProtocolError`, () => {
    const w = new DeliverWindow(start, increment);
    for (let i = 0; i < start; i++) w.take();
    assert.equal(w.value, 0);
    assert.equal(w.sendmeDue, true);
    assert.throws(() => w.take(), protocolError);
    assert.equal(w.value, 0);
    // Several SENDMEs may be owed at once; each one restores an increment.
    let owed = 0;
    while (w.sendmeDue) {
      w.sentSendme();
      owed++;
    }
    assert.equal(owed, start / increment);
    assert.equal(w.value, start);
  });
}

test('package and deliver windows agree: a sender never overruns a receiver that sends SENDMEs as due', () => {
  const send = new PackageWindow(CIRCUIT_WINDOW_START, CIRCUIT_SENDME_INCREMENT);
  const recv = new DeliverWindow(CIRCUIT_WINDOW_START, CIRCUIT_SENDME_INCREMENT);
  let inFlightSendmes = 0;
  let delivered = 0;
  for (let step = 0; step < 20_000; step++) {
    if (send.open && step % 3 !== 0) {
      send.take();
      recv.take();
      delivered++;
      if (recv.sendmeDue) {
        recv.sentSendme();
        inFlightSendmes++;
      }
    } else if (inFlightSendmes > 0) {
      send.credit();
      inFlightSendmes--;
    }
  }
  assert.ok(delivered > 10_000);
  assert.ok(send.value >= 0 && send.value <= CIRCUIT_WINDOW_START);
});
