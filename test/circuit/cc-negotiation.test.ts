/**
 * Agreeing on congestion control per hop in the ntor-v3 handshake
 * (docs/protocol.md §5.7, §7.2): the extension bytes Tor uses, what a relay
 * answers under its own cc_alg, what a client accepts, and, over real Noise
 * links in memory, that a relay without congestion control keeps fixed
 * windows on its hop while the others run Vegas, that a client with cc_alg=0
 * never asks, and that a congestion-controlled stream whose reader stalls is
 * stopped by XOFF and resumed by XON with every byte intact.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { answerClientMessage, clientMessage, readServerMessage } from '../../src/circuit/cc-negotiation.js';
import { hex } from '../../src/bytes.js';
import { crypto } from '../../src/crypto/crypto.js';
import { DecodeError, HandshakeError } from '../../src/errors.js';
import { DEFAULT_NETWORK_PARAMS, type NetworkParams } from '../../src/netdoc/params.js';
import { subscribe } from '../../src/events.js';
import { memoryCircuit, memoryNetwork } from '../support/memory-network.js';
import { until, within } from '../support/edge-pair.js';

const VEGAS: NetworkParams = DEFAULT_NETWORK_PARAMS;
const FIXED: NetworkParams = { ...DEFAULT_NETWORK_PARAMS, cc_alg: 0 };

test('the messages: request 01 01 00; response 01 02 01 <sendme_inc>; nothing asked, nothing answered', () => {
  assert.equal(hex(clientMessage(VEGAS)), '010100');
  assert.equal(hex(clientMessage(FIXED)), '00');
  const yes = answerClientMessage(clientMessage(VEGAS), VEGAS);
  assert.equal(hex(yes.serverMessage), '0102011f');
  assert.equal(yes.agreed?.sendmeInc, 31);
  // A relay whose own cc_alg is 0 ignores the request; one not asked answers nothing.
  assert.deepEqual(answerClientMessage(clientMessage(VEGAS), FIXED), { serverMessage: Uint8Array.of(0), agreed: null });
  assert.deepEqual(answerClientMessage(clientMessage(FIXED), VEGAS), { serverMessage: Uint8Array.of(0), agreed: null });
  // Unknown types are ignored; the first of a repeated type counts.
  const withUnknown = Uint8Array.from([3, 9, 2, 0xaa, 0xbb, 1, 0, 1, 1, 0x55]);
  assert.equal(answerClientMessage(withUnknown, VEGAS).agreed?.sendmeInc, 31);
  assert.equal(readServerMessage(Uint8Array.from([2, 2, 1, 30, 2, 1, 99]), VEGAS)?.sendmeInc, 30);
  assert.throws(() => answerClientMessage(Uint8Array.from([1, 1]), VEGAS), DecodeError);
});

test('the client accepts sendme_inc within 1 of its consensus, and only a response it asked for', () => {
  assert.equal(readServerMessage(Uint8Array.of(0), VEGAS), null, 'no response: fixed windows');
  assert.equal(readServerMessage(Uint8Array.from([1, 2, 1, 32]), VEGAS)?.sendmeInc, 32);
  assert.equal(readServerMessage(Uint8Array.from([1, 2, 1, 30]), VEGAS)?.sendmeInc, 30);
  for (const bad of [0, 29, 33, 255]) assert.throws(() => readServerMessage(Uint8Array.from([1, 2, 1, bad]), VEGAS), HandshakeError, `sendme_inc ${bad}`);
  assert.throws(() => readServerMessage(Uint8Array.from([1, 2, 0]), VEGAS), HandshakeError, 'empty body');
  assert.throws(() => readServerMessage(Uint8Array.from([1, 2, 2, 31, 0]), VEGAS), HandshakeError, 'two-byte body');
  assert.throws(() => readServerMessage(Uint8Array.from([1, 2, 1, 31]), FIXED), HandshakeError, 'not asked for');
  assert.throws(() => readServerMessage(Uint8Array.from([1, 2, 1]), VEGAS), DecodeError);
});

async function sinkServer(t: TestContext, onSocket: (socket: Socket) => void): Promise<number> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    onSocket(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return (server.address() as AddressInfo).port;
}

test('a relay without congestion control keeps fixed windows on its hop; the others run Vegas', { timeout: 30_000 }, async (t) => {
  const net = memoryNetwork(3, { params: (i) => (i === 1 ? FIXED : VEGAS) });
  t.after(() => net.cleanup());
  const { circuit, channel } = await memoryCircuit(net.relays, { params: VEGAS });
  t.after(() => channel.destroy());
  assert.deepEqual([0, 1, 2].map((hop) => circuit.edge(hop)!.flow.snapshot().algorithm), ['vegas', 'fixed', 'vegas']);

  const plain = await memoryCircuit(net.relays, { params: FIXED });
  t.after(() => plain.channel.destroy());
  assert.deepEqual([0, 1, 2].map((hop) => plain.circuit.edge(hop)!.flow.snapshot().algorithm), ['fixed', 'fixed', 'fixed'], 'cc_alg=0: never asked');
});

test('a congestion-controlled download to a stalled reader: XOFF stops the exit, XON resumes it, bytes intact', { timeout: 60_000 }, async (t) => {
  const size = 2_000_000;
  const payload = Buffer.from(crypto.randomBytes(size));
  const port = await sinkServer(t, (socket) => socket.end(payload));
  const net = memoryNetwork(3);
  t.after(() => net.cleanup());
  const { circuit, channel } = await memoryCircuit(net.relays);
  t.after(() => channel.destroy());
  const seen: string[] = [];
  const unsubscribe = subscribe('allium:circuit:destroyed', () => seen.push('destroyed'));
  t.after(unsubscribe);

  const stream = await circuit.openStream('127.0.0.1', port, 5000);
  assert.equal(circuit.edge(2)!.flow.snapshot().algorithm, 'vegas');
  // Read nothing: the exit must stop at about one XOFF limit plus what was in flight, not send all 2 MB.
  stream.pause();
  await until(() => stream.readableLength > 500 * 498, 20_000, 'data past the XOFF limit');
  // Then nothing more arrives for 300 ms.
  let last = -1;
  let changedAt = 0;
  const quiet = () => {
    if (stream.readableLength !== last) [last, changedAt] = [stream.readableLength, performance.now()];
    return performance.now() - changedAt > 300;
  };
  await until(quiet, 20_000, 'the exit to stop');
  assert.ok(last < size, `the exit stopped short of the whole payload (${last} of ${size} bytes waiting)`);
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.resume();
  await within(once(stream, 'end'), 'the rest after XON', 30_000);
  assert.ok(Buffer.concat(chunks).equals(payload), 'every byte, in order');
  assert.equal(circuit.closed, false);
  assert.deepEqual(seen, []);
});
