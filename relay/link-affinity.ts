/**
 * Which worker of a multi-core relay (relay-workers.ts) carries the links of
 * each remote address. Every link from one address goes to the same worker,
 * so that worker's DoS state for the address (dos.ts: its links, whether it
 * holds circuitMinLinks of them, its circuit-creation token bucket) is the
 * relay's: the per-address limits are relay-wide with no message between
 * processes on the CREATE2 path.
 *
 * - An address with links open stays with its worker.
 * - When its last link closes, the address is remembered for `retainMs`
 *   (the time its drained circuit bucket needs to fill up again: burst /
 *   rate). A link within that time goes back to the same worker, so closing
 *   every link and reconnecting cannot land on a worker with a full bucket
 *   early. After that, the old worker's bucket is full anyway, and the
 *   address may go to any worker.
 * - A new address goes to the worker chosen by the caller (the one carrying
 *   the fewest links), so addresses, not links, are spread over the workers.
 *
 * Bounded: entries for addresses with links open (at most the relay's
 * connections), plus at most `maxIdle` remembered addresses (the oldest
 * forgotten first). Pure bookkeeping: no timers, no I/O; time injected (ms).
 */
export interface LinkAffinityOptions {
  /** How long an address without links keeps its worker, ms (≥ 0). */
  retainMs: number;
  /** Addresses without links remembered at most. Default 65536 (as many as the workers' rate limiters keep). */
  maxIdle?: number;
  /** Clock, ms. Default Date.now. */
  now?: () => number;
}

export class LinkAffinity<W> {
  readonly #retainMs: number;
  readonly #maxIdle: number;
  readonly #now: () => number;
  /** Addresses with links open: their worker and how many links. */
  readonly #active = new Map<string, { worker: W; links: number }>();
  /** Addresses whose last link closed, in the order they went idle: their worker and since when (ms). */
  readonly #idle = new Map<string, { worker: W; since: number }>();

  constructor(opts: LinkAffinityOptions) {
    this.#retainMs = opts.retainMs;
    this.#maxIdle = opts.maxIdle ?? 65536;
    this.#now = opts.now ?? Date.now;
  }

  /** Addresses with links open now. */
  get size(): number {
    return this.#active.size;
  }

  /** Links open now from `address`, relay-wide. */
  links(address: string): number {
    return this.#active.get(address)?.links ?? 0;
  }

  /**
   * The worker that must carry a new link from `address`: the one carrying
   * its links, or the one that did within retainMs; undefined if none (the
   * caller picks one, then calls add).
   */
  workerOf(address: string): W | undefined {
    this.#expire();
    return this.#active.get(address)?.worker ?? this.#idle.get(address)?.worker;
  }

  /** A link from `address` was handed to `worker` (the one workerOf named, if any). */
  add(address: string, worker: W): void {
    const entry = this.#active.get(address);
    if (entry !== undefined) {
      entry.links++;
      return;
    }
    this.#idle.delete(address);
    this.#active.set(address, { worker, links: 1 });
  }

  /** One link from `address` closed. */
  remove(address: string): void {
    const entry = this.#active.get(address);
    if (entry === undefined) return;
    if (--entry.links > 0) return;
    this.#active.delete(address);
    this.#idle.set(address, { worker: entry.worker, since: this.#now() });
    this.#expire();
  }

  /** `worker` is gone, with its links: forget every address it carried or carried lately. */
  dropWorker(worker: W): void {
    for (const [address, entry] of this.#active) if (entry.worker === worker) this.#active.delete(address);
    for (const [address, entry] of this.#idle) if (entry.worker === worker) this.#idle.delete(address);
  }

  #expire(): void {
    const now = this.#now();
    for (const [address, entry] of this.#idle) {
      if (this.#idle.size <= this.#maxIdle && now - entry.since < this.#retainMs) break;
      this.#idle.delete(address);
    }
  }
}
