/**
 * The pool of spare 514-byte cell buffers RelayCircuit.sendBackward builds its
 * own cells in (one pool per thread, at most MAX_SPARE_CELLS kept): a buffer
 * goes back once its cell is crypted and handed to the link toward the
 * client (RelayCircuit's backlog flush).
 */
import { CELL_LENGTH } from '../src/constants.js';

/** Spare 514-byte cell buffers for sendBackward (one pool per thread, bounded). */
const spareCells: Uint8Array[] = [];
const MAX_SPARE_CELLS = 1024;

/**
 * A 514-byte buffer from the pool, holding whatever its last cell left:
 * sendBackward writes every byte of the new cell (header, relay header,
 * body, zeros after it).
 */
export function takeCellBuffer(): Uint8Array {
  return spareCells.pop() ?? new Uint8Array(CELL_LENGTH);
}

/** Give a buffer back once nothing refers to it; dropped when the pool is full. */
export function returnCellBuffer(cell: Uint8Array): void {
  if (spareCells.length < MAX_SPARE_CELLS) spareCells.push(cell);
}
