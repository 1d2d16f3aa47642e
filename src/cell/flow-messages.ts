/**
 * XON and XOFF bodies (docs/protocol.md §7.4), Tor's format (proposal 324
 * §4.1, trunnel `xoff_cell` / `xon_cell`):
 *   XOFF: version (1) = 0
 *   XON:  version (1) = 0 | kbps_ewma (4, big-endian)
 * Another version is malformed, as are bytes after the last field.
 */
import { Reader, Writer, expectEnd } from '../bytes.js';
import { malformed } from '../errors.js';

/** The only XON/XOFF version. */
export const FLOW_MESSAGE_VERSION = 0;

function readVersion(r: Reader, what: string): void {
  const version = r.u8();
  if (version !== FLOW_MESSAGE_VERSION) throw malformed(`${what} version ${version}`);
}

/** The XOFF body: the single byte 0. */
export function encodeXoff(): Uint8Array {
  return Uint8Array.of(FLOW_MESSAGE_VERSION);
}

/** Checks an XOFF body. ERR_TRUNCATED if empty; ERR_MALFORMED for another version or trailing bytes. */
export function decodeXoff(body: Uint8Array): void {
  const r = new Reader(body, 'XOFF');
  readVersion(r, 'XOFF');
  expectEnd(r, 'XOFF');
}

/** The XON body for an advisory rate of `kbpsEwma` × 1000 bytes/s (0 = unlimited). RangeError unless a u32. */
export function encodeXon(kbpsEwma: number): Uint8Array {
  if (!Number.isInteger(kbpsEwma) || kbpsEwma < 0 || kbpsEwma > 0xffff_ffff) throw new RangeError(`XON: rate ${kbpsEwma} is not a u32`);
  return new Writer(5).u8(FLOW_MESSAGE_VERSION).u32(kbpsEwma).finish();
}

/** The advisory rate of an XON body. ERR_TRUNCATED if short; ERR_MALFORMED for another version or trailing bytes. */
export function decodeXon(body: Uint8Array): number {
  const r = new Reader(body, 'XON');
  readVersion(r, 'XON');
  const rate = r.u32();
  expectEnd(r, 'XON');
  return rate;
}
