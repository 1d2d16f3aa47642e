/**
 * One circuit as a relay sees it (docs/protocol.md §5-§7): a link and circuit
 * id toward the client ("prev"), maybe one toward the next hop ("next"), and
 * this hop's two onion layers. Forward cells lose one layer and are either for
 * us (recognized, digest matches) or passed on; backward cells gain one layer.
 *
 * Messages for us: EXTEND2 and TRUNCATE shape the circuit; BEGIN (last hop
 * only) opens an exit stream; BEGIN_DIR (any hop) opens a directory stream
 * handed to the relay's directory handler; DATA, SENDME and END go to this
 * hop's edge. A bad stream request ends that stream; anything else out of
 * place destroys the circuit in both directions.
 *
 * What the circuit needs from its relay is in relay-context.ts; the buffers
 * it builds its own backward cells in come from cell-pool.ts.
 */
import { debuglog } from 'node:util';
import {
  CELL_COMMAND_OFFSET,
  CELL_PAYLOAD_OFFSET,
  ChannelCommand,
  cellCommand,
  cellPayload,
  encodeChannelCell,
  encodeDestroy,
  setCellCircuitId,
} from '../src/cell/channel-cell.js';
import { decodeCreated2, encodeCreate2 } from '../src/cell/create2.js';
import { specifiersToTarget } from '../src/cell/extend2.js';
import { RELAY_DATA_OFFSET, RELAY_LENGTH_OFFSET, RELAY_RECOGNIZED_OFFSET, decodeRelayCell, type DecodedRelayCell } from '../src/cell/relay-cell.js';
import { decodeRelayMsg, isCircuitLevel, relayCommandOf, writeRelayMsg, type Extend2, type RelayMsg } from '../src/cell/relay-msg.js';
import { DestroyReason, EndReason } from '../src/cell/reasons.js';
import { CircuitEdge } from '../src/circuit/circuit-edge.js';
import { ChannelRoom } from '../src/circuit/channel-room.js';
import type { HopLayers } from '../src/crypto/onion-layer.js';
import type { Channel } from '../src/link/channel.js';
import { CircuitDestroyedError, DecodeError, ProtocolError } from '../src/errors.js';
import { nextEventId, publish } from '../src/events.js';
import { equalBytes } from '../src/bytes.js';
import { fixedWindows, type FlowControlFactory } from '../src/flow/flow-control.js';
import { returnCellBuffer, takeCellBuffer, type CellBuffer } from './cell-pool.js';
import type { RelayContext } from './relay-context.js';

export type { DirectoryHandler, RelayContext } from './relay-context.js';

const log = debuglog('allium:relay');

/** Where a relay cell's `recognized` field is in its 514-byte channel cell. */
const RECOGNIZED_IN_CELL = CELL_PAYLOAD_OFFSET + RELAY_RECOGNIZED_OFFSET;

/** At most this many RELAY_EARLY cells per circuit, as in Tor. */
const MAX_RELAY_EARLY = 8;
export const EXTEND_TIMEOUT_MS = 15_000;

/** Stream requests: a body that does not decode ends that stream, not the circuit. */
const STREAM_REQUESTS: ReadonlySet<number> = new Set((['begin', 'begin_dir', 'resolve'] as const).map(relayCommandOf));

interface Hop {
  channel: Channel;
  id: number;
  room: ChannelRoom;
}

export class RelayCircuit {
  /** Process-unique number for events (not a wire circuit id). */
  readonly eventId = nextEventId();
  readonly #ctx: RelayContext;
  readonly #prev: Hop;
  #next: Hop | null = null;
  readonly #layers: HopLayers;
  #edge: CircuitEdge | null = null;
  /** The flow control this hop agreed on in its handshake (§7.2). */
  readonly #flow: FlowControlFactory;
  #earlyLeft = MAX_RELAY_EARLY;
  #extending: { timer: NodeJS.Timeout } | null = null;
  #closed = false;
  #destroyReason: number | null = null;
  #relayCellsIn = 0;
  #relayCellsOut = 0;
  /** Links this circuit paused because the link it forwards to is full. */
  readonly #held = new Set<Channel>();
  /** Cells we sealed toward the client, digested but not yet crypted (see sendBackward). */
  #backlog: CellBuffer[] = [];
  #backlogQueued = false;
  /** For flow control's circuit SENDMEs: our forward layer's running digest after the cell being handled. */
  readonly #receivedDigest = (): Uint8Array => this.#layers.forward.lastDigest;

