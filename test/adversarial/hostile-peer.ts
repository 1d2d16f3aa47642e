/**
 * A hostile peer for adversarial tests: an anonymous link to a relay over
 * which the test sends hand-built cells, and a record of every cell the relay
 * sends back. It acts as a client where it needs valid cells (ntor v3, tor1
 * layers), and as anything else where it does not. Every wait is bounded.
 * No side effects at import.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tcpConnect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import type { TestContext } from 'node:test';
import { Channel } from '../../src/link/channel.js';
import { ChannelCommand, cellCircuitId, encodeChannelCell } from '../../src/cell/channel-cell.js';
import { decodeCreated2, encodeCreate2 } from '../../src/cell/create2.js';
import { encodeRelayCell, decodeRelayCell, type DecodedRelayCell } from '../../src/cell/relay-cell.js';
import { HANDSHAKE_TYPE_NTOR_V3, TOR1_KEY_MATERIAL_LENGTH } from '../../src/constants.js';
import { ntorV3ClientFinish, ntorV3ClientStart } from '../../src/crypto/ntor-v3.js';
import { tor1Layers, type HopLayers } from '../../src/crypto/onion-layer.js';
import { CIRCUIT_VERIFICATION, EMPTY_NTOR_MESSAGE } from '../../src/circuit/handshake-params.js';
import { parseExitPolicy } from '../../src/netdoc/exit-policy.js';
import { createRelayCore, type RelayCore, type RelayCoreOptions } from '../../relay/relay.js';
import { loadRelayKeys, type RelayKeys } from '../../relay/keys.js';
import { listenOrPort } from '../../relay/or-listener.js';
import { TcpTransport, type Transport } from '../../src/link/transport.js';
import type { HopInfo } from '../../client/hop-info.js';
import type { Duplex } from 'node:stream';
import { duplexPair } from '../support/duplex-pair.js';

export const WAIT_MS = 3000;

export function tempDir(t: TestContext, prefix = 'allium-adv-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** What a peer needs to reach a relay. */
export interface RelayTarget {
  keys: RelayKeys;
  /** A fresh transport to the relay, already handed to it (in memory or TCP). */
  open(): Promise<Duplex>;
  /** The relay's side of the link over `socket`, once the relay accepted it (in-memory relays only). */
  relaySide?(socket: Duplex): Promise<Channel>;
}

/**
 * A relay core in memory (createRelayCore over duplex pairs). `exit` makes it
 * an exit that allows 127.0.0.1 only. `transport` (how it dials the next hop
 * of an EXTEND2) defaults to refusing every target.
 */
export function memoryRelay(t: TestContext, opts: { exit?: boolean; transport?: Transport } = {}): RelayTarget {
  const keys = loadRelayKeys(tempDir(t));
  const core = createRelayCore({
    keys,
    exit: { policy: opts.exit === true ? parseExitPolicy(['accept 127.0.0.1:*', 'reject *:*']) : null, localAddress: '127.0.0.1' },
    transport: opts.transport ?? { connect: async () => Promise.reject(new Error('no such relay')) },
    dialTimeoutMs: WAIT_MS,
  });
  t.after(() => core.links.destroy());
  // Weakly keyed, so that holding this map keeps no closed link reachable.
  const accepted = new WeakMap<Duplex, Promise<Channel>>();
  return {
    keys,
    relaySide: (socket) => accepted.get(socket) ?? Promise.reject(new Error('not a socket of this relay')),
    async open() {
      const [near, far] = duplexPair();
      const channel = core.accept(far);
      channel.catch(() => far.destroy());
      accepted.set(near, channel);
      return near;
    },
  };
}

/** A TCP transport to a relay on 127.0.0.1:`port` (startRelay(), tcpRelay()), from `localAddress` if given. */
export function tcpTarget(keys: RelayKeys, port: number, localAddress?: string): RelayTarget {
  return {
    keys,
    async open() {
      const socket = tcpConnect({ host: '127.0.0.1', port, ...(localAddress !== undefined ? { localAddress } : {}) });
      socket.on('error', () => {});
      return socket;
    },
  };
}

/** A relay core on TCP loopback (tcpRelay()). */
export interface TcpRelay {
  core: RelayCore;
  keys: RelayKeys;
  /** Its OR port on 127.0.0.1. */
  port: number;
  /** The relay as a hop, for a real client circuit. */
  info: HopInfo;
  /** A RelayTarget whose connections come from `localAddress` (a loopback address of its own: per-address limits, §3.6). */
  from(localAddress: string): RelayTarget;
}

