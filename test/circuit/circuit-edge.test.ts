/**
 * Two CircuitEdge instances back to back in memory. Each side's transport
 * encodes the relay message, feeds it to a running SHA-1 kept per direction
 * (as tor1's Df/Db digests are), and delivers it to the other edge on a later
 * turn of the event loop, like a link would. The receiver feeds the same
 * payload to its own copy of that direction's digest, so the digest the sender
 * remembers after a DATA cell equals the one the receiver echoes in its
 * version-1 circuit SENDME.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitEdge, type EdgeTransport } from '../../src/circuit/circuit-edge.js';
import { RelayCommand, decodeRelayCell, encodeRelayCell } from '../../src/cell/relay-cell.js';
import { encodeSendmeV1 } from '../../src/cell/sendme.js';
import { encodeEnd } from '../../src/cell/stream-messages.js';
import { EndReason } from '../../src/cell/reasons.js';
import { crypto, type RunningDigest } from '../../src/crypto/crypto.js';
import { ProtocolError, StreamEndedError } from '../../src/errors.js';
import { equalBytes } from '../../src/bytes.js';
import {
  CIRCUIT_SENDME_INCREMENT,
  CIRCUIT_WINDOW_START,
  RELAY_DATA_LENGTH,
  STREAM_SENDME_INCREMENT,
  STREAM_WINDOW_START,
} from '../../src/constants.js';
import type { RelayStream } from '../../src/stream/relay-stream.js';

const TEST_TIMEOUT = 30_000;
const protocolError = (e: unknown) => e instanceof ProtocolError && e.code === 'ERR_PROTOCOL';

interface SentCell {
  command: number;
  streamId: number;
  length: number;
}

interface Side {
  readonly name: string;
  edge: CircuitEdge;
  readonly sendDigest: RunningDigest;
  readonly recvDigest: RunningDigest;
  /** Every cell this side sent, in order. */
  readonly sent: SentCell[];
  /** Errors thrown by this side's handle(): the owner would destroy the circuit. */
  readonly errors: unknown[];
  /** Cells this side sent that the other side has not handled yet. */
  inFlight: number;
  /** Simulated link congestion toward the other side. */
  congested: () => boolean;
  readonly roomWaiters: Array<() => void>;
  onRoomCalls: number;
  /** Cells whose digests did not agree at both ends (must stay 0). */
  digestMismatches: number;
}

function makeSide(name: string, sendSeed: Uint8Array, recvSeed: Uint8Array): Side {
  return {
    name,
    edge: undefined as unknown as CircuitEdge,
    sendDigest: crypto.runningSha1(sendSeed),
    recvDigest: crypto.runningSha1(recvSeed),
    sent: [],
    errors: [],
    inFlight: 0,
    congested: () => false,
    roomWaiters: [],
    onRoomCalls: 0,
    digestMismatches: 0,
  };
}

function transport(from: Side, to: Side): EdgeTransport {
  return {
    send(command, streamId, data) {
      const payload = encodeRelayCell({ command, streamId, data });
      from.sendDigest.update(payload);
      const digest = from.sendDigest.peek();
      from.sent.push({ command, streamId, length: data.length });
      from.inFlight++;
      setImmediate(() => {
        from.inFlight--;
        to.recvDigest.update(payload);
        if (!equalBytes(to.recvDigest.peek(), digest)) from.digestMismatches++;
        const m = decodeRelayCell(payload);
        try {
          const handled = to.edge.handle(m.command, m.streamId, m.data, () => to.recvDigest.peek());
          if (!handled) to.errors.push(new Error(`unhandled command ${m.command}`));
        } catch (error) {
          to.errors.push(error);
        }
      });
      return digest;
    },
    congested: () => from.congested(),
    onRoom(wake) {
      from.onRoomCalls++;
      from.roomWaiters.push(wake);
    },
  };
}

function makePair(): { a: Side; b: Side } {
  const df = crypto.randomBytes(20);
  const db = crypto.randomBytes(20);
  const a = makeSide('a', df, db);
  const b = makeSide('b', db, df);
  a.edge = new CircuitEdge(transport(a, b));
  b.edge = new CircuitEdge(transport(b, a));
  return { a, b };
}

function wakeAll(side: Side): void {
  const waiters = side.roomWaiters.splice(0);
  for (const w of waiters) w();
}

