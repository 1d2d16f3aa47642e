/**
 * The pool of spare 514-byte cell buffers RelayCircuit.sendBackward builds its
 * own cells in (one pool per thread, at most MAX_SPARE_CELLS kept): a buffer
 * goes back once its cell is crypted and handed to the link toward the
 * client (RelayCircuit's backlog flush). Each comes with a view of its
 * payload, made once with the buffer: an exit builds one cell per 498 bytes
 * it reads, and a view per cell was an allocation per cell.
 *
 * New buffers are cut SLAB_CELLS at a time from one ArrayBuffer: the running
 * SHA-1 (src/crypto/sha1.ts) reads a cell through a DataView of its whole
 * ArrayBuffer and keeps the last one, so cells that share an ArrayBuffer
 * need no new DataView each.
 */
import { CELL_LENGTH } from '../src/constants.js';
import { CELL_PAYLOAD_OFFSET } from '../src/cell/channel-cell.js';

/** A pooled cell buffer: `cell` (514 bytes) and `payload`, its bytes 5..514 (docs/protocol.md §2). */
export interface CellBuffer {
  readonly cell: Uint8Array;
  readonly payload: Uint8Array;
}

/** Spare cell buffers for sendBackward (one pool per thread, bounded). */
const spareCells: CellBuffer[] = [];
const MAX_SPARE_CELLS = 1024;
/** Cell buffers cut from one ArrayBuffer when the pool is empty. */
const SLAB_CELLS = 32;

/**
 * A cell buffer from the pool, holding whatever its last cell left:
 * sendBackward writes every byte of the new cell (header, relay header,
 * body, zeros after it).
 */
export function takeCellBuffer(): CellBuffer {
  const spare = spareCells.pop();
  if (spare !== undefined) return spare;
  const slab = new Uint8Array(SLAB_CELLS * CELL_LENGTH);
  // The rest of the slab goes into the pool, last first, so they are taken in order.
  for (let i = SLAB_CELLS - 1; i > 0 && spareCells.length < MAX_SPARE_CELLS; i--) spareCells.push(cellBufferAt(slab, i));
  return cellBufferAt(slab, 0);
}

function cellBufferAt(slab: Uint8Array, index: number): CellBuffer {
  const cell = slab.subarray(index * CELL_LENGTH, (index + 1) * CELL_LENGTH);
  return { cell, payload: cell.subarray(CELL_PAYLOAD_OFFSET) };
}

/** Give a buffer back once nothing refers to it; dropped when the pool is full. */
export function returnCellBuffer(buffer: CellBuffer): void {
  if (spareCells.length < MAX_SPARE_CELLS) spareCells.push(buffer);
}