/**
 * A relay core in this process listening on 127.0.0.1 (port 0) over real
 * TCP, dialling with TcpTransport from 127.0.0.1; destroyed, and its listener
 * closed, after the test. `exit` makes it an exit that allows 127.0.0.1 only;
 * the other options go to createRelayCore as they are (dialTimeoutMs, dos,
 * memoryCap...).
 */
export async function tcpRelay(
  t: TestContext,
  opts: { exit?: boolean } & Omit<Partial<RelayCoreOptions>, 'keys' | 'exit' | 'transport'> = {},
): Promise<TcpRelay> {
  const { exit, ...core } = opts;
  const keys = loadRelayKeys(tempDir(t));
  const relay = createRelayCore({
    keys,
    exit: { policy: exit === true ? parseExitPolicy(['accept 127.0.0.1:*', 'reject *:*']) : null, localAddress: '127.0.0.1' },
    transport: new TcpTransport({ localAddress: '127.0.0.1' }),
    ...core,
  });
  const listener = await listenOrPort('127.0.0.1', 0, (socket) => relay.accept(socket));
  t.after(async () => {
    relay.destroy();
    await listener.close();
  });
  const port = listener.port;
  return {
    core: relay,
    keys,
    port,
    info: { nickname: 'tcprelay', identity: keys.identity.identity, linkKey: keys.linkKey.public, ntorOnionKey: keys.ntor.onionKey, address: '127.0.0.1', orPort: port },
    from: (localAddress) => tcpTarget(keys, port, localAddress),
  };
}

/** One circuit as the hostile peer holds it: id and the hop's two layers. */
export interface PeerCircuit {
  id: number;
  layers: HopLayers;
}

export class HostilePeer {
  readonly channel: Channel;
  readonly socket: Duplex;
  readonly target: RelayTarget;
  /** Every cell received, in order, never consumed (for counting). */
  readonly received: Uint8Array[] = [];
  #inbox: Uint8Array[] = [];
  #waiters: Array<() => void> = [];
  #nextId = 0x80000001;

  private constructor(target: RelayTarget, socket: Duplex, channel: Channel) {
    this.target = target;
    this.socket = socket;
    this.channel = channel;
    channel.on('cell', (cell: Uint8Array) => {
      this.received.push(cell);
      this.#inbox.push(cell);
      this.#wake();
    });
    channel.on('close', () => this.#wake());
  }

  /** `t` null: the caller destroys the link itself (so that no test hook keeps it reachable). */
  static async connect(t: TestContext | null, target: RelayTarget): Promise<HostilePeer> {
    const socket = await target.open();
    const channel = await Channel.connect(socket, { peerLinkKey: target.keys.linkKey.public, peerIdentity: target.keys.identity.identity, timeoutMs: WAIT_MS });
    t?.after(() => channel.destroy());
    return new HostilePeer(target, socket, channel);
  }

  /** A fresh circuit id in the initiator's half, never used before on this link. */
  freshId(): number {
    return this.#nextId++;
  }

  send(cell: Uint8Array): void {
    this.channel.sendCell(cell);
  }

  /** Send many cells, waiting for 'drain' whenever our own link queue is above its high-water mark. */
  async sendPaced(cells: Iterable<Uint8Array>, timeoutMs = WAIT_MS): Promise<void> {
    for (const cell of cells) {
      if (this.channel.sendCell(cell)) continue;
      if (this.channel.closed) throw new Error('link closed while sending');
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        once(this.channel, 'drain'),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('link did not drain')), timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
    }
  }

  sendCell(id: number, command: number, payload?: Uint8Array): void {
    this.send(encodeChannelCell(id, command, payload));
  }

  /**
   * A valid ntor-v3 onionskin for this relay, and a function that finishes it
   * into layers. `message`: the client's handshake message (default empty: no
   * congestion control asked for, §7.2).
   */
  onionskin(message: Uint8Array = EMPTY_NTOR_MESSAGE): { onionskin: Uint8Array; finish: (reply: Uint8Array) => HopLayers } {
    const { keys } = this.target;
    const { state, onionskin } = ntorV3ClientStart({ identity: keys.identity.identity, onionKey: keys.ntor.onionKey }, message, CIRCUIT_VERIFICATION);
    return { onionskin, finish: (reply) => tor1Layers(ntorV3ClientFinish(state, reply, TOR1_KEY_MATERIAL_LENGTH).keyMaterial) };
  }

