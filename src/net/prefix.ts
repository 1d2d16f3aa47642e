/**
 * Address prefixes (CIDR masks), the `private` ranges of exit policies, and
 * the "same network" grouping of path selection (docs/protocol.md §8.3, §11).
 * Built on ./address.ts; the same conventions: `parse*` returns null for text
 * that is not a prefix, everything is pure.
 */
import { formatIp, parseIPv4, parseIPv6, unmapIPv4, type IpAddress } from './address.js';

/** An address prefix: the first `bits` bits of `bytes`; the bits after them are zero. */
export interface IpPrefix extends IpAddress {
  /** 0..32 for family 4, 0..128 for family 6. */
  readonly bits: number;
}

export interface ParsePrefixOptions {
  /**
   * How an IPv6 address must be written: `'bracketed'` (`[2001:db8::]/32`, the
   * exit-policy grammar, where a bare colon would clash with the port),
   * `'bare'` (`2001:db8::/32`), or `'either'` (the default).
   */
  readonly ipv6?: 'bracketed' | 'bare' | 'either';
}

const BITS = /^(?:0|[1-9][0-9]{0,2})$/;

/** Whether no bit after the first `bits` is set. */
function hostBitsClear(bytes: Uint8Array, bits: number): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    const hostMask = 0xff >> keep;
    if ((bytes[i]! & hostMask) !== 0) return false;
  }
  return true;
}

/** The first `bits` bits of `bytes`, the rest zeroed. */
function maskTo(bytes: Uint8Array, bits: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - 8 * i));
    out[i] = bytes[i]! & ~(0xff >> keep) & 0xff;
  }
  return out;
}

/** Whether the first `bits` bits of `a` and `b` are equal (both at least `bits` long). */
function samePrefix(a: Uint8Array, b: Uint8Array, bits: number): boolean {
  let i = 0;
  for (; bits >= 8; bits -= 8, i++) if (a[i] !== b[i]) return false;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return ((a[i]! ^ b[i]!) & mask) === 0;
}

/**
 * `ADDRESS` or `ADDRESS/BITS` → a prefix, or null. ADDRESS is an IPv4 address
 * or an IPv6 address (bracketed or bare as `options.ipv6` allows); BITS is
 * decimal without leading zeros, at most 32 or 128, and defaults to the full
 * length. A prefix with host bits set (`10.0.0.1/8`) is refused.
 */
export function parsePrefix(text: string, options: ParsePrefixOptions = {}): IpPrefix | null {
  const slash = text.indexOf('/');
  let host = slash < 0 ? text : text.slice(0, slash);
  const bitsText = slash < 0 ? undefined : text.slice(slash + 1);
  const bracketed = host.startsWith('[') && host.endsWith(']');
  if (bracketed) host = host.slice(1, -1);
  let family: 4 | 6;
  let bytes: Uint8Array | null = bracketed ? null : parseIPv4(host);
  if (bytes !== null) {
    family = 4;
  } else {
    const style = options.ipv6 ?? 'either';
    if ((bracketed && style === 'bare') || (!bracketed && style === 'bracketed')) return null;
    bytes = parseIPv6(host);
    if (bytes === null) return null;
    family = 6;
  }
  const max = family === 4 ? 32 : 128;
  let bits = max;
  if (bitsText !== undefined) {
    if (!BITS.test(bitsText)) return null;
    bits = Number(bitsText);
    if (bits > max) return null;
  }
  if (!hostBitsClear(bytes, bits)) return null;
  return { family, bytes, bits };
}

/** `a.b.c.d/n` or `v6/n` (bare, RFC 5952); `brackets` writes `[v6]/n`. The `/n` is always written. */
export function formatPrefix(prefix: IpPrefix, options: { brackets?: boolean } = {}): string {
  const text = formatIp(prefix);
  return `${prefix.family === 6 && options.brackets === true ? `[${text}]` : text}/${prefix.bits}`;
}

/**
 * Whether `address` lies in `prefix`. Families must agree: an IPv6 prefix
 * never contains an IPv4 address and the other way round. Callers that care
 * about destinations unmap IPv4-mapped addresses first (unmapIPv4).
 */
export function prefixContains(prefix: IpPrefix, address: IpAddress): boolean {
  return prefix.family === address.family && samePrefix(address.bytes, prefix.bytes, prefix.bits);
}

/** The prefix of length `bits` that contains `address`. */
export function prefixOf(address: IpAddress, bits: number): IpPrefix {
  const max = address.family === 4 ? 32 : 128;
  if (!Number.isInteger(bits) || bits < 0 || bits > max) throw new RangeError(`prefix length ${bits} outside 0..${max}`);
  return { family: address.family, bytes: maskTo(address.bytes, bits), bits };
}

function prefixes(texts: readonly string[]): readonly IpPrefix[] {
  return Object.freeze(texts.map((t) => parsePrefix(t)!));
}

/**
 * What `private` means in an exit policy (docs/protocol.md §8.3): Tor's list
 * (0/8, 169.254/16, 127/8, 192.168/16, 10/8, 172.16/12; ::/8 — which holds
 * `::` and `::1` — fc00::/7, fe80::/10, fec0::/10 and ff00::/8) plus Allium's
 * 100.64/10 (carrier-grade NAT, RFC 6598).
 */
export const PRIVATE_PREFIXES: readonly IpPrefix[] = prefixes([
  '0.0.0.0/8',
  '10.0.0.0/8',
  '100.64.0.0/10',
  '127.0.0.0/8',
  '169.254.0.0/16',
  '172.16.0.0/12',
  '192.168.0.0/16',
  '::/8',
  'fc00::/7',
  'fe80::/10',
  'fec0::/10',
  'ff00::/8',
]);

/** Loopback: 127/8 and ::1. */
export const LOOPBACK_PREFIXES: readonly IpPrefix[] = prefixes(['127.0.0.0/8', '::1/128']);

/** Whether the address (IPv4-mapped addresses as their IPv4 address) is in one of PRIVATE_PREFIXES. */
export function isPrivateIp(address: IpAddress): boolean {
  const a = unmapIPv4(address);
  return PRIVATE_PREFIXES.some((p) => prefixContains(p, a));
}

/** Whether every address in `prefix` is loopback (127/8 or ::1). */
export function prefixIsLoopback(prefix: IpPrefix): boolean {
  return LOOPBACK_PREFIXES.some((loop) => prefix.bits >= loop.bits && prefixContains(loop, prefix));
}

/** Prefix lengths of the "same network" rule: no two relays of a circuit share one (docs/protocol.md §11). */
export const SAME_NETWORK_BITS = { 4: 16, 6: 32 } as const;

/**
 * The network an address counts as for path selection: its IPv4 /16 or IPv6
 * /32 (an IPv4-mapped address as its IPv4 address), written as a prefix
 * (`10.1.0.0/16`, `2001:db8::/32`). Two addresses are in the same network
 * when their keys are equal.
 */
export function networkKey(address: IpAddress): string {
  const a = unmapIPv4(address);
  return formatPrefix(prefixOf(a, SAME_NETWORK_BITS[a.family]));
}

/** Whether two addresses are in the same network (networkKey). */
export function sameNetwork(a: IpAddress, b: IpAddress): boolean {
  return networkKey(a) === networkKey(b);
}