  /** `flow`: what the CREATE2 handshake agreed on; default Tor's fixed windows. */
  constructor(ctx: RelayContext, prevChannel: Channel, prevId: number, layers: HopLayers, flow: FlowControlFactory = fixedWindows) {
    this.#ctx = ctx;
    this.#flow = flow;
    this.#prev = { channel: prevChannel, id: prevId, room: ChannelRoom.of(prevChannel) };
    this.#layers = layers;
    ctx.circuitsOf(prevChannel).set(prevId, { circuit: this, side: 'prev' });
    ctx.stats?.circuitBuilt();
    publish('allium:circuit:built', () => ({ circuitId: this.eventId, role: 'relay', hops: 1 }));
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The DESTROY reason (src/cell/reasons.ts) the circuit ended with; null while open. */
  get destroyReason(): number | null {
    return this.#destroyReason;
  }

  /** Bytes buffered in this hop's streams (0 if it has none); the memory cap's accounting. */
  streamBytes(): number {
    return this.#edge?.bufferedBytes() ?? 0;
  }

  /** Streams open on this hop (0 if it has none); the memory cap's accounting of their state. */
  streamCount(): number {
    return this.#edge?.streamCount ?? 0;
  }

  /** Since when (performance.now() ms) this hop's streams have held bytes without progress; null if none holds any. The memory cap's age. */
  streamHeldSince(): number | null {
    return this.#edge?.heldSince() ?? null;
  }

  /** The stream end of this hop, made on first use (exit and directory streams). */
  get edge(): CircuitEdge {
    if (this.#edge === null) {
      this.#edge = new CircuitEdge(
        {
          send: (streamId, msg) => this.sendBackward(streamId, msg),
          congested: () => this.#prev.room.congested,
          roomCells: () => this.#prev.room.roomCells,
          onRoom: (wake) => this.#prev.room.onRoom(wake),
        },
        {
          circuitId: this.eventId,
          stats: this.#ctx.stats ?? null,
          flow: this.#flow,
          ...(this.#ctx.halfClosedIdleMs !== undefined ? { halfClosedIdleMs: this.#ctx.halfClosedIdleMs } : {}),
        },
      );
    }
    return this.#edge;
  }

  /** A RELAY or RELAY_EARLY cell from the client side. */
  fromPrev(cell: Uint8Array): void {
    this.fromPrevCells([cell]);
  }

  /**
   * RELAY and RELAY_EARLY cells from the client side, in arrival order (one
   * link read): one keystream call takes our layer off all of them, then each
   * is for us (recognized) or passed on, exactly as one fromPrev() per cell
   * would do. A RELAY_EARLY cell over the limit destroys the circuit once the
   * cells before it are handled.
   */
  fromPrevCells(cells: readonly Uint8Array[]): void {
    if (this.#closed) return;
    let count = cells.length;
    for (let i = 0; i < cells.length; i++) {
      if (cellCommand(cells[i]!) === ChannelCommand.RELAY_EARLY && --this.#earlyLeft < 0) {
        count = i;
        break;
      }
    }
    const forward = this.#layers.forward;
    forward.cryptCells(cells, count);
    for (let i = 0; i < count; i++) {
      if (this.#closed) return;
      const cell = cells[i]!;
      this.#relayCellsIn++;
      // Most cells a guard or middle sees are not for it: a nonzero
      // `recognized` says so (openDigest would give null at once) without
      // making a payload view. With no next hop an unrecognized cell ends the
      // circuit, so the check may be final.
      if ((cell[RECOGNIZED_IN_CELL]! | cell[RECOGNIZED_IN_CELL + 1]!) === 0) {
        const payload = cellPayload(cell);
        if (forward.openDigest(payload, this.#next === null) !== null) {
          this.#handleLocal(payload, cellCommand(cell) === ChannelCommand.RELAY_EARLY);
          continue;
        }
      }
      const next = this.#next;
      if (next === null) {
        this.destroy(DestroyReason.PROTOCOL, 'unrecognized relay cell at the last hop');
        return;
      }
      setCellCircuitId(cell, next.id);
      this.#relayCellsOut++;
      next.room.send(cell);
      if (next.room.congested) this.#holdBack(this.#prev.channel, next.room);
    }
    if (count < cells.length && !this.#closed) {
      this.#relayCellsIn++;
      this.destroy(DestroyReason.PROTOCOL, 'too many RELAY_EARLY cells');
    }
  }

  /** A RELAY cell from the next hop: add our layer and pass it back. */
  fromNext(cell: Uint8Array): void {
    this.fromNextCells([cell]);
  }

  /**
   * RELAY cells from the next hop, in arrival order: our cells waiting in
   * the backlog go first, then one keystream call adds our layer to all of
   * these and they are passed back. A RELAY_EARLY cell destroys the circuit
   * once the cells before it are passed on.
   */
  fromNextCells(cells: readonly Uint8Array[]): void {
    if (this.#closed) return;
    let count = cells.length;
    for (let i = 0; i < cells.length; i++) {
      if (cellCommand(cells[i]!) !== ChannelCommand.RELAY) {
        count = i;
        break;
      }
    }
    this.#flushBacklog();
    this.#layers.backward.cryptCells(cells, count);
    const prev = this.#prev;
    for (let i = 0; i < count; i++) {
      const cell = cells[i]!;
      setCellCircuitId(cell, prev.id);
      this.#relayCellsIn++;
      this.#relayCellsOut++;
      prev.room.send(cell);
    }
    if (count > 0 && prev.room.congested && this.#next !== null) this.#holdBack(this.#next.channel, prev.room);
    if (count < cells.length) {
      this.#relayCellsIn++;
      this.destroy(DestroyReason.PROTOCOL, 'RELAY_EARLY travelling backward');
    }
  }

  /** Stop reading `source` until `target` drains; one pending resume per link at a time. */
  #holdBack(source: Channel, target: ChannelRoom): void {
    if (this.#held.has(source)) return;
    this.#held.add(source);
    source.pauseReading();
    target.onRoom(() => {
      this.#held.delete(source);
      source.resumeReading();
    });
  }

  /** CREATED2 from the next hop answers our EXTEND2. */
  fromNextCreated2(payload: Uint8Array): void {
    if (this.#closed) return;
    if (this.#extending === null) {
      this.destroy(DestroyReason.PROTOCOL, 'unexpected CREATED2');
      return;
    }
    clearTimeout(this.#extending.timer);
    this.#extending = null;
    try {
      this.sendBackward(0, { kind: 'extended2', handshakeData: decodeCreated2(payload) });
    } catch (error) {
      this.destroy(DestroyReason.PROTOCOL, (error as Error).message);
    }
  }

  /**
   * Seal a relay message of our own toward the client on stream `streamId`
   * (0: the circuit). Returns our backward layer's running digest after it, in
   * the layer's own array (OnionLayer.sealDigest: valid until its next seal;
   * not to be modified). Throws what writeRelayMsg throws if it cannot be encoded.
   * The cell is built in a pooled buffer and digested now; it waits in the
   * backlog until the end of this turn, so a burst of cells (an exit reading
   * its socket) is crypted with one keystream call.
   */
  sendBackward(streamId: number, msg: RelayMsg): Uint8Array {
    const buffer = takeCellBuffer();
    const { cell, payload } = buffer;
    setCellCircuitId(cell, this.#prev.id);
    cell[CELL_COMMAND_OFFSET] = ChannelCommand.RELAY;
    try {
      writeRelayMsg(payload, streamId, msg);
    } catch (error) {
      returnCellBuffer(buffer);
      throw error;
    }
    // The pooled buffer still holds its last cell: zeros after the body (sealDigest zeroes `recognized` and the digest field).
    const bodyEnd = RELAY_DATA_OFFSET + ((payload[RELAY_LENGTH_OFFSET]! << 8) | payload[RELAY_LENGTH_OFFSET + 1]!);
    if (bodyEnd < payload.length) payload.fill(0, bodyEnd);
    const digest = this.#layers.backward.sealDigest(payload);
    this.#relayCellsOut++;
    this.#backlog.push(buffer);
    if (!this.#backlogQueued) {
      this.#backlogQueued = true;
      queueMicrotask(this.#flushBacklog);
    }
    return digest;
  }

  /** Crypt the backlog (cells we sealed) with one keystream call and queue it on the link toward the client. */
  #flushBacklog = (): void => {
    this.#backlogQueued = false;
    const buffers = this.#backlog;
    if (buffers.length === 0 || this.#closed) return;
    this.#backlog = [];
    const cells: Uint8Array[] = [];
    for (const buffer of buffers) cells.push(buffer.cell);
    this.#layers.backward.cryptCells(cells);
    for (const buffer of buffers) {
      this.#prev.room.send(buffer.cell);
      returnCellBuffer(buffer);
    }
  };

  /**
   * A DESTROY arrived from one side, or that side's link closed: pass it on
   * with the same reason and forget the circuit. Streams here fail with a
   * CircuitDestroyedError carrying `reason`.
   */
  destroyedFrom(side: 'prev' | 'next', reason: number): void {
    if (this.#closed) return;
    this.#flushBacklog();
    const other = side === 'prev' ? this.#next : this.#prev;
    if (other !== null && !other.channel.closed) other.room.send(encodeDestroy(other.id, reason));
    this.#teardown(reason, true, new CircuitDestroyedError(reason, `circuit destroyed from the ${side === 'prev' ? 'client' : 'next hop'} side (reason ${reason})`));
  }

  /** Our own decision to end the circuit: DESTROY both ways with `reason`. */
  destroy(reason: number, why: string): void {
    if (this.#closed) return;
    log('destroying circuit: %s', why);
    this.#flushBacklog();
    for (const hop of [this.#prev, this.#next]) {
      if (hop !== null && !hop.channel.closed) hop.room.send(encodeDestroy(hop.id, reason));
    }
    this.#teardown(reason, false, new CircuitDestroyedError(reason, why));
  }

  #teardown(reason: number, remote: boolean, error: Error): void {
    this.#closed = true;
    this.#destroyReason = reason;
    if (this.#extending !== null) clearTimeout(this.#extending.timer);
    this.#extending = null;
    this.#ctx.circuitsOf(this.#prev.channel).delete(this.#prev.id);
    if (this.#next !== null) this.#ctx.circuitsOf(this.#next.channel).delete(this.#next.id);
    this.#edge?.abortAll(error);
    this.#layers.forward.destroy();
    this.#layers.backward.destroy();
    this.#ctx.stats?.circuitDestroyed();
    publish('allium:circuit:destroyed', () => ({
      circuitId: this.eventId,
      role: 'relay',
      reason,
      remote,
      relayCellsIn: this.#relayCellsIn,
      relayCellsOut: this.#relayCellsOut,
    }));
  }

  #handleLocal(payload: Uint8Array, early: boolean): void {
    try {
      const cell = decodeRelayCell(payload);
      const msg = this.#decode(cell);
      if (msg !== null) this.#dispatch(cell.streamId, msg, early);
    } catch (error) {
      this.destroy(DestroyReason.PROTOCOL, (error as Error).message);
    }
  }

  /**
   * The message in a cell for us, or null when its stream has dealt with it
   * (docs/protocol.md §6.7): a stream request (BEGIN, BEGIN_DIR, RESOLVE)
   * whose body does not decode is refused on its own stream with END
   * TORPROTOCOL; an END or FIN that does not decode goes to its stream
   * (CircuitEdge.handleMalformed). Any other decoding error is the circuit's.
   */
  #decode(cell: DecodedRelayCell): RelayMsg | null {
    try {
      return decodeRelayMsg(cell.command, cell.data);
    } catch (error) {
      if (error instanceof DecodeError && this.edge.handleMalformed(cell.streamId, cell.command, cell.data, this.#receivedDigest)) return null;
      if (!(error instanceof DecodeError) || !STREAM_REQUESTS.has(cell.command)) throw error;
      this.#checkNewStream(cell.streamId, `relay command ${cell.command}`);
      log('malformed stream request refused: %s', error.message);
      this.edge.refuse(cell.streamId, EndReason.TORPROTOCOL);
      return null;
    }
  }

  /** The relay's one dispatch of relay messages addressed to this hop, by kind. */
  #dispatch(streamId: number, msg: RelayMsg, early: boolean): void {
    if (isCircuitLevel(msg) && streamId !== 0) throw new ProtocolError(`${msg.kind} with a stream id`);
    switch (msg.kind) {
      case 'extend2':
        if (!early) throw new ProtocolError('EXTEND2 outside RELAY_EARLY');
        this.#extend(msg);
        return;
      case 'truncate':
        this.#truncate();
        return;
      case 'begin':
        this.#checkNewStream(streamId, 'BEGIN');
        // Exit streams leave at the last hop only: a BEGIN here is that stream's mistake, not the circuit's.
        if (this.#next !== null) this.edge.refuse(streamId, EndReason.TORPROTOCOL);
        else this.#ctx.begin(this, streamId, msg);
        return;
      case 'begin_dir':
        this.#checkNewStream(streamId, 'BEGIN_DIR');
        this.#beginDir(streamId);
        return;
      case 'resolve':
        this.#checkNewStream(streamId, 'RESOLVE');
        if (this.#ctx.resolve !== undefined) this.#ctx.resolve(this, streamId, msg.hostname);
        else this.sendBackward(streamId, { kind: 'resolved', answers: [{ type: 'error', transient: false, ttl: 0 }] });
        return;
      case 'drop':
        return; // long-range padding
      case 'data':
        // DATA is a view into the frame: the stream copies it into its inbox (RelayStream.receiveData).
        this.edge.handle(streamId, msg, this.#receivedDigest);
        return;
      case 'sendme':
      case 'xon':
      case 'xoff':
      case 'end':
      case 'fin':
        this.edge.handle(streamId, msg, this.#receivedDigest);
        return;
      case 'connected':
      case 'extended2':
      case 'truncated':
      case 'resolved':
        throw new ProtocolError(`${msg.kind} travelling forward`);
      case 'unrecognized':
        throw new ProtocolError(`unexpected relay command ${msg.command}`);
    }
  }

  /** A stream request must name a fresh, non-zero stream id; otherwise the circuit is at fault. */
  #checkNewStream(streamId: number, what: string): void {
    if (streamId === 0) throw new ProtocolError(`${what} on stream 0`);
    if (this.edge.hasStream(streamId)) throw new ProtocolError(`${what} for a stream in use`);
  }

  /** BEGIN_DIR at any hop: hand the stream to the directory handler, or refuse with END NOTDIRECTORY. */
  #beginDir(streamId: number): void {
    const handler = this.#ctx.directory;
    if (handler === undefined || handler === null) {
      this.edge.refuse(streamId, EndReason.NOTDIRECTORY);
      return;
    }
    if (this.edge.full) {
      this.edge.refuse(streamId, EndReason.RESOURCELIMIT);
      return;
    }
    const stream = this.edge.addStream(streamId, 'dir');
    stream.on('error', (error: Error) => log('directory stream closed: %s', error.message));
    this.sendBackward(streamId, { kind: 'connected', address: null, ttl: 0 });
    this.edge.opened(stream);
    handler(stream);
  }

  /**
   * TRUNCATE: drop everything after this hop (DESTROY REQUESTED toward the
   * next hop, or abandon a pending extension) and answer TRUNCATED. The
   * circuit lives on, ending here; it may be extended again.
   */
  #truncate(): void {
    if (this.#extending !== null) clearTimeout(this.#extending.timer);
    this.#extending = null;
    const next = this.#next;
    if (next !== null) {
      this.#next = null;
      this.#ctx.circuitsOf(next.channel).delete(next.id);
      if (!next.channel.closed) next.room.send(encodeDestroy(next.id, DestroyReason.REQUESTED));
    }
    this.sendBackward(0, { kind: 'truncated', reason: DestroyReason.REQUESTED });
  }

  #extend(body: Extend2): void {
    if (this.#next !== null || this.#extending !== null) throw new ProtocolError('EXTEND2 on an extended circuit');
    const target = specifiersToTarget(body.specifiers);
    if (equalBytes(target.identity, this.#ctx.identity)) throw new ProtocolError('EXTEND2 to ourselves');
    const timer = setTimeout(() => this.destroy(DestroyReason.TIMEOUT, 'extend timed out'), EXTEND_TIMEOUT_MS);
    const extending = { timer };
    this.#extending = extending;
    const create2 = encodeCreate2({ handshakeType: body.handshakeType, handshakeData: body.handshakeData });
    this.#ctx.connectTo(target).then(
      (channel) => {
        // Closed, or truncated while the link was being opened.
        if (this.#closed || this.#extending !== extending) return;
        const circuits = this.#ctx.circuitsOf(channel);
        const id = circuits.allocate(channel);
        this.#next = { channel, id, room: ChannelRoom.of(channel) };
        circuits.set(id, { circuit: this, side: 'next' });
        this.#next.room.send(encodeChannelCell(id, ChannelCommand.CREATE2, create2));
      },
      (error: Error) => {
        if (this.#extending !== extending) return;
        log('extend failed: %s', error.message);
        this.destroy(DestroyReason.CONNECTFAILED, 'could not reach the next relay');
      },
    );
  }
}

