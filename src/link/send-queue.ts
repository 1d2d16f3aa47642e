/**
 * A link's send queue (LinkOutbox): cells waiting to be sealed, packed into
 * frame-sized buffers of up to SEND_FRAME_CELLS (31) cells, the spare
 * buffers kept for reuse, and the two walks the relay's memory cap makes
 * over it (relay/mem-cap.ts): bytes queued per circuit, and dropping one
 * circuit's cells. The Channel (channel.ts) appends cells and takes frames
 * to seal and write; the walks are not on the cell path. Its receiving
 * counterpart is link-inbox.ts.
 */
import { CELL_LENGTH } from '../constants.js';

/**
 * Cells a sender puts in one frame (docs/protocol.md §3.4): 31, about 16 KiB, a TLS record's
 * worth, where a frame could hold 127 (MAX_CELLS_PER_FRAME). The peer can open a frame only once
 * its last byte has arrived, so each hop holds a frame's first cell back for the time the whole
 * frame takes on the wire: 5.2 ms for 127 cells on a 100 Mbit/s link, 1.3 ms for 31; Vegas reads
 * that, on every hop, as queueing (§7.3).
 */
export const SEND_FRAME_CELLS = 31;

/** Bytes of one frame's worth of cells: the size of a queued frame's buffer. */
export const FRAME_CAPACITY = SEND_FRAME_CELLS * CELL_LENGTH;

/** Spare frame buffers a link keeps for reuse while its socket takes what it writes. */
const MAX_SPARE_FRAMES = 4;

/**
 * A queued frame's buffer, not zeroed: only its first `cells` cells are ever
 * read (sealed, or walked below), and each is written first. A link whose
 * socket pushes back keeps no spare buffers, so a busy relay allocates these
 * all the time; zeroing 16 KiB each was about 1 % of its CPU.
 */
function newFrameBuffer(): Uint8Array {
  const memory = Buffer.allocUnsafe(FRAME_CAPACITY);
  return new Uint8Array(memory.buffer, memory.byteOffset, FRAME_CAPACITY);
}

/**
 * The cells one link has queued to send, in order, in frames of up to
 * SEND_FRAME_CELLS cells, and up to MAX_SPARE_FRAMES spare frame buffers.
 * Unbounded itself: the Channel bounds it (CHANNEL_HIGH_WATER, CHANNEL_HARD_CAP).
 */
export class LinkOutbox {
  #frames: QueuedFrame[] = [];
  #spares: Uint8Array[] = [];
  #cells = 0;

  /** Cells queued. */
  get cells(): number {
    return this.#cells;
  }

  /** Bytes of the cells queued (514 per cell). */
  get bytes(): number {
    return this.#cells * CELL_LENGTH;
  }

  /** performance.now() when the oldest cell still queued was queued; null when nothing is queued. */
  get oldestQueuedAt(): number | null {
    return this.#frames[0]?.since ?? null;
  }

  /** Queue a copy of `cell` (514 bytes, not checked here) after the others. */
  append(cell: Uint8Array): void {
    const frames = this.#frames;
    // Never frames[-1]: on an empty queue that is a named-property lookup, which turns this
    // per-cell load megamorphic for good (seen with --log-ic on every relay and the client).
    let last = frames.length > 0 ? frames[frames.length - 1]! : undefined;
    if (last === undefined || last.cells === SEND_FRAME_CELLS) {
      last = { buf: this.#spares.pop() ?? newFrameBuffer(), cells: 0, since: performance.now() };
      frames.push(last);
    }
    last.buf.set(cell, last.cells * CELL_LENGTH);
    last.cells++;
    this.#cells++;
  }

  /**
   * The oldest queued frame, out of the queue; undefined when empty. Its
   * cells are buf[0 .. cells·514); hand `buf` back with recycle() once
   * sealed.
   */
  takeFrame(): QueuedFrame | undefined {
    const frame = this.#frames.shift();
    if (frame !== undefined) this.#cells -= frame.cells;
    return frame;
  }

  /** A frame buffer that takeFrame() gave is free again: kept for reuse if fewer than MAX_SPARE_FRAMES are. */
  recycle(buf: Uint8Array): void {
    if (this.#spares.length < MAX_SPARE_FRAMES) this.#spares.push(buf);
  }

  /** Drop the spare buffers (a link whose peer does not read keeps none while it waits: the memory cap counts them). */
  dropSpares(): void {
    this.#spares = [];
  }

  /** The queued cells by circuit id (queuedByCircuit). */
  byCircuit(): Map<number, { bytes: number; since: number }> {
    return queuedByCircuit(this.#frames);
  }

  /** Drop every queued cell of circuit `circuitId` (dropCircuitCells); returns how many cells were dropped. */
  dropCircuit(circuitId: number): number {
    const dropped = dropCircuitCells(this.#frames, circuitId);
    this.#cells -= dropped;
    return dropped;
  }

  /** Drop everything queued and every spare. */
  clear(): void {
    this.#frames = [];
    this.#spares = [];
    this.#cells = 0;
  }
}

/** Up to SEND_FRAME_CELLS queued cells, back to back in `buf`. */
export interface QueuedFrame {
  buf: Uint8Array;
  cells: number;
  /** performance.now() when its first cell was queued (the memory cap's age of its data). */
  since: number;
}

/**
 * The queued cells by circuit id: how many bytes each circuit has waiting
 * and when its oldest one was queued (performance.now()).
 */
export function queuedByCircuit(frames: readonly QueuedFrame[]): Map<number, { bytes: number; since: number }> {
  const out = new Map<number, { bytes: number; since: number }>();
  for (const frame of frames) {
    for (let at = 0; at < frame.cells * CELL_LENGTH; at += CELL_LENGTH) {
      const b = frame.buf;
      const id = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
      const entry = out.get(id);
      if (entry === undefined) out.set(id, { bytes: CELL_LENGTH, since: frame.since });
      else entry.bytes += CELL_LENGTH;
    }
  }
  return out;
}

/**
 * Remove every cell of circuit `circuitId` from `frames`, in place; returns
 * how many cells were removed. The cells left are packed into as few frames
 * as they fill, in order, and the frames emptied are cut off the array.
 */
export function dropCircuitCells(frames: QueuedFrame[], circuitId: number): number {
  let dropped = 0;
  // Kept cells move down to the write position (out, outCells), which never passes the read position.
  let out = 0;
  let outCells = 0;
  for (const src of frames) {
    const b = src.buf;
    const cells = src.cells;
    for (let i = 0; i < cells; i++) {
      const at = i * CELL_LENGTH;
      const id = ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
      if (id === circuitId) {
        dropped++;
        continue;
      }
      if (outCells === SEND_FRAME_CELLS) {
        frames[out]!.cells = outCells;
        out++;
        outCells = 0;
      }
      const dst = frames[out]!;
      // A frame's age is that of its first cell.
      if (outCells === 0) dst.since = src.since;
      if (dst !== src) dst.buf.set(b.subarray(at, at + CELL_LENGTH), outCells * CELL_LENGTH);
      else if (outCells !== i) b.copyWithin(outCells * CELL_LENGTH, at, at + CELL_LENGTH);
      outCells++;
    }
  }
  if (dropped === 0) return 0;
  if (outCells > 0) frames[out++]!.cells = outCells;
  frames.length = out;
  return dropped;
}
