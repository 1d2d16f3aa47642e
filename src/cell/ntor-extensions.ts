/**
 * The ntor-v3 message extension list (docs/protocol.md), the plaintext
 * of the client and server messages carried inside the handshake:
 *   N_EXTENSIONS (1) | N_EXTENSIONS x [ TYPE (1) | LEN (1) | BODY (LEN) ]
 * An empty list is the single byte 0. Pure codec: which types mean what, and
 * ignoring unknown or repeated types, is up to the caller.
 */
import { Reader } from '../bytes.js';
import { malformed } from '../errors.js';

export interface NtorExtension {
  type: number;
  body: Uint8Array;
}

export const MAX_NTOR_EXTENSIONS = 255;
export const MAX_NTOR_EXTENSION_BODY = 255;

/** Encode a list; RangeError for more than 255 entries, a type outside 0..255 or a body over 255 bytes. */
export function encodeNtorExtensions(list: readonly NtorExtension[]): Uint8Array {
  if (list.length > MAX_NTOR_EXTENSIONS) {
    throw new RangeError(`ntor-v3 extensions: at most ${MAX_NTOR_EXTENSIONS} entries, got ${list.length}`);
  }
  let length = 1;
  for (const ext of list) {
    if (!Number.isInteger(ext.type) || ext.type < 0 || ext.type > 0xff) {
      throw new RangeError(`ntor-v3 extension type: expected 0..255, got ${ext.type}`);
    }
    if (!(ext.body instanceof Uint8Array)) throw new TypeError('ntor-v3 extension body: expected Uint8Array');
    if (ext.body.length > MAX_NTOR_EXTENSION_BODY) {
      throw new RangeError(`ntor-v3 extension body: at most ${MAX_NTOR_EXTENSION_BODY} bytes, got ${ext.body.length}`);
    }
    length += 2 + ext.body.length;
  }
  const out = new Uint8Array(length);
  out[0] = list.length;
  let at = 1;
  for (const ext of list) {
    out[at++] = ext.type;
    out[at++] = ext.body.length;
    out.set(ext.body, at);
    at += ext.body.length;
  }
  return out;
}

/**
 * Decode a whole message. DecodeError ERR_TRUNCATED if it ends early (including
 * an empty input), ERR_MALFORMED if bytes follow the last extension.
 * Bodies are fresh copies.
 */
export function decodeNtorExtensions(bytes: Uint8Array): NtorExtension[] {
  const r = new Reader(bytes, 'ntor-v3 extensions');
  const count = r.u8();
  const list: NtorExtension[] = [];
  for (let i = 0; i < count; i++) {
    const type = r.u8();
    const length = r.u8();
    list.push({ type, body: new Uint8Array(r.bytes(length)) });
  }
  if (r.remaining !== 0) throw malformed(`ntor-v3 extensions: ${r.remaining} trailing bytes`);
  return list;
}
