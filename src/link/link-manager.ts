/**
 * Every link of one node, for every role (docs/protocol.md §2-§3): relays,
 * clients and the authority's reachability probes use the same manager.
 *
 * - Links are keyed by the peer's Ed25519 identity. `get(target)` reuses an
 *   open authenticated link to that identity (one we dialled or one the peer
 *   opened to us) when its link key is the one asked for; concurrent requests
 *   for the same identity share one dial; a link that closes is forgotten.
 * - Each link has one circuit table (ChannelCircuits). Cells arriving on a
 *   link are demultiplexed by circuit id to whatever owns the id
 *   (`onCircuitCell`); cells on ids nobody owns go to `onUnknownCell` (a
 *   relay's CREATE2 handling). The RELAY/RELAY_EARLY cells of one link read
 *   are grouped per circuit id (`onRelayCells`), each group in arrival
 *   order; every group is handed over before any other cell of the read is
 *   looked at, so only relay cells of different circuits change places. PADDING is dropped; any other cell on circuit
 *   id 0 closes the link (§2). When a link closes, `onLinkClosed` runs for
 *   every circuit still in its table.
 * - Bounded: one dial (transport connect + handshake) takes at most
 *   `dialTimeoutMs`; at most `maxLinks` links (open and being dialled or
 *   accepted) at a time.
 *
 * The manager dials through a Transport (transport.ts) and accepts sockets an
 * acceptor (e.g. a relay's OR listener) hands it; it never listens itself.
 */
import type { Duplex } from 'node:stream';
import { debuglog } from 'node:util';
import { equalBytes, hex } from '../bytes.js';
import { ChannelCommand, cellCircuitId, cellCommand } from '../cell/channel-cell.js';
import { ChannelCircuits, type CircuitSlot } from '../circuit/circuit-ids.js';
import { AlliumError, ProtocolError } from '../errors.js';
import type { LinkStats } from '../events.js';
import { Channel, type LinkIdentity, type StaticKey } from './channel.js';
import type { PeerAddress, Transport } from './transport.js';

const log = debuglog('allium:link');

/** A relay to link to: where it listens and who it must prove to be. */
export interface LinkTarget extends PeerAddress {
  /** Ed25519 identity, 32 bytes. */
  identity: Uint8Array;
  /** X25519 link key, 32 bytes (from its descriptor or the consensus). */
  linkKey: Uint8Array;
}

/** What the owner of the circuits does with a link's cells (one implementation per role). */
export interface LinkCircuitHandler<C> {
  /** A cell (514 bytes, ours to keep) for a circuit id in `link`'s table. */
  onCircuitCell(slot: CircuitSlot<C>, cell: Uint8Array, link: Channel): void;
  /**
   * RELAY and RELAY_EARLY cells (514 bytes each, ours to keep, at least one)
   * for one circuit id in `link`'s table that arrived in one link read, in
   * their order, so a circuit can take a layer off all of them at once.
   * Absent: each goes to onCircuitCell.
   */
  onRelayCells?(slot: CircuitSlot<C>, cells: Uint8Array[], link: Channel): void;
  /** A cell for a non-zero circuit id nobody on `link` owns. Default: dropped (§2: it may be in flight after a DESTROY). */
  onUnknownCell?(cell: Uint8Array, link: Channel, circuits: ChannelCircuits<C>): void;
  /** `link` closed: called once for each circuit still in its table. */
  onLinkClosed(slot: CircuitSlot<C>, link: Channel): void;
}

/** Relay cells of one link read for one circuit slot, in arrival order. */
interface RelayGroup<C> {
  slot: CircuitSlot<C>;
  cells: Uint8Array[];
}

export interface LinkManagerOptions<C> {
  transport: Transport;
  handler: LinkCircuitHandler<C>;
  /** Our relay keys: a relay authenticates itself on links it dials, and can accept links. Absent: an anonymous client. */
  keys?: { linkKey: StaticKey; identity: LinkIdentity };
  /** Time limit of one dial or accept (transport connect + link handshake), ms. Default 10 s. */
  dialTimeoutMs?: number;
  /** Links open, being dialled or being accepted, at most. Default 4096. */
  maxLinks?: number;
}

