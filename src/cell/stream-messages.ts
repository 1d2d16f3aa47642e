/**
 * Stream message bodies (docs/protocol.md §6.6), Tor's formats:
 *   BEGIN:     "host:port" NUL [ flags (4) ]   (IPv6 hosts in brackets; flags omitted when 0)
 *   CONNECTED: empty | IPv4 (4) TTL (4) [ flags (4) ] | 0x00000000 | 6 | IPv6 (16) | TTL (4) [ flags (4) ]
 *              (flags: Allium's answer to BEGIN flags it accepts, §6.4; only after an address)
 *   END:       reason (1) [ IPv4 (4) or IPv6 (16) [ TTL (4) ] ]   (the address only with EXITPOLICY)
 *   RESOLVE:   hostname NUL   (an in-addr.arpa / ip6.arpa name for a reverse lookup)
 *   RESOLVED:  { type (1) | length (1) | value (length) | TTL (4) }*
 * Every decoder takes the whole body (the relay cell's `length` bytes) and
 * rejects trailing bytes; addresses come back as text (dotted quad, RFC 5952 IPv6).
 */
import { Reader, Writer, expectEnd, readLengthPrefixed, writeLengthPrefixed } from '../bytes.js';
import { malformed } from '../errors.js';
import { formatIPv4, formatIPv6, parseIp, parseIPv6 } from '../net/address.js';
import { EndReason } from './reasons.js';

export interface BeginBody {
  host: string;
  port: number;
  /** Tor's BEGIN flags (bit 1 IPv6 okay, bit 2 IPv4 not okay, bit 3 IPv6 preferred) and Allium's (BeginFlag); a u32. */
  flags: number;
}

/**
 * BEGIN flags (docs/protocol.md §6.4, §6.6). Tor numbers bits from 1 (the
 * least significant); its exits ignore bits they do not know. Allium takes
 * its own from the top, away from Tor's.
 */
export const BeginFlag = {
  IPV6_OK: 1 << 0,
  IPV4_NOT_OK: 1 << 1,
  IPV6_PREFERRED: 1 << 2,
  /**
   * Allium, bit 32: the client can half-close (FIN, §6.4). An exit that can
   * too answers with the same bit in CONNECTED's flags.
   */
  HALF_CLOSE: 0x8000_0000,
} as const;

/** Hostnames Allium carries: letters, digits, `.`, `-`, `_`, 1-255 bytes (IPv4 literals fit too). */
const HOST_RE = /^[A-Za-z0-9._-]{1,255}$/;

const latin1 = new TextDecoder('latin1');

/**
 * BEGIN body. RangeError for a host that is neither a hostname (HOST_RE) nor
 * an IPv6 address, a port outside 1..65535 or flags outside u32.
 */
export function encodeBegin(body: BeginBody): Uint8Array {
  const { host, port, flags } = body;
  const v6 = parseIPv6(host) !== null;
  if (!v6 && !HOST_RE.test(host)) throw new RangeError(`BEGIN: not a hostname or address: ${JSON.stringify(host)}`);
  if (!Number.isInteger(port) || port < 1 || port > 0xffff) throw new RangeError(`BEGIN: port ${port} is not in 1..65535`);
  const text = new TextEncoder().encode(`${v6 ? `[${host}]` : host}:${port}`);
  const w = new Writer(text.length + 5).bytes(text).u8(0);
  if (flags !== 0) w.u32(flags);
  return w.finish();
}

/** ERR_MALFORMED for a missing NUL, bad host or port, or anything but 0 or 4 bytes of flags after the NUL. */
export function decodeBegin(data: Uint8Array): BeginBody {
  const nul = data.indexOf(0);
  if (nul < 0) throw malformed('BEGIN: address is not NUL-terminated');
  // Latin-1 maps every byte to one character, so a non-ASCII byte fails the host check below.
  const text = latin1.decode(data.subarray(0, nul));
  const rest = new Reader(data.subarray(nul + 1), 'BEGIN flags');
  let flags = 0;
  if (rest.remaining === 4) flags = rest.u32();
  else if (rest.remaining !== 0) throw malformed(`BEGIN: ${rest.remaining} bytes after the address (flags are 4)`);
  const colon = text.lastIndexOf(':');
  if (colon <= 0) throw malformed('BEGIN: expected host:port');
  let host = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (!/^\d{1,5}$/.test(portText)) throw malformed('BEGIN: bad port');
  const port = Number(portText);
  if (port < 1 || port > 65535) throw malformed('BEGIN: port out of range');
  if (host.startsWith('[') && host.endsWith(']')) {
    host = host.slice(1, -1);
    if (parseIPv6(host) === null) throw malformed('BEGIN: bad IPv6 address');
  } else if (!HOST_RE.test(host)) {
    throw malformed('BEGIN: bad hostname');
  }
  return { host, port, flags };
}

