/**
 * The relay's directory cache (docs/protocol.md §6.5, §11): the relay fetches
 * the consensus from the authorities, verifies it as a client would (more
 * than half of the configured authorities, certificates, validity window),
 * and serves it, plain or gzip, on BEGIN_DIR streams, so clients can refresh
 * through their guard instead of asking the authorities — as a diff from the
 * consensus a client holds when that is one of the last four (§8.9).
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
import { consensusDigest, makeConsensusDiff } from '../src/netdoc/consensus-diff.js';
import { hex } from '../src/bytes.js';
import type { DirBody } from './dir/dir-server.js';

const log = debuglog('allium:relay');

const RETRY_MS = 1000;
const MAX_WAIT_MS = 30_000;
const JITTER_MS = 2000;
/** Earlier consensuses kept to diff from (§8.9). */
const DIFF_BASES = 4;

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
  #held: VerifiedConsensus | undefined;
  /** What it serves: the current text, the earlier ones to diff from, and the diffs (§8.9). */
  readonly #served: ServedConsensus;
  #failures = 0;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: ConsensusCacheOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
    this.#skew = opts.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
    this.#served = new ServedConsensus({ now: this.#now, clockSkewMs: this.#skew });
  }

  /** The consensus to serve (text and gzip), while it is valid; else null (the directory answers 404). */
  document(): DirBody | null {
    return this.#served.document();
  }

  /**
   * The diff from the earlier consensus whose SHA-256 is `digestHex` to the
   * current one (§8.9), made once and kept; null if that consensus is not
   * one of the last DIFF_BASES or there is no valid current one.
   */
  diffFrom(digestHex: string): DirBody | null {
    return this.#served.diffFrom(digestHex);
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
      const fetched = await fetchConsensus(this.#opts.authorities, this.#now, this.#held ?? null, { clockSkewMs: this.#skew, random: this.#random });
      if (this.#held === undefined || fetched.validAfter > this.#held.validAfter) {
        const { text, ...consensus } = fetched;
        this.#held = consensus;
        this.#served.set(text, consensus.validUntil);
        newer = true;
        this.#opts.onChange?.(text, consensus.validUntil);
      }
    } catch (error) {
      log('directory cache: consensus fetch failed: %s', (error as Error).message);
    }
    if (this.#closed) return;
    let wait: number;
    const held = this.#held;
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
 * The consensus a relay serves on BEGIN_DIR: the latest text it was handed,
 * plain or gzip, while it is valid (± the clock-skew tolerance), else null
 * (404); and diffs to it from the last DIFF_BASES texts before it (§8.9),
 * each made on first request and kept. RelayConsensusCache feeds one; with
 * `--workers`, each worker process has one fed over IPC by the main
 * process's cache (relay-workers.ts), which verified the text already.
 */
export class ServedConsensus {
  readonly #now: () => number;
  readonly #skew: number;
  #held: { text: string; body: DirBody; validUntil: number } | undefined;
  /** Earlier consensus texts by SHA-256 (hex), oldest first, and the diffs made from them to the current one. */
  readonly #bases = new Map<string, string>();
  readonly #diffs = new Map<string, DirBody>();

  constructor(opts: { now?: () => number; clockSkewMs?: number } = {}) {
    this.#now = opts.now ?? Date.now;
    this.#skew = opts.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
  }

  /** Serve `text` (valid until `validUntil`, ms) from now on; the text served so far becomes a diff base. */
  set(text: string, validUntil: number): void {
    if (this.#held !== undefined) {
      this.#bases.set(hex(consensusDigest(this.#held.text)), this.#held.text);
      while (this.#bases.size > DIFF_BASES) this.#bases.delete(this.#bases.keys().next().value!);
    }
    this.#diffs.clear();
    this.#held = { text, body: { text, gzip: gzipSync(Buffer.from(text, 'utf8')) }, validUntil };
  }

  document(): DirBody | null {
    const held = this.#held;
    if (held === undefined || this.#now() - this.#skew > held.validUntil) return null;
    return held.body;
  }

  /** The diff from the earlier text whose SHA-256 is `digestHex` to the current one; null if unknown or nothing valid is held. */
  diffFrom(digestHex: string): DirBody | null {
    const held = this.#held;
    const base = this.#bases.get(digestHex);
    if (held === undefined || base === undefined || this.document() === null) return null;
    let diff = this.#diffs.get(digestHex);
    if (diff === undefined) {
      const text = makeConsensusDiff(base, held.text);
      diff = { text, gzip: gzipSync(Buffer.from(text, 'utf8')) };
      this.#diffs.set(digestHex, diff);
    }
    return diff;
  }
}
