/**
 * The ntor-v3 message extension list (docs/protocol.md), the plaintext
 * of the client and server messages carried inside the handshake:
 *   N_EXTENSIONS (1) | N_EXTENSIONS x [ TYPE (1) | LEN (1) | BODY (LEN) ]
 * An empty list is the single byte 0. The same TLV list shape as EXTEND2 link
 * specifiers (`readTlvList` / `writeTlvList` in src/bytes.ts). Pure codec:
 * which types mean what, and ignoring unknown or repeated types, is up to the caller.
 */
import { MAX_TLV_BODY, MAX_TLV_ENTRIES, Reader, Writer, expectEnd, readTlvList, tlvListLength, writeTlvList } from '../bytes.js';

export interface NtorExtension {
  type: number;
  body: Uint8Array;
}

export const MAX_NTOR_EXTENSIONS = MAX_TLV_ENTRIES;
export const MAX_NTOR_EXTENSION_BODY = MAX_TLV_BODY;

/** Encode a list; RangeError for more than 255 entries, a type outside 0..255 or a body over 255 bytes. */
export function encodeNtorExtensions(list: readonly NtorExtension[]): Uint8Array {
  const w = new Writer(tlvListLength(list));
  writeTlvList(w, list, 'ntor-v3 extension');
  return w.finish();
}

/**
 * Decode a whole message. DecodeError ERR_TRUNCATED if it ends early (including
 * an empty input), ERR_MALFORMED if bytes follow the last extension.
 * Bodies are fresh copies.
 */
export function decodeNtorExtensions(bytes: Uint8Array): NtorExtension[] {
  const r = new Reader(bytes, 'ntor-v3 extensions');
  const list = readTlvList(r);
  expectEnd(r, 'ntor-v3 extensions');
  return list.map((e) => ({ type: e.type, body: new Uint8Array(e.body) }));
}
