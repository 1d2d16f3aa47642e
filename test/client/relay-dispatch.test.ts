/**
 * The client's dispatch of backward relay cells (client/relay-dispatch.ts;
 * docs/protocol.md §6.2-§6.7), with the real pieces of a circuit: hop
 * layers, a recording edge per hop (test/support/edge-pair.ts lone()), the
 * stream requests and the hop handshake against a relay's side of ntor-v3.
 * Answers reach the request that waits for them; what is wrong for one
 * stream ends that stream; what the client did not ask for is a
 * ProtocolError (the circuit then destroys itself).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RelayCommand, encodeRelayCell } from '../../src/cell/relay-cell.js';
import { encodeExtended2 } from '../../src/cell/extend2.js';
import { EndReason } from '../../src/cell/reasons.js';
import { BeginFlag, encodeBegin, encodeConnected, encodeEnd, encodeResolved } from '../../src/cell/stream-messages.js';
import type { CircuitEdge } from '../../src/circuit/circuit-edge.js';
import { answerClientMessage } from '../../src/circuit/cc-negotiation.js';
import { CIRCUIT_VERIFICATION } from '../../src/circuit/handshake-params.js';
import { TOR1_KEY_MATERIAL_LENGTH } from '../../src/constants.js';
import { crypto } from '../../src/crypto/crypto.js';
import { ntorV3ServerHandshake } from '../../src/crypto/ntor-v3.js';
import { tor1Layers, type HopLayers } from '../../src/crypto/onion-layer.js';
import { ProtocolError, StreamEndedError } from '../../src/errors.js';
import { DEFAULT_NETWORK_PARAMS } from '../../src/netdoc/params.js';
import { HopHandshake } from '../../client/hop-handshake.js';
import type { HopInfo } from '../../client/hop-info.js';
import { RelayDispatch } from '../../client/relay-dispatch.js';
import { StreamRequests } from '../../client/stream-requests.js';
import type { RelayStream } from '../../src/stream/relay-stream.js';
import { lone, type Recorder } from '../support/edge-pair.js';

/** A client circuit's parts with `hops` hops built, an edge on each, and its dispatcher. */
function circuit(hops: number) {
  const layers: HopLayers[] = [];
  const edges: Array<CircuitEdge | undefined> = [];
  const recorders: Recorder[] = [];
  for (let i = 0; i < hops; i++) {
    layers.push(tor1Layers(crypto.randomBytes(TOR1_KEY_MATERIAL_LENGTH)));
    const r = lone();
    recorders.push(r);
    edges.push(r.edge);
  }
  const handshake = new HopHandshake(DEFAULT_NETWORK_PARAMS, () => false, (hop) => layers.push(hop.layers));
  const requests = new StreamRequests();
  const dispatch = new RelayDispatch(layers, edges, handshake, requests, () => new Uint8Array(20));
  return { layers, edges, recorders, handshake, requests, dispatch };
}

/** Stream `id` on `edge`, its errors taken (as OriginCircuit takes them). */
function addStream(edge: CircuitEdge, id: number): RelayStream {
  const stream = edge.addStream(id);
  stream.on('error', () => {});
  return stream;
}

const cell = (command: number, streamId: number, data: Uint8Array = new Uint8Array(0)) => encodeRelayCell({ command, streamId, data });

test('CONNECTED settles the stream asked of that hop (half-close if both asked); from another hop, or twice, it is a ProtocolError', async () => {
  const c = circuit(3);
  const stream = addStream(c.edges[2]!, 5);
  const opened = c.requests.awaitConnected(5, 2, stream, true, 10_000, () => {});
  assert.throws(() => c.dispatch.dispatch(1, cell(RelayCommand.CONNECTED, 5, encodeConnected(null))), ProtocolError);
  c.dispatch.dispatch(2, cell(RelayCommand.CONNECTED, 5, encodeConnected('192.0.2.1', 300, BeginFlag.HALF_CLOSE)));
  await opened;
  assert.equal(stream.halfClose, true);
  assert.throws(() => c.dispatch.dispatch(2, cell(RelayCommand.CONNECTED, 5, encodeConnected(null))), ProtocolError);
  // The open stream's DATA goes to its edge.
  c.dispatch.dispatch(2, cell(RelayCommand.DATA, 5, new Uint8Array([1, 2, 3])));
  assert.equal(stream.bufferedBytes, 3);
});

