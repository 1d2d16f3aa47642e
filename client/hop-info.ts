/**
 * A relay as a hop of a client's circuit: what the client knows of it from
 * the consensus (HopInfo), and the link specifiers by which the hop before
 * it is asked to extend to it (EXTEND2, docs/protocol.md §6.3).
 */
import { targetToSpecifiers, type LinkSpecifier } from '../src/cell/extend2.js';

/** What the client knows about a relay from the consensus. */
export interface HopInfo {
  nickname: string;
  identity: Uint8Array;
  linkKey: Uint8Array;
  ntorOnionKey: Uint8Array;
  address: string;
  orPort: number;
  /** The relay's IPv6 OR address (consensus `a` line), if it has one. */
  orAddress6?: { address: string; port: number };
}

/**
 * The link specifiers of the EXTEND2 from `from` to `to` (docs/protocol.md
 * §6.3): the IPv4 address, and the IPv6 one when `to` has one (the relay tries
 * IPv4 first and falls back to IPv6); with `preferIPv6`, when both relays have
 * an IPv6 OR address, the IPv6 address alone, so the link between them is IPv6.
 */
export function extendSpecifiers(from: HopInfo, to: HopInfo, preferIPv6: boolean): LinkSpecifier[] {
  const ids = { identity: to.identity, linkKey: to.linkKey };
  if (to.orAddress6 !== undefined && preferIPv6 && from.orAddress6 !== undefined) return targetToSpecifiers({ ...ids, ipv6: to.orAddress6 });
  return targetToSpecifiers({ ...ids, address: to.address, port: to.orPort, ...(to.orAddress6 !== undefined ? { ipv6: to.orAddress6 } : {}) });
}
