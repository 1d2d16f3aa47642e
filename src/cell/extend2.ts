/**
 * EXTEND2 and EXTENDED2 bodies (docs/protocol.md §6.3), Tor's layout:
 *   EXTEND2:   n specifiers (1) | { type (1) | length (1) | body }* | handshake type (2) | length (2) | data
 *   EXTENDED2: length (2) | data
 * The specifiers are a TLV list (src/bytes.ts `readTlvList`), like ntor-v3 extensions.
 * Link specifier types: 0 IPv4 address + port, 1 IPv6 address + port,
 * 2 legacy RSA identity (not used by Allium), 3 Ed25519 identity, and
 * Allium's own 128: the relay's Noise link key, which an extending relay
 * needs to open the Noise XK link.
 */
import { Reader, Writer, expectEnd, readLengthPrefixed, readTlvList, tlvListLength, writeLengthPrefixed, writeTlvList, type Tlv } from '../bytes.js';
import { malformed, oversized } from '../errors.js';
import { RELAY_DATA_LENGTH } from '../constants.js';
import { encodeCreated2 } from './create2.js';
import { formatIPv4, formatIPv6, isIPv4Mapped, parseIPv4, parseIPv6 } from '../net/address.js';

export const LinkSpecifierType = {
  IPV4: 0,
  IPV6: 1,
  LEGACY_ID: 2,
  ED25519_ID: 3,
  ALLIUM_LINK_KEY: 128,
} as const;

/** One link specifier: an entry of the EXTEND2 TLV list. */
export type LinkSpecifier = Tlv;

/**
 * What a relay needs to reach the next hop: an IPv4 address and port
 * (specifier 0), an IPv6 one (specifier 1), or both (§6.3 says which the relay
 * dials), and the identity and link key the link must prove.
 */
export interface ExtendTarget {
  /** IPv4 dotted quad; with `port`. */
  address?: string;
  port?: number;
  /** IPv6 address (RFC 5952 text, no brackets) and OR port. */
  ipv6?: { address: string; port: number };
  identity: Uint8Array; // Ed25519, 32 bytes
  linkKey: Uint8Array; // X25519, 32 bytes
}

export interface Extend2Body {
  specifiers: LinkSpecifier[];
  handshakeType: number;
  handshakeData: Uint8Array;
}

/**
 * EXTEND2 body. ERR_OVERSIZED if it would not fit a relay cell (498 bytes);
 * RangeError for more than 255 specifiers, a specifier type outside u8 or body
 * over 255 bytes, or a handshake type outside u16.
 */
export function encodeExtend2(body: Extend2Body): Uint8Array {
  const w = new Writer(tlvListLength(body.specifiers) + 4 + body.handshakeData.length);
  writeTlvList(w, body.specifiers, 'EXTEND2 link specifier');
  w.u16(body.handshakeType);
  writeLengthPrefixed(w, 2, body.handshakeData);
  if (w.length > RELAY_DATA_LENGTH) throw oversized(`EXTEND2 body of ${w.length} bytes`);
  return w.finish();
}

/** Decode a whole EXTEND2 body; specifier bodies and handshake data are views. ERR_TRUNCATED / ERR_MALFORMED (trailing bytes). */
export function decodeExtend2(data: Uint8Array): Extend2Body {
  const r = new Reader(data, 'EXTEND2');
  const specifiers = readTlvList(r);
  const handshakeType = r.u16();
  const handshakeData = readLengthPrefixed(r, 2);
  expectEnd(r, 'EXTEND2');
  return { specifiers, handshakeType, handshakeData };
}

/**
 * The specifiers for `t`: IPv4 (when `t.address` is given), IPv6 (when
 * `t.ipv6` is), Ed25519 identity, link key. RangeError for an address of the
 * wrong family, a port outside 1..65535, or neither address.
 */
