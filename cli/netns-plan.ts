/**
 * Where each node of the namespace testnet sits (docs/testnet.md, "--netns"):
 * its slot, hence its address 10.(64+slot).0.1 (./netns.ts), and the exit
 * policy that lets exits reach the testnet's own range.
 *
 *   dest     slot 63  10.127.0.1   the destination HTTP server, port 80
 *   auth1    slot 0   10.64.0.1
 *   authN    slot 49+N 10.(113+N).0.1  (N = 2..9: slots 51..58)
 *   relayN   slot N   10.(64+N).0.1
 *   client   slot 60  10.124.0.1   SOCKS on 127.0.0.1:9050 inside its namespace
 */
import { DEFAULT_EXIT_POLICY_LINES, withAcceptsBeforePrivate } from '../src/netdoc/default-policies.js';
import { NETNS_RANGE } from './netns.js';

export { NETNS_RANGE };

export interface NetnsNode {
  nickname: string;
  slot: number;
}

/** The destination's HTTP port. */
export const NETNS_DESTINATION_PORT = 80;
/** The client's SOCKS port inside its namespace. */
export const NETNS_CLIENT_SOCKS_PORT = 9050;

/** The most authorities a namespace testnet places (slots 0 and 51..58). */
export const NETNS_MAX_AUTHORITIES = 9;

/** Authority i's (1-based, 1..9) slot: 0 for auth1, 49 + i for the others. */
export function netnsAuthoritySlot(i: number): number {
  if (!Number.isInteger(i) || i < 1 || i > NETNS_MAX_AUTHORITIES) throw new RangeError(`authority ${i} is not in 1..${NETNS_MAX_AUTHORITIES}`);
  return i === 1 ? 0 : 49 + i;
}

/**
 * The nodes of a namespace testnet with `relays` relays (1..50) and
 * `authorities` authorities (1..9, default 1), by nickname.
 */
export function netnsNodes(relays: number, authorities = 1): Map<string, NetnsNode> {
  if (!Number.isInteger(relays) || relays < 1 || relays > 50) throw new RangeError(`relays ${relays} is not in 1..50`);
  const nodes: NetnsNode[] = [
    { nickname: 'dest', slot: 63 },
    ...Array.from({ length: authorities }, (_, i) => ({ nickname: `auth${i + 1}`, slot: netnsAuthoritySlot(i + 1) })),
    ...Array.from({ length: relays }, (_, i) => ({ nickname: `relay${i + 1}`, slot: i + 1 })),
    { nickname: 'client', slot: 60 },
  ];
  return new Map(nodes.map((n) => [n.nickname, n]));
}

/**
 * An exit's policy in the namespace testnet, as `--exit-policy` arguments:
 * Tor's default with `accept 10.64.0.0/10:*` just before `reject private:*`,
 * so the default port rejections still apply and nothing else private opens.
 */
export function netnsExitPolicyArgs(): string[] {
  return withAcceptsBeforePrivate(DEFAULT_EXIT_POLICY_LINES, [`accept ${NETNS_RANGE}:*`]).flatMap((rule) => ['--exit-policy', rule]);
}