/** An IPv6 address as BEGIN carries it: no zone id (`%eth0` names an interface of the sender, not a destination). */

export interface ConnectedBody {
  /** The address the exit reached, or null for an empty CONNECTED. */
  address: string | null;
  /** Seconds the address may be cached; 0 when `address` is null. */
  ttl: number;
  /**
   * Allium: the BEGIN flags (BeginFlag) the exit accepts, a non-zero u32;
   * absent when none (and then not sent). Only with an address.
   */
  flags?: number;
}

/** The IPv6 form of CONNECTED starts with these four zero bytes, then the address type 6. */
const CONNECTED_IPV6_TYPE = 6;

/**
 * CONNECTED body: empty for a null address (the TTL is not sent), otherwise
 * the IPv4 or IPv6 form, then `flags` when non-zero. RangeError for text
 * that is not an IP address, for 0.0.0.0 (its bytes would read as the IPv6
 * marker), a TTL or flags outside u32, or flags without an address.
 */
export function encodeConnected(address: string | null, ttl = 300, flags = 0): Uint8Array {
  if (address === null) {
    if (flags !== 0) throw new RangeError('CONNECTED: flags are only sent after an address');
    return new Uint8Array(0);
  }
  const a = addressBytes(address, 'CONNECTED');
  const w = new Writer(29);
  if (a.length === 4) {
    if (a.every((b) => b === 0)) throw new RangeError('CONNECTED: 0.0.0.0 cannot be sent');
    w.bytes(a);
  } else {
    w.u32(0).u8(CONNECTED_IPV6_TYPE).bytes(a);
  }
  w.u32(ttl);
  if (flags !== 0) w.u32(flags);
  return w.finish();
}

/**
 * ERR_TRUNCATED if a form ends early, ERR_MALFORMED for an address type
 * other than 6, flags of zero, or bytes after the flags (or after the TTL,
 * unless exactly 4: the flags).
 */
export function decodeConnected(data: Uint8Array): ConnectedBody {
  if (data.length === 0) return { address: null, ttl: 0 };
  const r = new Reader(data, 'CONNECTED');
  let a = r.bytes(4);
  if (a[0] === 0 && a[1] === 0 && a[2] === 0 && a[3] === 0) {
    const type = r.u8();
    if (type !== CONNECTED_IPV6_TYPE) throw malformed(`CONNECTED: address type ${type}`);
    a = r.bytes(16);
  }
  const ttl = r.u32();
  if (r.remaining === 4) {
    const flags = r.u32();
    if (flags === 0) throw malformed('CONNECTED: flags of zero are not sent');
    return { address: addressText(a), ttl, flags };
  }
  expectEnd(r, 'CONNECTED');
  return { address: addressText(a), ttl };
}

export interface EndBody {
  /** END reason (src/cell/reasons.ts). */
  reason: number;
  /** Only with EXITPOLICY: the address the exit refused. */
  address?: string;
  /** Only with `address`, and optional there: seconds it may be cached. */
  ttl?: number;
}

/**
 * END body. With only a reason (the usual case) one byte. RangeError for a
 * reason outside u8, an address without EXITPOLICY, a TTL without an address,
 * or an address that is not IPv4 or IPv6 text.
 */
export function encodeEnd(reason: number | EndBody): Uint8Array {
  const body = typeof reason === 'number' ? { reason } : reason;
  const w = new Writer(21).u8(body.reason);
  if (body.address !== undefined) {
    if (body.reason !== EndReason.EXITPOLICY) throw new RangeError('END: an address is only sent with EXITPOLICY');
    w.bytes(addressBytes(body.address, 'END'));
    if (body.ttl !== undefined) w.u32(body.ttl);
  } else if (body.ttl !== undefined) {
    throw new RangeError('END: a TTL is only sent with an address');
  }
  return w.finish();
}

