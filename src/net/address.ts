/**
 * IP addresses as bytes and as text: the one parser and formatter that exit
 * policies, SOCKS, EXTEND2, BEGIN/CONNECTED, the CLI and path selection share,
 * so an address gets the same verdict wherever it is read (docs/protocol.md §8.3).
 *
 * Text accepted (strict, the same everywhere):
 * - IPv4: exactly four decimal octets `0`..`255` separated by `.`, without
 *   leading zeros (`010.0.0.1` is refused: some resolvers read it as octal).
 * - IPv6: RFC 4291 §2.2: eight groups of 1-4 hex digits (either case), at most
 *   one `::` standing for one or more zero groups, and optionally a dotted-quad
 *   IPv4 tail in place of the last two groups (and only there). No zone id
 *   (`fe80::1%eth0`), no brackets, no surrounding whitespace.
 *
 * Text written: IPv4 as a dotted quad; IPv6 in RFC 5952 canonical form
 * (lowercase, no leading zeros, the longest run of two or more zero groups
 * as `::`, the first such run on a tie), except that an IPv4-mapped address
 * (`::ffff:0:0/96`) keeps the dotted form `::ffff:1.2.3.4` (RFC 5952 §5).
 *
 * Convention: `parse*` functions return `null` for text that is not an
 * address; each caller turns that into its own error (DecodeError in codecs,
 * DocumentError in documents, an option error in the CLI). `format*`
 * functions throw a DecodeError (`ERR_MALFORMED`) for byte strings of the
 * wrong length. Everything here is pure.
 */
import { malformed } from '../errors.js';

/** An IP address: `bytes` is 4 long for family 4, 16 long for family 6 (network byte order). */
export interface IpAddress {
  readonly family: 4 | 6;
  readonly bytes: Uint8Array;
}

/** Longest IPv6 text: eight groups of four plus seven colons, or six groups and a dotted quad. */
export const MAX_IPV6_TEXT = 45;

const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;
const IPV6_CHARS = /^[0-9A-Fa-f:.]+$/;

/** Dotted-quad IPv4 text → 4 bytes, or null. Four decimal octets 0-255 without leading zeros; one pass, no regular expression. */
export function parseIPv4(text: string): Uint8Array | null {
  const n = text.length;
  if (n < 7 || n > 15) return null;
  const out = new Uint8Array(4);
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = 0; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : 46; // a '.' after the end closes the last octet
    if (c === 46) {
      if (digits === 0 || part > 3) return null;
      out[part++] = value;
      value = 0;
      digits = 0;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && value === 0) return null; // leading zero
      value = value * 10 + (c - 48);
      if (++digits > 3 || value > 255) return null;
    } else {
      return null;
    }
  }
  return part === 4 ? out : null;
}

/** Groups of a `::`-free run of hex groups ("" is no groups), or null. */
function hexGroups(run: string): number[] | null {
  if (run === '') return [];
  const out: number[] = [];
  for (const group of run.split(':')) {
    if (!HEX_GROUP.test(group)) return null;
    out.push(parseInt(group, 16));
  }
  return out;
}

/** IPv6 text (RFC 4291 §2.2, optional dotted-quad tail, no zone, no brackets) → 16 bytes, or null. */
export function parseIPv6(text: string): Uint8Array | null {
  if (text.length < 2 || text.length > MAX_IPV6_TEXT || !IPV6_CHARS.test(text)) return null;
  let head = text;
  let tail: Uint8Array | null = null;
  if (text.includes('.')) {
    // The dotted quad may only be the last part: everything after the last colon.
    const lastColon = text.lastIndexOf(':');
    if (lastColon < 0) return null;
    tail = parseIPv4(text.slice(lastColon + 1));
    if (tail === null) return null;
    // Keep a "::" that ends right before the quad; drop a single separating colon.
    head = text.slice(0, text.endsWith(`::${text.slice(lastColon + 1)}`) ? lastColon + 1 : lastColon);
  }
  const wanted = tail === null ? 8 : 6;
  let groups: number[];
  const gap = head.indexOf('::');
  if (gap >= 0) {
    if (head.indexOf('::', gap + 1) >= 0) return null;
    const left = hexGroups(head.slice(0, gap));
    const right = hexGroups(head.slice(gap + 2));
    if (left === null || right === null) return null;
    const zeros = wanted - left.length - right.length;
    if (zeros < 1) return null;
    groups = [...left, ...new Array<number>(zeros).fill(0), ...right];
  } else {
    const all = hexGroups(head);
    if (all === null || all.length !== wanted) return null;
    groups = all;
  }
  const out = new Uint8Array(16);
  groups.forEach((g, i) => {
    out[2 * i] = g >>> 8;
    out[2 * i + 1] = g & 0xff;
  });
  if (tail !== null) out.set(tail, 12);
  return out;
}

