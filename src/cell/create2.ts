/**
 * CREATE2 and CREATED2 bodies (docs/protocol.md §5), Tor's layout:
 *   CREATE2:  handshake type (2) | length (2) | handshake data
 *   CREATED2: length (2) | handshake data
 * EXTEND2 and EXTENDED2 carry the same handshake parts (src/cell/extend2.ts).
 */
import { CELL_PAYLOAD_LENGTH } from '../constants.js';
import { Reader, Writer, writeLengthPrefixed } from '../bytes.js';
import { malformed, oversized } from '../errors.js';

export interface Create2Body {
  handshakeType: number;
  handshakeData: Uint8Array;
}

/** CREATE2 body; ERR_OVERSIZED if it would not fit a 509-byte cell payload, RangeError for a type outside u16. */
export function encodeCreate2(body: Create2Body): Uint8Array {
  const { handshakeType, handshakeData } = body;
  if (4 + handshakeData.length > CELL_PAYLOAD_LENGTH) throw oversized('CREATE2 handshake data');
  const w = new Writer(4 + handshakeData.length).u16(handshakeType);
  writeLengthPrefixed(w, 2, handshakeData);
  return w.finish();
}

/** Decode from a 509-byte cell payload; bytes after the handshake data are padding. Handshake data is a view. */
export function decodeCreate2(payload: Uint8Array): Create2Body {
  const r = new Reader(payload, 'CREATE2');
  const handshakeType = r.u16();
  return { handshakeType, handshakeData: readHandshake(r, 'CREATE2') };
}

/** CREATED2 body (also the EXTENDED2 body); ERR_OVERSIZED if it would not fit a cell payload. */
export function encodeCreated2(handshakeData: Uint8Array): Uint8Array {
  if (2 + handshakeData.length > CELL_PAYLOAD_LENGTH) throw oversized('CREATED2 handshake data');
  const w = new Writer(2 + handshakeData.length);
  writeLengthPrefixed(w, 2, handshakeData);
  return w.finish();
}

/** Decode from a 509-byte cell payload; bytes after the handshake data are padding. Returns a view. */
export function decodeCreated2(payload: Uint8Array): Uint8Array {
  return readHandshake(new Reader(payload, 'CREATED2'), 'CREATED2');
}

/** length (2) | data, where a length past the end of the cell is malformed (the cell is fixed-size, not short). */
function readHandshake(r: Reader, what: string): Uint8Array {
  const length = r.u16();
  if (length > r.remaining) throw malformed(`${what} handshake length ${length} exceeds the cell`);
  return r.bytes(length);
}
