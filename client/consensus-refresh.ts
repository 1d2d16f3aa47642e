/**
 * The client's consensus (docs/protocol.md §11): fetched from the authorities
 * at start and refetched on a timer, quickly (every RETRY_MS) until the first
 * circuit is built, since the network may still be forming, and every
 * REFRESH_MS after that. A failed fetch keeps the consensus it had.
 */
import { debuglog } from 'node:util';
import type { Consensus } from '../src/netdoc/consensus.js';
import { fetchConsensus, type AuthorityRef } from './directory-client.js';

const log = debuglog('allium:client');

/** Refetch interval until the client is ready, ms. */
export const RETRY_MS = 500;
/** Refetch interval once the client is ready, ms. */
export const REFRESH_MS = 30_000;

export class ConsensusRefresh {
  readonly #authorities: AuthorityRef[];
  #consensus: Consensus | null = null;
  #ready = false;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #onFetch: (error: Error | null) => void;

  /** `onFetch` hears how each fetch went: null on success, else the error (bootstrap reporting). */
  constructor(authorities: AuthorityRef[], onFetch: (error: Error | null) => void = () => {}) {
    this.#authorities = authorities;
    this.#onFetch = onFetch;
  }

  /** The newest consensus fetched, or null before the first success. */
  get current(): Consensus | null {
    return this.#consensus;
  }

  /** Fetch once now (never rejects), then keep refetching until close(). */
  async start(): Promise<void> {
    await this.#refresh();
  }

  /** The client built its first circuit: refetch at the slow pace from now on. */
  markReady(): void {
    this.#ready = true;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #refresh = async (): Promise<void> => {
    try {
      this.#consensus = await fetchConsensus(this.#authorities, Date.now, this.#consensus);
      this.#onFetch(null);
    } catch (error) {
      log('consensus fetch failed: %s', (error as Error).message);
      this.#onFetch(error as Error);
    }
    if (!this.#closed) this.#timer = setTimeout(this.#refresh, this.#ready ? REFRESH_MS : RETRY_MS);
  };
}
