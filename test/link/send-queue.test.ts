/**
 * A link's send queue (src/link/send-queue.ts, LinkOutbox): cells packed in
 * order into frames of SEND_FRAME_CELLS, frames taken oldest first, spare
 * buffers reused up to a bound, and the memory cap's walks (bytes per
 * circuit, dropping one circuit's cells) exact over frame boundaries.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LinkOutbox, SEND_FRAME_CELLS } from '../../src/link/send-queue.js';
import { CELL_LENGTH } from '../../src/constants.js';

/** A 514-byte cell on circuit `id` whose last byte is `tag`. */
function cell(id: number, tag: number): Uint8Array {
  const c = new Uint8Array(CELL_LENGTH);
  new DataView(c.buffer).setUint32(0, id);
  c[CELL_LENGTH - 1] = tag;
  return c;
}

/** Every queued cell as [circuit id, tag], oldest first, emptying the outbox. */
function drain(outbox: LinkOutbox): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (let frame = outbox.takeFrame(); frame !== undefined; frame = outbox.takeFrame()) {
    assert.ok(frame.cells >= 1 && frame.cells <= SEND_FRAME_CELLS, `a frame of ${frame.cells} cells`);
    for (let i = 0; i < frame.cells; i++) {
      const c = frame.buf.subarray(i * CELL_LENGTH, (i + 1) * CELL_LENGTH);
      out.push([new DataView(c.buffer, c.byteOffset).getUint32(0), c[CELL_LENGTH - 1]!]);
    }
    outbox.recycle(frame.buf);
  }
  return out;
}

test('LinkOutbox: cells in order, frames of up to 31 cells, counts and age', () => {
  const outbox = new LinkOutbox();
  assert.equal(outbox.oldestQueuedAt, null);
  const source = cell(7, 0);
  for (let i = 0; i < 70; i++) {
    source[CELL_LENGTH - 1] = i;
    // The outbox copies: the caller reuses its cell.
    outbox.append(source);
  }
  assert.equal(outbox.cells, 70);
  assert.equal(outbox.bytes, 70 * CELL_LENGTH);
  assert.equal(typeof outbox.oldestQueuedAt, 'number');
  const first = outbox.takeFrame()!;
  assert.equal(first.cells, SEND_FRAME_CELLS);
  assert.equal(outbox.cells, 70 - SEND_FRAME_CELLS);
  outbox.recycle(first.buf);
  assert.deepEqual(drain(outbox).map(([, tag]) => tag), Array.from({ length: 70 - SEND_FRAME_CELLS }, (_, i) => i + SEND_FRAME_CELLS));
  assert.equal(outbox.cells, 0);
  assert.equal(outbox.oldestQueuedAt, null);
});

test('LinkOutbox: one circuit dropped across frame boundaries, the rest packed in order; byCircuit counts exactly', () => {
  const outbox = new LinkOutbox();
  const want: Array<[number, number]> = [];
  for (let i = 0; i < 100; i++) {
    const id = i % 3 === 0 ? 1 : 2;
    outbox.append(cell(id, i));
    if (id === 2) want.push([2, i]);
  }
  assert.deepEqual([...outbox.byCircuit()].map(([id, q]) => [id, q.bytes]), [[1, 34 * CELL_LENGTH], [2, 66 * CELL_LENGTH]]);
  assert.equal(outbox.dropCircuit(1), 34);
  assert.equal(outbox.dropCircuit(1), 0);
  assert.equal(outbox.cells, 66);
  assert.deepEqual([...outbox.byCircuit()].map(([id, q]) => [id, q.bytes]), [[2, 66 * CELL_LENGTH]]);
  assert.deepEqual(drain(outbox), want);
});

test('LinkOutbox: spare buffers are reused, at most 4 kept, none after dropSpares or clear', () => {
  const outbox = new LinkOutbox();
  for (let i = 0; i < 6 * SEND_FRAME_CELLS; i++) outbox.append(cell(1, i));
  const bufs = [];
  for (let frame = outbox.takeFrame(); frame !== undefined; frame = outbox.takeFrame()) bufs.push(frame.buf);
  assert.equal(bufs.length, 6);
  for (const b of bufs) outbox.recycle(b);
  // Six frames' worth again: the first four reuse the spares (last recycled first), the other two are new.
  for (let i = 0; i < 6 * SEND_FRAME_CELLS; i++) outbox.append(cell(1, i));
  const again = [];
  for (let frame = outbox.takeFrame(); frame !== undefined; frame = outbox.takeFrame()) again.push(frame.buf);
  assert.deepEqual(again.slice(0, 4), bufs.slice(0, 4).reverse());
  assert.ok(!bufs.includes(again[4]!) && !bufs.includes(again[5]!));
  for (const b of again) outbox.recycle(b);
  outbox.dropSpares();
  outbox.append(cell(1, 0));
  assert.ok(!again.includes(outbox.takeFrame()!.buf), 'no spare after dropSpares');
  outbox.append(cell(1, 0));
  outbox.clear();
  assert.equal(outbox.cells, 0);
  assert.equal(outbox.takeFrame(), undefined);
});
