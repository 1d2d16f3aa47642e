/**
 * Stream destinations as an application names them (a SOCKS5 domain, the
 * host of openStream(), the host of a BEGIN at an exit): an IP literal or a
 * hostname the exit may look up, or neither (docs/protocol.md §6.4, §12).
 * One verdict for the client and the exit, so a name the client sends is one
 * the exit accepts, and a bad name is refused before it leaves the machine.
 *
 * IP literals are recognized with src/net/address.ts (its strict forms):
 * a dotted quad, IPv6 text, or IPv6 text in brackets (`[::1]`, as a URL
 * writes it). They come back in canonical text.
 *
 * A hostname (RFC 1123 §2.1, RFC 1035 §2.3.4, as Tor's exits check them):
 * - at most 253 bytes, not counting one optional trailing dot (a fully
 *   qualified name, `example.com.`);
 * - labels separated by single dots, each 1-63 bytes of ASCII letters,
 *   digits, `-` and `_`, neither starting nor ending with `-`. `_` is not
 *   RFC 1123 but real names carry it (`_dmarc.example.com`, Windows hosts),
 *   and Tor's exits let it through; so do we;
 * - internationalized names only in their ASCII (punycode) form
 *   (`xn--bcher-kva.example`): any byte outside ASCII is refused;
 * - the last label is not all digits and not `0x…` hex (RFC 3696 §2): such a
 *   name is an IPv4 address in a form resolvers read differently
 *   (`127.1`, `2130706433`, `0x7f.0.0.1`, `010.0.0.1`), which we refuse
 *   rather than guess.
 * Everything else is refused: an empty name or label, `*` or any other
 * punctuation, spaces, `host:port` (a port inside the name), a zone id
 * (`fe80::1%eth0`), an IPv4 address in brackets.
 *
 * Hostnames come back in lower case: Tor's spec asks clients to send BEGIN
 * in lower case so that case gives no fingerprint; DNS names are
 * case-insensitive. Pure; no lookups.
 */
import { formatIp, parseIPv4, parseIPv6 } from './address.js';

/** The longest hostname in text, without its optional trailing dot (RFC 1035: 255 wire bytes). */
export const MAX_HOSTNAME_LENGTH = 253;
/** The longest label (RFC 1035 §2.3.4). */
export const MAX_LABEL_LENGTH = 63;

/** What a destination string is. `host` is canonical: lower-case name, canonical IP text (no brackets). */
export type Destination =
  | { readonly type: 'hostname'; readonly host: string }
  | { readonly type: 'ipv4'; readonly host: string }
  | { readonly type: 'ipv6'; readonly host: string }
  /** Not a destination; `why` says which rule it breaks (for error messages; never logged with the name). */
  | { readonly type: 'invalid'; readonly why: string };

const LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;
const ALL_DIGITS = /^[0-9]+$/;
const HEX_NUMBER = /^0x[0-9a-f]*$/i;

function invalid(why: string): Destination {
  return { type: 'invalid', why };
}

/** Classify `text` (docs above). Never throws. */
export function parseDestination(text: string): Destination {
  if (text.length === 0) return invalid('empty name');
  const v4 = parseIPv4(text);
  if (v4 !== null) return { type: 'ipv4', host: formatIp({ family: 4, bytes: v4 }) };
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : null;
  const v6 = parseIPv6(bare ?? text);
  if (v6 !== null) return { type: 'ipv6', host: formatIp({ family: 6, bytes: v6 }) };
  if (bare !== null) return invalid('brackets around something that is not an IPv6 address');
  return hostname(text);
}

function hostname(text: string): Destination {
  // Check characters first: the messages below assume ASCII.
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0x7e || c < 0x21) return invalid(c > 0x7e ? 'a non-ASCII character (use the punycode form)' : 'a space or control character');
  }
  if (text.includes('%')) return invalid('a zone id');
  if (/:[0-9]*$/.test(text) && !text.slice(0, text.lastIndexOf(':')).includes(':')) return invalid('a port inside the name');
  const name = text.endsWith('.') ? text.slice(0, -1) : text;
  if (name.length === 0) return invalid('no labels');
  if (name.length > MAX_HOSTNAME_LENGTH) return invalid(`longer than ${MAX_HOSTNAME_LENGTH} bytes`);
  const labels = name.split('.');
  for (const label of labels) {
    if (label.length === 0) return invalid('an empty label');
    if (label.length > MAX_LABEL_LENGTH) return invalid(`a label longer than ${MAX_LABEL_LENGTH} bytes`);
    if (!LABEL.test(label)) {
      return invalid(/^[A-Za-z0-9_-]+$/.test(label) ? 'a label that starts or ends with "-"' : 'a character other than letters, digits, "-", "_" and "."');
    }
  }
  const last = labels[labels.length - 1]!;
  if (ALL_DIGITS.test(last) || HEX_NUMBER.test(last)) return invalid('a numeric last label (an IPv4 address in a non-standard form)');
  return { type: 'hostname', host: text.toLowerCase() };
}
