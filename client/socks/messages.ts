/**
 * SOCKS wire messages: SOCKS5 (RFC 1928) with username/password
 * sub-negotiation (RFC 1929) and Tor's RESOLVE / RESOLVE_PTR commands, and
 * SOCKS4 with the SOCKS4a hostname extension: pure encoders and decoders, no
 * I/O. docs/protocol.md §12.
 *
 * Every decoder takes the bytes received so far and returns either `null`
 * ("need more bytes": the input is a valid prefix) or `{ value, length }`
 * where `length` is how many bytes the message took; anything after it is
 * left for the caller. Bytes that can never become a valid message throw a
 * DecodeError (`ERR_MALFORMED`). Encoders reject values the wire cannot carry
 * with `ERR_OVERSIZED` / `ERR_MALFORMED`. docs/protocol.md.
 */
import { malformed, oversized } from '../../src/errors.js';
import { formatIPv4, formatIPv6, parseIPv4, parseIPv6 } from '../../src/net/address.js';

export const SOCKS_VERSION = 0x05;
/** RFC 1929 sub-negotiation version. */
export const AUTH_VERSION = 0x01;

export const AuthMethod = {
  NO_AUTH: 0x00,
  GSSAPI: 0x01,
  USERNAME_PASSWORD: 0x02,
  NO_ACCEPTABLE: 0xff,
} as const;

export const SocksCommandCode = {
  CONNECT: 0x01,
  BIND: 0x02,
  UDP_ASSOCIATE: 0x03,
  /** Tor's extension: resolve a hostname through the network (SOCKS5 and SOCKS4a). */
  RESOLVE: 0xf0,
  /** Tor's extension: reverse-resolve an IP address through the network (SOCKS5 only). */
  RESOLVE_PTR: 0xf1,
} as const;

export const AddressTypeCode = {
  IPV4: 0x01,
  DOMAIN: 0x03,
  IPV6: 0x04,
} as const;

export type AddressType = 'ipv4' | 'ipv6' | 'domain';

/** A decoded message and the number of input bytes it used. */
export interface Decoded<T> {
  value: T;
  length: number;
}

/** Largest greeting: VER, NMETHODS=255, 255 methods. */
export const MAX_GREETING_BYTES = 2 + 255;
/** Largest RFC 1929 request: VER, ULEN, 255, PLEN, 255. */
export const MAX_AUTH_REQUEST_BYTES = 3 + 255 + 255;
/** Largest request: VER CMD RSV ATYP, LEN + 255-byte domain, PORT. */
export const MAX_REQUEST_BYTES = 4 + 1 + 255 + 2;

// ---------------------------------------------------------------- greeting

export interface Greeting {
  /** Offered methods, in the client's order (duplicates kept). */
  methods: number[];
}

export function encodeGreeting(g: Greeting): Uint8Array {
  if (g.methods.length === 0) throw malformed('socks greeting: no methods');
  if (g.methods.length > 255) throw oversized('socks greeting: more than 255 methods');
  const out = new Uint8Array(2 + g.methods.length);
  out[0] = SOCKS_VERSION;
  out[1] = g.methods.length;
  g.methods.forEach((m, i) => {
    out[2 + i] = byteValue(m, 'socks greeting: method');
  });
  return out;
}

export function decodeGreeting(bytes: Uint8Array): Decoded<Greeting> | null {
  if (bytes.length < 1) return null;
  if (bytes[0] !== SOCKS_VERSION) throw malformed(`socks greeting: version ${bytes[0]!}, expected 5`);
  if (bytes.length < 2) return null;
  const n = bytes[1]!;
  if (n === 0) throw malformed('socks greeting: NMETHODS is 0');
  if (bytes.length < 2 + n) return null;
  return { value: { methods: Array.from(bytes.subarray(2, 2 + n)) }, length: 2 + n };
}

// ---------------------------------------------------------------- method selection

export interface MethodSelection {
  method: number;
}

export function encodeMethodSelection(s: MethodSelection): Uint8Array {
  return new Uint8Array([SOCKS_VERSION, byteValue(s.method, 'socks method selection')]);
}

export function decodeMethodSelection(bytes: Uint8Array): Decoded<MethodSelection> | null {
  if (bytes.length < 1) return null;
  if (bytes[0] !== SOCKS_VERSION) throw malformed(`socks method selection: version ${bytes[0]!}, expected 5`);
  if (bytes.length < 2) return null;
  return { value: { method: bytes[1]! }, length: 2 };
}

