/**
 * A whole circuit in one process: a client and three relays joined by real
 * Noise links over in-memory duplex pairs, the exit connecting to a real TCP
 * echo server on 127.0.0.1. Data flows both ways; a flipped bit in one cell
 * tears the circuit down.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { ChannelCommand } from '../../src/cell/channel-cell.js';
import { crypto } from '../../src/crypto/crypto.js';
import { hex } from '../../src/bytes.js';
import { CircuitDestroyedError } from '../../src/errors.js';
import type { OriginCircuit } from '../../client/origin-circuit.js';
import { memoryCircuit, memoryNetwork, type MemoryRelay } from '../support/memory-network.js';
import { echoServer } from '../support/echo-server.js';

function makeNetwork(t: TestContext): MemoryRelay[] {
  const network = memoryNetwork(3);
  t.after(() => network.cleanup());
  return network.relays;
}

const buildCircuit = memoryCircuit;

async function roundTrip(circuit: OriginCircuit, port: number, size: number): Promise<void> {
  const stream = await circuit.openStream('127.0.0.1', port, 5000);
  const sent = crypto.randomBytes(size);
  const chunks: Buffer[] = [];
  let received = 0;
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= size) resolve();
    });
    stream.on('error', reject);
  });
  stream.write(sent);
  await done;
  assert.equal(hex(crypto.sha256(Buffer.concat(chunks))), hex(crypto.sha256(sent)));
  stream.end();
}

test('a three-hop circuit in memory carries data both ways', { timeout: 30_000 }, async (t) => {
  const port = await echoServer(t);
  const relays = makeNetwork(t);
  const { circuit, channel } = await buildCircuit(relays);
  t.after(() => channel.destroy());
  assert.equal(circuit.path.length, 3);
  // 1 MB through the echo server: > 2000 cells each way, so circuit and stream SENDMEs flow.
  await roundTrip(circuit, port, 1_000_000);
  // Several streams at once on the same circuit.
  await Promise.all([1, 2, 3, 4, 5].map((i) => roundTrip(circuit, port, 20_000 * i)));
  assert.equal(circuit.closed, false);
});

test('a flipped bit in one relay cell tears the circuit down', { timeout: 30_000 }, async (t) => {
  const port = await echoServer(t);
  for (const position of [5 /* command */, 6 /* recognized */, 14 /* digest */, 20 /* data */, 500 /* padding */]) {
    const relays = makeNetwork(t);
    const { circuit, channel } = await buildCircuit(relays);
    t.after(() => channel.destroy());
    await roundTrip(circuit, port, 5_000);
    const closed = new Promise<Error>((resolve) => circuit.onClose(resolve));
    // Corrupt the next RELAY cell the middle relay receives, after the link decrypted it.
    const middleLink = relays[1]!.inbound[0]!;
    let flipped = false;
    middleLink.prependListener('cell', (cell: Uint8Array) => {
      if (!flipped && cell[4] === ChannelCommand.RELAY) {
        flipped = true;
        cell[position]! ^= 0x01;
      }
    });
    const stream = await circuit.openStream('127.0.0.1', port, 5000).catch((e: Error) => e);
    if (!(stream instanceof Error)) stream.write('after the flip');
    const error = await closed;
    assert.ok(flipped);
    assert.ok(error instanceof CircuitDestroyedError, `got ${error}`);
    assert.equal(circuit.closed, true);
  }
});

test('a slow reader stops the sender across all three hops, and reading resumes it', { timeout: 30_000 }, async (t) => {
  // A server that writes as fast as its socket lets it, counting what it wrote.
  let written = 0;
  const server = createServer((socket) => {
    socket.on('error', () => {});
    const chunk = Buffer.alloc(16 * 1024, 7);
    const pump = () => {
      while (!socket.destroyed) {
        written += chunk.length;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  const relays = makeNetwork(t);
  const { circuit, channel } = await buildCircuit(relays);
  t.after(() => channel.destroy());
  const stream = await circuit.openStream('127.0.0.1', (server.address() as AddressInfo).port, 5000);
  // Nobody reads: after the windows fill, the server must be stuck.
  const settle = async () => {
    let last = -1;
    for (let i = 0; i < 40 && written !== last; i++) {
      last = written;
      await new Promise((r) => setTimeout(r, 200));
    }
    return written;
  };
  const stalled = await settle();
  // One stream window is 500 cells (249 kB); add the Duplex and kernel socket buffers.
  assert.ok(stalled < 8 * 1024 * 1024, `server wrote ${stalled} bytes to a reader that never read`);
  let read = 0;
  stream.on('data', (chunk: Buffer) => (read += chunk.length));
  const deadline = Date.now() + 10_000;
  while (read < stalled + 2 * 1024 * 1024 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert.ok(read > stalled + 2 * 1024 * 1024, `reading resumed the flow (${read} bytes read, ${stalled} buffered before)`);
  stream.destroy();
});
