/**
 * A relay's denial-of-service defences, in the spirit of C tor's DoS
 * subsystem (docs/protocol.md §3.6): limits that an honest client never
 * meets and that stop one address from taking the relay for itself.
 *
 * - Concurrent links per remote address (TCP connections, counted from
 *   accept, handshaking or open): past `maxLinksPerAddress` a new connection
 *   is closed at once, before any handshake work.
 * - Circuit creation per remote address: a token bucket (`circuitRate` per
 *   second, `circuitBurst` saved up), applied, as in Tor, only to an address
 *   that holds at least `circuitMinLinks` links at once (so a guard's one or
 *   two links to a middle, or a client's link to its guard, are never
 *   limited). A CREATE2 past it is answered DESTROY RESOURCELIMIT before the
 *   ntor handshake, which is the expensive part.
 * - Streams at an exit: per circuit, BEGIN and RESOLVE go through a token
 *   bucket (`beginRate`, `beginBurst`), and at most `maxStreamsPerCircuit`
 *   streams are open at once; either refusal is END RESOURCELIMIT on that
 *   stream only.
 *
 * The handshake timeout of an accepted link is the link manager's dial and
 * accept timeout (RelayCoreOptions.dialTimeoutMs, 10 s by default).
 *
 * Every refusal is counted (`stats()`); nothing here logs an address.
 */
import type { Channel } from '../src/link/channel.js';
import { ConcurrencyLimiter, RateLimiter, TokenBucket } from '../src/net/limits.js';

export interface DosOptions {
  /** Links (connections) one address may hold open at once; 0: no limit. Default 50. */
  maxLinksPerAddress?: number;
  /** CREATE2 per second per address, once it holds circuitMinLinks links. Default 3. */
  circuitRate?: number;
  /** CREATE2 an address may save up. Default 90. */
  circuitBurst?: number;
  /** Links an address must hold before its circuit creation is limited. Default 3. */
  circuitMinLinks?: number;
  /** BEGIN or RESOLVE per second per circuit at an exit. Default 100. */
  beginRate?: number;
  /** BEGIN or RESOLVE a circuit may save up. Default 1000 (a client may open 1000 streams at once). */
  beginBurst?: number;
  /** Streams open at once per circuit at an exit. Default 1024 (the circuit edge's own bound, answered with END instead of a destroyed circuit). */
  maxStreamsPerCircuit?: number;
  /**
   * Time a link may take from its TCP connection to the end of its
   * handshake, accepted or dialled, ms; a connection that has not finished
   * by then is closed (relay/relay-core.ts gives it to the link manager as
   * its dial and accept timeout). Default 10,000.
   */
  handshakeTimeoutMs?: number;
  /** Clock, ms (tests). Default Date.now. */
  now?: () => number;
}

/** The defaults, documented in docs/protocol.md §3.6 and docs/architecture.md. */
export const DOS_DEFAULTS = Object.freeze({
  maxLinksPerAddress: 50,
  circuitRate: 3,
  circuitBurst: 90,
  circuitMinLinks: 3,
  beginRate: 100,
  beginBurst: 1000,
  maxStreamsPerCircuit: 1024,
  handshakeTimeoutMs: 10_000,
});

/** Refusal counters since the relay started. */
export interface DosStats {
  /** Connections closed at accept: their address already held maxLinksPerAddress. */
  linksRefused: number;
  /** CREATE2 answered DESTROY RESOURCELIMIT by the per-address rate. */
  circuitsRefused: number;
  /** BEGIN / RESOLVE answered END RESOURCELIMIT by the per-circuit rate. */
  beginsRefused: number;
  /** BEGIN answered END RESOURCELIMIT because the circuit had maxStreamsPerCircuit streams. */
  streamsRefused: number;
  /** Addresses holding at least one link now. */
  addressesWithLinks: number;
}

/** The key for a peer address: an IPv4-mapped IPv6 address counts as the IPv4 one; unknown (in-memory links) is ''. */
export function addressKey(address: string | undefined): string {
  if (address === undefined) return '';
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

export class DosGuard {
  readonly #opts: Required<Omit<DosOptions, 'now'>>;
  readonly #now: () => number;
  readonly #links: ConcurrencyLimiter;
  readonly #creates: RateLimiter;
  /** The address each accepted link came from. */
  readonly #addressOf = new WeakMap<Channel, string>();
  /** BEGIN buckets, per circuit (any object standing for one). */
  readonly #begins = new WeakMap<object, TokenBucket>();
  readonly #stats = { linksRefused: 0, circuitsRefused: 0, beginsRefused: 0, streamsRefused: 0 };

  constructor(opts: DosOptions = {}) {
    const { now, ...rest } = opts;
    const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
    this.#opts = { ...DOS_DEFAULTS, ...defined };
    this.#now = now ?? Date.now;
    this.#links = new ConcurrencyLimiter(this.#opts.maxLinksPerAddress);
    this.#creates = new RateLimiter({ rate: this.#opts.circuitRate, burst: this.#opts.circuitBurst, now: this.#now });
    new TokenBucket(this.#opts.beginRate, this.#opts.beginBurst, 0); // validates
  }

  /** The limits in force. */
  get options(): Readonly<Required<Omit<DosOptions, 'now'>>> {
    return this.#opts;
  }

  /**
   * A connection from `address` was accepted: true if it may proceed (then
   * call `linkClosed(address)` once when it closes), false if it must be
   * closed now.
   */
  admitLink(address: string): boolean {
    if (this.#links.acquire(address)) return true;
    this.#stats.linksRefused++;
    return false;
  }

  linkClosed(address: string): void {
    this.#links.release(address);
  }

  /** `link` (an accepted link) came from `address`. */
  tagLink(link: Channel, address: string): void {
    this.#addressOf.set(link, address);
  }

  /**
   * A CREATE2 arrived on `link`: true if a circuit may be made. Links we
   * dialled (no recorded address) are never limited.
   */
  admitCreate(link: Channel): boolean {
    const address = this.#addressOf.get(link);
    if (address === undefined) return true;
    if (this.#links.count(address) < this.#opts.circuitMinLinks) return true;
    if (this.#creates.take(address)) return true;
    this.#stats.circuitsRefused++;
    return false;
  }

  /**
   * A BEGIN or RESOLVE arrived on `circuit`, which has `openStreams` streams:
   * 'ok', or why it is refused (answer END RESOURCELIMIT on that stream).
   */
  admitBegin(circuit: object, openStreams: number): 'ok' | 'rate' | 'streams' {
    if (openStreams >= this.#opts.maxStreamsPerCircuit) {
      this.#stats.streamsRefused++;
      return 'streams';
    }
    const now = this.#now();
    let bucket = this.#begins.get(circuit);
    if (bucket === undefined) {
      bucket = new TokenBucket(this.#opts.beginRate, this.#opts.beginBurst, now);
      this.#begins.set(circuit, bucket);
    }
    if (bucket.take(now)) return 'ok';
    this.#stats.beginsRefused++;
    return 'rate';
  }

  stats(): DosStats {
    return { ...this.#stats, addressesWithLinks: this.#links.size };
  }
}
