/**
 * SENDME bodies (docs/protocol.md §7), Tor's format:
 *   version (1) | data length (2) | data
 * Version 0: empty data (stream-level SENDMEs; an empty body also means v0).
 * Version 1: data = the 20-byte running digest of the cell that triggered the
 * SENDME, so the sender knows the receiver really got it (circuit level).
 */
import { Reader } from '../bytes.js';
import { malformed } from '../errors.js';

export const SENDME_DIGEST_LENGTH = 20;

export function encodeSendmeV1(digest: Uint8Array): Uint8Array {
  if (digest.length !== SENDME_DIGEST_LENGTH) throw new RangeError('SENDME digest: expected 20 bytes');
  const out = new Uint8Array(3 + SENDME_DIGEST_LENGTH);
  out[0] = 1;
  out[2] = SENDME_DIGEST_LENGTH;
  out.set(digest, 3);
  return out;
}

/** Returns the authenticated digest of a v1 SENDME, or null for v0. */
export function decodeSendme(data: Uint8Array): Uint8Array | null {
  if (data.length === 0) return null;
  const r = new Reader(data, 'SENDME');
  const version = r.u8();
  const length = r.u16();
  const body = r.bytes(length);
  if (version === 0) return null;
  if (version !== 1) throw malformed(`SENDME version ${version}`);
  if (length !== SENDME_DIGEST_LENGTH) throw malformed(`SENDME v1 digest length ${length}`);
  return body;
}