export const DEFAULT_DIAL_TIMEOUT_MS = 10_000;
export const DEFAULT_MAX_LINKS = 4096;

/** One dial: transport connect then the initiator's handshake, bounded by `timeoutMs`. */
export interface DialOptions {
  transport: Transport;
  target: LinkTarget;
  /** Our relay keys, or absent to dial as an anonymous client. */
  keys?: { linkKey: StaticKey; identity: LinkIdentity } | undefined;
  timeoutMs: number;
}

/**
 * Open an authenticated link to `target` through `transport`: the single way
 * every role dials. Rejects with AlliumError ERR_TIMEOUT when connect and
 * handshake together take longer than `timeoutMs`, ERR_HANDSHAKE when the peer
 * is not who `target` says, ERR_LINK_CLOSED when the transport fails.
 */
export async function dialLink(opts: DialOptions): Promise<Channel> {
  const started = Date.now();
  const socket = await connectWithin(opts.transport, opts.target, opts.timeoutMs);
  // The handshake gets what is left of the time (it reports ERR_TIMEOUT itself).
  return Channel.connect(socket, {
    peerLinkKey: opts.target.linkKey,
    peerIdentity: opts.target.identity,
    ...(opts.keys !== undefined ? { linkKey: opts.keys.linkKey, identity: opts.keys.identity } : {}),
    timeoutMs: Math.max(1, opts.timeoutMs - (Date.now() - started)),
  });
}