/** IPv4 or IPv6 text → an address, or null. An IPv4-mapped IPv6 text stays family 6 (see unmapIPv4). */
export function parseIp(text: string): IpAddress | null {
  const v4 = parseIPv4(text);
  if (v4 !== null) return { family: 4, bytes: v4 };
  const v6 = parseIPv6(text);
  return v6 === null ? null : { family: 6, bytes: v6 };
}

/** 4 bytes → `a.b.c.d`. Throws DecodeError ERR_MALFORMED for another length. */
export function formatIPv4(bytes: Uint8Array): string {
  if (bytes.length !== 4) throw malformed(`IPv4 address: expected 4 bytes, got ${bytes.length}`);
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/** 16 bytes → RFC 5952 text; `::ffff:a.b.c.d` for IPv4-mapped. Throws DecodeError ERR_MALFORMED for another length. */
export function formatIPv6(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw malformed(`IPv6 address: expected 16 bytes, got ${bytes.length}`);
  if (isIPv4Mapped(bytes)) return `::ffff:${formatIPv4(bytes.subarray(12))}`;
  const groups: number[] = [];
  for (let i = 0; i < 8; i++) groups.push((bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  let runStart = -1;
  let runLength = 1; // only runs of two or more groups are compressed
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > runLength) {
      runStart = i;
      runLength = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (runStart < 0) return hex.join(':');
  return `${hex.slice(0, runStart).join(':')}::${hex.slice(runStart + runLength).join(':')}`;
}

/** Canonical text of an address (formatIPv4 or formatIPv6). */
export function formatIp(address: IpAddress): string {
  return address.family === 4 ? formatIPv4(address.bytes) : formatIPv6(address.bytes);
}

/** Canonical text of an address given as text, or null when the text is not an address. */
export function canonicalIp(text: string): string | null {
  const address = parseIp(text);
  return address === null ? null : formatIp(address);
}

/** Whether 16 bytes are an IPv4-mapped IPv6 address (`::ffff:0:0/96`, RFC 4291 §2.5.5.2). */
export function isIPv4Mapped(bytes: Uint8Array): boolean {
  if (bytes.length !== 16) return false;
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return false;
  return bytes[10] === 0xff && bytes[11] === 0xff;
}

/**
 * The IPv4 address an IPv4-mapped IPv6 address stands for (`::ffff:1.2.3.4`
 * → `1.2.3.4`); any other address is returned as it is. Use it wherever the
 * destination matters (exit policies, private ranges, network grouping), so a
 * mapped address cannot slip past an IPv4 rule.
 */
export function unmapIPv4(address: IpAddress): IpAddress {
  if (address.family === 6 && isIPv4Mapped(address.bytes)) return { family: 4, bytes: address.bytes.slice(12) };
  return address;
}

/**
 * The reverse-lookup (PTR) name of an address, as RESOLVE carries it for a
 * reverse lookup (docs/protocol.md §6.6): `d.c.b.a.in-addr.arpa` for IPv4
 * (RFC 1035 §3.5), 32 nibbles, least significant first, then `ip6.arpa` for
 * IPv6 (RFC 3596 §2.5).
 */
export function reversePointerName(address: IpAddress): string {
  if (address.family === 4) return `${[...address.bytes].reverse().join('.')}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (let i = 15; i >= 0; i--) nibbles.push((address.bytes[i]! & 0xf).toString(16), (address.bytes[i]! >> 4).toString(16));
  return `${nibbles.join('.')}.ip6.arpa`;
}

/**
 * The address a PTR name stands for (the inverse of reversePointerName; case
 * and one trailing dot ignored), or null for any other name, including
 * partial names (`2.1.in-addr.arpa`, a network rather than an address).
 */
export function parseReversePointerName(name: string): IpAddress | null {
  const lower = name.toLowerCase().replace(/\.$/, '');
  if (lower.endsWith('.in-addr.arpa')) {
    const labels = lower.slice(0, -'.in-addr.arpa'.length).split('.');
    if (labels.length !== 4) return null;
    const bytes = parseIPv4(labels.reverse().join('.'));
    return bytes === null ? null : { family: 4, bytes };
  }
  if (lower.endsWith('.ip6.arpa')) {
    const labels = lower.slice(0, -'.ip6.arpa'.length).split('.');
    if (labels.length !== 32 || !labels.every((l) => /^[0-9a-f]$/.test(l))) return null;
    const bytes = new Uint8Array(16);
    for (let i = 0; i < 16; i++) bytes[15 - i] = parseInt(labels[2 * i]!, 16) | (parseInt(labels[2 * i + 1]!, 16) << 4);
    return { family: 6, bytes };
  }
  return null;
}
