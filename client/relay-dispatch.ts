/**
 * The client's dispatch of the relay cells its hops send back
 * (docs/protocol.md §6.2-§6.7): after BackwardPeel has found the hop that
 * recognized a cell, its message is decoded and handed, by command, to
 * whoever waits for it: EXTENDED2 to the hop handshake, CONNECTED, a
 * refusing END and RESOLVED to the stream requests (StreamRequests), stream
 * and flow messages (DATA, SENDME, XON, XOFF, END, FIN) to the hop's edge.
 * Anything the client did not ask for, a message out of place, or one no
 * hop should send backward throws ProtocolError, and OriginCircuit
 * (origin-circuit.ts) destroys the circuit; what is wrong for one stream
 * only ends that stream (§6.7).
 */
import { relayCellCommand, relayCellData, relayCellStreamId } from '../src/cell/relay-cell.js';
import { decodeRelayMsg, isCircuitLevel, relayCommandOf, type RelayMsg } from '../src/cell/relay-msg.js';
import { endReasonOf } from '../src/cell/stream-messages.js';
import type { CircuitEdge } from '../src/circuit/circuit-edge.js';
import type { HopLayers } from '../src/crypto/onion-layer.js';
import { DecodeError, ProtocolError } from '../src/errors.js';
import type { HopHandshake } from './hop-handshake.js';
import type { PendingResolve, PendingStream, StreamRequests } from './stream-requests.js';

const CONNECTED_COMMAND = relayCommandOf('connected');
const END_COMMAND = relayCommandOf('end');
const FIN_COMMAND = relayCommandOf('fin');

export class RelayDispatch {
  readonly #hops: readonly HopLayers[];
  readonly #edges: ReadonlyArray<CircuitEdge | undefined>;
  readonly #handshake: HopHandshake;
  readonly #requests: StreamRequests;
  /** The requests' maps, read on the cell path. */
  readonly #connecting: ReadonlyMap<number, PendingStream>;
  readonly #resolving: ReadonlyMap<number, PendingResolve>;
  readonly #receivedDigest: () => Uint8Array;

  /**
   * All live, owned by the circuit: `hops` its hop layers (guard first; only
   * their number is read), `edges` its edge per hop (undefined for a hop
   * never used), `handshake` the one adding the next hop, `requests` the
   * stream requests waiting for an answer, `receivedDigest` a copy of the
   * recognizing hop's backward running digest after the cell being
   * dispatched (BackwardPeel.receivedDigest), for the circuit SENDMEs of
   * flow control.
   */
  constructor(
    hops: readonly HopLayers[],
    edges: ReadonlyArray<CircuitEdge | undefined>,
    handshake: HopHandshake,
    requests: StreamRequests,
    receivedDigest: () => Uint8Array,
  ) {
    this.#hops = hops;
    this.#edges = edges;
    this.#handshake = handshake;
    this.#requests = requests;
    this.#connecting = requests.connecting;
    this.#resolving = requests.resolving;
    this.#receivedDigest = receivedDigest;
  }