  sendCreate2(id: number, handshakeData: Uint8Array, handshakeType: number = HANDSHAKE_TYPE_NTOR_V3): void {
    this.sendCell(id, ChannelCommand.CREATE2, encodeCreate2({ handshakeType, handshakeData }));
  }

  /** CREATE2 with a valid onionskin (with `message`, as onionskin()); resolves once CREATED2 arrives (rejects on DESTROY or timeout). */
  async create(id = this.freshId(), message?: Uint8Array): Promise<PeerCircuit> {
    const { onionskin, finish } = this.onionskin(message);
    this.sendCreate2(id, onionskin);
    const reply = await this.next((c) => cellCircuitId(c) === id && (c[4] === ChannelCommand.CREATED2 || c[4] === ChannelCommand.DESTROY), 'CREATED2');
    if (reply[4] !== ChannelCommand.CREATED2) throw new Error(`CREATE2 ${id.toString(16)} answered with DESTROY reason ${reply[5]}`);
    return { id, layers: finish(decodeCreated2(reply.subarray(5))) };
  }

  /** Seal a relay message at the (single) hop and send it. */
  sendRelay(circ: PeerCircuit, command: number, streamId: number, data: Uint8Array = new Uint8Array(0), early = false): void {
    const payload = encodeRelayCell({ command, streamId, data });
    circ.layers.forward.seal(payload);
    this.sendCell(circ.id, early ? ChannelCommand.RELAY_EARLY : ChannelCommand.RELAY, payload);
  }

  /**
   * The next cell matching `match`, taken out of the inbox; earlier
   * non-matching cells stay. Rejects after `timeoutMs` or when the link closes.
   */
  async next(match: (cell: Uint8Array) => boolean, what: string, timeoutMs = WAIT_MS): Promise<Uint8Array> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.#inbox.findIndex(match);
      if (index >= 0) return this.#inbox.splice(index, 1)[0]!;
      if (this.channel.closed) throw new Error(`link closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Wait for DESTROY on `id`; returns its reason. */
  async destroyed(id: number, timeoutMs = WAIT_MS): Promise<number> {
    const cell = await this.next((c) => cellCircuitId(c) === id && c[4] === ChannelCommand.DESTROY, `DESTROY on ${id.toString(16)}`, timeoutMs);
    return cell[5]!;
  }

  /** The next RELAY cell on `circ`, opened with its backward layer (throws if not recognized). */
  async relay(circ: PeerCircuit, what = 'a relay cell', timeoutMs = WAIT_MS): Promise<DecodedRelayCell> {
    const cell = await this.next((c) => cellCircuitId(c) === circ.id && (c[4] === ChannelCommand.RELAY || c[4] === ChannelCommand.DESTROY), what, timeoutMs);
    if (cell[4] === ChannelCommand.DESTROY) throw new Error(`circuit destroyed (reason ${cell[5]}) while waiting for ${what}`);
    const payload = cell.subarray(5);
    circ.layers.backward.crypt(payload);
    if (!circ.layers.backward.open(payload)) throw new Error('relay cell from the relay not recognized');
    return decodeRelayCell(payload);
  }

  /** Cells received for `id` that are still in the inbox. */
  pending(id: number): Uint8Array[] {
    return this.#inbox.filter((c) => cellCircuitId(c) === id);
  }

  /** Let the relay answer whatever is in flight (a few event-loop turns on both sides). */
  async settle(ms = 50): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, ms));
  }

  /** Wait for the link to close (rejects after timeoutMs). */
  async linkClosed(timeoutMs = WAIT_MS): Promise<void> {
    if (this.channel.closed) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      once(this.channel, 'close'),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('link did not close')), timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}

/** A TCP server on 127.0.0.1:0; `onConnection` handles each socket. Closed after the test. */
export async function tcpServer(t: TestContext, onConnection: (socket: Socket) => void): Promise<{ server: Server; port: number }> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onConnection(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return { server, port: (server.address() as AddressInfo).port };
}

/** A port on 127.0.0.1 with nothing listening (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}
