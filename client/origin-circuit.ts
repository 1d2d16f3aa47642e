/**
 * A circuit as its originator sees it (docs/protocol.md §5-§7): the link to
 * the guard, the circuit id, and per hop the two onion layers and (once used)
 * an edge with that hop's flow control and streams. Builds itself hop by hop
 * (CREATE2, then EXTEND2 in RELAY_EARLY), opens exit streams (BEGIN, normally
 * at the last hop) and directory streams (BEGIN_DIR, at any hop), agrees on
 * each hop's congestion control in its handshake (§7.2), and tears
 * itself down on anything unexpected: a cell no hop recognizes, a command out
 * of place, a bad SENDME. Each hop's handshake (onionskin, reply, keys) is a
 * HopHandshake (hop-handshake.ts); the answers to stream requests are settled
 * in StreamRequests (stream-requests.ts); the relay cells the hops send back
 * are dispatched by RelayDispatch (relay-dispatch.ts).
 */
import { debuglog } from 'node:util';
import {
  ChannelCommand,
  cellCommand,
  cellPayload,
  destroyReasonOf,
  encodeChannelCell,
  encodeDestroy,
} from '../src/cell/channel-cell.js';
import { decodeCreated2 } from '../src/cell/create2.js';
import { writeRelayMsg, type RelayMsg } from '../src/cell/relay-msg.js';
import { DestroyReason } from '../src/cell/reasons.js';
import { BeginFlag, type ResolvedAnswer } from '../src/cell/stream-messages.js';
import type { HopLayers } from '../src/crypto/onion-layer.js';
import { DEFAULT_NETWORK_PARAMS, type NetworkParams } from '../src/netdoc/params.js';
import { CircuitEdge } from '../src/circuit/circuit-edge.js';
import { ChannelRoom } from '../src/circuit/channel-room.js';
import { ForwardBacklog } from './forward-backlog.js';
import { BackwardPeel } from './backward-peel.js';
import { HopHandshake, create2Cell, extend2Msg } from './hop-handshake.js';
import type { HopInfo } from './hop-info.js';
import { StreamRequests } from './stream-requests.js';
import { RelayDispatch } from './relay-dispatch.js';
import type { ChannelCircuits } from '../src/circuit/circuit-ids.js';
import type { CircuitStatsRecorder } from '../src/circuit/circuit-stats.js';
import type { FlowControlFactory } from '../src/flow/flow-control.js';
import type { RelayStream } from '../src/stream/relay-stream.js';
import type { Channel } from '../src/link/channel.js';
import { AlliumError, CircuitDestroyedError, ProtocolError } from '../src/errors.js';
import { nextEventId, publish } from '../src/events.js';

const log = debuglog('allium:client');

export { extendSpecifiers, type HopInfo } from './hop-info.js';

/** Options for OriginCircuit.build(). */
export interface OriginCircuitOptions {
  /** The owning manager's counters. */
  stats?: CircuitStatsRecorder | null;
  /**
   * The consensus parameters: with `cc_alg` 2 each hop is asked for
   * congestion control (§7.2). Default: every parameter at its default.
   */
  params?: NetworkParams;
  /** Flow control for every hop, instead of what each handshake agrees on (tests). */
  flow?: FlowControlFactory;
  /** Called during build() each time a hop is added, with the number of hops built so far (1 = the guard). */
  onHop?: (hops: number) => void;
  /** Reclaim half-closed streams idle this long (ms); default HALF_CLOSED_IDLE_TIMEOUT_MS (docs/protocol.md §6.4). */
  halfClosedIdleMs?: number;
  /** Ask for IPv6 between relays: extendSpecifiers `preferIPv6` (§6.3). Default false. */
  preferIPv6?: boolean;
}

/** Options for OriginCircuit.openStream(). */
export interface StreamOptions {
  /** Which hop (0 = guard) carries the stream; default the last. */
  hop?: number;
  /**
   * Optimistic data: bytes sent as DATA right after BEGIN, before CONNECTED
   * (docs/protocol.md §6.4), within the stream's window. If the stream is
   * refused they are lost with it: a caller that retries sends them again.
   */
  earlyData?: Uint8Array;
  /**
   * Ask the exit for half-close (BeginFlag.HALF_CLOSE, docs/protocol.md
   * §6.4); default true. It is used only if the exit agrees in CONNECTED.
   */
  halfClose?: boolean;
}

