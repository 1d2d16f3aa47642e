/**
 * How a link reaches its peer: the byte pipe under the Noise handshake
 * (docs/protocol.md §3). The link layer dials only through a `Transport`, so
 * a pluggable transport (obfuscation, a bridge) or a latency-emulating one for
 * tests and simulations can be added without touching link or circuit code.
 */
import { connect, isIP } from 'node:net';
import type { Duplex } from 'node:stream';

/** Where a peer listens: an IP address and a TCP port (the relay's OR port). */
export interface PeerAddress {
  address: string;
  port: number;
}

export interface TransportConnectOptions {
  /** Aborted when the caller gives up (dial timeout, manager closing); the transport should then destroy what it opened. */
  signal?: AbortSignal;
}

/**
 * A way to open a byte stream to a peer. `connect` resolves with a Duplex that
 * is connected or still connecting (errors may surface later on the Duplex as
 * 'error'/'close'; the link handshake reports them). It rejects if no stream
 * can be made at all. Implementations must not emit unhandled 'error' events.
 */
export interface Transport {
  connect(peer: PeerAddress, opts?: TransportConnectOptions): Promise<Duplex>;
}

/**
 * Plain TCP. `localAddress` binds outgoing connections to IPv4 peers and
 * `localAddress6` those to IPv6 peers (a relay connects out from its own
 * address of the peer's family); a connection of the other family is not bound.
 */
export class TcpTransport implements Transport {
  readonly #localAddress: string | undefined;
  readonly #localAddress6: string | undefined;

  constructor(opts: { localAddress?: string; localAddress6?: string } = {}) {
    this.#localAddress = opts.localAddress !== undefined && isIP(opts.localAddress) === 4 ? opts.localAddress : undefined;
    this.#localAddress6 = opts.localAddress6 ?? (opts.localAddress !== undefined && isIP(opts.localAddress) === 6 ? opts.localAddress : undefined);
  }

  connect(peer: PeerAddress, opts: TransportConnectOptions = {}): Promise<Duplex> {
    const localAddress = isIP(peer.address) === 6 ? this.#localAddress6 : this.#localAddress;
    const socket = connect({
      host: peer.address,
      port: peer.port,
      ...(localAddress !== undefined ? { localAddress } : {}),
    });
    // Cells are batched per event-loop turn already; Nagle would only hold a lone cell back for the peer's delayed ACK.
    socket.setNoDelay(true);
    // Connection errors surface through the link handshake that reads this socket.
    socket.on('error', () => {});
    opts.signal?.addEventListener('abort', () => socket.destroy(), { once: true });
    return Promise.resolve(socket);
  }
}
