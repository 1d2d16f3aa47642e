/**
 * RelayStream's inbox (src/stream/stream-inbox.ts, used by relay-stream.ts): DATA bodies that arrive
 * in one turn are copied, as they arrive, into one buffer handed to the
 * consumer as one chunk. The caller may reuse the bytes it passed as soon as
 * receiveData returns (the circuit passes views into a link frame). Over
 * random batches of random body sizes, with the caller's buffer overwritten
 * after every call, the consumer must read exactly the bytes sent, one chunk
 * per batch, and a small batch after a large one must not hand over the large
 * one's buffer. A seeded generator makes every case reproducible.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as turn } from 'node:timers/promises';
import { RelayStream, type StreamPort } from '../../src/stream/relay-stream.js';
import { StreamInbox } from '../../src/stream/stream-inbox.js';
import type { StreamFlowMsg } from '../../src/flow/flow-control.js';
import { RELAY_DATA_LENGTH } from '../../src/constants.js';
import { xorshift32 } from '../support/seeded-random.js';

const rng = (seed: number): ((n: number) => number) => xorshift32(seed).int;

/** A port that only records the flow messages the stream sends (the stream never sends DATA here). */
function recordingPort(): StreamPort & { flowMsgs: StreamFlowMsg[] } {
  const flowMsgs: StreamFlowMsg[] = [];
  return {
    flowMsgs,
    canSendData: () => true,
    dataRoomCells: () => Infinity,
    waitForRoom: () => {},
    sendData: () => {
      throw new Error('no DATA expected');
    },
    sendStreamFlowMsg: (_id, msg) => flowMsgs.push(msg),
    sendEnd: () => {},
    sendFin: () => {},
    wireClosed: () => {},
    release: () => {},
  };
}

test('inbox: batches of DATA reach the consumer byte-exact, one chunk per batch, while the caller reuses its buffer', async () => {
  for (let seed = 1; seed <= 40; seed++) {
    const int = rng(seed);
    const port = recordingPort();
    const stream = new RelayStream(5, port, { highWaterMark: 1 << 20 });
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    // The caller's frame: every body is a view into it, overwritten right after receiveData returns.
    const frame = new Uint8Array(RELAY_DATA_LENGTH + 16);
    const expected: number[] = [];
    const batches = 1 + int(8);
    let cells = 0;
    for (let b = 0; b < batches; b++) {
      // Up to 60 cells a batch, 450 in all: inside the fixed stream window of 500.
      const count = 1 + int(60);
      for (let c = 0; c < count; c++) {
        const length = 1 + int(RELAY_DATA_LENGTH);
        const at = int(16);
        for (let i = 0; i < length; i++) {
          const byte = int(256);
          frame[at + i] = byte;
          expected.push(byte);
        }
        stream.receiveData(frame.subarray(at, at + length));
        frame.fill(0xee);
        cells++;
      }
      await turn();
      assert.equal(chunks.length, b + 1, `seed ${seed}: batch ${b} came as one chunk`);
    }
    assert.ok(cells <= 480);
    const got = Buffer.concat(chunks);
    assert.equal(got.length, expected.length, `seed ${seed}: byte count`);
    assert.ok(got.equals(Buffer.from(expected)), `seed ${seed}: bytes`);
    stream.destroy();
  }
});

test('inbox: a small batch after a large one is handed over in a buffer of its own size', async () => {
  const port = recordingPort();
  const stream = new RelayStream(5, port, { highWaterMark: 1 << 20 });
  const chunks: Buffer[] = [];
  stream.on('data', (chunk: Buffer) => chunks.push(chunk));
  const body = new Uint8Array(RELAY_DATA_LENGTH).fill(7);
  for (let i = 0; i < 100; i++) stream.receiveData(body);
  await turn();
  stream.receiveData(body.subarray(0, 10));
  await turn();
  assert.equal(chunks.length, 2);
  assert.equal(chunks[0]!.length, 100 * RELAY_DATA_LENGTH);
  assert.equal(chunks[1]!.length, 10);
  // The second batch's inbox was sized for the first (49 800 bytes): what the consumer holds is a copy, not that buffer.
  assert.ok(chunks[1]!.buffer.byteLength < 100 * RELAY_DATA_LENGTH, `consumer holds a ${chunks[1]!.buffer.byteLength}-byte buffer for 10 bytes`);
  assert.ok(chunks[1]!.every((b) => b === 7));
  stream.destroy();
});

test('StreamInbox: appends are copies, kept in order across growth; take() empties it; clear() drops what it holds', () => {
  const inbox = new StreamInbox();
  assert.equal(inbox.take(), null);
  const body = new Uint8Array(RELAY_DATA_LENGTH).fill(7);
  for (let i = 0; i < 3; i++) {
    inbox.append(body);
    body.fill(i); // the caller reuses its buffer: the inbox holds copies
  }
  assert.equal(inbox.bytes, 3 * RELAY_DATA_LENGTH);
  const first = inbox.take()!;
  // 3 × 498 = 1494 bytes: the buffer grew twice (512 → 1024 → 2048) and kept every byte in order.
  assert.equal(first.length, 3 * RELAY_DATA_LENGTH);
  assert.deepEqual([first[0], first[RELAY_DATA_LENGTH], first[2 * RELAY_DATA_LENGTH]], [7, 0, 1]);
  assert.equal(inbox.bytes, 0);
  // A small batch next: exactly its bytes (the buffer-size rule is checked through RelayStream above).
  inbox.append(new Uint8Array(10).fill(9));
  const small = inbox.take()!;
  assert.equal(small.length, 10);
  assert.deepEqual([...small], new Array(10).fill(9));
  inbox.append(body);
  inbox.clear();
  assert.equal(inbox.bytes, 0);
  assert.equal(inbox.take(), null);
});
