/**
 * A relay's start-up self-test: the authorities list a relay in the consensus
 * only once their probes have reached its advertised OR port, so a relay that
 * does not appear within the timeout is not reachable at the address and port
 * it advertises (a wrong relay.address, a missing port forward, a firewall).
 * Polls the consensus (verified, client/directory-client.ts) every POLL_MS.
 */
import { equalBytes } from '../src/bytes.js';
import { AlliumError } from '../src/errors.js';
import { fetchConsensus, type AuthorityRef } from '../client/directory-client.js';
import type { VerifiedConsensus } from '../src/netdoc/consensus.js';

export const POLL_MS = 3_000;

/**
 * Resolves once `identity` is in a consensus of `authorities`; rejects with
 * AlliumError ERR_TIMEOUT naming the advertised endpoint after `timeoutMs`,
 * or when `cancelled()` turns true (then with ERR_CONFIG, never seen by the caller).
 */
export async function awaitReachable(opts: {
  authorities: AuthorityRef[];
  identity: Uint8Array;
  advertised: string;
  timeoutMs: number;
  cancelled: () => boolean;
}): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  let last: VerifiedConsensus | null = null;
  for (;;) {
    if (opts.cancelled()) throw new AlliumError('ERR_CONFIG', 'reachability check cancelled');
    try {
      last = await fetchConsensus(opts.authorities, Date.now, last);
      if (last.relays.some((r) => equalBytes(r.identity, opts.identity))) return;
    } catch {
      // no consensus yet, or no authority answered: keep trying until the deadline
    }
    if (Date.now() + POLL_MS > deadline) {
      throw new AlliumError(
        'ERR_TIMEOUT',
        `the authorities have not reached this relay at its advertised address ${opts.advertised} within ${Math.round(opts.timeoutMs / 1000)} s ` +
          '(it is not in their consensus): check relay.address and relay.or_port, the port forward to relay.listen_address:listen_port, and the firewall',
      );
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}