// ---------------------------------------------------------------- RFC 1929

/**
 * Username and password. RFC 1929 fields are opaque octets; they are carried
 * here as binary strings (one char per byte, latin1), so distinct byte
 * strings always give distinct isolation keys. Empty fields are accepted
 * (some clients send ULEN 0) even though RFC 1929 asks for 1..255.
 */
export interface AuthRequest {
  username: string;
  password: string;
}

export function encodeAuthRequest(a: AuthRequest): Uint8Array {
  const user = binaryField(a.username, 'socks auth: username');
  const pass = binaryField(a.password, 'socks auth: password');
  const out = new Uint8Array(3 + user.length + pass.length);
  out[0] = AUTH_VERSION;
  out[1] = user.length;
  out.set(user, 2);
  out[2 + user.length] = pass.length;
  out.set(pass, 3 + user.length);
  return out;
}

export function decodeAuthRequest(bytes: Uint8Array): Decoded<AuthRequest> | null {
  if (bytes.length < 1) return null;
  if (bytes[0] !== AUTH_VERSION) throw malformed(`socks auth: version ${bytes[0]!}, expected 1`);
  if (bytes.length < 2) return null;
  const ulen = bytes[1]!;
  if (bytes.length < 3 + ulen) return null;
  const plen = bytes[2 + ulen]!;
  const length = 3 + ulen + plen;
  if (bytes.length < length) return null;
  return {
    value: {
      username: Buffer.from(bytes.subarray(2, 2 + ulen)).toString('latin1'),
      password: Buffer.from(bytes.subarray(3 + ulen, length)).toString('latin1'),
    },
    length,
  };
}

export interface AuthReply {
  /** 0 = success; anything else = failure (the server then closes). */
  status: number;
}

export function encodeAuthReply(r: AuthReply): Uint8Array {
  return new Uint8Array([AUTH_VERSION, byteValue(r.status, 'socks auth reply: status')]);
}

export function decodeAuthReply(bytes: Uint8Array): Decoded<AuthReply> | null {
  if (bytes.length < 1) return null;
  if (bytes[0] !== AUTH_VERSION) throw malformed(`socks auth reply: version ${bytes[0]!}, expected 1`);
  if (bytes.length < 2) return null;
  return { value: { status: bytes[1]! }, length: 2 };
}

// ---------------------------------------------------------------- request / reply

/** A request as it is on the wire: any command number, a known address type. */
export interface RequestMessage {
  command: number;
  addressType: AddressType;
  /** Dotted quad, canonical IPv6 text (RFC 5952, src/net/address.ts) or the domain exactly as sent. */
  host: string;
  port: number;
}

/** A reply: `reply` is an RFC 1928 REP code (./replies.ts SocksReply). */
export interface ReplyMessage {
  reply: number;
  addressType: AddressType;
  host: string;
  port: number;
}

export function encodeRequest(r: RequestMessage): Uint8Array {
  return encodeCommandOrReply(byteValue(r.command, 'socks request: command'), r, 'socks request');
}

export function decodeRequest(bytes: Uint8Array): Decoded<RequestMessage> | null {
  const d = decodeCommandOrReply(bytes, 'socks request');
  if (d === null) return null;
  const { code, addressType, host, port } = d.value;
  return { value: { command: code, addressType, host, port }, length: d.length };
}

export function encodeReply(r: ReplyMessage): Uint8Array {
  return encodeCommandOrReply(byteValue(r.reply, 'socks reply: code'), r, 'socks reply');
}

export function decodeReply(bytes: Uint8Array): Decoded<ReplyMessage> | null {
  const d = decodeCommandOrReply(bytes, 'socks reply');
  if (d === null) return null;
  const { code, addressType, host, port } = d.value;
  return { value: { reply: code, addressType, host, port }, length: d.length };
}

/** A reply with the conventional unspecified bound address 0.0.0.0:0. */
export function replyBytes(reply: number): Uint8Array {
  return encodeReply({ reply, addressType: 'ipv4', host: '0.0.0.0', port: 0 });
}

interface Common {
  code: number;
  addressType: AddressType;
  host: string;
  port: number;
}