/**
 * The reason of an END body whatever follows it: its first byte, MISC when
 * empty. For an END that does not decode, which still ends its stream (Tor:
 * "the RELAY_END message should be processed anyway"). Never throws.
 */
export function endReasonOf(data: Uint8Array): number {
  return data.length === 0 ? EndReason.MISC : data[0]!;
}

/** The END reason only (an empty body is MISC, as in Tor); validates the body like `decodeEndBody`. */
export function decodeEnd(data: Uint8Array): number {
  return decodeEndBody(data).reason;
}

/**
 * Whole END body. Empty means MISC. After an EXITPOLICY reason: nothing,
 * IPv4 (4), IPv4 + TTL (8), IPv6 (16) or IPv6 + TTL (20); anything else, or
 * any byte after another reason, is ERR_MALFORMED.
 */
export function decodeEndBody(data: Uint8Array): EndBody {
  if (data.length === 0) return { reason: EndReason.MISC };
  const r = new Reader(data, 'END');
  const reason = r.u8();
  if (r.remaining === 0) return { reason };
  if (reason !== EndReason.EXITPOLICY) throw malformed(`END: ${r.remaining} bytes after reason ${reason}`);
  let address: string;
  if (r.remaining === 4 || r.remaining === 8) address = addressText(r.bytes(4));
  else if (r.remaining === 16 || r.remaining === 20) address = addressText(r.bytes(16));
  else throw malformed(`END: EXITPOLICY with ${r.remaining} bytes of address`);
  return r.remaining === 4 ? { reason, address, ttl: r.u32() } : { reason, address };
}

/** RESOLVE body: the hostname and its NUL. RangeError for a name that fails HOST_RE. */
export function encodeResolve(hostname: string): Uint8Array {
  if (!HOST_RE.test(hostname)) throw new RangeError(`RESOLVE: not a hostname: ${JSON.stringify(hostname)}`);
  return new Writer(hostname.length + 1).bytes(new TextEncoder().encode(hostname)).u8(0).finish();
}

/** ERR_MALFORMED for a missing NUL, bytes after it, or a name that fails HOST_RE. */
export function decodeResolve(data: Uint8Array): string {
  const nul = data.indexOf(0);
  if (nul < 0) throw malformed('RESOLVE: hostname is not NUL-terminated');
  if (nul !== data.length - 1) throw malformed('RESOLVE: bytes after the NUL');
  const hostname = latin1.decode(data.subarray(0, nul));
  if (!HOST_RE.test(hostname)) throw malformed('RESOLVE: bad hostname');
  return hostname;
}

/** RESOLVED answer types (Tor's numbers). */
export const ResolvedType = {
  HOSTNAME: 0x00,
  IPV4: 0x04,
  IPV6: 0x06,
  ERROR_TRANSIENT: 0xf0,
  ERROR_NONTRANSIENT: 0xf1,
} as const;

/** One answer of a RESOLVED message; `ttl` is in seconds (u32). */
export type ResolvedAnswer =
  | { readonly type: 'hostname'; readonly hostname: string; readonly ttl: number }
  | { readonly type: 'ipv4'; readonly address: string; readonly ttl: number }
  | { readonly type: 'ipv6'; readonly address: string; readonly ttl: number }
  /** The lookup failed; `transient` means it may work later. Its value is ignored on receipt and sent empty. */
  | { readonly type: 'error'; readonly transient: boolean; readonly ttl: number }
  /** A type this codec does not know: kept as sent. */
  | { readonly type: 'unrecognized'; readonly code: number; readonly value: Uint8Array; readonly ttl: number };

const KNOWN_RESOLVED_TYPES: ReadonlySet<number> = new Set(Object.values(ResolvedType));

/**
 * RESOLVED body. RangeError for an error answer next to any other answer
 * (Tor: an error is the only answer), an address of the wrong family, a bad
 * hostname, an unrecognized answer that uses a known type code, a value over
 * 255 bytes or a TTL outside u32.
 */