export class OriginCircuit {
  readonly id: number;
  /** Process-unique number for events (not the wire circuit id). */
  readonly eventId = nextEventId();
  readonly path: readonly HopInfo[];
  readonly #channel: Channel;
  readonly #room: ChannelRoom;
  readonly #circuits: ChannelCircuits<OriginCircuit>;
  readonly #options: OriginCircuitOptions;
  readonly #hops: HopLayers[] = [];
  /** The flow control each hop agreed on. */
  readonly #hopFlows: FlowControlFactory[] = [];
  /** One edge per hop, made when first used. */
  readonly #edges: Array<CircuitEdge | undefined> = [];
  /** Streams waiting for CONNECTED and RESOLVEs waiting for RESOLVED. */
  readonly #requests = new StreamRequests();
  /** The handshake adding the next hop, while building. */
  readonly #handshake: HopHandshake;
  #nextStreamId = 1;
  #built = false;
  #closed = false;
  #relayCellsIn = 0;
  #relayCellsOut = 0;
  #onClose: Array<(error: Error) => void> = [];
  /** Relay cells sealed in this turn, crypted and queued at its end. */
  readonly #backlog: ForwardBacklog;
  /** Backward cells: peeled a batch at a time; the digest after the cell being dispatched. */
  readonly #peel: BackwardPeel;
  /** Each backward cell's message, handed to whoever waits for it. */
  readonly #relay: RelayDispatch;