function encodeCommandOrReply(
  code: number,
  r: { addressType: AddressType; host: string; port: number },
  what: string,
): Uint8Array {
  if (!Number.isInteger(r.port) || r.port < 0 || r.port > 0xffff) throw malformed(`${what}: bad port`);
  let atyp: number;
  let addr: Uint8Array;
  switch (r.addressType) {
    case 'ipv4': {
      atyp = AddressTypeCode.IPV4;
      const bytes = parseIPv4(r.host);
      if (bytes === null) throw malformed(`${what}: bad IPv4 address`);
      addr = bytes;
      break;
    }
    case 'ipv6': {
      atyp = AddressTypeCode.IPV6;
      const bytes = parseIPv6(r.host);
      if (bytes === null) throw malformed(`${what}: bad IPv6 address`);
      addr = bytes;
      break;
    }
    case 'domain': {
      atyp = AddressTypeCode.DOMAIN;
      if (!/^[\x21-\x7e]*$/.test(r.host)) throw malformed(`${what}: domain has a non-printable character`);
      const name = Buffer.from(r.host, 'latin1');
      if (name.length > 255) throw oversized(`${what}: domain longer than 255 bytes`);
      if (name.length === 0) throw malformed(`${what}: empty domain`);
      checkDomain(name, what);
      addr = new Uint8Array(1 + name.length);
      addr[0] = name.length;
      addr.set(name, 1);
      break;
    }
    default:
      throw malformed(`${what}: unknown address type`);
  }
  const out = new Uint8Array(4 + addr.length + 2);
  out[0] = SOCKS_VERSION;
  out[1] = code;
  out[2] = 0;
  out[3] = atyp;
  out.set(addr, 4);
  out[4 + addr.length] = r.port >>> 8;
  out[5 + addr.length] = r.port & 0xff;
  return out;
}

function decodeCommandOrReply(bytes: Uint8Array, what: string): Decoded<Common> | null {
  if (bytes.length < 1) return null;
  if (bytes[0] !== SOCKS_VERSION) throw malformed(`${what}: version ${bytes[0]!}, expected 5`);
  if (bytes.length < 3) return null;
  if (bytes[2] !== 0) throw malformed(`${what}: reserved byte is not 0`);
  if (bytes.length < 4) return null;
  const atyp = bytes[3]!;
  let addressType: AddressType;
  let addrLen: number;
  let addrStart = 4;
  switch (atyp) {
    case AddressTypeCode.IPV4:
      addressType = 'ipv4';
      addrLen = 4;
      break;
    case AddressTypeCode.IPV6:
      addressType = 'ipv6';
      addrLen = 16;
      break;
    case AddressTypeCode.DOMAIN:
      addressType = 'domain';
      if (bytes.length < 5) return null;
      addrLen = bytes[4]!;
      addrStart = 5;
      if (addrLen === 0) throw malformed(`${what}: empty domain`);
      break;
    default:
      throw malformed(`${what}: unknown address type ${atyp}`);
  }
  // Check a domain as soon as its bytes are here, so junk fails early.
  const avail = bytes.subarray(addrStart, Math.min(bytes.length, addrStart + addrLen));
  if (addressType === 'domain') checkDomain(avail, what);
  const length = addrStart + addrLen + 2;
  if (bytes.length < length) return null;
  const addr = bytes.subarray(addrStart, addrStart + addrLen);
  const host =
    addressType === 'ipv4'
      ? formatIPv4(addr)
      : addressType === 'ipv6'
        ? formatIPv6(addr)
        : Buffer.from(addr).toString('latin1');
  const port = (bytes[length - 2]! << 8) | bytes[length - 1]!;
  return { value: { code: bytes[1]!, addressType, host, port }, length };
}

// ---------------------------------------------------------------- SOCKS4 / SOCKS4a

export const SOCKS4_VERSION = 0x04;

/** SOCKS4 reply codes (CD). A SOCKS4 reply's VN is 0. */
export const Socks4Reply = {
  GRANTED: 90,
  /** Rejected or failed: SOCKS4 has no finer failure code that applies to us. */
  REJECTED: 91,
} as const;

