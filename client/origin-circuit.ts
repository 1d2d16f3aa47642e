/**
 * A circuit as its originator sees it (docs/protocol.md §5-§7): the link to
 * the guard, the circuit id, and per hop the two onion layers. Builds itself
 * hop by hop (CREATE2, then EXTEND2 in RELAY_EARLY), opens streams at the last
 * hop, and tears itself down on anything unexpected: a cell no hop
 * recognizes, a command out of place, a bad SENDME.
 */
import { debuglog } from 'node:util';
import { ChannelCommand, encodeChannelCell, encodeDestroy } from '../src/cell/channel-cell.js';
import { decodeCreated2, encodeCreate2 } from '../src/cell/create2.js';
import { decodeExtended2, encodeExtend2, targetToSpecifiers } from '../src/cell/extend2.js';
import { RelayCommand, decodeRelayCell, writeRelayCell } from '../src/cell/relay-cell.js';
import { DestroyReason, EndReason } from '../src/cell/reasons.js';
import { encodeBegin } from '../src/cell/stream-messages.js';
import { HANDSHAKE_TYPE_NTOR_V3, TOR1_KEY_MATERIAL_LENGTH } from '../src/constants.js';
import { ntorV3ClientFinish, ntorV3ClientStart, type NtorV3ClientState } from '../src/crypto/ntor-v3.js';
import { tor1Layers, type HopLayers } from '../src/crypto/onion-layer.js';
import { CIRCUIT_VERIFICATION, EMPTY_NTOR_MESSAGE } from '../src/circuit/handshake-params.js';
import { CircuitEdge } from '../src/circuit/circuit-edge.js';
import { ChannelRoom } from '../src/circuit/channel-room.js';
import type { ChannelCircuits } from '../src/circuit/circuit-ids.js';
import type { RelayStream } from '../src/stream/relay-stream.js';
import type { Channel } from '../src/link/channel.js';
import { AlliumError, CircuitDestroyedError, ProtocolError, StreamEndedError } from '../src/errors.js';

const log = debuglog('allium:client');

/** What the client knows about a relay from the consensus. */
export interface HopInfo {
  nickname: string;
  identity: Uint8Array;
  linkKey: Uint8Array;
  ntorOnionKey: Uint8Array;
  address: string;
  orPort: number;
}

interface Pending {
  expect: 'CREATED2' | 'EXTENDED2';
  state: NtorV3ClientState;
  resolve: (layers: HopLayers) => void;
  reject: (error: Error) => void;
}

interface PendingStream {
  resolve: () => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

export class OriginCircuit {
  readonly id: number;
  readonly path: readonly HopInfo[];
  readonly #channel: Channel;
  readonly #room: ChannelRoom;
  readonly #circuits: ChannelCircuits<OriginCircuit>;
  readonly #hops: HopLayers[] = [];
  readonly #edge: CircuitEdge;
  readonly #connecting = new Map<number, PendingStream>();
  #pending: Pending | null = null;
  #nextStreamId = 1;
  #closed = false;
  #onClose: Array<(error: Error) => void> = [];

