/**
 * Agreeing on congestion control for one circuit hop in its ntor-v3
 * handshake (docs/protocol.md §7.2; Tor proposal 324 §10), with Tor's
 * extension types in the client and server messages (§5.7):
 *
 *   client → relay   type 1 "CC request", empty body: the client wants congestion control.
 *   relay → client   type 2 "CC response", body sendme_inc (1 byte): agreed, SENDMEs every sendme_inc cells.
 *
 * The client asks when its consensus says `cc_alg` 2; a relay answers when
 * its own parameters say `cc_alg` 2, with its `cc_sendme_inc`. The client
 * accepts a sendme_inc within 1 of its consensus value (as Tor does) and
 * fails the handshake otherwise, or on a response it did not ask for. Without
 * both, the hop keeps Tor's fixed windows. Unknown extension types are ignored;
 * only the first of each type counts.
 */
import { decodeNtorExtensions, encodeNtorExtensions, type NtorExtension } from '../cell/ntor-extensions.js';
import { HandshakeError } from '../errors.js';
import { CC_ALG_VEGAS, congestionParams, type CongestionParams } from '../flow/cc-params.js';
import { fixedWindows, type FlowControlFactory } from '../flow/flow-control.js';
import { VegasCircuit } from '../flow/vegas.js';
import { XonXoffStream, type StreamSide } from '../flow/xon-xoff.js';
import type { NetworkParams } from '../netdoc/params.js';
import { EMPTY_NTOR_MESSAGE } from './handshake-params.js';

/** Tor's ntor-v3 extension types for congestion control. */
export const NtorExtensionType = { CC_REQUEST: 1, CC_RESPONSE: 2 } as const;

/** The client message that asks for congestion control. */
const CC_REQUEST_MESSAGE = encodeNtorExtensions([{ type: NtorExtensionType.CC_REQUEST, body: new Uint8Array(0) }]);

/** What a hop agreed on: congestion control with these settings, or null for fixed windows. */
export type HopCongestion = CongestionParams | null;

/** Vegas per hop and XON/XOFF per stream, for one end (`side`) of a congestion-controlled hop. */
export function congestionControlFlow(params: CongestionParams, side: StreamSide): FlowControlFactory {
  return {
    circuit: () => new VegasCircuit(params),
    stream: () => new XonXoffStream(side, params),
  };
}

/** The flow control for a hop that agreed on `agreed` (null: fixed windows). */
export function hopFlow(agreed: HopCongestion, side: StreamSide): FlowControlFactory {
  return agreed === null ? fixedWindows : congestionControlFlow(agreed, side);
}

/** Client: the ntor-v3 client message for a new hop under the consensus parameters `params`. */
export function clientMessage(params: NetworkParams): Uint8Array {
  return params.cc_alg === CC_ALG_VEGAS ? CC_REQUEST_MESSAGE : EMPTY_NTOR_MESSAGE;
}

function first(list: NtorExtension[], type: number): NtorExtension | undefined {
  return list.find((e) => e.type === type);
}

/**
 * Relay: answer the (MAC-verified) client message `cm` under the relay's own
 * parameters. Returns the server message and what the hop agreed on.
 * Throws DecodeError if `cm` is not an extension list (the handshake fails, §5.8).
 */
export function answerClientMessage(cm: Uint8Array, own: NetworkParams): { serverMessage: Uint8Array; agreed: HopCongestion } {
  const requested = first(decodeNtorExtensions(cm), NtorExtensionType.CC_REQUEST) !== undefined;
  if (!requested || own.cc_alg !== CC_ALG_VEGAS) return { serverMessage: EMPTY_NTOR_MESSAGE, agreed: null };
  const sendmeInc = own.cc_sendme_inc;
  return {
    serverMessage: encodeNtorExtensions([{ type: NtorExtensionType.CC_RESPONSE, body: Uint8Array.of(sendmeInc) }]),
    agreed: congestionParams(own, sendmeInc),
  };
}

/**
 * Client: read the server message `sm` of a hop whose client message was
 * `clientMessage(params)`. Returns what the hop agreed on. Throws
 * HandshakeError for a response we did not ask for, an empty or longer
 * response body, or a sendme_inc of 0 or more than 1 away from the
 * consensus's; DecodeError if `sm` is not an extension list.
 */
export function readServerMessage(sm: Uint8Array, params: NetworkParams): HopCongestion {
  const response = first(decodeNtorExtensions(sm), NtorExtensionType.CC_RESPONSE);
  if (response === undefined) return null;
  if (params.cc_alg !== CC_ALG_VEGAS) throw new HandshakeError('congestion-control response to a handshake that did not ask for it');
  if (response.body.length !== 1) throw new HandshakeError(`congestion-control response of ${response.body.length} bytes`);
  const sendmeInc = response.body[0]!;
  if (sendmeInc === 0 || Math.abs(sendmeInc - params.cc_sendme_inc) > 1) {
    throw new HandshakeError(`congestion-control sendme_inc ${sendmeInc} is not within 1 of the consensus's ${params.cc_sendme_inc}`);
  }
  return congestionParams(params, sendmeInc);
}
