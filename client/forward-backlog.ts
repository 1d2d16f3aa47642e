/**
 * The client's forward cell path (docs/protocol.md §5, tor1): a relay cell
 * for hop `h` is sealed (its digest taken) at once, in sending order, and
 * waits in the backlog; at the end of the turn every forward layer crypts
 * its share of the backlog in one keystream call and the cells go on the
 * link in sending order. The layers are xor keystreams, so the order in
 * which a cell takes them does not matter; only each layer's order of cells
 * does, and every relay cell of a circuit goes through here.
 */
import type { HopLayers } from '../src/crypto/onion-layer.js';

export class ForwardBacklog {
  /** Cells sealed for their hop in this turn, not yet crypted by the layers before it nor queued; the hop of each. */
  #cells: Uint8Array[] = [];
  #hops: number[] = [];
  #queued = false;

  /**
   * `layers` are the circuit's hops (guard first), `queue` puts a finished
   * cell on the link, and `closed()` says the circuit is gone (a flush then
   * queues nothing).
   */
  constructor(
    private readonly layers: readonly HopLayers[],
    private readonly queue: (cell: Uint8Array) => void,
    private readonly closed: () => boolean,
  ) {}

  /**
   * Seal `cell` (an encoded channel cell) for hop `hop` and leave it for the
   * flush. Returns that hop's forward running digest after the cell, in the
   * layer's own array (OnionLayer.sealDigest): copy it to keep it.
   */
  send(hop: number, cell: Uint8Array, payload: Uint8Array): Uint8Array {
    const target = this.layers[hop]!;
    const digest = target.forward.sealDigest(payload);
    this.#cells.push(cell);
    this.#hops.push(hop);
    if (!this.#queued) {
      this.#queued = true;
      queueMicrotask(this.flush);
    }
    return digest;
  }

  /** Crypt and queue everything waiting. Runs at the end of the turn, and before anything else goes on the link for the circuit (DESTROY). */
  readonly flush = (): void => {
    this.#queued = false;
    const cells = this.#cells;
    if (cells.length === 0) return;
    const hops = this.#hops;
    this.#cells = [];
    this.#hops = [];
    if (this.closed()) return;
    let deepest = 0;
    for (const h of hops) if (h > deepest) deepest = h;
    for (let layer = 0; layer <= deepest; layer++) {
      this.layers[layer]!.forward.cryptCells(layer === 0 ? cells : cells.filter((_, i) => hops[i]! >= layer));
    }
    for (const cell of cells) this.queue(cell);
  };

  /** Forget what waits: the circuit is gone, and its cells stay off the link. */
  drop(): void {
    this.#cells = [];
    this.#hops = [];
  }
}