  private constructor(channel: Channel, circuits: ChannelCircuits<OriginCircuit>, path: HopInfo[], options: OriginCircuitOptions) {
    this.#channel = channel;
    this.#room = ChannelRoom.of(channel);
    this.#backlog = new ForwardBacklog(this.#hops, (cell) => this.#room.send(cell), () => this.#closed);
    this.#peel = new BackwardPeel(this.#hops);
    this.#circuits = circuits;
    this.#options = options;
    this.#handshake = new HopHandshake(
      options.params ?? DEFAULT_NETWORK_PARAMS,
      () => this.#closed,
      ({ layers, flow }) => {
        this.#hops.push(layers);
        this.#hopFlows.push(flow);
      },
    );
    this.#relay = new RelayDispatch(this.#hops, this.#edges, this.#handshake, this.#requests, this.#peel.receivedDigest);
    this.path = path;
    this.id = circuits.allocate(channel);
    circuits.set(this.id, { circuit: this, side: 'next' });
  }

  /**
   * Build a circuit through `path` (guard first) over `channel`, a link to
   * path[0]. Rejects (and destroys the circuit) on a failed handshake or a
   * DESTROY (CircuitDestroyedError with its reason), or with AlliumError
   * ERR_TIMEOUT after `timeoutMs`.
   */
  static async build(
    channel: Channel,
    circuits: ChannelCircuits<OriginCircuit>,
    path: HopInfo[],
    timeoutMs: number,
    options: OriginCircuitOptions = {},
  ): Promise<OriginCircuit> {
    const circuit = new OriginCircuit(channel, circuits, path, options);
    let timedOut = false;
    const startedAt = performance.now();
    const timer = setTimeout(() => {
      timedOut = true;
      circuit.destroy(DestroyReason.TIMEOUT, 'circuit build timed out');
    }, timeoutMs);
    try {
      await circuit.#create(path[0]!);
      options.onHop?.(1);
      for (let i = 1; i < path.length; i++) {
        await circuit.#extend(path[i - 1]!, path[i]!, options.preferIPv6 === true);
        options.onHop?.(i + 1);
      }
      circuit.#built = true;
      options.stats?.circuitBuilt();
      publish('allium:circuit:built', () => ({ circuitId: circuit.eventId, role: 'origin', hops: circuit.#hops.length, buildMs: performance.now() - startedAt }));
      return circuit;
    } catch (error) {
      circuit.destroy(DestroyReason.FINISHED, 'build failed');
      if (timedOut) throw new AlliumError('ERR_TIMEOUT', `circuit build timed out after ${timeoutMs} ms`, { cause: error });
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Open streams on all hops. */
  get streamCount(): number {
    let n = 0;
    for (const edge of this.#edges) n += edge?.streamCount ?? 0;
    return n;
  }

  /** Relay cells received and sent on this circuit so far (all hops). */
  get relayCells(): { in: number; out: number } {
    return { in: this.#relayCellsIn, out: this.#relayCellsOut };
  }

  /** The edge of hop `hop` (0 = guard), made on first use; undefined before that hop is built. */
  edge(hop: number): CircuitEdge | undefined {
    if (!Number.isInteger(hop) || hop < 0 || hop >= this.#hops.length) return undefined;
    let edge = this.#edges[hop];
    if (edge === undefined) {
      edge = new CircuitEdge(
        {
          send: (streamId, msg) => this.#send(hop, streamId, msg),
          congested: () => this.#room.congested,
          roomCells: () => this.#room.roomCells,
          onRoom: (wake) => this.#room.onRoom(wake),
        },
        {
          circuitId: this.eventId,
          stats: this.#options.stats ?? null,
          flow: this.#options.flow ?? this.#hopFlows[hop]!,
          ...(this.#options.halfClosedIdleMs !== undefined ? { halfClosedIdleMs: this.#options.halfClosedIdleMs } : {}),
        },
      );
      this.#edges[hop] = edge;
    }
    return edge;
  }

  get exit(): HopInfo {
    return this.path[this.path.length - 1]!;
  }

  onClose(listener: (error: Error) => void): void {
    this.#onClose.push(listener);
  }

  /**
   * Open a stream to host:port through the exit (BEGIN at `opts.hop`, default
   * the last hop); resolves once the hop says CONNECTED, with half-close on if
   * both asked for it. Rejects with StreamEndedError (the END reason) if
   * refused, AlliumError ERR_TIMEOUT after `timeoutMs`, ERR_RESOURCE_LIMIT if
   * the hop has too many streams, ERR_CONFIG for a host BEGIN cannot carry,
   * CircuitDestroyedError if the circuit goes away. (Hostnames are checked by
   * the caller: src/net/hostname.ts.)
   */
  openStream(host: string, port: number, timeoutMs: number, opts: StreamOptions = {}): Promise<RelayStream> {
    const flags = opts.halfClose === false ? 0 : BeginFlag.HALF_CLOSE;
    return this.#open(opts.hop ?? this.#hops.length - 1, timeoutMs, { kind: 'begin', host, port, flags }, opts.earlyData);
  }

  /**
   * Ask the exit (the last hop) to resolve `hostname` with RESOLVE (an
   * in-addr.arpa / ip6.arpa name for a reverse lookup; docs/protocol.md
   * §6.4). Resolves with the RESOLVED answers (an error answer is an answer,
   * not a rejection). Rejects with AlliumError ERR_CONFIG for a name RESOLVE
   * cannot carry, ERR_TIMEOUT after `timeoutMs`, StreamEndedError if the exit
   * ends the request, CircuitDestroyedError if the circuit goes away.
   */
  async resolve(hostname: string, timeoutMs: number): Promise<ResolvedAnswer[]> {
    if (this.#closed) throw new CircuitDestroyedError(DestroyReason.FINISHED, 'circuit is closed');
    if (!this.#built) throw new AlliumError('ERR_CONFIG', 'circuit is not built');
    const hop = this.#hops.length - 1;
    const streamId = this.#allocateStreamId();
    let cell: Uint8Array;
    try {
      cell = this.#encode(streamId, { kind: 'resolve', hostname });
    } catch (cause) {
      throw new AlliumError('ERR_CONFIG', `cannot resolve this name: ${(cause as Error).message}`, { cause });
    }
    return this.#requests.awaitResolved(streamId, timeoutMs, () => {
      this.#sendCell(hop, cell);
    });
  }

  /**
   * Open a directory stream to hop `hop` (0 = guard; default the last) with
   * BEGIN_DIR (docs/protocol.md §6.5); resolves once it says CONNECTED. The
   * stream then carries one HTTP/1.0 request and its answer. Rejects as
   * openStream() does (END NOTDIRECTORY from a relay that serves no directory).
   */
  openDirStream(hop: number = this.#hops.length - 1, timeoutMs = 10_000): Promise<RelayStream> {
    return this.#open(hop, timeoutMs, { kind: 'begin_dir' });
  }

  async #open(hop: number, timeoutMs: number, request: RelayMsg, earlyData?: Uint8Array): Promise<RelayStream> {
    if (this.#closed) throw new CircuitDestroyedError(DestroyReason.FINISHED, 'circuit is closed');
    const edge = this.edge(hop);
    if (edge === undefined || !this.#built) throw new AlliumError('ERR_CONFIG', `no hop ${hop} on this circuit`);
    if (edge.full) throw new AlliumError('ERR_RESOURCE_LIMIT', 'too many streams on this hop');
    const streamId = this.#allocateStreamId();
    let cell: Uint8Array;
    try {
      // A request that cannot be encoded fails here, before the stream exists.
      cell = this.#encode(streamId, request);
    } catch (cause) {
      throw new AlliumError('ERR_CONFIG', `cannot request this stream: ${(cause as Error).message}`, { cause });
    }
    const stream = edge.addStream(streamId, request.kind === 'begin_dir' ? 'dir' : 'client');
    stream.on('error', (error: Error) => log('stream closed: %s', error.message));
    const halfClose = request.kind === 'begin' && (request.flags & BeginFlag.HALF_CLOSE) !== 0;
    await this.#requests.awaitConnected(streamId, hop, stream, halfClose, timeoutMs, () => {
      this.#sendCell(hop, cell);
      // Optimistic data goes right behind BEGIN; the exit holds it until it has connected.
      if (earlyData !== undefined && earlyData.length > 0) stream.write(earlyData);
    });
    edge.opened(stream);
    return stream;
  }

  /** Handle a cell from the link for this circuit. */
  receive(cell: Uint8Array): void {
    if (this.#closed) return;
    if (cellCommand(cell) === ChannelCommand.RELAY) {
      this.#receiveRelayCells([cell]);
      return;
    }
    try {
      const command = cellCommand(cell);
      switch (command) {
        case ChannelCommand.CREATED2:
          this.#handshake.finish('CREATED2', decodeCreated2(cellPayload(cell)));
          return;
        case ChannelCommand.DESTROY: {
          const reason = destroyReasonOf(cell);
          this.#teardown(reason, true, new CircuitDestroyedError(reason, `circuit destroyed by the network (reason ${reason})`));
          return;
        }
        default:
          throw new ProtocolError(`unexpected cell command ${command}`);
      }
    } catch (error) {
      this.destroy(DestroyReason.PROTOCOL, (error as Error).message);
    }
  }

  /**
   * Cells from the link for this circuit that arrived together (one link
   * read), in order: runs of RELAY cells have the backward layers taken off
   * with one keystream call per hop (peelBackward); the result is exactly
   * that of receive() on each cell in turn.
   */
  receiveCells(cells: readonly Uint8Array[]): void {
    let start = 0;
    for (let i = 0; i < cells.length; i++) {
      if (cellCommand(cells[i]!) === ChannelCommand.RELAY) continue;
      if (i > start) this.#receiveRelayCells(cells.slice(start, i));
      this.receive(cells[i]!);
      start = i + 1;
    }
    if (start < cells.length) this.#receiveRelayCells(start === 0 ? cells : cells.slice(start));
  }

  #receiveRelayCells(cells: readonly Uint8Array[]): void {
    if (this.#closed) return;
    try {
      // Built and not extending: a cell the last hop does not recognize ends the circuit.
      this.#peel.receive(cells, this.#built && !this.#handshake.inFlight, this.#dispatchBound, this.#admitCell);
    } catch (error) {
      this.destroy(DestroyReason.PROTOCOL, (error as Error).message);
    }
  }

  readonly #dispatchBound = (hop: number, payload: Uint8Array): void => this.#relay.dispatch(hop, payload);
  readonly #admitCell = (): boolean => {
    if (this.#closed) return false;
    this.#relayCellsIn++;
    return true;
  };

  /** The link under the circuit closed. */
  linkClosed(): void {
    this.#teardown(DestroyReason.CHANNEL_CLOSED, true, new CircuitDestroyedError(DestroyReason.CHANNEL_CLOSED, 'link to the guard closed'));
  }

  /** Our own decision to end the circuit: DESTROY toward the guard with `reason`. */
  destroy(reason: number, why: string): void {
    if (this.#closed) return;
    log('destroying circuit: %s', why);
    this.#backlog.flush();
    if (!this.#channel.closed) this.#room.send(encodeDestroy(this.id, reason));
    this.#teardown(reason, false, new CircuitDestroyedError(reason, why));
  }

  // ---- building ----

  #create(hop: HopInfo): Promise<void> {
    return this.#handshake.start(hop, 'CREATED2', (onionskin) => this.#room.send(create2Cell(this.id, onionskin)));
  }

  #extend(from: HopInfo, hop: HopInfo, preferIPv6: boolean): Promise<void> {
    return this.#handshake.start(hop, 'EXTENDED2', (onionskin) => {
      this.#send(this.#hops.length - 1, 0, extend2Msg(from, hop, preferIPv6, onionskin), ChannelCommand.RELAY_EARLY);
    });
  }

  // ---- relay cells ----

  /**
   * Encode `msg` for stream `streamId` (0: the circuit), seal it for hop
   * `hop` and send it. Returns the running digest of that hop's forward layer
   * after it. Throws what writeRelayMsg throws for a message that cannot be encoded.
   */
  #send(hop: number, streamId: number, msg: RelayMsg, channelCommand: number = ChannelCommand.RELAY): Uint8Array {
    return this.#sendCell(hop, this.#encode(streamId, msg, channelCommand));
  }

  /** A fresh channel cell carrying `msg` in the clear; throws what writeRelayMsg throws. */
  #encode(streamId: number, msg: RelayMsg, channelCommand: number = ChannelCommand.RELAY): Uint8Array {
    const cell = encodeChannelCell(this.id, channelCommand);
    writeRelayMsg(cellPayload(cell), streamId, msg);
    return cell;
  }

  /** Seal an encoded cell for hop `hop` now and send it at the end of the turn (ForwardBacklog). Returns that hop's forward running digest after the cell. */
  #sendCell(hop: number, cell: Uint8Array): Uint8Array {
    this.#relayCellsOut++;
    return this.#backlog.send(hop, cell, cellPayload(cell));
  }

  #allocateStreamId(): number {
    for (let tries = 0; tries < 0xffff; tries++) {
      const id = this.#nextStreamId;
      this.#nextStreamId = id >= 0xffff ? 1 : id + 1;
      if (!this.#edges.some((edge) => edge?.hasStream(id) === true) && !this.#requests.has(id)) return id;
    }
    throw new AlliumError('ERR_RESOURCE_LIMIT', 'no free stream id');
  }

  #teardown(reason: number, remote: boolean, error: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    // Cells not yet on the link stay off it: the circuit is gone (destroy() flushed them before its DESTROY).
    this.#backlog.drop();
    this.#circuits.delete(this.id);
    this.#handshake.abort(error);
    this.#requests.rejectAll(error);
    for (const edge of this.#edges) edge?.abortAll(error);
    for (const hop of this.#hops) {
      hop.forward.destroy();
      hop.backward.destroy();
    }
    if (this.#built) {
      this.#options.stats?.circuitDestroyed();
      publish('allium:circuit:destroyed', () => ({
        circuitId: this.eventId,
        role: 'origin',
        reason,
        remote,
        relayCellsIn: this.#relayCellsIn,
        relayCellsOut: this.#relayCellsOut,
      }));
    }
    for (const listener of this.#onClose) listener(error);
  }
}
