/**
 * Fetching the consensus from the authorities over HTTP (docs/protocol.md
 * §11), for clients and for relays that cache it: ask the configured
 * authorities in turn (starting at a random one), accept gzip, cap the body
 * before and after decompression, and trust the document only if more than
 * half of the configured authorities signed it with certificates that chain
 * to their identities, within its validity window (§8.4). Publishes
 * `allium:consensus` when it accepts a consensus other than the one in use.
 */
import { dirRequest } from './http.js';
import { AlliumError, DocumentError, type AlliumErrorCode } from '../errors.js';
import { publish } from '../events.js';
import { MAX_CONSENSUS_BYTES, verifyConsensus, type Consensus, type VerifiedConsensus } from '../netdoc/consensus.js';

export interface AuthorityRef {
  url: string;
  identity: Uint8Array;
}

export { MAX_CONSENSUS_BYTES };
const FETCH_TIMEOUT_MS = 10_000;

/** No authority gave an acceptable consensus; `failures` says why for each one asked, in order. */
export class ConsensusFetchError extends AlliumError {
  readonly failures: readonly { url: string; error: AlliumError }[];
  constructor(failures: { url: string; error: AlliumError }[]) {
    const last = failures[failures.length - 1];
    const code: AlliumErrorCode = last?.error.code ?? 'ERR_CONFIG';
    const why = failures.map((f) => `${f.url}: ${f.error.message}`).join('; ');
    super(code, failures.length === 0 ? 'no authorities configured' : `no authority gave an acceptable consensus (${why})`);
    this.name = 'ConsensusFetchError';
    this.failures = failures;
  }
}

export interface FetchConsensusOptions {
  /** Clock-skew tolerance (§11); default 60 s (DEFAULT_CLOCK_SKEW_MS). */
  clockSkewMs?: number;
  /** Uniform in [0, 1): picks the authority asked first; default Math.random. */
  random?: () => number;
  /** Per-request time limit; default 10 s. */
  timeoutMs?: number;
}

/** The body as strict UTF-8 text; DocumentError ERR_MALFORMED otherwise. */
export function decodeText(body: Uint8Array): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    throw new DocumentError('ERR_MALFORMED', 'consensus is not UTF-8 text');
  }
}

/** The authorities in the order to ask them: from a random start, round the list. */
function rotation<T>(list: readonly T[], random: () => number): T[] {
  const start = Math.min(list.length - 1, Math.floor(random() * list.length));
  return [...list.slice(start), ...list.slice(0, start)];
}

/** A consensus as fetched: verified, with the exact text (for the cache). */
export type FetchedConsensus = VerifiedConsensus & { text: string };

/**
 * Fetch and verify the consensus from the first authority that serves one
 * acceptable for all of `authorities` (§8.4). Rejects with a
 * ConsensusFetchError naming, for each authority asked, why its answer was
 * refused (its code is the last one's: ERR_BAD_SIGNATURE, ERR_DOCUMENT,
 * ERR_LINK_CLOSED, …). `current` is the consensus in use, if any:
 * `allium:consensus` is published only when the accepted one has another
 * valid-after time (a refetch of the same consensus is not news).
 */
export async function fetchConsensus(
  authorities: readonly AuthorityRef[],
  now: () => number = Date.now,
  current: Consensus | null = null,
  opts: FetchConsensusOptions = {},
): Promise<FetchedConsensus> {
  const trusted = authorities.map((a) => a.identity);
  const failures: { url: string; error: AlliumError }[] = [];
  for (const authority of rotation(authorities, opts.random ?? Math.random)) {
    try {
      const body = await dirRequest(new URL('/allium/v1/consensus', authority.url), {
        what: 'consensus fetch',
        maxBodyBytes: MAX_CONSENSUS_BYTES,
        timeoutMs: opts.timeoutMs ?? FETCH_TIMEOUT_MS,
        acceptGzip: true,
      });
      const text = decodeText(body);
      const consensus: FetchedConsensus = { ...verifyConsensus(text, trusted, now(), opts.clockSkewMs === undefined ? {} : { clockSkewMs: opts.clockSkewMs }), text };
      if (current?.validAfter === consensus.validAfter) return consensus;
      publish('allium:consensus', () => ({
        validAfter: consensus.validAfter,
        relays: consensus.relays.length,
        signatures: consensus.verifiedSigners.length,
      }));
      return consensus;
    } catch (error) {
      failures.push({ url: authority.url, error: error instanceof AlliumError ? error : new AlliumError('ERR_MALFORMED', (error as Error).message) });
    }
  }
  throw new ConsensusFetchError(failures);
}