function count(side: Side, command: number, pred: (c: SentCell) => boolean = () => true): number {
  return side.sent.filter((c) => c.command === command && pred(c)).length;
}
const dataCells = (side: Side, streamId?: number) =>
  count(side, RelayCommand.DATA, (c) => streamId === undefined || c.streamId === streamId);
const circuitSendmes = (side: Side) => count(side, RelayCommand.SENDME, (c) => c.streamId === 0);
const streamSendmes = (side: Side) => count(side, RelayCommand.SENDME, (c) => c.streamId !== 0);

/** Resolves once `cond()` holds, polling each macrotask; rejects after `ms`. */
async function until(cond: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** Bounded wait: rejects with `what` if `promise` has not settled after `ms`. */
async function within<T>(promise: Promise<T>, what: string, ms = 10_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves once no cell is in flight either way and nothing moved for a few event-loop turns. */
async function settle(a: Side, b: Side): Promise<void> {
  let last = -1;
  let stable = 0;
  const deadline = Date.now() + 10_000;
  while (stable < 5) {
    if (Date.now() > deadline) throw new Error('never settled');
    await new Promise((r) => setTimeout(r, 2));
    const now = a.sent.length + b.sent.length;
    stable = now === last && a.inFlight === 0 && b.inFlight === 0 ? stable + 1 : 0;
    last = now;
  }
}

/** Collects everything the stream yields into one buffer; `expected` bytes resolves it. */
function collect(stream: RelayStream, expected: number): { done: Promise<Buffer>; received: () => number } {
  const chunks: Buffer[] = [];
  let total = 0;
  const done = new Promise<Buffer>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      total += chunk.length;
      if (total >= expected) resolve(Buffer.concat(chunks));
    });
    stream.on('error', reject);
  });
  return { done, received: () => total };
}

function assertClean(...sides: Side[]): void {
  for (const s of sides) {
    assert.deepEqual(s.errors, [], `side ${s.name} handle() errors`);
    assert.equal(s.digestMismatches, 0, `side ${s.name} digest mismatches`);
  }
}

const TWO_MB = 2 * 1024 * 1024;

// ---------------------------------------------------------------------------
// (a) bulk transfer both ways

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
// (b) backpressure

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
// (c) protocol violations, driven by calling handle() directly

interface Recorder {
  edge: CircuitEdge;
  sent: Array<{ command: number; streamId: number; data: Uint8Array; digest: Uint8Array }>;
}

/** A lone edge whose transport records cells and returns a real running digest. */
function lone(): Recorder {
  const digest = crypto.runningSha1(crypto.randomBytes(20));
  const sent: Recorder['sent'] = [];
  const edge = new CircuitEdge({
    send(command, streamId, data) {
      digest.update(encodeRelayCell({ command, streamId, data }));
      const d = digest.peek();
      sent.push({ command, streamId, data: Uint8Array.from(data), digest: d });
      return d;
    },
    congested: () => false,
    onRoom: () => {},
  });
  return { edge, sent };
}

const noDigest = () => new Uint8Array(20);

test('circuit SENDME: the right digest credits the window, a wrong digest is a ProtocolError', () => {
  for (const wrong of [false, true]) {
    const r = lone();
    const s = r.edge.addStream(3);
    s.write(Buffer.alloc(CIRCUIT_SENDME_INCREMENT * RELAY_DATA_LENGTH, 0x41));
    const data = r.sent.filter((c) => c.command === RelayCommand.DATA);
    assert.equal(data.length, CIRCUIT_SENDME_INCREMENT);
    const expected = data[CIRCUIT_SENDME_INCREMENT - 1]!.digest;
    const digest = wrong ? Uint8Array.from(expected, (x, i) => (i === 19 ? x ^ 1 : x)) : expected;
    const call = () => r.edge.handle(RelayCommand.SENDME, 0, encodeSendmeV1(digest), noDigest);
    if (wrong) assert.throws(call, protocolError);
    else assert.equal(call(), true);
  }
});

