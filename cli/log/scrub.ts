/**
 * Safe logging (torrc's SafeLogging): addresses in a log message are replaced
 * by `[scrubbed]`, except the node's own public addresses (its listeners and
 * the authorities it was configured with), which are not secrets and which an
 * operator needs to read. IPv4 (with an optional :port), IPv6 (bare or
 * bracketed, with an optional :port) and `host:port` of DNS names are caught.
 * Pure.
 */
import { canonicalIp } from '../../src/net/address.js';

export const SCRUBBED = '[scrubbed]';

const IPV4 = String.raw`\b(?:\d{1,3}\.){3}\d{1,3}\b(?::\d{1,5}\b)?`;
const IPV6_BRACKETED = String.raw`\[[0-9A-Fa-f:.]{2,45}\](?::\d{1,5}\b)?`;
// Bare IPv6: at least two colons among hex groups ("::1", "2001:db8::5").
const IPV6_BARE = String.raw`(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f.]{0,15}(?![\w:])`;
// host.name:port — a destination as a SOCKS request names it; not file:line ("relay.toml:12", "/x/y.js:3").
const FILE_EXTENSIONS = 'toml|json|jsonl|log|js|mjs|cjs|ts|md|txt|conf|cfg|yaml|yml|service|sock';
const HOST_PORT = String.raw`(?<![\w/.-])(?:[A-Za-z0-9-]{1,63}\.)+(?!(?:${FILE_EXTENSIONS}):)[A-Za-z]{2,63}:\d{1,5}\b`;
const PATTERN = new RegExp(`${IPV6_BRACKETED}|${IPV4}|${HOST_PORT}|${IPV6_BARE}`, 'g');

/** The address part of a match (no port, no brackets), canonical when it is an IP. */
function addressOf(match: string): string {
  let text = match;
  if (text.startsWith('[')) text = text.slice(1, text.indexOf(']'));
  else if (/^[\d.]+:\d+$/.test(text) || /[A-Za-z]:\d+$/.test(text)) text = text.slice(0, text.lastIndexOf(':'));
  return canonicalIp(text) ?? text.toLowerCase();
}

/** `text` with every address not in `publicAddresses` (canonical IPs or lowercase names) replaced by [scrubbed]. */
export function scrubAddresses(text: string, publicAddresses: ReadonlySet<string>): string {
  return text.replace(PATTERN, (match) => {
    // A bare-IPv6 match of something that is not an address (a time "14:02:33") stays.
    const address = addressOf(match);
    if (match.includes(':') && !match.includes('.') && !match.startsWith('[') && canonicalIp(address) === null) return match;
    return publicAddresses.has(address) ? match : SCRUBBED;
  });
}

/** The canonical form a public address is kept under. */
export function publicForm(address: string): string {
  return canonicalIp(address) ?? address.toLowerCase();
}