test('DATA or FIN before CONNECTED, or a CONNECTED that does not decode, fails only that stream: END TORPROTOCOL and its opener rejects', async () => {
  for (const [command, data] of [
    [RelayCommand.DATA, new Uint8Array([1])],
    [RelayCommand.FIN, new Uint8Array(0)],
    [RelayCommand.CONNECTED, new Uint8Array([1, 2, 3])],
  ] as const) {
    const c = circuit(3);
    const stream = addStream(c.edges[2]!, 7);
    const opened = c.requests.awaitConnected(7, 2, stream, false, 10_000, () => {});
    c.dispatch.dispatch(2, cell(command, 7, data));
    await assert.rejects(opened, (e) => e instanceof StreamEndedError && e.reason === EndReason.TORPROTOCOL);
    assert.equal(c.requests.has(7), false);
    const end = c.recorders[2]!.sent.find((s) => s.command === RelayCommand.END && s.streamId === 7);
    assert.ok(end !== undefined, `END sent for command ${command}`);
    assert.equal(end.data[0], EndReason.TORPROTOCOL);
  }
});

test('END refuses a waiting stream or RESOLVE with its reason; RESOLVED answers the RESOLVE of the last hop only', async () => {
  const c = circuit(3);
  const stream = addStream(c.edges[1]!, 9);
  const opened = c.requests.awaitConnected(9, 1, stream, false, 10_000, () => {});
  c.dispatch.dispatch(1, cell(RelayCommand.END, 9, encodeEnd(EndReason.EXITPOLICY)));
  await assert.rejects(opened, (e) => e instanceof StreamEndedError && e.reason === EndReason.EXITPOLICY);
  assert.equal(c.edges[1]!.hasStream(9), false);

  const refused = c.requests.awaitResolved(11, 10_000, () => {});
  c.dispatch.dispatch(2, cell(RelayCommand.END, 11, encodeEnd(EndReason.RESOLVEFAILED)));
  await assert.rejects(refused, (e) => e instanceof StreamEndedError && e.reason === EndReason.RESOLVEFAILED);

  const answers = [{ type: 'ipv4', address: '192.0.2.1', ttl: 60 }] as const;
  const resolved = c.requests.awaitResolved(12, 10_000, () => {});
  assert.throws(() => c.dispatch.dispatch(1, cell(RelayCommand.RESOLVED, 12, encodeResolved(answers))), ProtocolError);
  c.dispatch.dispatch(2, cell(RelayCommand.RESOLVED, 12, encodeResolved(answers)));
  assert.deepEqual(await resolved, answers);
});

test('what the client did not ask for is a ProtocolError; DROP is ignored', () => {
  const c = circuit(3);
  c.dispatch.dispatch(1, cell(RelayCommand.DROP, 0));
  for (const [hop, payload] of [
    [2, cell(RelayCommand.DROP, 4)], // circuit-level, with a stream id
    [2, cell(RelayCommand.BEGIN, 4, encodeBegin({ host: 'example.com', port: 80, flags: 0 }))], // travels forward only
    [2, cell(RelayCommand.TRUNCATED, 0, new Uint8Array([0]))], // we never send TRUNCATE
    [2, cell(RelayCommand.EXTENDED2, 0, encodeExtended2(new Uint8Array(64)))], // no hop being added
    [2, cell(RelayCommand.DATA, 4, new Uint8Array([1]))], // no such stream
    [2, cell(99, 0)], // unknown command
  ] as const) {
    assert.throws(() => c.dispatch.dispatch(hop, payload), ProtocolError);
  }
  // A hop never used for streams has no edge and nothing to say.
  c.edges[0] = undefined;
  assert.throws(() => c.dispatch.dispatch(0, cell(RelayCommand.SENDME, 0)), /no streams/);
});

test('while a hop is being added only EXTENDED2 from the last hop and DROP are taken; EXTENDED2 adds the hop', async () => {
  const c = circuit(2);
  const onionSecret = crypto.randomBytes(32);
  const secret = { identity: crypto.ed25519PublicKey(crypto.randomBytes(32)), onionKey: crypto.x25519PublicKey(onionSecret), onionSecret };
  const info: HopInfo = { nickname: 'x', identity: secret.identity, linkKey: crypto.randomBytes(32), ntorOnionKey: secret.onionKey, address: '10.0.0.3', orPort: 9001 };
  let onionskin: Uint8Array | undefined;
  const added = c.handshake.start(info, 'EXTENDED2', (o) => (onionskin = o));
  const server = ntorV3ServerHandshake(secret, onionskin!, CIRCUIT_VERIFICATION, (cm) => answerClientMessage(cm, DEFAULT_NETWORK_PARAMS).serverMessage, TOR1_KEY_MATERIAL_LENGTH);
  const extended2 = cell(RelayCommand.EXTENDED2, 0, encodeExtended2(server.reply));
  c.dispatch.dispatch(1, cell(RelayCommand.DROP, 0));
  assert.throws(() => c.dispatch.dispatch(1, cell(RelayCommand.SENDME, 0)), /while building/);
  assert.throws(() => c.dispatch.dispatch(0, extended2), /unexpected EXTENDED2/);
  c.dispatch.dispatch(1, extended2);
  await added;
  assert.equal(c.layers.length, 3);
  assert.equal(c.handshake.inFlight, false);
});
