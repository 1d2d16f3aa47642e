/**
 * Channel cells: the fixed 514-byte unit every link carries (docs/protocol.md §2).
 *   circuit id (4, big-endian) | command (1) | payload (509)
 * Pure encode/decode; commands are an open set, so unknown values decode and
 * the state machines reject them.
 */
import { CELL_LENGTH, CELL_PAYLOAD_LENGTH } from '../constants.js';
import { malformed, oversized, truncated } from '../errors.js';

export const ChannelCommand = {
  PADDING: 0,
  RELAY: 3,
  DESTROY: 4,
  RELAY_EARLY: 9,
  CREATE2: 10,
  CREATED2: 11,
} as const;
export type ChannelCommand = (typeof ChannelCommand)[keyof typeof ChannelCommand];

/** Byte offsets inside an encoded 514-byte cell (§2). */
export const CELL_CIRCUIT_ID_OFFSET = 0;
export const CELL_COMMAND_OFFSET = 4;
export const CELL_PAYLOAD_OFFSET = 5;

/** The command byte of an encoded cell. */
export function cellCommand(cell: Uint8Array): number {
  return cell[CELL_COMMAND_OFFSET]!;
}

/** The 509-byte payload of an encoded cell, as a view (no copy). */
export function cellPayload(cell: Uint8Array): Uint8Array {
  return cell.subarray(CELL_PAYLOAD_OFFSET);
}

/** The reason byte of an encoded DESTROY cell (§5, src/cell/reasons.ts). */
export function destroyReasonOf(cell: Uint8Array): number {
  return cell[CELL_PAYLOAD_OFFSET]!;
}

export interface ChannelCell {
  circuitId: number;
  command: number;
  /** Exactly 509 bytes. A view into the cell it was decoded from. */
  payload: Uint8Array;
}

/** Encode a cell; a short payload is zero-padded to 509 bytes. */
export function encodeChannelCell(circuitId: number, command: number, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  if (!Number.isInteger(circuitId) || circuitId < 0 || circuitId > 0xffffffff) throw new RangeError('circuitId: expected u32');
  if (!Number.isInteger(command) || command < 0 || command > 255) throw new RangeError('command: expected u8');
  if (payload.length > CELL_PAYLOAD_LENGTH) throw oversized(`channel cell payload of ${payload.length} bytes`);
  const cell = new Uint8Array(CELL_LENGTH);
  new DataView(cell.buffer).setUint32(0, circuitId);
  cell[CELL_COMMAND_OFFSET] = command;
  cell.set(payload, CELL_PAYLOAD_OFFSET);
  return cell;
}

export function decodeChannelCell(cell: Uint8Array): ChannelCell {
  if (cell.length < CELL_LENGTH) throw truncated('channel cell');
  if (cell.length > CELL_LENGTH) throw oversized(`channel cell of ${cell.length} bytes`);
  return { circuitId: cellCircuitId(cell), command: cellCommand(cell), payload: cellPayload(cell) };
}

export function cellCircuitId(cell: Uint8Array): number {
  return ((cell[0]! << 24) | (cell[1]! << 16) | (cell[2]! << 8) | cell[3]!) >>> 0;
}

/** Rewrite the circuit id of an encoded cell in place (relays do this when forwarding). */
export function setCellCircuitId(cell: Uint8Array, circuitId: number): void {
  cell[0] = circuitId >>> 24;
  cell[1] = (circuitId >>> 16) & 0xff;
  cell[2] = (circuitId >>> 8) & 0xff;
  cell[3] = circuitId & 0xff;
}

/** DESTROY body: one reason byte (src/cell/reasons.ts). */
export function encodeDestroy(circuitId: number, reason: number): Uint8Array {
  return encodeChannelCell(circuitId, ChannelCommand.DESTROY, new Uint8Array([reason]));
}

/** A circuit id a link's initiator may use has the high bit set; the responder's have it clear. Zero is never a circuit. */
export function circuitIdBelongsTo(circuitId: number, initiator: boolean): boolean {
  if (circuitId === 0) return false;
  return initiator ? circuitId >= 0x80000000 : circuitId < 0x80000000;
}

export function assertCircuitId(circuitId: number): void {
  if (circuitId === 0) throw malformed('circuit id 0 is not a circuit');
}
