/**
 * The client's backward cell path (docs/protocol.md §4.4, tor1), the
 * counterpart of ForwardBacklog: the relay cells of one circuit that arrived
 * together have the backward layers taken off with one keystream call per
 * hop (peelBackward), and each is handed on, in order, with the hop that
 * recognized it. While a cell is handled, `receivedDigest()` gives that
 * hop's running digest after it, for the circuit SENDME flow control may
 * answer with (§7). The digests of a batch go into one array kept from
 * batch to batch, so a cell costs no allocation here.
 */
import { cellPayload } from '../src/cell/channel-cell.js';
import { peelBackward, TOR1_DIGEST_LENGTH as DIGEST_LENGTH, type HopLayers } from '../src/crypto/onion-layer.js';
import { ProtocolError } from '../src/errors.js';

const EMPTY_DIGESTS = new Uint8Array(0);

export class BackwardPeel {
  /** peelBackward's digests (20 bytes per cell), kept from one batch to the next; empty while a batch uses it. */
  #batchDigests: Uint8Array = EMPTY_DIGESTS;
  /** The running digest after the cell being handled: #digestNow[#digestAt .. +20). */
  #digestNow: Uint8Array = new Uint8Array(DIGEST_LENGTH);
  #digestAt = 0;

  /** `hops`: the circuit's hop layers, guard first; the live array, which an EXTENDED2 handled in a batch extends. */
  constructor(private readonly hops: readonly HopLayers[]) {}

  /** A copy of the recognizing hop's backward running digest after the cell being handled (zeros before any). */
  readonly receivedDigest = (): Uint8Array => this.#digestNow.slice(this.#digestAt, this.#digestAt + DIGEST_LENGTH);

  /**
   * Take the backward layers off `cells` (514-byte RELAY cells of this
   * circuit, in arrival order; a cell may be left encrypted, its payload
   * peeled elsewhere) and call `handle(hop, payload)` with the peeled
   * 509-byte payload of each in turn. `admit()` is called before each cell: false
   * (the circuit closed) stops here; a caller counts cells in it. `final`: a cell
   * the last hop does not recognize ends the circuit (built, not
   * extending). A cell after an EXTENDED2 in the same batch also meets the
   * hops it added, as receiving it alone would. Throws ProtocolError for a
   * cell no hop recognizes, and whatever `handle` throws; the cells before
   * it were handled.
   */
  receive(cells: readonly Uint8Array[], final: boolean, handle: (hop: number, payload: Uint8Array) => void, admit: () => boolean): void {
    // Taken while in use: a batch handled from inside this one gets an array of its own.
    let digests = this.#batchDigests;
    this.#batchDigests = EMPTY_DIGESTS;
    if (digests.length < DIGEST_LENGTH * cells.length) digests = new Uint8Array(DIGEST_LENGTH * Math.max(cells.length, 64));
    try {
      const hops = this.hops;
      const built = hops.length;
      const hopOf: number[] = [];
      // The peeled payloads: views into the last layer's keystream output for its cells (no copy back).
      const payloads: Uint8Array[] = [];
      peelBackward(
        hops.map((h) => h.backward),
        cells,
        hopOf,
        digests,
        final,
        payloads,
      );
      for (let i = 0; i < cells.length; i++) {
        if (!admit()) return;
        // Unset only past a cell the last hop did not recognize when final; such a cell throws below.
        const payload = payloads[i] ?? cellPayload(cells[i]!);
        let hop = hopOf[i]!;
        for (let h = built; hop < 0 && h < hops.length; h++) {
          const layer = hops[h]!.backward;
          layer.crypt(payload);
          const digest = layer.openDigest(payload);
          if (digest !== null) {
            hop = h;
            digests.set(digest, DIGEST_LENGTH * i);
          }
        }
        if (hop < 0) throw new ProtocolError('relay cell recognized by no hop');
        this.#digestNow = digests;
        this.#digestAt = DIGEST_LENGTH * i;
        handle(hop, payload);
      }
    } finally {
      this.#batchDigests = digests;
    }
  }
}
