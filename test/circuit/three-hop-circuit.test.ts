/**
 * A whole circuit in one process: a client and three relays joined by real
 * Noise links over in-memory duplex pairs, the exit connecting to a real TCP
 * echo server on 127.0.0.1. Data flows both ways; a flipped bit in one cell
 * tears the circuit down.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { Channel } from '../../src/link/channel.js';
import { ChannelCircuits } from '../../src/circuit/circuit-ids.js';
import { cellCircuitId, ChannelCommand } from '../../src/cell/channel-cell.js';
import { parseExitPolicy } from '../../src/netdoc/exit-policy.js';
import { crypto } from '../../src/crypto/crypto.js';
import { equalBytes, hex } from '../../src/bytes.js';
import { CircuitDestroyedError } from '../../src/errors.js';
import { createRelayCore } from '../../relay/relay.js';
import { loadRelayKeys, type RelayKeys } from '../../relay/keys.js';
import { OriginCircuit, type HopInfo } from '../../client/origin-circuit.js';
import { duplexPair } from '../support/duplex-pair.js';

interface TestRelay {
  keys: RelayKeys;
  info: HopInfo;
  adopt(channel: Channel): void;
  /** Links accepted by this relay, in order. */
  inbound: Channel[];
}

async function echoServer(t: TestContext): Promise<number> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return (server.address() as AddressInfo).port;
}

function makeNetwork(t: TestContext): TestRelay[] {
  const dir = mkdtempSync(join(tmpdir(), 'allium-circuit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const relays: TestRelay[] = [];
  const accept = (relay: TestRelay, socket: import('node:stream').Duplex) => {
    void Channel.accept(socket, { linkKey: relay.keys.linkKey, identity: relay.keys.identity, timeoutMs: 5000 }).then((channel) => {
      relay.inbound.push(channel);
      relay.adopt(channel);
    });
  };
  for (let i = 0; i < 3; i++) {
    const keys = loadRelayKeys(join(dir, `relay${i}`));
    const info: HopInfo = {
      nickname: `relay${i}`,
      identity: keys.identity.identity,
      linkKey: keys.linkKey.public,
      ntorOnionKey: keys.ntor.onionKey,
      address: `127.${i + 1}.0.1`,
      orPort: 9000 + i,
    };
    const relay: TestRelay = { keys, info, adopt: () => {}, inbound: [] };
    const core = createRelayCore({
      keys,
      exit: { policy: i === 2 ? parseExitPolicy(['accept 127.0.0.1:*', 'reject *:*']) : null, localAddress: '127.0.0.1' },
      connectTo: async (target) => {
        const peer = relays.find((r) => equalBytes(r.keys.identity.identity, target.identity));
        if (peer === undefined) throw new Error('unknown relay');
        const [near, far] = duplexPair();
        accept(peer, far);
        return Channel.connect(near, { peerLinkKey: target.linkKey, peerIdentity: target.identity, linkKey: keys.linkKey, identity: keys.identity, timeoutMs: 5000 });
      },
    });
    relay.adopt = (channel) => core.adopt(channel);
    relays.push(relay);
  }
  return relays;
}

async function buildCircuit(relays: TestRelay[]): Promise<{ circuit: OriginCircuit; channel: Channel }> {
  const [near, far] = duplexPair();
  const guard = relays[0]!;
  void Channel.accept(far, { linkKey: guard.keys.linkKey, identity: guard.keys.identity, timeoutMs: 5000 }).then((channel) => {
    guard.inbound.push(channel);
    guard.adopt(channel);
  });
  const channel = await Channel.connect(near, { peerLinkKey: guard.info.linkKey, peerIdentity: guard.info.identity, timeoutMs: 5000 });
  const table = new ChannelCircuits<OriginCircuit>();
  channel.on('cell', (cell: Uint8Array) => table.get(cellCircuitId(cell))?.circuit.receive(cell));
  const circuit = await OriginCircuit.build(channel, table, relays.map((r) => r.info), 10_000);
  return { circuit, channel };
}

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