export function targetToSpecifiers(t: ExtendTarget): LinkSpecifier[] {
  const port = (p: number | undefined) => {
    if (p === undefined || !Number.isInteger(p) || p < 1 || p > 65535) throw new RangeError('port: not 1..65535');
    return [p >>> 8, p & 0xff];
  };
  const out: LinkSpecifier[] = [];
  if (t.address !== undefined) {
    const octets = parseIPv4(t.address);
    if (octets === null) throw new RangeError(`address: not an IPv4 address`);
    out.push({ type: LinkSpecifierType.IPV4, body: new Uint8Array([...octets, ...port(t.port)]) });
  }
  if (t.ipv6 !== undefined) {
    const bytes = parseIPv6(t.ipv6.address);
    if (bytes === null || isIPv4Mapped(bytes)) throw new RangeError('ipv6: not an IPv6 address');
    out.push({ type: LinkSpecifierType.IPV6, body: new Uint8Array([...bytes, ...port(t.ipv6.port)]) });
  }
  if (out.length === 0) throw new RangeError('an EXTEND2 target needs an IPv4 or an IPv6 address');
  out.push({ type: LinkSpecifierType.ED25519_ID, body: t.identity }, { type: LinkSpecifierType.ALLIUM_LINK_KEY, body: t.linkKey });
  return out;
}

/**
 * At most one IPv4 and at most one IPv6 specifier, at least one of them; exactly
 * one Ed25519 identity and one link key. Other types are ignored; duplicates,
 * wrong lengths, port 0 and an IPv4-mapped or unspecified IPv6 address are malformed.
 */
export function specifiersToTarget(specifiers: LinkSpecifier[]): ExtendTarget {
  let ipv4: Uint8Array | undefined;
  let ipv6: Uint8Array | undefined;
  let identity: Uint8Array | undefined;
  let linkKey: Uint8Array | undefined;
  for (const s of specifiers) {
    const want = (n: number) => {
      if (s.body.length !== n) throw malformed(`EXTEND2 link specifier ${s.type}: length ${s.body.length}`);
    };
    if (s.type === LinkSpecifierType.IPV4) {
      want(6);
      if (ipv4) throw malformed('EXTEND2: two IPv4 specifiers');
      ipv4 = s.body;
    } else if (s.type === LinkSpecifierType.IPV6) {
      want(18);
      if (ipv6) throw malformed('EXTEND2: two IPv6 specifiers');
      ipv6 = s.body;
    } else if (s.type === LinkSpecifierType.ED25519_ID) {
      want(32);
      if (identity) throw malformed('EXTEND2: two Ed25519 identities');
      identity = s.body;
    } else if (s.type === LinkSpecifierType.ALLIUM_LINK_KEY) {
      want(32);
      if (linkKey) throw malformed('EXTEND2: two link keys');
      linkKey = s.body;
    }
  }
  if ((!ipv4 && !ipv6) || !identity || !linkKey) throw malformed('EXTEND2: needs an IPv4 or IPv6 address, an Ed25519 identity and a link key');
  const target: ExtendTarget = { identity: new Uint8Array(identity), linkKey: new Uint8Array(linkKey) };
  if (ipv4) {
    const port = (ipv4[4]! << 8) | ipv4[5]!;
    if (port === 0) throw malformed('EXTEND2: port 0');
    target.address = formatIPv4(ipv4.subarray(0, 4));
    target.port = port;
  }
  if (ipv6) {
    const port = (ipv6[16]! << 8) | ipv6[17]!;
    if (port === 0) throw malformed('EXTEND2: IPv6 port 0');
    const bytes = ipv6.subarray(0, 16);
    if (isIPv4Mapped(bytes) || bytes.every((b) => b === 0)) throw malformed('EXTEND2: an IPv4-mapped or unspecified IPv6 address');
    target.ipv6 = { address: formatIPv6(bytes), port };
  }
  return target;
}

/** EXTENDED2 carries exactly a CREATED2 body: length (2) | handshake data. */
export const encodeExtended2 = encodeCreated2;

/** Decode a whole EXTENDED2 body; returns the handshake data (a view). ERR_TRUNCATED / ERR_MALFORMED (trailing bytes). */
export function decodeExtended2(data: Uint8Array): Uint8Array {
  const r = new Reader(data, 'EXTENDED2');
  const hs = readLengthPrefixed(r, 2);
  expectEnd(r, 'EXTENDED2');
  return hs;
}
