/**
 * CircuitEdge flow tests over two edges back to back in memory (see
 * test/support/edge-pair.ts): bulk transfer both ways with authenticated
 * circuit SENDMEs, backpressure from a slow reader, END handling, abortAll,
 * and a congested transport.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RelayCommand } from '../../src/cell/relay-cell.js';
import { EndReason } from '../../src/cell/reasons.js';
import { crypto } from '../../src/crypto/crypto.js';
import { StreamEndedError } from '../../src/errors.js';
import {
  CIRCUIT_SENDME_INCREMENT,
  CIRCUIT_WINDOW_START,
  RELAY_DATA_LENGTH,
  STREAM_SENDME_INCREMENT,
  STREAM_WINDOW_START,
} from '../../src/constants.js';
import {
  TEST_TIMEOUT,
  TWO_MB,
  assertClean,
  circuitSendmes,
  collect,
  count,
  dataCells,
  makePair,
  settle,
  streamSendmes,
  until,
  wakeAll,
  within,
} from '../support/edge-pair.js';

// ---------------------------------------------------------------------------
// bulk transfer both ways

test('a stream carries 2 MB each way intact and in order; circuit and stream SENDMEs flow and authenticate', { timeout: TEST_TIMEOUT }, async () => {
  const { a, b } = makePair();
  const sa = a.edge.addStream(7);
  const sb = b.edge.addStream(7);
  const fromA = Buffer.from(crypto.randomBytes(TWO_MB));
  const fromB = Buffer.from(crypto.randomBytes(TWO_MB));
  const atB = collect(sb, TWO_MB);
  const atA = collect(sa, TWO_MB);
  // Uneven writes from a (each write is cut into cells of its own); one big write from b.
  let cellsFromA = 0;
  for (let off = 0, i = 0; off < TWO_MB; i++) {
    const n = Math.min(TWO_MB - off, 1000 + ((i * 7919) % 70_000));
    sa.write(fromA.subarray(off, off + n));
    cellsFromA += Math.ceil(n / RELAY_DATA_LENGTH);
    off += n;
  }
  sb.write(fromB);
  const cellsFromB = Math.ceil(TWO_MB / RELAY_DATA_LENGTH);

  const [gotAtB, gotAtA] = await within(Promise.all([atB.done, atA.done]), '2 MB each way', 20_000);
  assert.equal(gotAtB.length, TWO_MB);
  assert.equal(gotAtA.length, TWO_MB);
  assert.ok(gotAtB.equals(fromA), 'a → b bytes intact and in order');
  assert.ok(gotAtA.equals(fromB), 'b → a bytes intact and in order');
  await settle(a, b);
  assertClean(a, b);

  for (const [sender, receiver, cells] of [[a, b, cellsFromA], [b, a, cellsFromB]] as const) {
    assert.equal(dataCells(sender, 7), cells, `${sender.name} sent one DATA cell per ${RELAY_DATA_LENGTH} bytes`);
    assert.ok(cells > 4 * CIRCUIT_WINDOW_START);
    // One authenticated circuit SENDME per 100 DATA cells received, and every one was accepted.
    assert.equal(circuitSendmes(receiver), Math.floor(cells / CIRCUIT_SENDME_INCREMENT));
    // Stream SENDMEs: enough to have moved 2 MB through a 500-cell window, never more than owed.
    const ss = streamSendmes(receiver);
    assert.ok(ss >= Math.ceil((cells - STREAM_WINDOW_START) / STREAM_SENDME_INCREMENT), `stream SENDMEs ${ss}`);
    assert.ok(ss <= Math.floor(cells / STREAM_SENDME_INCREMENT), `stream SENDMEs ${ss}`);
  }
  assert.equal(count(a, RelayCommand.END) + count(b, RelayCommand.END), 0);

  // Close from a: b's readable ends, and both sides forget the stream.
  const bEnded = new Promise<void>((resolve) => sb.once('end', resolve));
  const aClosed = new Promise<void>((resolve) => sa.once('close', resolve));
  const bClosed = new Promise<void>((resolve) => sb.once('close', resolve));
  sa.end();
  await within(bEnded, "b's end");
  await within(Promise.all([aClosed, bClosed]), 'both streams to close');
  await settle(a, b);
  assertClean(a, b);
  assert.equal(count(a, RelayCommand.END), 1);
  assert.equal(count(b, RelayCommand.END), 0, 'END is not answered with END');
  assert.equal(a.edge.streamCount, 0);
  assert.equal(b.edge.streamCount, 0);
});

// ---------------------------------------------------------------------------
// backpressure

test('a reader that does not read stops the sender after one stream window (plus the readable buffer); reading resumes it', { timeout: TEST_TIMEOUT }, async () => {
  const { a, b } = makePair();
  const sa = a.edge.addStream(1);
  const sb = b.edge.addStream(1);
  const payload = Buffer.from(crypto.randomBytes(TWO_MB));
  let writeDone = false;
  sa.write(payload, () => {
    writeDone = true;
  });

  // Wait until the sender is stuck: nothing moves, nothing in flight.
  await settle(a, b);
  const pausedCells = dataCells(a, 1);
  // One stream window, plus at most the SENDMEs granted while the unread data still fit
  // under the readable high-water mark (64 KiB ≈ 132 cells, rounded up to whole increments).
  const hwmCells = Math.ceil(sb.readableHighWaterMark / RELAY_DATA_LENGTH);
  const bound = STREAM_WINDOW_START + Math.ceil(hwmCells / STREAM_SENDME_INCREMENT) * STREAM_SENDME_INCREMENT;
  assert.ok(pausedCells >= STREAM_WINDOW_START, `sent ${pausedCells}, at least one window`);
  assert.ok(pausedCells <= bound, `sent ${pausedCells} while the reader was paused (bound ${bound})`);
  assert.equal(writeDone, false);
  // Buffering at b is bounded by the window, too.
  assert.ok(sb.readableLength <= pausedCells * RELAY_DATA_LENGTH);

  // Still stuck a while later.
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(dataCells(a, 1), pausedCells);

  // Meanwhile another stream on the same circuit is not blocked by the stalled one.
  const sa2 = a.edge.addStream(2);
  const sb2 = b.edge.addStream(2);
  const other = Buffer.from(crypto.randomBytes(600_000));
  const got2 = collect(sb2, other.length);
  sa2.write(other);
  assert.ok((await within(got2.done, 'stream 2 data')).equals(other));
  assert.equal(dataCells(a, 1), pausedCells, 'stream 1 stayed stalled');

  // The consumer starts reading: everything arrives, in order.
  const got = collect(sb, TWO_MB);
  const all = await within(got.done, 'stream 1 data after resuming');
  assert.ok(all.equals(payload));
  await until(() => writeDone, 5000, 'write callback');
  await settle(a, b);
  assertClean(a, b);
});

test('backpressure through pipe(): a slow consumer bounds what the sender has in flight', { timeout: TEST_TIMEOUT }, async () => {
  const { a, b } = makePair();
  const sa = a.edge.addStream(9);
  const sb = b.edge.addStream(9);
  const payload = Buffer.from(crypto.randomBytes(400_000));
  sa.write(payload);
  const chunks: Buffer[] = [];
  let total = 0;
  let maxAhead = 0;
  // Read one chunk every couple of milliseconds; track how far the sender got ahead of the reader.
  const deadline = Date.now() + 20_000;
  while (total < payload.length) {
    if (Date.now() > deadline) throw new Error(`slow reader got only ${total} bytes`);
    await new Promise((r) => setTimeout(r, 1));
    const chunk = sb.read(4 * RELAY_DATA_LENGTH) as Buffer | null;
    if (chunk !== null) {
      chunks.push(chunk);
      total += chunk.length;
    } else if (sb.readableLength > 0 && sb.readableLength < 4 * RELAY_DATA_LENGTH) {
      const rest = sb.read() as Buffer | null;
      if (rest !== null) {
        chunks.push(rest);
        total += rest.length;
      }
    }
    const ahead = dataCells(a, 9) - Math.floor(total / RELAY_DATA_LENGTH);
    maxAhead = Math.max(maxAhead, ahead);
  }
  assert.ok(Buffer.concat(chunks).equals(payload));
  const hwmCells = Math.ceil(sb.readableHighWaterMark / RELAY_DATA_LENGTH);
  assert.ok(maxAhead <= STREAM_WINDOW_START + hwmCells + STREAM_SENDME_INCREMENT, `sender ran ${maxAhead} cells ahead`);
  await settle(a, b);
  assertClean(a, b);
});

// ---------------------------------------------------------------------------
// END

test('END DONE from one side ends the other side’s readable after its data; both forget the stream', { timeout: TEST_TIMEOUT }, async () => {
  const { a, b } = makePair();
  const sa = a.edge.addStream(3);
  const sb = b.edge.addStream(3);
  const got = collect(sa, Number.MAX_SAFE_INTEGER);
  const ended = new Promise<void>((resolve) => sa.once('end', resolve));
  const aClosed = new Promise<void>((resolve) => sa.once('close', resolve));
  const bClosed = new Promise<void>((resolve) => sb.once('close', resolve));
  sb.resume(); // b reads too (as a pipe to a socket would), so its readable can end
  sb.end(Buffer.from('last words'));
  await within(ended, "a's end");
  assert.equal(got.received(), 'last words'.length);
  await within(Promise.all([aClosed, bClosed]), 'both streams to close');
  assert.equal(sa.errored, null);
  await settle(a, b);
  assertClean(a, b);
  assert.equal(a.edge.streamCount, 0);
  assert.equal(b.edge.streamCount, 0);
  // a wrote nothing after END: no DATA, no END back.
  assert.equal(a.sent.length, 0);
});

test('END with another reason destroys the other side with StreamEndedError carrying that reason', { timeout: TEST_TIMEOUT }, async () => {
  // The peer's stream fails with a reason (the exit's "connection lost" path).
  {
    const { a, b } = makePair();
    const sa = a.edge.addStream(3);
    const sb = b.edge.addStream(3);
    const failed = new Promise<unknown>((resolve) => sa.once('error', resolve));
    sb.on('error', () => {});
    sb.destroy(new StreamEndedError(EndReason.CONNRESET, 'connection lost'));
    const error = await within(failed, 'error at a');
    assert.ok(error instanceof StreamEndedError);
    assert.equal(error.code, 'ERR_STREAM_ENDED');
    assert.equal(error.reason, EndReason.CONNRESET);
    await settle(a, b);
    assertClean(a, b);
    assert.equal(a.edge.streamCount, 0);
    assert.equal(b.edge.streamCount, 0);
  }
  // Any other failure is reported as MISC.
  {
    const { a, b } = makePair();
    const sa = a.edge.addStream(3);
    const sb = b.edge.addStream(3);
    const failed = new Promise<unknown>((resolve) => sa.once('error', resolve));
    sb.on('error', () => {});
    sb.destroy(new Error('boom'));
    const error = await within(failed, 'error at a');
    assert.ok(error instanceof StreamEndedError);
    assert.equal(error.reason, EndReason.MISC);
    await settle(a, b);
    assertClean(a, b);
  }
  // A refused stream (END without a RelayStream at the far side).
  {
    const { a, b } = makePair();
    const sa = a.edge.addStream(8);
    const failed = new Promise<unknown>((resolve) => sa.once('error', resolve));
    b.edge.refuse(8, EndReason.EXITPOLICY);
    const error = await within(failed, 'error at a');
    assert.ok(error instanceof StreamEndedError);
    assert.equal(error.reason, EndReason.EXITPOLICY);
    await settle(a, b);
    assertClean(a, b);
    assert.equal(a.edge.hasStream(8), false);
  }
});

test('abortAll fails every stream with the given error', async () => {
  const { a } = makePair();
  const s1 = a.edge.addStream(1);
  const s2 = a.edge.addStream(2);
  const boom = new Error('circuit destroyed');
  const errors = Promise.all([s1, s2].map((s) => new Promise<unknown>((resolve) => s.once('error', resolve))));
  a.edge.abortAll(boom);
  assert.deepEqual(await within(errors, 'abort errors'), [boom, boom]);
  assert.equal(a.edge.streamCount, 0);
  // Aborted streams send no END: the circuit is gone.
  assert.equal(a.sent.length, 0);
});

// ---------------------------------------------------------------------------
// congestion

test('a congested transport holds DATA until onRoom wakes the edge', { timeout: TEST_TIMEOUT }, async () => {
  const { a, b } = makePair();
  let congested = true;
  a.congested = () => congested;
  const s1 = a.edge.addStream(1);
  const s2 = a.edge.addStream(2);
  const r1 = b.edge.addStream(1);
  const r2 = b.edge.addStream(2);
  const p1 = Buffer.from(crypto.randomBytes(100_000));
  const p2 = Buffer.from(crypto.randomBytes(100_000));
  const g1 = collect(r1, p1.length);
  const g2 = collect(r2, p2.length);
  s1.write(p1);
  s2.write(p2);
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(dataCells(a), 0, 'nothing sent while congested');
  assert.equal(a.onRoomCalls, 1, 'one onRoom registration for both waiting streams');
  // A spurious wake while still congested sends nothing and re-arms.
  wakeAll(a);
  await new Promise((r) => setTimeout(r, 10));
  assert.equal(dataCells(a), 0);
  assert.equal(a.onRoomCalls, 2);

  congested = false;
  wakeAll(a);
  assert.ok((await within(g1.done, 'stream 1 data')).equals(p1));
  assert.ok((await within(g2.done, 'stream 2 data')).equals(p2));
  await settle(a, b);
  assertClean(a, b);
});

test('a link with a high-water mark: DATA in flight never exceeds it, and the transfer completes', { timeout: TEST_TIMEOUT }, async () => {
  const { a, b } = makePair();
  const HIGH = 16;
  a.congested = () => a.inFlight >= HIGH;
  let maxInFlight = 0;
  // Drain notifications: when the queue falls below the mark, wake whoever asked.
  const timer = setInterval(() => {
    maxInFlight = Math.max(maxInFlight, a.inFlight);
    if (a.inFlight < HIGH) wakeAll(a);
  }, 1);
  try {
    const sa = a.edge.addStream(1);
    const sb = b.edge.addStream(1);
    const payload = Buffer.from(crypto.randomBytes(300_000));
    const got = collect(sb, payload.length);
    const origSend = a.edge.sendData.bind(a.edge);
    a.edge.sendData = (id, data) => {
      assert.ok(a.inFlight < HIGH, 'DATA sent while congested');
      origSend(id, data);
      maxInFlight = Math.max(maxInFlight, a.inFlight);
    };
    sa.write(payload);
    assert.ok((await within(got.done, 'data')).equals(payload));
    assert.ok(maxInFlight <= HIGH + 1, `max in flight ${maxInFlight}`);
    assert.ok(a.onRoomCalls > 0, 'the edge waited for room');
    await settle(a, b);
    assertClean(a, b);
  } finally {
    clearInterval(timer);
  }
});