  private constructor(channel: Channel, circuits: ChannelCircuits<OriginCircuit>, path: HopInfo[]) {
    this.#channel = channel;
    this.#room = ChannelRoom.of(channel);
    this.#circuits = circuits;
    this.path = path;
    this.id = circuits.allocate(channel);
    circuits.set(this.id, { circuit: this, side: 'next' });
    this.#edge = new CircuitEdge({
      send: (command, streamId, data) => this.#send(this.#hops.length - 1, command, streamId, data),
      congested: () => this.#room.congested,
      onRoom: (wake) => this.#room.onRoom(wake),
    });
  }

  /** Build a circuit through `path` (guard first) over `channel`, a link to path[0]. */
  static async build(channel: Channel, circuits: ChannelCircuits<OriginCircuit>, path: HopInfo[], timeoutMs: number): Promise<OriginCircuit> {
    const circuit = new OriginCircuit(channel, circuits, path);
    const timer = setTimeout(() => circuit.destroy(DestroyReason.TIMEOUT, 'circuit build timed out'), timeoutMs);
    try {
      await circuit.#create(path[0]!);
      for (let i = 1; i < path.length; i++) await circuit.#extend(path[i]!);
      return circuit;
    } catch (error) {
      circuit.destroy(DestroyReason.FINISHED, 'build failed');
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  get closed(): boolean {
    return this.#closed;
  }

  get streamCount(): number {
    return this.#edge.streamCount;
  }

  get exit(): HopInfo {
    return this.path[this.path.length - 1]!;
  }

  onClose(listener: (error: Error) => void): void {
    this.#onClose.push(listener);
  }

  /** Open a stream to host:port at the exit; resolves once the exit says CONNECTED. */
  async openStream(host: string, port: number, timeoutMs: number): Promise<RelayStream> {
    if (this.#closed) throw new CircuitDestroyedError(DestroyReason.FINISHED, 'circuit is closed');
    const streamId = this.#allocateStreamId();
    const stream = this.#edge.addStream(streamId);
    stream.on('error', (error: Error) => log('stream closed: %s', error.message));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#connecting.delete(streamId);
        stream.destroy();
        reject(new AlliumError('ERR_TIMEOUT', 'stream did not connect in time'));
      }, timeoutMs);
      this.#connecting.set(streamId, { resolve, reject, timer });
      this.#send(this.#hops.length - 1, RelayCommand.BEGIN, streamId, encodeBegin({ host, port, flags: 0 }));
    });
    return stream;
  }

  /** Handle a cell from the link for this circuit. */
  receive(cell: Uint8Array): void {
    if (this.#closed) return;
    try {
      switch (cell[4]) {
        case ChannelCommand.RELAY:
          this.#receiveRelay(cell.subarray(5));
          return;
        case ChannelCommand.CREATED2:
          this.#finishHandshake('CREATED2', decodeCreated2(cell.subarray(5)));
          return;
        case ChannelCommand.DESTROY:
          this.#teardown(new CircuitDestroyedError(cell[5]!, `circuit destroyed by the network (reason ${cell[5]})`));
          return;
        default:
          throw new ProtocolError(`unexpected cell command ${cell[4]}`);
      }
    } catch (error) {
      this.destroy(DestroyReason.PROTOCOL, (error as Error).message);
    }
  }

  /** The link under the circuit closed. */
  linkClosed(): void {
    this.#teardown(new CircuitDestroyedError(DestroyReason.CHANNEL_CLOSED, 'link to the guard closed'));
  }

  destroy(reason: number, why: string): void {
    if (this.#closed) return;
    log('destroying circuit: %s', why);
    if (!this.#channel.closed) this.#room.send(encodeDestroy(this.id, reason));
    this.#teardown(new CircuitDestroyedError(reason, why));
  }

  // ---- building ----

  #create(hop: HopInfo): Promise<void> {
    return this.#handshake(hop, 'CREATED2', (onionskin) => {
      const body = encodeCreate2({ handshakeType: HANDSHAKE_TYPE_NTOR_V3, handshakeData: onionskin });
      this.#room.send(encodeChannelCell(this.id, ChannelCommand.CREATE2, body));
    });
  }

  #extend(hop: HopInfo): Promise<void> {
    return this.#handshake(hop, 'EXTENDED2', (onionskin) => {
      const body = encodeExtend2({
        specifiers: targetToSpecifiers({ address: hop.address, port: hop.orPort, identity: hop.identity, linkKey: hop.linkKey }),
        handshakeType: HANDSHAKE_TYPE_NTOR_V3,
        handshakeData: onionskin,
      });
      this.#send(this.#hops.length - 1, RelayCommand.EXTEND2, 0, body, ChannelCommand.RELAY_EARLY);
    });
  }

  #handshake(hop: HopInfo, expect: Pending['expect'], send: (onionskin: Uint8Array) => void): Promise<void> {
    const { state, onionskin } = ntorV3ClientStart({ identity: hop.identity, onionKey: hop.ntorOnionKey }, EMPTY_NTOR_MESSAGE, CIRCUIT_VERIFICATION);
    return new Promise<void>((resolve, reject) => {
      if (this.#closed) {
        reject(new CircuitDestroyedError(DestroyReason.FINISHED, 'circuit closed while building'));
        return;
      }
      this.#pending = {
        expect,
        state,
        resolve: (layers) => {
          this.#hops.push(layers);
          resolve();
        },
        reject,
      };
      send(onionskin);
    });
  }

  #finishHandshake(kind: Pending['expect'], reply: Uint8Array): void {
    const pending = this.#pending;
    if (pending === null || pending.expect !== kind) throw new ProtocolError(`unexpected ${kind}`);
    this.#pending = null;
    const { keyMaterial } = ntorV3ClientFinish(pending.state, reply, TOR1_KEY_MATERIAL_LENGTH);
    pending.resolve(tor1Layers(keyMaterial));
  }

  // ---- relay cells ----

  #send(hop: number, command: number, streamId: number, data: Uint8Array, channelCommand: number = ChannelCommand.RELAY): Uint8Array {
    const cell = encodeChannelCell(this.id, channelCommand);
    const payload = cell.subarray(5);
    writeRelayCell(payload, { command, streamId, data });
    const target = this.#hops[hop]!;
    target.forward.seal(payload);
    for (let i = hop - 1; i >= 0; i--) this.#hops[i]!.forward.crypt(payload);
    this.#room.send(cell);
    return target.forward.lastDigest;
  }

  #receiveRelay(payload: Uint8Array): void {
    for (let i = 0; i < this.#hops.length; i++) {
      const layer = this.#hops[i]!.backward;
      layer.crypt(payload);
      if (layer.open(payload)) {
        this.#dispatch(i, payload);
        return;
      }
    }
    throw new ProtocolError('relay cell recognized by no hop');
  }

  #dispatch(hop: number, payload: Uint8Array): void {
    const { command, streamId, data } = decodeRelayCell(payload);
    const last = this.#hops.length - 1;
    if (command === RelayCommand.EXTENDED2 && hop === last && this.#pending?.expect === 'EXTENDED2') {
      this.#finishHandshake('EXTENDED2', decodeExtended2(data));
      return;
    }
    if (command === RelayCommand.DROP) return;
    if (hop !== last || this.#pending !== null) throw new ProtocolError(`relay command ${command} from hop ${hop + 1}`);
    if (command === RelayCommand.CONNECTED) {
      const pending = this.#connecting.get(streamId);
      if (pending === undefined) throw new ProtocolError(`CONNECTED for stream ${streamId}`);
      this.#connecting.delete(streamId);
      clearTimeout(pending.timer);
      pending.resolve();
      return;
    }
    if (command === RelayCommand.END) {
      const pending = this.#connecting.get(streamId);
      if (pending !== undefined) {
        this.#connecting.delete(streamId);
        clearTimeout(pending.timer);
        const reason = data.length > 0 ? data[0]! : EndReason.MISC;
        this.#edge.getStream(streamId)?.abort(new StreamEndedError(reason, 'stream refused'));
        pending.reject(new StreamEndedError(reason, `stream refused by the exit (reason ${reason})`));
        return;
      }
    }
    if (!this.#edge.handle(command, streamId, data, () => this.#hops[last]!.backward.lastDigest)) {
      throw new ProtocolError(`unexpected relay command ${command}`);
    }
  }

  #allocateStreamId(): number {
    for (let tries = 0; tries < 0xffff; tries++) {
      const id = this.#nextStreamId;
      this.#nextStreamId = id >= 0xffff ? 1 : id + 1;
      if (!this.#edge.hasStream(id)) return id;
    }
    throw new AlliumError('ERR_RESOURCE_LIMIT', 'no free stream id');
  }

  #teardown(error: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#circuits.delete(this.id);
    this.#pending?.reject(error);
    this.#pending = null;
    for (const pending of this.#connecting.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.#connecting.clear();
    this.#edge.abortAll(error);
    for (const hop of this.#hops) {
      hop.forward.destroy();
      hop.backward.destroy();
    }
    for (const listener of this.#onClose) listener(error);
  }
}