  /**
   * Dispatch the relay cell `payload` (its 509 bytes, backward layers off)
   * that hop `hop` (0 = guard) recognized; the body is a view, copied by
   * whoever keeps it. Throws ProtocolError for anything the client did not
   * ask for (a command out of place, a circuit-level message with a stream
   * id, any message but EXTENDED2 or DROP while a hop is being added, a
   * command that travels only forward, a stream message from a hop with no
   * streams), DecodeError for a body that does not decode (except as
   * #decode says), and what the edge, the handshake or the requests throw.
   */
  dispatch(hop: number, payload: Uint8Array): void {
    // The fields one by one: a per-cell path makes no message object for the cell (the body is a view).
    const data = relayCellData(payload);
    const command = relayCellCommand(payload);
    const streamId = relayCellStreamId(payload);
    const msg = this.#decode(hop, command, streamId, data);
    if (msg === null) return;
    if (isCircuitLevel(msg) && streamId !== 0) throw new ProtocolError(`${msg.kind} with a stream id`);
    if (this.#handshake.inFlight && msg.kind !== 'extended2' && msg.kind !== 'drop') {
      throw new ProtocolError(`${msg.kind} from hop ${hop + 1} while building`);
    }
    switch (msg.kind) {
      case 'extended2':
        if (hop !== this.#hops.length - 1 || !this.#handshake.awaits('EXTENDED2')) throw new ProtocolError(`unexpected EXTENDED2 from hop ${hop + 1}`);
        this.#handshake.finish('EXTENDED2', msg.handshakeData);
        return;
      case 'drop':
        return; // long-range padding
      case 'connected':
        this.#requests.connected(streamId, hop, msg.flags);
        return;
      case 'end': {
        // An answer to a request (a refused RESOLVE or stream), or the end of an open stream.
        const lastHop = hop === this.#hops.length - 1;
        if (this.#requests.refused(streamId, hop, lastHop, msg.reason, (error) => this.#edges[hop]?.getStream(streamId)?.abort(error))) return;
        this.#edgeFor(hop).handle(streamId, msg, this.#receivedDigest);
        return;
      }
      case 'data':
      case 'sendme':
      case 'xon':
      case 'xoff':
      case 'fin': {
        const pending = this.#connecting.get(streamId);
        // Before CONNECTED the hop may send no DATA or FIN on the stream. Flow messages are in order: a stream
        // SENDME (fixed windows) acknowledges optimistic data (§6.4) the exit has taken in while connecting, and
        // on a congestion-controlled hop an XOFF/XON may pace that data (§7.4).
        if (pending !== undefined && pending.hop === hop && (msg.kind === 'data' || msg.kind === 'fin')) {
          // DATA still counts against the circuit window.
          if (msg.kind === 'data') this.#edgeFor(hop).handle(streamId, msg, this.#receivedDigest);
          this.#requests.fail(streamId, pending, `${msg.kind.toUpperCase()} before CONNECTED`);
          return;
        }
        // DATA is a view into the frame: the stream copies it into its inbox (RelayStream.receiveData).
        this.#edgeFor(hop).handle(streamId, msg, this.#receivedDigest);
        return;
      }
      case 'begin':
      case 'begin_dir':
      case 'extend2':
      case 'truncate':
      case 'resolve':
        throw new ProtocolError(`${msg.kind} travelling backward`);
      case 'resolved':
        this.#requests.resolved(streamId, hop, hop === this.#hops.length - 1, msg.answers);
        return;
      case 'truncated':
        // We never send TRUNCATE.
        throw new ProtocolError(`unexpected ${msg.kind} from hop ${hop + 1}`);
      case 'unrecognized':
        throw new ProtocolError(`unexpected relay command ${msg.command} from hop ${hop + 1}`);
    }
  }

  /**
   * The message of a cell from `hop`, or null when it was dealt with at the
   * stream (docs/protocol.md §6.7): a CONNECTED that does not decode fails
   * only the stream waiting for it (END TORPROTOCOL); an END or FIN that does
   * not decode goes to its stream (CircuitEdge.handleMalformed; an END
   * still ends a stream waiting for CONNECTED). Any other decoding error is
   * the circuit's.
   */
  #decode(hop: number, command: number, streamId: number, data: Uint8Array): RelayMsg | null {
    try {
      return decodeRelayMsg(command, data);
    } catch (error) {
      if (!(error instanceof DecodeError)) throw error;
      const pending = this.#connecting.get(streamId);
      if (pending !== undefined && pending.hop === hop) {
        if (command === END_COMMAND) return { kind: 'end', reason: endReasonOf(data) };
        if (command === CONNECTED_COMMAND || command === FIN_COMMAND) {
          this.#requests.fail(streamId, pending, `malformed relay command ${command} (${error.message})`);
          return null;
        }
      }
      // A RESOLVE still waiting for its answer is ended by an END, however malformed (the 'end' case rejects it).
      if (command === END_COMMAND && hop === this.#hops.length - 1 && this.#resolving.has(streamId)) return { kind: 'end', reason: endReasonOf(data) };
      if ((command === END_COMMAND || command === FIN_COMMAND) && this.#edgeFor(hop).handleMalformed(streamId, command, data, this.#receivedDigest)) return null;
      throw error;
    }
  }

  /** The edge of `hop` for a stream or flow message; a hop we never used has nothing to say. */
  #edgeFor(hop: number): CircuitEdge {
    const edge = this.#edges[hop];
    if (edge === undefined) throw new ProtocolError(`stream message from hop ${hop + 1}, which has no streams`);
    return edge;
  }
}
