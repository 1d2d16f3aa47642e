/**
 * The client's consensus (docs/protocol.md §11): loaded from the cache at
 * start if it is still valid, fetched from the authorities, and kept fresh.
 *
 * - Until the first circuit is built it refetches every RETRY_MS (the
 *   network may still be forming), backing off to BOOTSTRAP_MAX_MS while
 *   every authority fails.
 * - After that it fetches the next consensus as soon as the current one
 *   stops being fresh: at fresh-until plus a random delay of up to a quarter
 *   of the rest of its life (at most `maxRefreshMs`), so clients do not all
 *   ask at once; a fetch that fails, or that finds no newer consensus,
 *   is retried after RETRY_MS, doubling up to `maxRefreshMs`.
 * - Once it has a consensus it asks its directory guard first (a one-hop
 *   circuit to the relay's directory cache, dir-via-relay.ts) and the
 *   authorities only when that fails, or after three fetches through the
 *   guard that brought nothing newer.
 * - Only a consensus newer than the one in use replaces it; each one
 *   accepted is written to the cache.
 * - A consensus is used only within its validity window (± the clock-skew
 *   tolerance); once the one in use expires, `current` is null and
 *   `problem` says why no other is usable.
 */
import { debuglog } from 'node:util';
import { DEFAULT_CLOCK_SKEW_MS, verifyConsensus, type VerifiedConsensus } from '../src/netdoc/consensus.js';
import { formatTime } from '../src/netdoc/text.js';
import { crypto } from '../src/crypto/crypto.js';
import { publish } from '../src/events.js';
import { ConsensusCache } from './consensus-cache.js';
import { fetchConsensus, type AuthorityRef, type FetchedConsensus } from './directory-client.js';
import { directoryGuard, relayName, type RelayConsensusFetcher } from './dir-via-relay.js';

const log = debuglog('allium:client');

/** Refetch interval until the client is ready, and the first retry delay after it, ms. */
export const RETRY_MS = 250;
/** Longest wait between fetches, ms. */
export const REFRESH_MS = 30_000;
/** Longest wait between fetches while bootstrapping and every authority fails, ms. */
export const BOOTSTRAP_MAX_MS = 4_000;

export interface ConsensusRefreshOptions {
  authorities: readonly AuthorityRef[];
  /** Where to cache the consensus (`cached-consensus`, 0600); none if undefined. */
  cacheDir?: string;
  now?: () => number;
  /** Clock-skew tolerance (§11); default 60 s. */
  clockSkewMs?: number;
  /** Uniform in [0, 1): the refetch jitter and the first authority asked. */
  random?: () => number;
  /** Longest wait between fetches; default REFRESH_MS. */
  maxRefreshMs?: number;
  /** Called with a message when the client has no usable consensus (and with null once it has one again). */
  onProblem?: (message: string | null) => void;
  /** Fetch through the directory guard's cache first, once there is a consensus (§11); authorities only if undefined. */
  relayFetcher?: RelayConsensusFetcher;
  /** Hears how each fetch went: null when one was accepted (newer or not), else the error (bootstrap reporting). */
  onFetch?: (error: Error | null) => void;
}

/** Where the consensus in use came from. */
export type ConsensusSource = 'cache' | 'authority' | 'relay';

/** After this many relay fetches in a row that bring nothing newer, the authorities are asked. */
const RELAY_FRUITLESS_LIMIT = 3;

/** Where the consensus in use came from and how fetching goes, for operators and tests. */
export interface DirectoryStatus {
  /** The consensus in use: its times and signers, or null. */
  consensus: { validAfter: number; freshUntil: number; validUntil: number; relays: number; signers: number; source: ConsensusSource } | null;
  /** Why there is no usable consensus, or why the last fetch failed; null if all is well. */
  problem: string | null;
  /** Consensuses that came as a diff from the previous one (§8.9). */
  diffsApplied: number;
}