test('circuit SENDME: version 0, or one nothing was owed for, is a ProtocolError', () => {
  {
    const r = lone();
    r.edge.addStream(3).write(Buffer.alloc(CIRCUIT_SENDME_INCREMENT * RELAY_DATA_LENGTH));
    assert.throws(() => r.edge.handle(RelayCommand.SENDME, 0, new Uint8Array(0), noDigest), protocolError);
  }
  {
    const r = lone();
    r.edge.addStream(3).write(Buffer.alloc(CIRCUIT_SENDME_INCREMENT * RELAY_DATA_LENGTH));
    assert.throws(() => r.edge.handle(RelayCommand.SENDME, 0, new Uint8Array([0, 0, 0]), noDigest), protocolError);
  }
  {
    // 99 cells: no digest remembered yet, so even a "matching" SENDME is unexpected.
    const r = lone();
    r.edge.addStream(3).write(Buffer.alloc((CIRCUIT_SENDME_INCREMENT - 1) * RELAY_DATA_LENGTH));
    const last = r.sent[r.sent.length - 1]!.digest;
    assert.throws(() => r.edge.handle(RelayCommand.SENDME, 0, encodeSendmeV1(last), noDigest), protocolError);
  }
});

test('stream SENDME beyond the stream window is a ProtocolError', () => {
  const r = lone();
  r.edge.addStream(4);
  assert.throws(() => r.edge.handle(RelayCommand.SENDME, 4, new Uint8Array(0), noDigest), protocolError);
});

test('DATA for a never-opened stream, or on stream 0, is a ProtocolError; so are SENDME/END for unknown streams', () => {
  const r = lone();
  r.edge.addStream(1);
  assert.throws(() => r.edge.handle(RelayCommand.DATA, 2, new Uint8Array([1]), noDigest), protocolError);
  assert.throws(() => r.edge.handle(RelayCommand.DATA, 0, new Uint8Array([1]), noDigest), protocolError);
  assert.throws(() => r.edge.handle(RelayCommand.SENDME, 2, new Uint8Array(0), noDigest), protocolError);
  assert.throws(() => r.edge.handle(RelayCommand.END, 2, encodeEnd(EndReason.DONE), noDigest), protocolError);
  assert.throws(() => r.edge.handle(RelayCommand.END, 0, encodeEnd(EndReason.DONE), noDigest), protocolError);
});

test('cells for a recently ended stream are dropped without error, and still count against the circuit window', async () => {
  const r = lone();
  // Ended by the peer.
  const s1 = r.edge.addStream(1);
  s1.on('error', () => {});
  assert.equal(r.edge.handle(RelayCommand.END, 1, encodeEnd(EndReason.DONE), noDigest), true);
  assert.equal(r.edge.hasStream(1), false);
  // Ended locally.
  const s2 = r.edge.addStream(2);
  s2.destroy();
  await within(new Promise((res) => s2.once('close', res)), 'close');
  assert.equal(r.edge.hasStream(2), false);
  assert.equal(r.sent.filter((c) => c.command === RelayCommand.END && c.streamId === 2).length, 1);

  for (const id of [1, 2]) {
    for (let i = 0; i < CIRCUIT_SENDME_INCREMENT / 2; i++) {
      assert.equal(r.edge.handle(RelayCommand.DATA, id, new Uint8Array(10), () => new Uint8Array(20).fill(id)), true);
    }
    assert.equal(r.edge.handle(RelayCommand.SENDME, id, new Uint8Array(0), noDigest), true);
    assert.equal(r.edge.handle(RelayCommand.END, id, encodeEnd(EndReason.MISC), noDigest), true);
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
      r.edge.handle(RelayCommand.DATA, 5, new Uint8Array(RELAY_DATA_LENGTH), digest);
      accepted++;
      if (accepted > 10 * STREAM_WINDOW_START) break;
    }
  }, protocolError);
  // SENDMEs went out only while the unread data fit under the readable high-water mark.
  const granted = r.sent.filter((c) => c.command === RelayCommand.SENDME && c.streamId === 5).length;
  assert.equal(accepted, STREAM_WINDOW_START + granted * STREAM_SENDME_INCREMENT);
  assert.ok(accepted <= STREAM_WINDOW_START + 3 * STREAM_SENDME_INCREMENT, `accepted ${accepted}`);
});

test('handle() leaves other commands to the owner', () => {
  const r = lone();
  for (const command of [RelayCommand.BEGIN, RelayCommand.CONNECTED, RelayCommand.EXTENDED2, RelayCommand.DROP]) {
    assert.equal(r.edge.handle(command, 1, new Uint8Array(0), noDigest), false);
  }
  assert.equal(r.sent.length, 0);
});

// ---------------------------------------------------------------------------
// (d) END

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
// (e) congestion

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