export function encodeResolved(answers: readonly ResolvedAnswer[]): Uint8Array {
  if (answers.length > 1 && answers.some((a) => a.type === 'error')) throw new RangeError('RESOLVED: an error must be the only answer');
  const w = new Writer(64);
  for (const a of answers) {
    switch (a.type) {
      case 'hostname':
        if (!HOST_RE.test(a.hostname)) throw new RangeError(`RESOLVED: not a hostname: ${JSON.stringify(a.hostname)}`);
        w.u8(ResolvedType.HOSTNAME);
        writeLengthPrefixed(w, 1, new TextEncoder().encode(a.hostname));
        break;
      case 'ipv4':
      case 'ipv6': {
        const bytes = addressBytes(a.address, 'RESOLVED');
        if ((bytes.length === 4) !== (a.type === 'ipv4')) throw new RangeError(`RESOLVED: ${a.address} is not ${a.type}`);
        w.u8(a.type === 'ipv4' ? ResolvedType.IPV4 : ResolvedType.IPV6);
        writeLengthPrefixed(w, 1, bytes);
        break;
      }
      case 'error':
        w.u8(a.transient ? ResolvedType.ERROR_TRANSIENT : ResolvedType.ERROR_NONTRANSIENT).u8(0);
        break;
      case 'unrecognized':
        if (KNOWN_RESOLVED_TYPES.has(a.code)) throw new RangeError(`RESOLVED: type ${a.code} is not unrecognized`);
        w.u8(a.code);
        writeLengthPrefixed(w, 1, a.value);
        break;
      default:
        throw new RangeError(`RESOLVED: unknown answer type ${(a as { type: unknown }).type}`);
    }
    w.u32(a.ttl);
  }
  return w.finish();
}

/**
 * Whole RESOLVED body (may be empty: no answers). ERR_TRUNCATED if an answer
 * ends early; ERR_MALFORMED for an IPv4 value that is not 4 bytes, an IPv6
 * value that is not 16, a bad hostname, or an error next to other answers.
 * Unrecognized values are views into `data`.
 */
export function decodeResolved(data: Uint8Array): ResolvedAnswer[] {
  const r = new Reader(data, 'RESOLVED');
  const answers: ResolvedAnswer[] = [];
  let errors = 0;
  while (r.remaining > 0) {
    const code = r.u8();
    const value = readLengthPrefixed(r, 1);
    const ttl = r.u32();
    switch (code) {
      case ResolvedType.HOSTNAME: {
        const hostname = latin1.decode(value);
        if (!HOST_RE.test(hostname)) throw malformed('RESOLVED: bad hostname');
        answers.push({ type: 'hostname', hostname, ttl });
        break;
      }
      case ResolvedType.IPV4:
      case ResolvedType.IPV6: {
        const want = code === ResolvedType.IPV4 ? 4 : 16;
        if (value.length !== want) throw malformed(`RESOLVED: type ${code} value of ${value.length} bytes`);
        answers.push({ type: code === ResolvedType.IPV4 ? 'ipv4' : 'ipv6', address: addressText(value), ttl });
        break;
      }
      case ResolvedType.ERROR_TRANSIENT:
      case ResolvedType.ERROR_NONTRANSIENT:
        errors++;
        answers.push({ type: 'error', transient: code === ResolvedType.ERROR_TRANSIENT, ttl });
        break;
      default:
        answers.push({ type: 'unrecognized', code, value, ttl });
    }
  }
  if (errors > 0 && answers.length > 1) throw malformed('RESOLVED: an error next to other answers');
  return answers;
}

/** IPv4 or IPv6 text → 4 or 16 bytes; RangeError naming `what` otherwise. */
function addressBytes(address: string, what: string): Uint8Array {
  const ip = parseIp(address);
  if (ip === null) throw new RangeError(`${what}: not an IP address: ${JSON.stringify(address)}`);
  return ip.bytes;
}

/** 4 or 16 bytes → dotted quad or RFC 5952 text (src/net/address.ts). */
function addressText(a: Uint8Array): string {
  return a.length === 4 ? formatIPv4(a) : formatIPv6(a);
}