/** Longest SOCKS4 USERID and SOCKS4a hostname Allium accepts, without the NUL (bytes). */
export const MAX_SOCKS4_FIELD_BYTES = 255;
/** Largest SOCKS4a request: VN CD DSTPORT DSTIP, USERID + NUL, HOST + NUL. */
export const MAX_SOCKS4_REQUEST_BYTES = 8 + (MAX_SOCKS4_FIELD_BYTES + 1) * 2;
/** A SOCKS4 reply is always 8 bytes. */
export const SOCKS4_REPLY_BYTES = 8;

/**
 * A SOCKS4 or SOCKS4a request. With DSTIP 0.0.0.x (x != 0) the request is
 * SOCKS4a: a hostname follows the USERID and `addressType` is 'domain';
 * otherwise `host` is DSTIP as a dotted quad.
 */
export interface Socks4RequestMessage {
  command: number;
  addressType: 'ipv4' | 'domain';
  host: string;
  /** 0..65535 as sent; the handshake decides whether 0 is acceptable. */
  port: number;
  /** USERID as a binary (latin1) string; '' when empty. */
  userId: string;
}

/** Encode a request; a domain `host` makes it SOCKS4a (DSTIP 0.0.0.1). ERR_MALFORMED / ERR_OVERSIZED for what the wire cannot carry. */
export function encodeSocks4Request(r: Socks4RequestMessage): Uint8Array {
  if (!Number.isInteger(r.port) || r.port < 0 || r.port > 0xffff) throw malformed('socks4 request: bad port');
  const user = binaryField(r.userId, 'socks4 request: userid');
  if (user.includes(0)) throw malformed('socks4 request: userid contains NUL');
  let ip: Uint8Array;
  let name: Uint8Array | null = null;
  if (r.addressType === 'ipv4') {
    const bytes = parseIPv4(r.host);
    if (bytes === null) throw malformed('socks4 request: bad IPv4 address');
    if (bytes[0] === 0 && bytes[1] === 0 && bytes[2] === 0) throw malformed('socks4 request: 0.0.0.x is reserved for SOCKS4a');
    ip = bytes;
  } else {
    name = new Uint8Array(Buffer.from(r.host, 'latin1'));
    if (name.length === 0) throw malformed('socks4a request: empty hostname');
    if (name.length > MAX_SOCKS4_FIELD_BYTES) throw oversized('socks4a request: hostname longer than 255 bytes');
    checkDomain(name, 'socks4a request');
    ip = new Uint8Array([0, 0, 0, 1]);
  }
  const out = new Uint8Array(8 + user.length + 1 + (name === null ? 0 : name.length + 1));
  out[0] = SOCKS4_VERSION;
  out[1] = byteValue(r.command, 'socks4 request: command');
  out[2] = r.port >>> 8;
  out[3] = r.port & 0xff;
  out.set(ip, 4);
  out.set(user, 8);
  if (name !== null) out.set(name, 8 + user.length + 1);
  return out;
}

/**
 * Decode a SOCKS4 / SOCKS4a request. `null` while it is incomplete.
 * ERR_MALFORMED for a version other than 4, DSTIP 0.0.0.0, an empty or
 * non-graphic SOCKS4a hostname; ERR_OVERSIZED for a USERID or hostname over
 * 255 bytes (caught as soon as that many bytes arrive without a NUL).
 */
export function decodeSocks4Request(bytes: Uint8Array): Decoded<Socks4RequestMessage> | null {
  if (bytes.length < 1) return null;
  if (bytes[0] !== SOCKS4_VERSION) throw malformed(`socks4 request: version ${bytes[0]!}, expected 4`);
  if (bytes.length < 8) return null;
  const command = bytes[1]!;
  const port = (bytes[2]! << 8) | bytes[3]!;
  const ip = bytes.subarray(4, 8);
  if (ip[0] === 0 && ip[1] === 0 && ip[2] === 0 && ip[3] === 0) throw malformed('socks4 request: DSTIP is 0.0.0.0');
  const userEnd = nulWithin(bytes, 8, 'socks4 request: userid');
  if (userEnd === null) return null;
  const userId = Buffer.from(bytes.subarray(8, userEnd)).toString('latin1');
  if (!(ip[0] === 0 && ip[1] === 0 && ip[2] === 0)) {
    return { value: { command, addressType: 'ipv4', host: formatIPv4(ip), port, userId }, length: userEnd + 1 };
  }
  const hostStart = userEnd + 1;
  // Check the name's bytes as soon as they are here, so junk fails early, and
  // before its length, so the error (malformed before oversized) does not
  // depend on how the bytes arrived.
  const window = bytes.subarray(hostStart, hostStart + MAX_SOCKS4_FIELD_BYTES + 1);
  const nul = window.indexOf(0);
  checkDomain(window.subarray(0, nul >= 0 ? nul : MAX_SOCKS4_FIELD_BYTES), 'socks4a request');
  const hostEnd = nulWithin(bytes, hostStart, 'socks4a request: hostname');
  if (hostEnd === null) return null;
  if (hostEnd === hostStart) throw malformed('socks4a request: empty hostname');
  const host = Buffer.from(bytes.subarray(hostStart, hostEnd)).toString('latin1');
  return { value: { command, addressType: 'domain', host, port, userId }, length: hostEnd + 1 };
}

