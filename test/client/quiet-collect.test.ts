/**
 * The client's collection when it falls quiet (client/quiet-collect.ts)
 * through a real SOCKS port, three relays joined by Noise links in memory
 * and a real TCP destination: a collection is asked for when the last open
 * stream closes, not while another is open, not twice within the minimum
 * interval, and not when little ArrayBuffer memory is left to free.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { QuietCollector, type QuietCollectOptions } from '../../client/quiet-collect.js';
import type { RelayStream } from '../../src/stream/relay-stream.js';
import { tcpServer } from '../adversarial/hostile-peer.js';
import { until } from '../support/edge-pair.js';
import { socksOverMemoryCircuit } from '../support/socks-circuit.js';

const WAIT_MS = 10_000;
const BODY_BYTES = 300_000;

/**
 * A 3-hop circuit over the in-memory network, a destination that answers
 * every connection with BODY_BYTES and closes it once the client has said
 * its first byte, and a SOCKS server whose streams ride the circuit and are
 * tracked by a QuietCollector with `opts`. `open()` makes one SOCKS
 * connection, `finish(socket)` lets its destination send and waits for the
 * whole body and the stream's close.
 */
async function quietSocks(t: TestContext, opts: QuietCollectOptions) {
  const body = Buffer.alloc(BODY_BYTES, 0x62);
  const { port } = await tcpServer(t, (socket: Socket) => {
    socket.on('error', () => {});
    socket.once('data', () => socket.end(body));
  });
  const collector = new QuietCollector(opts);
  const { streams, socksPort } = await socksOverMemoryCircuit(t, (stream) => collector.track(stream), WAIT_MS);

  const open = (): Promise<{ socket: Socket; received: () => number }> =>
    new Promise((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: socksPort });
      t.after(() => socket.destroy());
      const timer = setTimeout(() => reject(new Error('SOCKS handshake timed out')), WAIT_MS);
      socket.once('error', reject);
      socket.write(Uint8Array.of(5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 0xff));
      let got = 0;
      let replied = false;
      socket.on('data', (chunk: Buffer) => {
        got += chunk.length;
        // Method selection (2 bytes) and the reply with an IPv4 bound address (10 bytes).
        if (!replied && got >= 12) {
          replied = true;
          clearTimeout(timer);
          resolve({ socket, received: () => got - 12 });
        }
      });
    });
  const finish = async (conn: { socket: Socket; received: () => number }, stream: RelayStream): Promise<void> => {
    conn.socket.write('go');
    await until(() => conn.received() === BODY_BYTES, WAIT_MS, 'the whole body');
    conn.socket.end();
    await until(() => stream.destroyed && collector.openStreams === streams.filter((s) => !s.destroyed).length, WAIT_MS, 'the stream to close');
  };
  return { collector, streams, open, finish };
}

test('quiet collection: asked for when the last open stream closes, not while another is open, not twice within the interval', { timeout: 60_000 }, async (t) => {
  let clock = 0;
  let asked = 0;
  const { collector, streams, open, finish } = await quietSocks(t, {
    minArrayBufferBytes: 0,
    minIntervalMs: 5_000,
    now: () => clock,
    collectGarbage: () => {
      asked++;
      return true;
    },
  });
  const a = await open();
  const b = await open();
  await until(() => collector.openStreams === 2, WAIT_MS, 'two streams tracked');
  await finish(a, streams[0]!);
  assert.equal(collector.openStreams, 1);
  assert.equal(asked, 0, 'a stream is still open: not quiet');
  await finish(b, streams[1]!);
  assert.equal(asked, 1, 'the last stream closed: one collection');
  assert.deepEqual(collector.stats(), { collections: 1 });

  // Quiet again within the interval: no second collection; after it, one.
  clock += 1_000;
  await finish(await open(), streams[2]!);
  assert.equal(asked, 1);
  clock += 5_000;
  await finish(await open(), streams[3]!);
  assert.equal(asked, 2);
});

test('quiet collection: not asked for when less ArrayBuffer memory than the minimum is allocated, nor counted when the runtime offers none', { timeout: 60_000 }, async (t) => {
  let clock = 0;
  let allocated = 1024;
  let offered = true;
  let asked = 0;
  const { collector, streams, open, finish } = await quietSocks(t, {
    minArrayBufferBytes: 2048,
    minIntervalMs: 0,
    now: () => (clock += 10),
    arrayBufferBytes: () => allocated,
    collectGarbage: () => {
      asked++;
      return offered;
    },
  });
  await finish(await open(), streams[0]!);
  assert.equal(asked, 0, 'below the minimum');
  allocated = 4096;
  offered = false;
  await finish(await open(), streams[1]!);
  assert.equal(asked, 1);
  assert.deepEqual(collector.stats(), { collections: 0 }, 'none offered: none counted');
  offered = true;
  await finish(await open(), streams[2]!);
  assert.deepEqual(collector.stats(), { collections: 1 });
});
