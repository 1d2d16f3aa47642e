/**
 * Relay cells: the 509-byte payload of a RELAY / RELAY_EARLY cell once a hop
 * has removed its layer (docs/protocol.md §6). Tor's layout:
 *   command (1) | recognized (2) | stream id (2) | digest (4) | length (2) | data (498)
 * `recognized` and `digest` are filled by the onion layer (src/crypto/onion-layer.ts),
 * not here. Unused bytes: four zeros, then random padding.
 */
import { CELL_PAYLOAD_LENGTH, RELAY_DATA_LENGTH, RELAY_HEADER_LENGTH } from '../constants.js';
import { malformed, oversized, truncated } from '../errors.js';

export const RelayCommand = {
  BEGIN: 1,
  DATA: 2,
  END: 3,
  CONNECTED: 4,
  SENDME: 5,
  EXTEND: 6,
  EXTENDED: 7,
  TRUNCATE: 8,
  TRUNCATED: 9,
  DROP: 10,
  RESOLVE: 11,
  RESOLVED: 12,
  BEGIN_DIR: 13,
  EXTEND2: 14,
  EXTENDED2: 15,
  XOFF: 43,
  XON: 44,
  /** Allium's own (docs/protocol.md §6.4): no more DATA in this direction (half-close, negotiated in BEGIN/CONNECTED). */
  FIN: 240,
} as const;
export type RelayCommand = (typeof RelayCommand)[keyof typeof RelayCommand];

/** Byte offsets of the header fields inside the 509-byte relay payload (§6.1). */
export const RELAY_COMMAND_OFFSET = 0;
export const RELAY_RECOGNIZED_OFFSET = 1;
export const RELAY_STREAM_ID_OFFSET = 3;
export const RELAY_DIGEST_OFFSET = 5;
export const RELAY_DIGEST_FIELD_LENGTH = 4;
export const RELAY_LENGTH_OFFSET = 9;
export const RELAY_DATA_OFFSET = RELAY_HEADER_LENGTH; // 11

export interface RelayMessage {
  command: number;
  streamId: number;
  /** At most 498 bytes. */
  data: Uint8Array;
}

/** Source of padding bytes; injectable so encoded cells are reproducible in tests. */
export type PaddingSource = (length: number) => Uint8Array;

/**
 * Encode a relay message into a fresh 509-byte payload with recognized = 0
 * and the digest field zero, ready for OnionLayer.seal().
 */
export function encodeRelayCell(message: RelayMessage, padding?: PaddingSource): Uint8Array {
  const payload = new Uint8Array(CELL_PAYLOAD_LENGTH);
  writeRelayCell(payload, message, padding);
  return payload;
}

/**
 * Write a relay message into `payload`, a zero-filled 509-byte view (usually
 * the payload of a channel cell being built), so the hot path makes no copy.
 */
export function writeRelayCell(payload: Uint8Array, message: RelayMessage, padding?: PaddingSource): void {
  writeRelayFields(payload, message.command, message.streamId, message.data, padding);
}

/** writeRelayCell with the fields as arguments, so a per-cell caller builds no message object. Same checks. */
export function writeRelayFields(payload: Uint8Array, command: number, streamId: number, data: Uint8Array, padding?: PaddingSource): void {
  if (payload.length !== CELL_PAYLOAD_LENGTH) throw new RangeError(`payload: expected ${CELL_PAYLOAD_LENGTH} bytes`);
  if (data.length > RELAY_DATA_LENGTH) throw oversized(`relay data of ${data.length} bytes`);
  if (!Number.isInteger(streamId) || streamId < 0 || streamId > 0xffff) throw new RangeError('streamId: expected u16');
  payload[RELAY_COMMAND_OFFSET] = command;
  payload[RELAY_STREAM_ID_OFFSET] = streamId >>> 8;
  payload[RELAY_STREAM_ID_OFFSET + 1] = streamId & 0xff;
  payload[RELAY_LENGTH_OFFSET] = data.length >>> 8;
  payload[RELAY_LENGTH_OFFSET + 1] = data.length & 0xff;
  payload.set(data, RELAY_DATA_OFFSET);
  const padStart = RELAY_DATA_OFFSET + data.length + 4;
  if (padding !== undefined && padStart < CELL_PAYLOAD_LENGTH) {
    payload.set(padding(CELL_PAYLOAD_LENGTH - padStart), padStart);
  }
}

export interface DecodedRelayCell extends RelayMessage {
  recognized: number;
  digest: Uint8Array;
}

/**
 * Decode a recognized relay payload. `data` is a view into `payload`.
 * Throws DecodeError (relayCellData's checks).
 */
export function decodeRelayCell(payload: Uint8Array): DecodedRelayCell {
  const data = relayCellData(payload);
  return {
    command: relayCellCommand(payload),
    recognized: (payload[RELAY_RECOGNIZED_OFFSET]! << 8) | payload[RELAY_RECOGNIZED_OFFSET + 1]!,
    streamId: relayCellStreamId(payload),
    digest: payload.subarray(RELAY_DIGEST_OFFSET, RELAY_DIGEST_OFFSET + RELAY_DIGEST_FIELD_LENGTH),
    data,
  };
}

/**
 * The body of a recognized relay payload, a view into it: what
 * decodeRelayCell gives as `data`, for per-cell callers that read the
 * command (relayCellCommand) and stream id (relayCellStreamId) themselves
 * and need no message object. Throws DecodeError: truncated, oversized, a
 * length over 498.
 */
export function relayCellData(payload: Uint8Array): Uint8Array {
  if (payload.length < CELL_PAYLOAD_LENGTH) throw truncated('relay cell');
  if (payload.length > CELL_PAYLOAD_LENGTH) throw oversized(`relay cell of ${payload.length} bytes`);
  const length = (payload[RELAY_LENGTH_OFFSET]! << 8) | payload[RELAY_LENGTH_OFFSET + 1]!;
  if (length > RELAY_DATA_LENGTH) throw malformed(`relay cell length ${length} exceeds ${RELAY_DATA_LENGTH}`);
  return payload.subarray(RELAY_DATA_OFFSET, RELAY_DATA_OFFSET + length);
}

/** The relay command of a relay payload (byte 0). */
export function relayCellCommand(payload: Uint8Array): number {
  return payload[RELAY_COMMAND_OFFSET]!;
}

/** The stream id of a relay payload (bytes 3-4, big-endian). */
export function relayCellStreamId(payload: Uint8Array): number {
  return (payload[RELAY_STREAM_ID_OFFSET]! << 8) | payload[RELAY_STREAM_ID_OFFSET + 1]!;
}

/** Commands that concern the whole circuit and must carry stream id 0. */
export function isCircuitCommand(command: number): boolean {
  return (
    command === RelayCommand.EXTEND ||
    command === RelayCommand.EXTENDED ||
    command === RelayCommand.EXTEND2 ||
    command === RelayCommand.EXTENDED2 ||
    command === RelayCommand.TRUNCATE ||
    command === RelayCommand.TRUNCATED ||
    command === RelayCommand.DROP
  );
}
