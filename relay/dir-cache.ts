/**
 * The relay's directory cache (docs/protocol.md §6.5, §11): the relay fetches
 * the consensus from the authorities, verifies it as a client would (more
 * than half of the configured authorities, certificates, validity window),
 * and serves it, plain or gzip, on BEGIN_DIR streams, so clients can refresh
 * through their guard instead of asking the authorities.
 *
 * It fetches right away, then as soon as the consensus it holds stops being
 * fresh (fresh-until plus up to 2 s of jitter: caches fetch before clients),
 * retrying a failed or fruitless fetch after 1 s, doubling up to 30 s. It
 * serves only a consensus that is still valid.
 */
import { debuglog } from 'node:util';
import { gzipSync } from 'node:zlib';
import { fetchConsensus, type AuthorityRef } from '../src/dirclient/consensus-fetch.js';
import { DEFAULT_CLOCK_SKEW_MS, type VerifiedConsensus } from '../src/netdoc/consensus.js';
import type { DirBody } from './dir/dir-server.js';

const log = debuglog('allium:relay');

const RETRY_MS = 1000;
const MAX_WAIT_MS = 30_000;
const JITTER_MS = 2000;

export interface ConsensusCacheOptions {
  authorities: readonly AuthorityRef[];
  now?: () => number;
  random?: () => number;
  clockSkewMs?: number;
  /**
   * Hears each newer consensus accepted: its text and valid-until (ms). A
   * relay with workers uses it to hand the document to every worker process,
   * which serves it (relay-workers.ts).
   */
  onChange?: (text: string, validUntil: number) => void;
}

export class RelayConsensusCache {
  readonly #opts: ConsensusCacheOptions;
  readonly #now: () => number;
  readonly #random: () => number;
  readonly #skew: number;
  #held: { consensus: VerifiedConsensus; body: DirBody } | undefined;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: ConsensusCacheOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
    this.#skew = opts.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
  }

  /** The consensus to serve (text and gzip), while it is valid; else null (the directory answers 404). */
  document(): DirBody | null {
    const held = this.#held;
    if (held === undefined || this.#now() - this.#skew > held.consensus.validUntil) return null;
    return held.body;
  }

  start(): void {
    void this.#fetch();
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  #fetch = async (): Promise<void> => {
    let newer = false;
    try {
      const fetched = await fetchConsensus(this.#opts.authorities, this.#now, this.#held?.consensus ?? null, { clockSkewMs: this.#skew, random: this.#random });
      if (this.#held === undefined || fetched.validAfter > this.#held.consensus.validAfter) {
        const { text, ...consensus } = fetched;
        this.#held = { consensus, body: { text, gzip: gzipSync(Buffer.from(text, 'utf8')) } };
        newer = true;
        this.#opts.onChange?.(text, consensus.validUntil);
      }
    } catch (error) {
      log('directory cache: consensus fetch failed: %s', (error as Error).message);
    }
    if (this.#closed) return;
    let wait: number;
    const held = this.#held?.consensus;
    if (newer && held !== undefined) {
      this.#failures = 0;
      wait = Math.min(MAX_WAIT_MS, Math.max(RETRY_MS, held.freshUntil + this.#random() * JITTER_MS - this.#now()));
    } else {
      this.#failures++;
      wait = Math.min(MAX_WAIT_MS, RETRY_MS * 2 ** Math.min(this.#failures - 1, 16));
    }
    this.#timer = setTimeout(this.#fetch, Math.round(wait));
  };
}

/**
 * What a worker process serves of the consensus its main process fetched
 * (relay-workers.ts): the latest text it was handed, plain or gzip, while it
 * is valid (± the clock-skew tolerance); else null (404). The worker does
 * not verify it again: its own main process did.
 */
export class ServedConsensus {
  readonly #now: () => number;
  readonly #skew: number;
  #held: { body: DirBody; validUntil: number } | undefined;

  constructor(opts: { now?: () => number; clockSkewMs?: number } = {}) {
    this.#now = opts.now ?? Date.now;
    this.#skew = opts.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
  }

  /** Serve `text` (valid until `validUntil`, ms) from now on. */
  set(text: string, validUntil: number): void {
    this.#held = { body: { text, gzip: gzipSync(Buffer.from(text, 'utf8')) }, validUntil };
  }

  document(): DirBody | null {
    const held = this.#held;
    if (held === undefined || this.#now() - this.#skew > held.validUntil) return null;
    return held.body;
  }
}
