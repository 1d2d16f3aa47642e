/**
 * The exit builds the cells it originates in pooled buffers that still hold
 * their last cell (relay/relay-circuit.ts sendBackward): every byte after a
 * relay body must still come out zero (docs/protocol.md §4.2), for full DATA
 * cells and for the short cells (partial DATA, CONNECTED, END, SENDME) that
 * reuse their buffers. Checked at the client on every relay payload as it
 * comes out of the peel (BackwardPeel.receive hands each one on; the check
 * wraps that hand-off and passes the payload through unchanged), over a real
 * three-hop circuit of Noise links in memory and a real TCP destination that
 * writes odd-sized pieces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { memoryNetwork, type MemoryRelay } from '../support/memory-network.js';
import { MemoryTransport } from '../support/memory-transport.js';
import { LinkManager } from '../../src/link/link-manager.js';
import { OriginCircuit } from '../../client/origin-circuit.js';
import { BackwardPeel } from '../../client/backward-peel.js';
import { CELL_PAYLOAD_LENGTH, RELAY_HEADER_LENGTH } from '../../src/constants.js';

/** Where a relay payload holds its body length (docs/protocol.md §4.2). */
const LENGTH_OFFSET = 9;

test('cells the exit originates carry zeros after their body, also in reused buffers', { timeout: 30_000 }, async () => {
  const network = memoryNetwork(3);
  // Odd-sized pieces: full and partial DATA cells, interleaved with the exit's SENDMEs and the END.
  const pieces: Buffer[] = [];
  for (let i = 0; i < 400; i++) pieces.push(Buffer.alloc(1 + ((i * 7919) % 3000), i & 0xff));
  const expected = Buffer.concat(pieces);
  const source = createServer((socket) => {
    socket.on('error', () => {});
    let i = 0;
    const pump = (): void => {
      while (i < pieces.length) if (!socket.write(pieces[i++]!)) return void socket.once('drain', pump);
      socket.end();
    };
    pump();
  });
  source.listen(0, '127.0.0.1');
  await once(source, 'listening');
  let checked = 0;
  const bad: string[] = [];
  // Every payload the client's peel hands on: zeros after the body.
  const receive = BackwardPeel.prototype.receive;
  BackwardPeel.prototype.receive = function (this: BackwardPeel, cells, final, handle, admit) {
    receive.call(this, cells, final, (hop, payload) => {
      const length = (payload[LENGTH_OFFSET]! << 8) | payload[LENGTH_OFFSET + 1]!;
      for (let at = RELAY_HEADER_LENGTH + length; at < CELL_PAYLOAD_LENGTH; at++) {
        if (payload[at] !== 0) {
          bad.push(`command ${payload[0]} length ${length}: byte ${at} is ${payload[at]}`);
          break;
        }
      }
      checked++;
      handle(hop, payload);
    }, admit);
  };
  const relays: MemoryRelay[] = network.relays;
  const memory = new MemoryTransport((peer) => relays.find((r) => r.info.address === peer.address && r.info.orPort === peer.port)?.accept);
  const links = new LinkManager<OriginCircuit>({
    transport: memory,
    handler: {
      onCircuitCell: (slot, cell) => slot.circuit.receive(cell),
      onRelayCells: (slot, cells) => slot.circuit.receiveCells(cells),
      onLinkClosed: (slot) => slot.circuit.linkClosed(),
    },
    dialTimeoutMs: 5000,
  });
  try {
    const guard = relays[0]!.info;
    const channel = await links.get({ address: guard.address, port: guard.orPort, identity: guard.identity, linkKey: guard.linkKey });
    const circuit = await OriginCircuit.build(channel, links.circuitsOf(channel), relays.map((r) => r.info), 10_000);
    const stream = await circuit.openStream('127.0.0.1', (source.address() as AddressInfo).port, 10_000);
    const got: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => got.push(chunk));
    await once(stream, 'end');
    assert.ok(Buffer.concat(got).equals(expected), 'the stream carried the bytes sent');
    assert.ok(checked > expected.length / 498, `checked ${checked} cells`);
    assert.deepEqual(bad.slice(0, 5), []);
    channel.destroy();
  } finally {
    BackwardPeel.prototype.receive = receive;
    source.close();
    network.cleanup();
  }
});
