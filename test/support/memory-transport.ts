/**
 * A link transport over in-memory duplex pairs: `connect` makes a pair, hands
 * the far end to whatever listens at the peer's address (as a TCP accept
 * would), and returns the near end. Links over it are real Noise links; only
 * the kernel is left out. No side effects at import.
 */
import type { Duplex } from 'node:stream';
import type { PeerAddress, Transport } from '../../src/link/transport.js';
import { duplexPair } from './duplex-pair.js';

export class MemoryTransport implements Transport {
  /** Connections made so far. */
  connects = 0;
  readonly #listeners: (peer: PeerAddress) => ((socket: Duplex) => void) | undefined;

  /** `listeners(peer)`: the accept function listening at `peer`, or undefined (connection refused). */
  constructor(listeners: (peer: PeerAddress) => ((socket: Duplex) => void) | undefined) {
    this.#listeners = listeners;
  }

  async connect(peer: PeerAddress): Promise<Duplex> {
    const accept = this.#listeners(peer);
    if (accept === undefined) throw new Error(`nothing listens at ${peer.address}:${peer.port}`);
    this.connects++;
    const [near, far] = duplexPair();
    accept(far);
    return near;
  }
}
