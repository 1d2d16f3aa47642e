/**
 * The client's memory cap (client/mem-cap.ts, docs/protocol.md §3.6) through
 * a real SOCKS port, three relays joined by Noise links in memory and a real
 * TCP destination: SOCKS clients that never read while the destination
 * pushes make the client hold bytes in their streams and sockets (counted
 * through RelayStream.bufferedBytes, the spliced socket's buffers included);
 * over the cap the streams holding the oldest bytes are ended (END
 * RESOURCELIMIT, their SOCKS sockets reset), the accounted total stays
 * bounded while the periodic check runs, and a reading stream on the same
 * circuit keeps flowing.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { connect } from 'node:net';
import { Registry } from 'prom-client';
import { ClientMemoryCap, type ClientMemoryCapOptions } from '../../client/mem-cap.js';
import type { OriginCircuit } from '../../client/origin-circuit.js';
import { clientMemoryMetrics } from '../../cli/metrics/client-metrics.js';
import { EndReason } from '../../src/cell/reasons.js';
import type { RelayStream } from '../../src/stream/relay-stream.js';
import { tcpServer } from '../adversarial/hostile-peer.js';
import { socksOverMemoryCircuit } from '../support/socks-circuit.js';

const WAIT_MS = 10_000;
/**
 * One stuck stream fits, two do not: a stuck stream holds what arrived up to its XOFF (sent above
 * cc_xoff_client × 498 = 249,000 bytes), what was in flight then, and its socket buffers; measured
 * 302-428 KB each on loopback.
 */
const CAP = 540 * 1024;
const LOW_WATER = 300 * 1024;

/** A destination that writes to every connection until it closes (at most 1 GiB), respecting backpressure. */
async function firehose(t: TestContext): Promise<number> {
  const chunk = Buffer.alloc(32 * 1024, 0x61);
  const { port } = await tcpServer(t, (socket: Socket) => {
    let left = 1024 * 1024 * 1024;
    const pump = () => {
      while (left > 0 && !socket.destroyed) {
        left -= chunk.length;
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
  return port;
}

/**
 * A SOCKS5 CONNECT to 127.0.0.1:`port` through the SOCKS port, by hand (no
 * timers left on the socket once it is handed over); resolves with the socket
 * once the reply has arrived, the destination's first bytes not yet read.
 */
function socksConnect(socksPort: number, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port: socksPort });
    const timer = setTimeout(() => fail(new Error('SOCKS handshake timed out')), WAIT_MS);
    const fail = (error: Error) => {
      clearTimeout(timer);
      socket.destroy();
      reject(error);
    };
    socket.once('error', fail);
    socket.write(Uint8Array.of(5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, port >> 8, port & 0xff));
    // Method selection (2 bytes) and the reply with an IPv4 bound address (10 bytes).
    let got = Buffer.alloc(0);
    const onReadable = () => {
      for (let chunk: Buffer | null; got.length < 12 && (chunk = socket.read(12 - got.length) ?? socket.read()) !== null; ) got = Buffer.concat([got, chunk]);
      if (got.length < 12) return;
      socket.off('readable', onReadable);
      socket.off('error', fail);
      clearTimeout(timer);
      if (got[0] !== 5 || got[1] !== 0 || got[3] !== 0) fail(new Error(`SOCKS refused: ${got.toString('hex')}`));
      else resolve(socket);
    };
    socket.on('readable', onReadable);
  });
}

