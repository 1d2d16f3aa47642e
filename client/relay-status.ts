/**
 * What the client has learned about relays from its own failures
 * (docs/protocol.md §11.4): a relay that just failed (its OR port refused
 * the link, the link was lost, or a DESTROY said it could not be reached) is
 * avoided for a backoff period that grows with repeated failures; an exit
 * that refused a target by policy is not asked for that target again for a
 * while. A failure is forgotten when the relay works again, when its backoff
 * runs out, or when the consensus lists it with a new descriptor (it
 * restarted and republished).
 *
 * Time and randomness are injected; state is bounded (MAX_ENTRIES relays,
 * MAX_REJECTIONS refusals, oldest dropped first).
 */
import { hex } from '../src/bytes.js';
import type { ConsensusRelay } from '../src/netdoc/consensus.js';
import { nextDelay, type BackoffSchedule } from './backoff.js';
import type { RandomSource, StreamTarget } from './path-selection.js';

/** Avoid a failed relay for 5 s at first, growing to 10 min. */
export const RELAY_BACKOFF: BackoffSchedule = { baseMs: 5_000, capMs: 10 * 60_000 };
/** How long an exit's refusal of a target (END EXITPOLICY) is remembered, ms. */
export const EXIT_REJECTION_MS = 10 * 60_000;
const MAX_ENTRIES = 4096;
const MAX_REJECTIONS = 4096;

interface Failure {
  /** Consecutive failures. */
  count: number;
  /** The delay in force, ms. */
  delayMs: number;
  /** Avoid until this time (ms since the epoch). */
  until: number;
  /** When it last failed (ms since the epoch). */
  at: number;
  /** The descriptor digest the relay had when it failed (hex), if known. */
  digest: string | null;
  why: string;
}

export interface RelayStatusOptions {
  now?: () => number;
  random?: RandomSource;
  backoff?: BackoffSchedule;
}

export class RelayStatus {
  readonly #now: () => number;
  readonly #random: RandomSource;
  readonly #backoff: BackoffSchedule;
  readonly #failures = new Map<string, Failure>();
  /** `${identity hex} ${host} ${port}` → expiry. */
  readonly #rejections = new Map<string, number>();

  constructor(opts: RelayStatusOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#random = opts.random ?? Math.random;
    this.#backoff = opts.backoff ?? RELAY_BACKOFF;
  }

  /** Record a failure of `relay` (why: a short reason for logs); returns the ms it is now avoided for. */
  markFailed(relay: Pick<ConsensusRelay, 'identity'> & Partial<Pick<ConsensusRelay, 'descriptorDigest'>>, why: string): number {
    const id = hex(relay.identity);
    const previous = this.#failures.get(id);
    const delayMs = nextDelay(this.#backoff, previous?.delayMs ?? 0, this.#random);
    this.#failures.delete(id);
    this.#failures.set(id, {
      count: (previous?.count ?? 0) + 1,
      delayMs,
      until: this.#now() + delayMs,
      at: this.#now(),
      digest: relay.descriptorDigest !== undefined ? hex(relay.descriptorDigest) : null,
      why,
    });
    if (this.#failures.size > MAX_ENTRIES) this.#failures.delete(this.#failures.keys().next().value!);
    return delayMs;
  }

  /** `relay` worked (a link or a hop through it was built): forget its failures. */
  markSucceeded(relay: Pick<ConsensusRelay, 'identity'>): void {
    this.#failures.delete(hex(relay.identity));
  }

  /** Whether `relay` failed and its backoff has not run out. */
  isAvoided(relay: Pick<ConsensusRelay, 'identity'>): boolean {
    const failure = this.#failures.get(hex(relay.identity));
    return failure !== undefined && failure.until > this.#now();
  }

  /** When `relay` last failed (ms since the epoch), or null if no failure is remembered. */
  failedAt(relay: Pick<ConsensusRelay, 'identity'>): number | null {
    return this.#failures.get(hex(relay.identity))?.at ?? null;
  }

  /** Consecutive failures of `relay` still remembered (0 when none). */
  failures(relay: Pick<ConsensusRelay, 'identity'>): number {
    return this.#failures.get(hex(relay.identity))?.count ?? 0;
  }

  /** `exit` refused `target` by policy: do not ask it for this host and port again for EXIT_REJECTION_MS. */
  markExitRejected(exit: Pick<ConsensusRelay, 'identity'>, target: StreamTarget): void {
    const key = `${hex(exit.identity)} ${target.host ?? ''} ${target.port}`;
    this.#rejections.delete(key);
    this.#rejections.set(key, this.#now() + EXIT_REJECTION_MS);
    if (this.#rejections.size > MAX_REJECTIONS) this.#rejections.delete(this.#rejections.keys().next().value!);
  }

  /** Whether `exit` refused `target` (same host text and port) recently. */
  exitRejects(exit: Pick<ConsensusRelay, 'identity'>, target: StreamTarget): boolean {
    const key = `${hex(exit.identity)} ${target.host ?? ''} ${target.port}`;
    const until = this.#rejections.get(key);
    if (until === undefined) return false;
    if (until <= this.#now()) {
      this.#rejections.delete(key);
      return false;
    }
    return true;
  }

  /**
   * A new consensus: forget the failure of every relay now listed with
   * another descriptor than the one it had when it failed (it restarted and
   * republished), and failures whose backoff ran out long ago.
   */
  onConsensus(relays: readonly ConsensusRelay[]): void {
    const now = this.#now();
    const digests = new Map<string, string>();
    for (const r of relays) digests.set(hex(r.identity), hex(r.descriptorDigest));
    for (const [id, failure] of this.#failures) {
      const digest = digests.get(id);
      if ((failure.digest !== null && digest !== undefined && digest !== failure.digest) || failure.until + this.#backoff.capMs < now) {
        this.#failures.delete(id);
      }
    }
  }
}