/** `transport.connect`, aborted with ERR_TIMEOUT after `timeoutMs`; other failures become ERR_LINK_CLOSED. */
async function connectWithin(transport: Transport, peer: PeerAddress, timeoutMs: number): Promise<Duplex> {
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abort.abort();
      reject(new AlliumError('ERR_TIMEOUT', `transport did not connect within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([transport.connect(peer, { signal: abort.signal }), timeout]);
  } catch (cause) {
    if (cause instanceof AlliumError) throw cause;
    throw new AlliumError('ERR_LINK_CLOSED', 'transport could not reach the relay', { cause });
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Reachability check (an authority's probe of a relay, docs/protocol.md §8):
 * a complete link handshake as an anonymous client, then a graceful close.
 * Resolves true or false; never rejects.
 */
export async function probeLink(transport: Transport, target: LinkTarget, timeoutMs: number): Promise<boolean> {
  try {
    const channel = await dialLink({ transport, target, timeoutMs });
    channel.close();
    return true;
  } catch (error) {
    log('probe of %s:%d failed: %s', target.address, target.port, (error as Error).message);
    return false;
  }
}

export class LinkManager<C> {
  readonly #transport: Transport;
  readonly #handler: LinkCircuitHandler<C>;
  readonly #keys: { linkKey: StaticKey; identity: LinkIdentity } | undefined;
  readonly #dialTimeoutMs: number;
  readonly #maxLinks: number;

  /** Every open link we manage. */
  readonly #links = new Set<Channel>();
  /** The link offered for reuse per peer identity (hex). */
  readonly #byIdentity = new Map<string, Channel>();
  /** Dials under way per peer identity (hex). */
  readonly #dialing = new Map<string, Promise<Channel>>();
  /** Circuit tables; weak, so a closed link and its table can go. */
  readonly #tables = new WeakMap<Channel, ChannelCircuits<C>>();
  /** Accepts whose handshake is under way (they count toward maxLinks). */
  #accepting = 0;
  #closed = false;
  #stats = { opened: 0, closed: 0, cellsIn: 0, cellsOut: 0 };

  constructor(opts: LinkManagerOptions<C>) {
    this.#transport = opts.transport;
    this.#handler = opts.handler;
    this.#keys = opts.keys;
    this.#dialTimeoutMs = opts.dialTimeoutMs ?? DEFAULT_DIAL_TIMEOUT_MS;
    this.#maxLinks = opts.maxLinks ?? DEFAULT_MAX_LINKS;
  }

  /** Links open now. */
  get size(): number {
    return this.#links.size;
  }

  /** Every open link (a snapshot; for accounting such as the relay's memory cap). */
  openLinks(): Channel[] {
    return [...this.#links];
  }

  /**
   * An open authenticated link to `target`: an existing one whose peer has
   * `target.identity` and `target.linkKey`, else the dial under way for that
   * identity, else a new dial. Rejects as dialLink does, with
   * ERR_RESOURCE_LIMIT past maxLinks, ERR_CONFIG once the manager is closed.
   */
  get(target: LinkTarget): Promise<Channel> {
    if (this.#closed) return Promise.reject(new AlliumError('ERR_CONFIG', 'link manager is closed'));
    const key = hex(target.identity);
    const existing = this.#byIdentity.get(key);
    if (existing !== undefined && !existing.closed && equalBytes(existing.peer.linkKey, target.linkKey)) {
      return Promise.resolve(existing);
    }
    let pending = this.#dialing.get(key);
    if (pending === undefined) {
      if (this.#links.size + this.#dialing.size + this.#accepting >= this.#maxLinks) {
        return Promise.reject(new AlliumError('ERR_RESOURCE_LIMIT', `already ${this.#maxLinks} links`));
      }
      pending = this.#dial(target).finally(() => this.#dialing.delete(key));
      this.#dialing.set(key, pending);
    }
    return pending;
  }

  /**
   * Run the responder's handshake on an accepted socket (relays only) and
   * manage the link. Resolves with the link; rejects (and destroys the socket)
   * on handshake failure or timeout, past maxLinks, or once closed.
   * `onOpen` runs once the handshake is done, before the link's first cell
   * is delivered (a relay tags the link with its remote address there).
   */
  async accept(socket: Duplex, onOpen?: (link: Channel) => void): Promise<Channel> {
    if (this.#keys === undefined) {
      socket.destroy();
      throw new AlliumError('ERR_CONFIG', 'only a relay (with keys) accepts links');
    }
    if (this.#closed || this.#links.size + this.#dialing.size + this.#accepting >= this.#maxLinks) {
      socket.destroy();
      throw new AlliumError(this.#closed ? 'ERR_CONFIG' : 'ERR_RESOURCE_LIMIT', this.#closed ? 'link manager is closed' : `already ${this.#maxLinks} links`);
    }
    this.#accepting++;
    let channel: Channel;
    try {
      channel = await Channel.accept(socket, { linkKey: this.#keys.linkKey, identity: this.#keys.identity, timeoutMs: this.#dialTimeoutMs });
    } catch (error) {
      socket.destroy();
      throw error;
    } finally {
      this.#accepting--;
    }
    onOpen?.(channel);
    this.#adopt(channel);
    return channel;
  }

  /**
   * Manage a link opened elsewhere (tests, tools): its cells are
   * demultiplexed, it is offered for reuse, it is forgotten when it closes.
   * Adopting a link twice does nothing.
   */
  adopt(channel: Channel): void {
    this.#adopt(channel);
  }

  /** The circuit table of `link` (made on first use; also for a link that has closed). */
  circuitsOf(link: Channel): ChannelCircuits<C> {
    let table = this.#tables.get(link);
    if (table === undefined) {
      table = new ChannelCircuits<C>();
      this.#tables.set(link, table);
    }
    return table;
  }

  /** A read-only snapshot: links open now, opened and closed so far, cells over every link's life. */
  stats(): LinkStats {
    let cellsIn = this.#stats.cellsIn;
    let cellsOut = this.#stats.cellsOut;
    let queuedBytes = 0;
    for (const link of this.#links) {
      cellsIn += link.cellsIn;
      cellsOut += link.cellsOut;
      queuedBytes += link.queuedBytes;
    }
    return { open: this.#links.size, opened: this.#stats.opened, closed: this.#stats.closed, cellsIn, cellsOut, queuedBytes };
  }

  /** Refuse new links and close every link gracefully (queued cells are sent first). */
  close(): void {
    this.#closed = true;
    for (const link of [...this.#links]) link.close();
  }

  /** Refuse new links and destroy every link at once. */
  destroy(): void {
    this.#closed = true;
    for (const link of [...this.#links]) link.destroy();
  }

  async #dial(target: LinkTarget): Promise<Channel> {
    let channel: Channel;
    try {
      channel = await dialLink({ transport: this.#transport, target, keys: this.#keys, timeoutMs: this.#dialTimeoutMs });
    } catch (cause) {
      if (cause instanceof AlliumError && cause.code === 'ERR_TIMEOUT') throw cause;
      throw new AlliumError('ERR_LINK_CLOSED', 'could not open a link to the relay', { cause });
    }
    if (this.#closed) {
      channel.destroy();
      throw new AlliumError('ERR_CONFIG', 'link manager is closed');
    }
    this.#adopt(channel);
    // A link we dialled for this key replaces one with a stale link key.
    const key = hex(target.identity);
    const current = this.#byIdentity.get(key);
    if (current === undefined || current.closed || !equalBytes(current.peer.linkKey, target.linkKey)) this.#byIdentity.set(key, channel);
    return channel;
  }

  #adopt(channel: Channel): void {
    if (this.#links.has(channel) || channel.state === 'closed') return;
    if (this.#closed) {
      channel.destroy();
      return;
    }
    this.#links.add(channel);
    this.#stats.opened++;
    const identity = channel.peer.identity;
    const key = identity === null ? null : hex(identity);
    // An inbound link from a relay is offered for reuse unless we already have one.
    if (key !== null) {
      const current = this.#byIdentity.get(key);
      if (current === undefined || current.closed) this.#byIdentity.set(key, channel);
    }
    const circuits = this.circuitsOf(channel);
    channel.on('cells', (cells: Uint8Array[]) => this.#routeBatch(channel, circuits, cells));
    channel.once('close', () => {
      this.#links.delete(channel);
      if (key !== null && this.#byIdentity.get(key) === channel) this.#byIdentity.delete(key);
      this.#stats.closed++;
      this.#stats.cellsIn += channel.cellsIn;
      this.#stats.cellsOut += channel.cellsOut;
      for (const slot of circuits.all()) this.#handler.onLinkClosed(slot, channel);
    });
  }

  /**
   * Demultiplex the cells of one link read (§2): relay cells are gathered
   * per circuit slot and handed over in groups (onRelayCells) when the read
   * is done or before any other kind of cell is handled.
   */
  #routeBatch(channel: Channel, circuits: ChannelCircuits<C>, cells: Uint8Array[]): void {
    const handler = this.#handler;
    if (handler.onRelayCells === undefined) {
      for (const cell of cells) {
        if (channel.closed) return;
        this.#route(channel, circuits, cell);
      }
      return;
    }
    const groups: RelayGroup<C>[] = [];
    for (const cell of cells) {
      const command = cellCommand(cell);
      if (command === ChannelCommand.RELAY || command === ChannelCommand.RELAY_EARLY) {
        const slot = circuits.get(cellCircuitId(cell));
        if (slot !== undefined) {
          let group: RelayGroup<C> | undefined;
          for (const g of groups) {
            if (g.slot === slot) {
              group = g;
              break;
            }
          }
          if (group === undefined) groups.push({ slot, cells: [cell] });
          else group.cells.push(cell);
          continue;
        }
      }
      if (groups.length > 0) this.#handOver(channel, groups);
      if (channel.closed) return;
      this.#route(channel, circuits, cell);
    }
    this.#handOver(channel, groups);
  }

  #handOver(channel: Channel, groups: RelayGroup<C>[]): void {
    for (const group of groups) {
      if (channel.closed) break;
      this.#handler.onRelayCells!(group.slot, group.cells, channel);
    }
    groups.length = 0;
  }

  /** Demultiplex one cell by circuit id (§2). */
  #route(channel: Channel, circuits: ChannelCircuits<C>, cell: Uint8Array): void {
    if (cellCommand(cell) === ChannelCommand.PADDING) return;
    const id = cellCircuitId(cell);
    if (id === 0) {
      channel.destroy(new ProtocolError('cell on circuit id 0'));
      return;
    }
    const slot = circuits.get(id);
    if (slot !== undefined) this.#handler.onCircuitCell(slot, cell, channel);
    else this.#handler.onUnknownCell?.(cell, channel, circuits);
  }
}