async function until(cond: () => boolean, what: string | (() => string), ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${typeof what === 'string' ? what : what()}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * A 3-hop circuit over the in-memory network, a destination that sends
 * without end (firehose), and a SOCKS server whose streams ride the circuit
 * and are tracked by a ClientMemoryCap with `opts`; everything is torn down
 * after the test. `open()` makes one SOCKS connection to the destination;
 * `streams` are the circuit's streams in the order they were opened.
 */
async function cappedSocks(t: TestContext, opts: ClientMemoryCapOptions): Promise<{ cap: ClientMemoryCap; circuit: OriginCircuit; streams: RelayStream[]; open: () => Promise<Socket> }> {
  const hose = await firehose(t);
  const cap = new ClientMemoryCap(opts);
  t.after(() => cap.close());
  const { circuit, streams, socksPort } = await socksOverMemoryCircuit(t, (stream) => cap.track(stream), WAIT_MS);
  const open = async (): Promise<Socket> => {
    const socket = await socksConnect(socksPort, hose);
    t.after(() => socket.destroy());
    return socket;
  };
  return { cap, circuit, streams, open };
}

test('client memory cap: streams whose SOCKS clients never read are ended oldest first (END RESOURCELIMIT, socket reset); the total stays bounded; a reading stream on the same circuit flows on', { timeout: 150_000 }, async (t) => {
  const events: string[] = [];
  const { cap, circuit, streams, open } = await cappedSocks(t, { capBytes: CAP, lowWaterBytes: LOW_WATER, checkIntervalMs: 20, log: (line) => events.push(line) });

  // The accounted total, sampled all along.
  let most = 0;
  const sampler = setInterval(() => (most = Math.max(most, cap.queuedBytes())), 5);
  t.after(() => clearInterval(sampler));

  // One application that reads everything, on the same circuit as the ones that do not.
  const reader = await open();
  let readBytes = 0;
  reader.on('data', (chunk: Buffer) => (readBytes += chunk.length));
  reader.on('error', () => {});
  await until(() => readBytes > 100_000, 'the reading client to receive data');

  // Applications that never read, one after the other: each stream fills (once the kernel's socket
  // buffers are full) to what flow control lets the exit send, about a stream window, and stays there.
  // One fits under the cap; the second takes the total over it, and the first, the oldest, is ended
  // (and the second too, if the first held too little for ending it alone to reach the low-water mark:
  // how much a stuck stream holds depends on how many cells were in flight when its XOFF went out).
  const stuck: Array<{ socket: Socket; closed: boolean }> = [];
  for (let i = 0; i < 2; i++) {
    const socket = await open();
    socket.pause();
    const entry = { socket, closed: false };
    socket.on('error', () => {});
    socket.on('close', () => (entry.closed = true));
    stuck.push(entry);
    if (i === 0) {
      // Full: past its XOFF threshold, and no longer growing for half a second.
      let last = -1;
      let since = Date.now();
      await until(() => {
        const now = cap.queuedBytes();
        if (now !== last) [last, since] = [now, Date.now()];
        return now > 240 * 1024 && Date.now() - since > 500;
      }, () => `the first stuck client to back up (holding ${cap.queuedBytes()} bytes; ${events.join('; ') || 'no cap event'})`, 60_000);
      // Part of what it holds is in its SOCKS socket's write buffer (the pipe wrote until the socket pushed back), counted too.
      const st = streams[1]!;
      assert.ok(st.bufferedBytes - st.readableLength - st.writableLength >= 16 * 1024, `socket buffers not counted: ${st.bufferedBytes} vs ${st.readableLength} + ${st.writableLength}`);
    } else {
      await until(() => cap.stats().streamsFreed > 0, 'the second stuck client to take the total over the cap', 60_000);
    }
  }
  clearInterval(sampler);
  const stats = cap.stats();
  assert.equal(stats.oomEvents, 1, events.join('\n'));
  assert.ok(stats.streamsFreed === 1 || stats.streamsFreed === 2, events.join('\n'));
  assert.ok(most <= CAP + 256 * 1024, `held up to ${most} bytes with a cap of ${CAP}`);
  assert.ok(cap.queuedBytes() <= CAP, `holds ${cap.queuedBytes()} bytes`);
  assert.match(events[0] ?? '', /^memory cap: \d+ bytes held by streams, over the cap of 552960; ended [12] streams/);
  // The operator sees the same in the client's metrics (docs/operators.md "Metrics").
  const registry = new Registry();
  clientMemoryMetrics(registry, () => cap.stats());
  const scraped = await registry.metrics();
  assert.match(scraped, /^allium_oom_events_total 1$/m);
  assert.match(scraped, new RegExp(`^allium_oom_streams_freed_total ${stats.streamsFreed}$`, 'm'));
  assert.match(scraped, new RegExp(`^allium_oom_bytes_freed_total ${cap.stats().bytesFreed}$`, 'm'));
  assert.match(scraped, new RegExp(`^allium_queued_bytes\\{kind="cap"\\} ${CAP}$`, 'm'));

  // The ended streams are the oldest stuck ones: END RESOURCELIMIT went to the exit, and their
  // application sockets were reset (which a peer that has not read all it was sent may see as its end,
  // once it reads again: the kernel keeps the data that had arrived).
  const received = stuck.map(() => 0);
  stuck.forEach((s, i) => {
    s.socket.on('data', (chunk: Buffer) => (received[i]! += chunk.length));
    s.socket.resume();
  });
  const ended = stuck.slice(0, stats.streamsFreed);
  await until(() => ended.every((s) => s.closed), "the ended streams' sockets to close", 30_000);
  // streams[0] is the reader's; streams[1 + i] stuck[i]'s.
  assert.deepEqual(streams.map((st) => st.endReason), [null, ...stuck.map((_, i) => (i < stats.streamsFreed ? EndReason.RESOURCELIMIT : null))]);
  if (stats.streamsFreed === 1) {
    await until(() => received[1]! > 6_000_000, 'the stream that was not ended to deliver its data', 60_000);
    assert.equal(stuck[1]!.closed, false);
  }
  assert.equal(circuit.closed, false);

  // The reading stream on the same circuit never stopped.
  const mark = readBytes;
  await until(() => readBytes > mark + 200_000, 'the reading client to keep receiving', 30_000);
  assert.equal(reader.destroyed, false);
});

test('client memory cap: a stream that sends XOFF makes the cap look in the next turn, not at its next tick', { timeout: 60_000 }, async (t) => {
  // A tick that never comes within the test, and a cap under what one stuck stream holds past its XOFF.
  const { cap, streams, open } = await cappedSocks(t, { capBytes: 200 * 1024, lowWaterBytes: 0, checkIntervalMs: 600_000, log: () => {} });
  const socket = await open();
  socket.on('error', () => {});
  socket.pause();
  await until(() => cap.stats().oomEvents >= 1, 'the cap to act on the stream that sent XOFF', 30_000);
  assert.equal(cap.stats().streamsFreed, 1);
  assert.equal(streams[0]!.endReason, EndReason.RESOURCELIMIT);
});
