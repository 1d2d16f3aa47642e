/**
 * Fetching the consensus (docs/protocol.md §9): ask each configured authority
 * in turn, accept gzip, cap the body before and after decompression, and
 * trust the document only if a majority of the configured authorities signed it.
 * Publishes `allium:consensus` when it accepts a consensus other than the one in use.
 */
import { dirRequest } from '../src/dirclient/http.js';
import { AlliumError, DocumentError } from '../src/errors.js';
import { publish } from '../src/events.js';
import { MAX_CONSENSUS_BYTES, verifyConsensus, type Consensus, type VerifiedConsensus } from '../src/netdoc/consensus.js';

export interface AuthorityRef {
  url: string;
  identity: Uint8Array;
}

export { MAX_CONSENSUS_BYTES };
const FETCH_TIMEOUT_MS = 10_000;

function decodeText(body: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new DocumentError('ERR_MALFORMED', 'consensus is not UTF-8 text');
  }
}

/**
 * Fetch and verify the consensus from the first authority that serves a valid
 * one (§8.4 verification against all of `authorities`). Rejects with the last
 * authority's AlliumError if none does. `current` is the consensus in use, if
 * any: `allium:consensus` is published only when the accepted one has another
 * valid-after time (a refetch of the same consensus is not news).
 */
export async function fetchConsensus(
  authorities: AuthorityRef[],
  now: () => number = Date.now,
  current: Consensus | null = null,
): Promise<VerifiedConsensus> {
  const trusted = authorities.map((a) => a.identity);
  let lastError: unknown = new AlliumError('ERR_CONFIG', 'no authorities configured');
  for (const authority of authorities) {
    try {
      const body = await dirRequest(new URL('/allium/v1/consensus', authority.url), {
        what: 'consensus fetch',
        maxBodyBytes: MAX_CONSENSUS_BYTES,
        timeoutMs: FETCH_TIMEOUT_MS,
        acceptGzip: true,
      });
      const consensus = verifyConsensus(decodeText(body), trusted, now());
      if (current?.validAfter === consensus.validAfter) return consensus;
      publish('allium:consensus', () => ({
        validAfter: consensus.validAfter,
        relays: consensus.relays.length,
        signatures: consensus.verifiedSigners.length,
      }));
      return consensus;
    } catch (error) {
      lastError = error;
    }
  }
  throw lastError;
}
