/**
 * Ports the client expects streams to (docs/protocol.md §11.6), as Tor's
 * predicted ports: every port a stream asked for in the last `ttlMs`, and
 * port 80 from the start (so the first request rarely waits). At most
 * `max` ports are remembered; the least recently used go first.
 */

export const PREDICTED_PORT_TTL_MS = 60 * 60_000;
export const MAX_PREDICTED_PORTS = 16;
/** Predicted from the start. */
export const INITIAL_PREDICTED_PORT = 80;

export class PredictedPorts {
  readonly #now: () => number;
  readonly #ttlMs: number;
  readonly #max: number;
  /** port → last use, least recent first. */
  readonly #ports = new Map<number, number>();

  constructor(opts: { now?: () => number; ttlMs?: number; max?: number } = {}) {
    this.#now = opts.now ?? Date.now;
    this.#ttlMs = opts.ttlMs ?? PREDICTED_PORT_TTL_MS;
    this.#max = opts.max ?? MAX_PREDICTED_PORTS;
    this.#ports.set(INITIAL_PREDICTED_PORT, this.#now());
  }

  /** A stream asked for `port`. */
  use(port: number): void {
    this.#ports.delete(port);
    this.#ports.set(port, this.#now());
    while (this.#ports.size > this.#max) this.#ports.delete(this.#ports.keys().next().value!);
  }

  /** The ports used within the TTL, most recent first. */
  current(): number[] {
    const now = this.#now();
    for (const [port, at] of this.#ports) if (now - at > this.#ttlMs) this.#ports.delete(port);
    return [...this.#ports.keys()].reverse();
  }
}
