/**
 * CREATE2 and CREATED2 bodies (docs/protocol.md §5), Tor's layout:
 *   CREATE2:  handshake type (2) | length (2) | handshake data
 *   CREATED2: length (2) | handshake data
 * EXTEND2 and EXTENDED2 carry the same handshake parts (src/cell/extend2.ts).
 */
import { CELL_PAYLOAD_LENGTH } from '../constants.js';
import { Reader } from '../bytes.js';
import { malformed, oversized } from '../errors.js';

export interface Create2Body {
  handshakeType: number;
  handshakeData: Uint8Array;
}

export function encodeCreate2(body: Create2Body): Uint8Array {
  const { handshakeType, handshakeData } = body;
  if (4 + handshakeData.length > CELL_PAYLOAD_LENGTH) throw oversized('CREATE2 handshake data');
  const out = new Uint8Array(4 + handshakeData.length);
  out[0] = handshakeType >>> 8;
  out[1] = handshakeType & 0xff;
  out[2] = handshakeData.length >>> 8;
  out[3] = handshakeData.length & 0xff;
  out.set(handshakeData, 4);
  return out;
}

/** Decode from a 509-byte cell payload; bytes after the handshake data are padding. */
export function decodeCreate2(payload: Uint8Array): Create2Body {
  const r = new Reader(payload, 'CREATE2');
  const handshakeType = r.u16();
  const length = r.u16();
  if (length > r.remaining) throw malformed(`CREATE2 handshake length ${length} exceeds the cell`);
  return { handshakeType, handshakeData: r.bytes(length) };
}

export function encodeCreated2(handshakeData: Uint8Array): Uint8Array {
  if (2 + handshakeData.length > CELL_PAYLOAD_LENGTH) throw oversized('CREATED2 handshake data');
  const out = new Uint8Array(2 + handshakeData.length);
  out[0] = handshakeData.length >>> 8;
  out[1] = handshakeData.length & 0xff;
  out.set(handshakeData, 2);
  return out;
}

export function decodeCreated2(payload: Uint8Array): Uint8Array {
  const r = new Reader(payload, 'CREATED2');
  const length = r.u16();
  if (length > r.remaining) throw malformed(`CREATED2 handshake length ${length} exceeds the cell`);
  return r.bytes(length);
}
