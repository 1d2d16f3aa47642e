/**
 * Name lookups through the network (Tor's RESOLVE and RESOLVE_PTR SOCKS
 * commands, docs/protocol.md §12): what the client asks the exit, and which
 * of the exit's RESOLVED answers it gives the application.
 */
import type { ResolvedAnswer } from '../src/cell/stream-messages.js';
import { formatIp, parseIp, reversePointerName } from '../src/net/address.js';
import { AlliumError } from '../src/errors.js';

/** One answer for the application: an address for a forward lookup, a name for a reverse one. */
export interface LookupAnswer {
  type: 'ipv4' | 'ipv6' | 'hostname';
  value: string;
}

/** How the lookup goes: the name to send in RESOLVE, or an answer known without asking (an address looked up forward). */
export type LookupPlan = { ask: string } | { answer: LookupAnswer };

/**
 * Plan a lookup of `host`. Forward: an IP address is its own answer (as in
 * Tor), a hostname is asked for. Reverse: the address's in-addr.arpa /
 * ip6.arpa name is asked for. Throws AlliumError ERR_CONFIG for a reverse
 * lookup of something that is not an IP address.
 */
export function planLookup(host: string, reverse: boolean): LookupPlan {
  const ip = parseIp(host);
  if (reverse) {
    if (ip === null) throw new AlliumError('ERR_CONFIG', 'a reverse lookup needs an IP address');
    return { ask: reversePointerName(ip) };
  }
  if (ip !== null) return { answer: { type: ip.family === 4 ? 'ipv4' : 'ipv6', value: formatIp(ip) } };
  return { ask: host };
}

/**
 * The answer to give: for a forward lookup the first IPv4 address, else the
 * first IPv6 address; for a reverse lookup the first hostname. Null when the
 * exit answered with an error or with nothing of the kind asked for.
 */
export function pickAnswer(answers: readonly ResolvedAnswer[], reverse: boolean): LookupAnswer | null {
  if (reverse) {
    const name = answers.find((a) => a.type === 'hostname');
    return name?.type === 'hostname' ? { type: 'hostname', value: name.hostname } : null;
  }
  const v4 = answers.find((a) => a.type === 'ipv4');
  if (v4?.type === 'ipv4') return { type: 'ipv4', value: v4.address };
  const v6 = answers.find((a) => a.type === 'ipv6');
  if (v6?.type === 'ipv6') return { type: 'ipv6', value: v6.address };
  return null;
}