/** The index of the NUL ending a field that starts at `start`, null if not here yet; ERR_OVERSIZED past 255 bytes. */
function nulWithin(bytes: Uint8Array, start: number, what: string): number | null {
  const limit = Math.min(bytes.length, start + MAX_SOCKS4_FIELD_BYTES + 1);
  for (let i = start; i < limit; i++) if (bytes[i] === 0) return i;
  if (bytes.length > start + MAX_SOCKS4_FIELD_BYTES) throw oversized(`${what} longer than ${MAX_SOCKS4_FIELD_BYTES} bytes`);
  return null;
}

/** A SOCKS4 reply: CD (Socks4Reply), and DSTPORT / DSTIP (0 and 0.0.0.0 unless a RESOLVE answer). */
export interface Socks4ReplyMessage {
  code: number;
  port: number;
  /** Dotted quad. */
  address: string;
}

export function encodeSocks4Reply(r: Socks4ReplyMessage): Uint8Array {
  if (!Number.isInteger(r.port) || r.port < 0 || r.port > 0xffff) throw malformed('socks4 reply: bad port');
  const ip = parseIPv4(r.address);
  if (ip === null) throw malformed('socks4 reply: bad IPv4 address');
  const out = new Uint8Array(SOCKS4_REPLY_BYTES);
  out[0] = 0;
  out[1] = byteValue(r.code, 'socks4 reply: code');
  out[2] = r.port >>> 8;
  out[3] = r.port & 0xff;
  out.set(ip, 4);
  return out;
}

/** ERR_MALFORMED for a VN other than 0. */
export function decodeSocks4Reply(bytes: Uint8Array): Decoded<Socks4ReplyMessage> | null {
  if (bytes.length < 1) return null;
  if (bytes[0] !== 0) throw malformed(`socks4 reply: version ${bytes[0]!}, expected 0`);
  if (bytes.length < SOCKS4_REPLY_BYTES) return null;
  return {
    value: { code: bytes[1]!, port: (bytes[2]! << 8) | bytes[3]!, address: formatIPv4(bytes.subarray(4, 8)) },
    length: SOCKS4_REPLY_BYTES,
  };
}

/** A SOCKS4 reply with DSTPORT 0 and DSTIP 0.0.0.0. */
export function socks4ReplyBytes(code: number): Uint8Array {
  return encodeSocks4Reply({ code, port: 0, address: '0.0.0.0' });
}

// ---------------------------------------------------------------- helpers

/** Domains: 1..255 bytes of graphic ASCII (0x21..0x7e): no NUL, no controls, no spaces. */
function checkDomain(name: Uint8Array, what: string): void {
  for (const b of name) {
    if (b < 0x21 || b > 0x7e) throw malformed(`${what}: domain has a non-printable byte`);
  }
}

/** The unknown-ATYP check the handshake needs before the whole request is in. */
export function isKnownAddressType(atyp: number): boolean {
  return atyp === AddressTypeCode.IPV4 || atyp === AddressTypeCode.IPV6 || atyp === AddressTypeCode.DOMAIN;
}

function byteValue(n: number, what: string): number {
  if (!Number.isInteger(n) || n < 0 || n > 0xff) throw malformed(`${what}: not a byte`);
  return n;
}

function binaryField(text: string, what: string): Uint8Array {
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0xff) throw malformed(`${what}: not a binary (latin1) string`);
  }
  if (text.length > 255) throw oversized(`${what}: longer than 255 bytes`);
  return new Uint8Array(Buffer.from(text, 'latin1'));
}
