/**
 * The authority's consensus publication (docs/protocol.md §9): every voting
 * interval, and on demand, build the consensus of the Running relays, sign
 * it, store it and keep it ready to serve in plain, gzip and deflate forms.
 * Publications are serialized; a failed one does not stop the next.
 */
import { debuglog } from 'node:util';
import { deflateSync, gzipSync } from 'node:zlib';
import { encodeConsensus, type ConsensusAuthority } from '../src/netdoc/consensus.js';
import { buildConsensusBody } from './consensus-builder.js';
import type { AuthorityKeys } from './authority-keys.js';
import type { DataDir } from './data-dir.js';
import type { Registry } from './registry.js';

const log = debuglog('allium:directory');

/** A published consensus, ready to serve. */
export interface Published {
  text: string;
  gzip: Buffer;
  deflate: Buffer;
}

export function compress(text: string): Published {
  const raw = Buffer.from(text, 'utf8');
  return { text, gzip: gzipSync(raw), deflate: deflateSync(raw) };
}

export interface ConsensusPublisherOptions {
  registry: Registry;
  dir: DataDir;
  /** The authority's keys (its signing key signs the consensus). */
  keys: AuthorityKeys;
  /** Every authority listed in the consensus (read at each publication). */
  authorities: () => ConsensusAuthority[];
  now: () => number;
  votingIntervalMs: number;
  consensusLifetimeMs: number;
  /** Longest a publication waits for probes under way; one probe's limit. */
  probeTimeoutMs: number;
  exitsAllowLoopback: boolean;
  /** Network parameters written on the `params` line (§8.5); none if undefined. */
  params?: ReadonlyMap<string, number>;
  /** A consensus loaded from disk to serve until the first publication. */
  initial?: Published;
}

export class ConsensusPublisher {
  readonly #opts: ConsensusPublisherOptions;
  #published: Published | undefined;
  #publishing: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: ConsensusPublisherOptions) {
    this.#opts = opts;
    this.#published = opts.initial;
  }

  /** The consensus being served, if any. */
  get published(): Published | undefined {
    return this.#published;
  }

  /** Publish every voting interval (a round still waiting for probes skips the next tick). */
  start(): void {
    let timerPublishing = false;
    this.#timer = setInterval(() => {
      if (timerPublishing) return;
      timerPublishing = true;
      this.publish(true)
        .catch((error: unknown) => log('publication failed: %s', (error as Error).message))
        .finally(() => (timerPublishing = false));
    }, this.#opts.votingIntervalMs);
  }

  /** Serialize publications; a failure of one does not poison the next. */
  publish(waitForProbes: boolean): Promise<void> {
    const run = () => this.#publishOnce(waitForProbes);
    const next = this.#publishing.then(run, run);
    this.#publishing = next.catch(() => {});
    return next;
  }

  /** Stop the schedule and wait for a publication under way. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#timer);
    await this.#publishing;
  }

  async #publishOnce(waitForProbes: boolean): Promise<void> {
    const { registry, dir } = this.#opts;
    if (waitForProbes) {
      // Let probes under way finish, but never wait longer than one probe may take.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([registry.settled(), new Promise<void>((r) => (timer = setTimeout(r, this.#opts.probeTimeoutMs + 1000)))]);
      clearTimeout(timer);
    }
    if (this.#closed) return;
    registry.expire();
    const t = this.#opts.now();
    const running = registry
      .entries()
      .filter((e) => registry.isRunning(e, t))
      .map((e) => ({ descriptor: e.descriptor, digest: e.digest }));
    const body = buildConsensusBody({
      now: t,
      freshMs: this.#opts.votingIntervalMs,
      lifetimeMs: this.#opts.consensusLifetimeMs,
      authorities: this.#opts.authorities(),
      running,
      exitsAllowLoopback: this.#opts.exitsAllowLoopback,
      params: this.#opts.params,
    });
    const text = encodeConsensus(body, [this.#opts.keys.signerFor(body.validUntil)]);
    this.#published = compress(text);
    try {
      dir.saveConsensus(text);
    } catch (error) {
      log('could not store the consensus: %s', (error as Error).message);
    }
    log('published consensus with %d of %d relays', running.length, registry.size);
  }
}
