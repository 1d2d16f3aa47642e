/**
 * The handshake that adds one hop to a client's circuit (docs/protocol.md §5,
 * §6.3): the ntor-v3 onionskin, sent to the guard in CREATE2 or through the
 * last hop in EXTEND2; the CREATED2 or EXTENDED2 reply checked against it;
 * and from the reply the hop's tor1 layers (§5.6) and the flow control the
 * hop agreed on in the handshake's messages (§7.2). A circuit extends hop by
 * hop, so one handshake at most is in flight. The circuit routes the replies
 * here; sealing, sending and the circuit's lifecycle stay in origin-circuit.ts.
 */
import { ChannelCommand, encodeChannelCell } from '../src/cell/channel-cell.js';
import { encodeCreate2 } from '../src/cell/create2.js';
import type { RelayMsg } from '../src/cell/relay-msg.js';
import { DestroyReason } from '../src/cell/reasons.js';
import { HANDSHAKE_TYPE_NTOR_V3, TOR1_KEY_MATERIAL_LENGTH } from '../src/constants.js';
import { ntorV3ClientFinish, ntorV3ClientStart, type NtorV3ClientState } from '../src/crypto/ntor-v3.js';
import { tor1Layers, type HopLayers } from '../src/crypto/onion-layer.js';
import { CIRCUIT_VERIFICATION } from '../src/circuit/handshake-params.js';
import { clientMessage, hopFlow, readServerMessage } from '../src/circuit/cc-negotiation.js';
import type { NetworkParams } from '../src/netdoc/params.js';
import type { FlowControlFactory } from '../src/flow/flow-control.js';
import { CircuitDestroyedError, ProtocolError } from '../src/errors.js';
import { extendSpecifiers, type HopInfo } from './hop-info.js';

/** The reply a hop handshake waits for: CREATED2 from the guard, EXTENDED2 (through the last hop) from each later hop. */
export type HandshakeReply = 'CREATED2' | 'EXTENDED2';

/** What a finished handshake gives the new hop: its two onion layers (§5.6) and the flow control it agreed on (§7.2). */
export interface NewHop {
  layers: HopLayers;
  flow: FlowControlFactory;
}

interface Pending {
  expect: HandshakeReply;
  state: NtorV3ClientState;
  resolve: () => void;
  reject: (error: Error) => void;
}

/** The CREATE2 cell (§2, §5.3) on circuit `circuitId` that carries `onionskin` to the guard. */
export function create2Cell(circuitId: number, onionskin: Uint8Array): Uint8Array {
  const body = encodeCreate2({ handshakeType: HANDSHAKE_TYPE_NTOR_V3, handshakeData: onionskin });
  return encodeChannelCell(circuitId, ChannelCommand.CREATE2, body);
}

/**
 * The EXTEND2 message (§6.3) asking hop `from`, the circuit's last, to extend
 * to `to` with `onionskin`; link specifiers by extendSpecifiers (with
 * `preferIPv6`). It travels in a RELAY_EARLY cell on stream 0.
 */
export function extend2Msg(from: HopInfo, to: HopInfo, preferIPv6: boolean, onionskin: Uint8Array): RelayMsg {
  return {
    kind: 'extend2',
    specifiers: extendSpecifiers(from, to, preferIPv6),
    handshakeType: HANDSHAKE_TYPE_NTOR_V3,
    handshakeData: onionskin,
  };
}

/**
 * A client circuit's hop handshakes, one at a time: start() makes the
 * onionskin for a hop and waits; finish() takes the reply, derives the
 * hop's keys and hands them to `added` (synchronously, so a relay cell
 * right behind an EXTENDED2 can already be recognized by the new hop);
 * abort() fails the handshake in flight when the circuit goes away.
 */
export class HopHandshake {
  readonly #params: NetworkParams;
  readonly #closed: () => boolean;
  readonly #added: (hop: NewHop) => void;
  #pending: Pending | null = null;

  /**
   * @param params the consensus parameters: the client message asks for
   *   congestion control with `cc_alg` 2, and the reply is judged by them (§7.2).
   * @param closed whether the circuit is closed (then start() rejects).
   * @param added takes each new hop's layers and flow control, in hop order.
   */
  constructor(params: NetworkParams, closed: () => boolean, added: (hop: NewHop) => void) {
    this.#params = params;
    this.#closed = closed;
    this.#added = added;
  }

  /** Whether a handshake is in flight (the circuit is adding a hop). */
  get inFlight(): boolean {
    return this.#pending !== null;
  }

  /** Whether the handshake in flight waits for `reply`. */
  awaits(reply: HandshakeReply): boolean {
    return this.#pending?.expect === reply;
  }

  /**
   * Start the handshake with `hop` (ntor-v3, §5.3, with its identity and
   * ntor onion key) and hand the onionskin to `send`, which puts it on the
   * wire (create2Cell or extend2Msg). Resolves once finish() has taken the
   * `expect`ed reply and `added` has the hop. Rejects with what finish()
   * throws for a bad reply, with CircuitDestroyedError (FINISHED) if the
   * circuit is already closed, or with the error given to abort(). Throws
   * what ntorV3ClientStart throws for keys of the wrong length.
   */
  start(hop: HopInfo, expect: HandshakeReply, send: (onionskin: Uint8Array) => void): Promise<void> {
    const message = clientMessage(this.#params);
    const { state, onionskin } = ntorV3ClientStart({ identity: hop.identity, onionKey: hop.ntorOnionKey }, message, CIRCUIT_VERIFICATION);
    return new Promise<void>((resolve, reject) => {
      if (this.#closed()) {
        reject(new CircuitDestroyedError(DestroyReason.FINISHED, 'circuit closed while building'));
        return;
      }
      this.#pending = { expect, state, resolve, reject };
      send(onionskin);
    });
  }

  /**
   * Take a `kind` reply with the handshake data `reply` (§5.5): derive the
   * hop's tor1 key material (72 bytes, §5.6) and read the server message
   * (§7.2), give the hop to `added`, and settle start()'s promise. Throws
   * ProtocolError if no handshake waits for a `kind` reply; HandshakeError
   * (ntor-v3's, or readServerMessage's for a congestion-control answer the
   * client cannot take) or DecodeError for a bad reply, after rejecting
   * start()'s promise with it. The caller destroys the circuit on a throw.
   */
  finish(kind: HandshakeReply, reply: Uint8Array): void {
    const pending = this.#pending;
    if (pending === null || pending.expect !== kind) throw new ProtocolError(`unexpected ${kind}`);
    this.#pending = null;
    try {
      const { keyMaterial, serverMessage } = ntorV3ClientFinish(pending.state, reply, TOR1_KEY_MATERIAL_LENGTH);
      const agreed = readServerMessage(serverMessage, this.#params);
      this.#added({ layers: tor1Layers(keyMaterial), flow: hopFlow(agreed, 'client') });
      pending.resolve();
    } catch (error) {
      // The build fails with the handshake's error; the circuit then destroys itself.
      pending.reject(error as Error);
      throw error;
    }
  }

  /** Fail the handshake in flight, if any, with `error` (the circuit is torn down). */
  abort(error: Error): void {
    this.#pending?.reject(error);
    this.#pending = null;
  }
}