export class ConsensusRefresh {
  readonly #opts: ConsensusRefreshOptions;
  readonly #now: () => number;
  readonly #skew: number;
  readonly #random: () => number;
  readonly #maxRefresh: number;
  readonly #cache: ConsensusCache | undefined;
  #consensus: VerifiedConsensus | null = null;
  /** The exact text of #consensus (a diff's base, §8.9). */
  #text: string | undefined;
  #diffs = 0;
  #source: ConsensusSource = 'authority';
  /** Picks the directory guard (§11): fixed for the life of this client. */
  readonly #guardKey = crypto.randomBytes(32);
  #relayFruitless = 0;
  #lastFailure: string | null = null;
  #reported: string | null = null;
  #failures = 0;
  #ready = false;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: ConsensusRefreshOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#skew = opts.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
    this.#random = opts.random ?? Math.random;
    this.#maxRefresh = opts.maxRefreshMs ?? REFRESH_MS;
    this.#cache = opts.cacheDir === undefined ? undefined : new ConsensusCache(opts.cacheDir);
  }

  /** The consensus in use: the newest accepted one, while it is within its validity window; else null. */
  get current(): VerifiedConsensus | null {
    const c = this.#consensus;
    if (c === null || this.#now() - this.#skew > c.validUntil) return null;
    return c;
  }

  /** Why there is no usable consensus (null if there is one). */
  get problem(): string | null {
    if (this.current !== null) return null;
    if (this.#consensus !== null) {
      const why = this.#lastFailure ?? 'no newer one has been fetched yet';
      return `the consensus in use expired at ${formatTime(this.#consensus.validUntil)} and no newer one was accepted: ${why}`;
    }
    return `no valid consensus: ${this.#lastFailure ?? 'no consensus fetched yet'}`;
  }

  /** How many consensuses came as diffs (§8.9). */
  get diffsApplied(): number {
    return this.#diffs;
  }

  status(): DirectoryStatus {
    const c = this.current;
    return {
      diffsApplied: this.#diffs,
      consensus:
        c === null
          ? null
          : { validAfter: c.validAfter, freshUntil: c.freshUntil, validUntil: c.validUntil, relays: c.relays.length, signers: c.verifiedSigners.length, source: this.#source },
      problem: c === null ? this.problem : this.#lastFailure,
    };
  }

  /** Loads the cache, fetches once now (never rejects), then keeps refetching until close(). */
  async start(): Promise<void> {
    this.#loadCache();
    await this.#refresh();
  }

  /** The client built its first circuit: refetch at the slow pace from now on. */
  markReady(): void {
    this.#ready = true;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#opts.relayFetcher?.close();
  }

  #loadCache(): void {
    const text = this.#cache?.load();
    if (text === undefined) return;
    try {
      this.#consensus = verifyConsensus(
        text,
        this.#opts.authorities.map((a) => a.identity),
        this.#now(),
        { clockSkewMs: this.#skew },
      );
      this.#source = 'cache';
      this.#text = text;
      log('using the cached consensus, valid until %s', formatTime(this.#consensus.validUntil));
    } catch (error) {
      log('the cached consensus is not usable: %s', (error as Error).message);
    }
  }

  /** Through the directory guard: the consensus it serves, or why not. */
  async #viaRelay(): Promise<{ fetched?: FetchedConsensus; failure?: string }> {
    const c = this.current;
    const fetcher = this.#opts.relayFetcher;
    if (c === null || fetcher === undefined || this.#relayFruitless >= RELAY_FRUITLESS_LIMIT) return {};
    const guard = directoryGuard(c, this.#guardKey);
    if (guard === undefined) return {};
    try {
      const fetched = await fetcher.fetch(guard, this.#opts.authorities, this.#text);
      if (fetched.viaDiff) this.#diffs++;
      return { fetched };
    } catch (error) {
      return { failure: `through the directory guard ${relayName(guard)}: ${(error as Error).message}` };
    }
  }

  #refresh = async (): Promise<void> => {
    let newer = false;
    const relay = await this.#viaRelay();
    let fetched = relay.fetched;
    let source: ConsensusSource = 'relay';
    let failure: string | null = null;
    let fetchError: Error | null = null;
    const fruitless = fetched !== undefined && this.#consensus !== null && fetched.validAfter <= this.#consensus.validAfter;
    this.#relayFruitless = fruitless ? this.#relayFruitless + 1 : 0;
    if (fetched === undefined) {
      // No guard yet, the guard failed, or it kept serving nothing newer: ask the authorities.
      try {
        fetched = await fetchConsensus(this.#opts.authorities, this.#now, this.#consensus, { clockSkewMs: this.#skew, random: this.#random });
        source = 'authority';
        this.#relayFruitless = 0;
      } catch (error) {
        failure = relay.failure === undefined ? (error as Error).message : `${relay.failure}; ${(error as Error).message}`;
        fetchError = relay.failure === undefined ? (error as Error) : new Error(failure);
      }
    }
    if (fetched !== undefined && (this.#consensus === null || fetched.validAfter > this.#consensus.validAfter)) {
      newer = true;
      const { text, ...consensus } = fetched;
      this.#consensus = consensus;
      this.#text = text;
      this.#source = source;
      if (source === 'relay') {
        publish('allium:consensus', () => ({ validAfter: consensus.validAfter, relays: consensus.relays.length, signatures: consensus.verifiedSigners.length }));
      }
      try {
        this.#cache?.save(text);
      } catch (error) {
        log('could not cache the consensus: %s', (error as Error).message);
      }
    }
    this.#lastFailure = failure;
    if (failure !== null) log('consensus fetch failed: %s', failure);
    this.#report();
    this.#opts.onFetch?.(fetched !== undefined ? null : (fetchError ?? new Error(failure ?? 'no consensus fetched')));
    if (!this.#closed) this.#timer = setTimeout(this.#refresh, this.#nextDelay(newer));
  };

  #nextDelay(newer: boolean): number {
    const c = this.current;
    if (newer && c !== null && this.#ready) {
      this.#failures = 0;
      const spread = Math.min(this.#maxRefresh, Math.max(0, (c.validUntil - c.freshUntil) / 4));
      const at = c.freshUntil + this.#random() * spread;
      return Math.round(Math.min(this.#maxRefresh, Math.max(RETRY_MS, at - this.#now())));
    }
    // Still forming (fetches work but no circuit yet): ask again soon.
    if (!this.#ready && this.#lastFailure === null) {
      this.#failures = 0;
      return RETRY_MS;
    }
    // A failed fetch, or nothing newer yet: back off (at most BOOTSTRAP_MAX_MS while bootstrapping).
    this.#failures++;
    const cap = this.#ready ? this.#maxRefresh : Math.min(this.#maxRefresh, BOOTSTRAP_MAX_MS);
    return Math.min(cap, RETRY_MS * 2 ** Math.min(this.#failures - 1, 16));
  }

  /** Tells the owner when the client loses or regains a usable consensus. */
  #report(): void {
    const problem = this.problem;
    if (problem === this.#reported) return;
    this.#reported = problem;
    this.#opts.onProblem?.(problem);
  }
}
