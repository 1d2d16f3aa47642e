/**
 * SENDME bodies (docs/protocol.md §7), Tor's format:
 *   version (1) | data length (2) | data
 * Version 0: no data (stream-level SENDMEs; Allium sends it as an empty body,
 * which also means v0). Version 1: data = the 20-byte running digest of the
 * cell that triggered the SENDME, so the sender knows the receiver really got
 * it (circuit level).
 */
import { Reader, Writer, expectEnd, readLengthPrefixed, writeLengthPrefixed } from '../bytes.js';
import { malformed } from '../errors.js';

export const SENDME_DIGEST_LENGTH = 20;

/** A v1 SENDME body carrying `digest`; RangeError unless it is 20 bytes. */
export function encodeSendmeV1(digest: Uint8Array): Uint8Array {
  if (!(digest instanceof Uint8Array) || digest.length !== SENDME_DIGEST_LENGTH) throw new RangeError('SENDME digest: expected 20 bytes');
  const w = new Writer(3 + SENDME_DIGEST_LENGTH).u8(1);
  writeLengthPrefixed(w, 2, digest);
  return w.finish();
}

/**
 * Returns the authenticated digest of a v1 SENDME (a view), or null for v0
 * (an empty body, or version 0 with its data, which is ignored).
 * ERR_TRUNCATED if the data runs past the body; ERR_MALFORMED for another
 * version, a v1 digest that is not 20 bytes, or bytes after the data.
 */
export function decodeSendme(data: Uint8Array): Uint8Array | null {
  if (data.length === 0) return null;
  const r = new Reader(data, 'SENDME');
  const version = r.u8();
  const body = readLengthPrefixed(r, 2);
  expectEnd(r, 'SENDME');
  if (version === 0) return null;
  if (version !== 1) throw malformed(`SENDME version ${version}`);
  if (body.length !== SENDME_DIGEST_LENGTH) throw malformed(`SENDME v1 digest length ${body.length}`);
  return body;
}
