/**
 * The exit builds the cells it originates in pooled buffers that still hold
 * their last cell (relay/relay-circuit.ts sendBackward): every byte after a
 * relay body must still come out zero (docs/protocol.md §4.2), for full DATA
 * cells and for the short cells (partial DATA, CONNECTED, END, SENDME) that
 * reuse their buffers. Checked at the client on every cell as it is peeled,
 * over a real three-hop circuit of Noise links in memory and a real TCP
 * destination that writes odd-sized pieces.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { memoryNetwork, type MemoryRelay } from '../support/memory-network.js';
import { MemoryTransport } from '../support/memory-transport.js';
import { LinkManager } from '../../src/link/link-manager.js';
import { OriginCircuit } from '../../client/origin-circuit.js';
import { CELL_PAYLOAD_LENGTH, RELAY_HEADER_LENGTH } from '../../src/constants.js';

const PAYLOAD_OFFSET = 5;
const LENGTH_OFFSET = PAYLOAD_OFFSET + 9;

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
  const relays: MemoryRelay[] = network.relays;
  const memory = new MemoryTransport((peer) => relays.find((r) => r.info.address === peer.address && r.info.orPort === peer.port)?.accept);
  const links = new LinkManager<OriginCircuit>({
    transport: memory,
    handler: {
      onCircuitCell: (slot, cell) => slot.circuit.receive(cell),
      onRelayCells: (slot, cells) => {
        slot.circuit.receiveCells(cells);
        // Peeled in place: each cell now holds the plaintext relay payload.
        for (const cell of cells) {
          const length = (cell[LENGTH_OFFSET]! << 8) | cell[LENGTH_OFFSET + 1]!;
          for (let at = PAYLOAD_OFFSET + RELAY_HEADER_LENGTH + length; at < PAYLOAD_OFFSET + CELL_PAYLOAD_LENGTH; at++) {
            if (cell[at] !== 0) {
              bad.push(`command ${cell[PAYLOAD_OFFSET]} length ${length}: byte ${at - PAYLOAD_OFFSET} is ${cell[at]}`);
              break;
            }
          }
          checked++;
        }
      },
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
    source.close();
    network.cleanup();
  }
});
