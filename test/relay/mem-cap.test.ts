/**
 * The relay's memory cap (relay/mem-cap.ts, docs/protocol.md §3.6) over real
 * TCP: clients that never read while the exit pushes data make the relay's
 * link queues grow; with the cap set low, a check frees what holds the oldest
 * data until the total is under the low-water mark — a stuck client's link,
 * as old as its oldest held data, is closed whole; a circuit freed alone has
 * its cells dropped and DESTROY RESOURCELIMIT goes both ways — while a client
 * that reads keeps receiving data.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { Socket } from 'node:net';
import { ChannelCommand, cellCircuitId } from '../../src/cell/channel-cell.js';
import { DestroyReason } from '../../src/cell/reasons.js';
import { RelayCommand } from '../../src/cell/relay-cell.js';
import { encodeBegin } from '../../src/cell/stream-messages.js';
import { LinkManager } from '../../src/link/link-manager.js';
import { TcpTransport } from '../../src/link/transport.js';
import { parseExitPolicy } from '../../src/netdoc/exit-policy.js';
import { OriginCircuit } from '../../client/origin-circuit.js';
import { loadRelayKeys } from '../../relay/keys.js';
import { listenOrPort } from '../../relay/or-listener.js';
import { createRelayCore, type RelayCore } from '../../relay/relay-core.js';
import { MemoryCap, type MemoryCapOptions } from '../../relay/mem-cap.js';
import { HostilePeer, tcpServer, tempDir, type PeerCircuit } from '../adversarial/hostile-peer.js';
import { connect } from 'node:net';
import { once } from 'node:events';
import { Registry } from 'prom-client';
import { relayDosMetrics } from '../../cli/metrics/relay-metrics.js';

const WAIT_MS = 5000;
// What three stuck clients hold at the relay varies with how much the kernel's socket buffers take
// (about 170-320 KiB each, more under load): over the cap with all three, and a low-water mark that
// the youngest alone stays under, so freeing stops before it.
const CAP = 450 * 1024;
const LOW_WATER = 400 * 1024;
/** Most tests account queued bytes only; the state estimate (stateBytes) and the allocator's share (bufferOverhead) have their own tests below. */
const NO_STATE = { link: 0, circuit: 0, stream: 0 };

/** A server that writes to every connection until it closes (at most 1 GiB), respecting backpressure. */
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

async function until(cond: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/**
 * An exit to 127.0.0.1 in this process with `memoryCap`, listening on
 * loopback, and a hostile peer linked to it from `peerAddress` (its own
 * address, so no per-address limit is shared with other clients).
 */
async function exitAndPeer(t: TestContext, memoryCap: MemoryCapOptions, peerAddress: string): Promise<{ core: RelayCore; peer: HostilePeer }> {
  const keys = loadRelayKeys(tempDir(t));
  const core = createRelayCore({
    keys,
    exit: { policy: parseExitPolicy(['accept 127.0.0.1:*', 'reject *:*']), localAddress: '127.0.0.1' },
    transport: new TcpTransport({ localAddress: '127.0.0.1' }),
    dialTimeoutMs: WAIT_MS,
    memoryCap,
  });
  const listener = await listenOrPort('127.0.0.1', 0, (socket) => core.accept(socket));
  t.after(async () => {
    core.destroy();
    await listener.close();
  });
  const peer = await HostilePeer.connect(t, {
    keys,
    async open() {
      const socket = connect({ host: '127.0.0.1', port: listener.port, localAddress: peerAddress });
      socket.on('error', () => {});
      return socket;
    },
  });
  return { core, peer };
}

test('over the cap, what holds the oldest data is freed first down to the low-water mark (the oldest stuck clients\' links closed); the youngest keeps its circuits, a reading client keeps flowing', { timeout: 40_000 }, async (t) => {
  const keys = loadRelayKeys(tempDir(t));
  let collections = 0;
  const core = createRelayCore({
    keys,
    exit: { policy: parseExitPolicy(['accept 127.0.0.1:*', 'reject *:*']), localAddress: '127.0.0.1' },
    transport: new TcpTransport({ localAddress: '127.0.0.1' }),
    dialTimeoutMs: WAIT_MS,
    // Checked by hand below, so the order of events is the test's; a full collection is asked for once
    // 100 KiB of ArrayBuffers are no longer in the count (counted here instead of run).
    memoryCap: { capBytes: CAP, lowWaterBytes: LOW_WATER, checkIntervalMs: 0, gcMarginBytes: 100 * 1024, gcIntervalMs: 0, collectGarbage: () => (collections++, true), stateBytes: NO_STATE, bufferOverhead: 0 },
  });
  const listener = await listenOrPort('127.0.0.1', 0, (socket) => core.accept(socket));
  t.after(async () => {
    core.destroy();
    await listener.close();
  });
  const hose = await firehose(t);
  const target = (localAddress: string) => ({
    keys,
    async open() {
      const socket = connect({ host: '127.0.0.1', port: listener.port, localAddress });
      socket.on('error', () => {});
      return socket;
    },
  });

  // A client that reads: one circuit, one stream from the firehose, consumed as it comes.
  const links = new LinkManager<OriginCircuit>({
    transport: new TcpTransport({ localAddress: '127.0.0.2' }),
    handler: { onCircuitCell: (slot, cell) => slot.circuit.receive(cell), onLinkClosed: (slot) => slot.circuit.linkClosed() },
    dialTimeoutMs: WAIT_MS,
  });
  t.after(() => links.destroy());
  const info = { nickname: 'capped', identity: keys.identity.identity, linkKey: keys.linkKey.public, ntorOnionKey: keys.ntor.onionKey, address: '127.0.0.1', orPort: listener.port };
  const channel = await links.get({ address: '127.0.0.1', port: listener.port, identity: info.identity, linkKey: info.linkKey });
  const reader = await OriginCircuit.build(channel, links.circuitsOf(channel), [info], WAIT_MS);
  const readerStream = await reader.openStream('127.0.0.1', hose, WAIT_MS);
  let readBytes = 0;
  readerStream.on('data', (chunk: Buffer) => (readBytes += chunk.length));
  readerStream.on('error', () => {});
  await until(() => readBytes > 100_000, 'the reading client to receive data');

  // Three clients that never read, each stuck a little after the one before.
  const stuck: Array<{ peer: HostilePeer; circs: PeerCircuit[] }> = [];
  for (const [i, address] of ['127.0.0.5', '127.0.0.6', '127.0.0.7'].entries()) {
    const peer = await HostilePeer.connect(t, target(address));
    // Circuits of two streams each whose windows together hold more than the kernel's socket buffers between
    // us and the relay (each circuit's window lets the exit send 1000 cells before it needs our SENDME).
    const circs: PeerCircuit[] = [];
    for (let c = 0; c < 12; c++) circs.push(await peer.create());
    for (const circ of circs) for (const streamId of [1, 2]) peer.sendRelay(circ, RelayCommand.BEGIN, streamId, encodeBegin({ host: '127.0.0.1', port: hose, flags: 0 }));
    peer.channel.pauseReading();
    stuck.push({ peer, circs });
    // Its link queue at the relay fills to the high-water mark and stays there.
    await until(() => core.memoryCap.queuedBytes() > (i + 1) * 150 * 1024, `stuck client ${i} to back up`, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 30));
  }
  await until(() => core.memoryCap.queuedBytes() > CAP, 'the three stuck clients to hold more than the cap');
  const before = core.memoryCap.queuedBytes();
  assert.ok(before > CAP, `queued ${before} bytes, not over the cap`);

  const freed = core.memoryCap.check();
  const after = core.memoryCap.queuedBytes();
  const stats = core.memoryCap.stats();
  assert.equal(stats.oomEvents, 1);
  assert.ok(freed >= before - LOW_WATER - 64 * 1024, `freed ${freed} of ${before}`);
  assert.ok(after <= LOW_WATER + 64 * 1024, `still ${after} bytes queued`);
  // What it freed is still allocated until collected (more than gcMarginBytes): one full collection asked for.
  assert.equal(stats.collections, 1);
  assert.equal(collections, 1);

  // Read again. A stuck client's link is as old as the oldest data it holds (its socket pushes back,
  // its cells wait): the oldest ones are closed whole (ERR_RESOURCE_LIMIT), which frees their circuits
  // at once, until the total is under the low-water mark; the youngest keeps its link, and its circuits
  // deliver every cell their windows let the exit send. A circuit freed alone (on a link that stays)
  // gets DESTROY RESOURCELIMIT after what the kernel still held.
  for (const { peer } of stuck) peer.channel.resumeReading();
  const youngest = stuck[2]!;
  const windowCells = (peer: HostilePeer, circ: PeerCircuit) => peer.received.filter((c) => cellCircuitId(c) === circ.id && c[4] === ChannelCommand.RELAY).length;
  const destroyedOf = (peer: HostilePeer, circ: PeerCircuit) => peer.received.find((c) => cellCircuitId(c) === circ.id && c[4] === ChannelCommand.DESTROY);
  const destroyedCount = () => stuck.reduce((n, { peer, circs }) => n + circs.filter((c) => destroyedOf(peer, c) !== undefined).length, 0);
  await until(() => stuck.filter(({ peer }) => peer.channel.closed).length >= stats.linksClosed, 'the closed links\' peers to see them closed', 15_000);
  await until(() => destroyedCount() >= stats.circuitsFreed, 'a DESTROY for every circuit freed alone', 15_000);
  const closedBy = stuck.map(({ peer }) => peer.channel.closed);
  assert.ok(stats.linksClosed >= 1, 'the oldest stuck client\'s link was closed');
  assert.equal(closedBy.filter(Boolean).length, stats.linksClosed);
  assert.equal(closedBy[0], true, `the oldest stuck client goes first: ${JSON.stringify(closedBy)}`);
  assert.ok(closedBy.indexOf(false) < 0 || closedBy.slice(closedBy.indexOf(false)).every((c) => !c), `closed links are the oldest ones: ${JSON.stringify(closedBy)}`);
  assert.equal(closedBy[2], false, 'the youngest stuck client keeps its link');
  for (const { peer, circs } of stuck) for (const circ of circs) {
    const cell = destroyedOf(peer, circ);
    if (cell !== undefined) assert.equal(cell[5], DestroyReason.RESOURCELIMIT);
  }
  // Every circuit of the youngest that was not freed delivers its whole window: 1000 cells per stream pair's circuit (two CONNECTED first).
  await until(
    () => youngest.circs.every((circ) => destroyedOf(youngest.peer, circ) !== undefined || windowCells(youngest.peer, circ) >= 1002),
    'the youngest stuck client\'s circuits to deliver their windows',
    15_000,
  );

  // The reading client never stopped.
  const mark = readBytes;
  await until(() => readBytes > mark + 200_000, 'the reading client to keep receiving');
  assert.equal(reader.closed, false);
});

test('over the cap, a link whose peer does not read and whose socket holds unsent frames is closed (ERR_RESOURCE_LIMIT): only that frees them', { timeout: 40_000 }, async (t) => {
  const hose = await firehose(t);
  const { core, peer } = await exitAndPeer(t, { capBytes: 64 * 1024, lowWaterBytes: 0, checkIntervalMs: 0, stateBytes: NO_STATE, bufferOverhead: 0 }, '127.0.0.8');
  // Circuits whose windows together hold more than the kernel's socket buffers between us and the relay.
  const circs: PeerCircuit[] = [];
  for (let i = 0; i < 12; i++) circs.push(await peer.create());
  for (const circ of circs) for (const streamId of [1, 2]) peer.sendRelay(circ, RelayCommand.BEGIN, streamId, encodeBegin({ host: '127.0.0.1', port: hose, flags: 0 }));
  peer.channel.pauseReading();
  const stuckLink = () => core.links.openLinks().find((link) => link.unsentSocketBytes > 0);
  await until(() => stuckLink() !== undefined, 'the relay\'s socket to hold frames its peer does not take', 20_000);
  const link = stuckLink()!;
  assert.ok(link.heldBytes >= link.queuedBytes + link.unsentSocketBytes);
  const closed = once(link, 'close');

  // Its socket pushed back before (or when) its oldest queued cell was queued: freed first, as a link,
  // or left without circuits once they are freed; either way the link goes and its circuits with it.
  const before = core.memoryCap.queuedBytes();
  assert.ok(before > 64 * 1024);
  assert.ok(core.memoryCap.check() > 0);
  const stats = core.memoryCap.stats();
  assert.equal(stats.oomEvents, 1);
  assert.equal(stats.linksClosed, 1);
  // The operator sees it in the relay's metrics, next to the other memory-cap counters.
  const registry = new Registry();
  relayDosMetrics(registry, () => null, () => core.memoryCap.stats());
  const scraped = await registry.metrics();
  assert.match(scraped, /^allium_oom_links_closed_total 1$/m);
  assert.match(scraped, /^allium_oom_events_total 1$/m);
  assert.match(scraped, new RegExp(`^allium_oom_circuits_freed_total ${stats.circuitsFreed}$`, 'm'));
  assert.equal(link.closed, true);
  assert.equal(link.heldBytes, 0);
  const [err] = (await closed) as [Error & { code?: string }];
  assert.equal(err.code, 'ERR_RESOURCE_LIMIT');
  // The peer, reading again, finds its link closed after what the system had taken.
  peer.channel.resumeReading();
  await until(() => peer.channel.closed, 'the peer to see its link closed', 15_000);
  await until(() => core.memoryCap.queuedBytes() === 0, 'nothing held any more');
  assert.equal(core.links.circuitsOf(link).size, 0);
});

test('each open link, circuit and stream counts its state (stateBytes); state alone frees nothing and is no event', { timeout: 20_000 }, async (t) => {
  const state = { link: 1000, circuit: 100, stream: 10 };
  // A destination that accepts and never sends: the streams hold no bytes.
  const { port: quiet } = await tcpServer(t, () => {});
  // Under what the state of one link with three circuits and two streams adds up to.
  const { core, peer } = await exitAndPeer(t, { capBytes: 500, lowWaterBytes: 0, checkIntervalMs: 0, stateBytes: state }, '127.0.0.9');
  const circs = [await peer.create(), await peer.create(), await peer.create()];
  for (const streamId of [1, 2]) peer.sendRelay(circs[0]!, RelayCommand.BEGIN, streamId, encodeBegin({ host: '127.0.0.1', port: quiet, flags: 0 }));
  const connected = () => peer.received.filter((c) => cellCircuitId(c) === circs[0]!.id && c[4] === ChannelCommand.RELAY).length;
  await until(() => connected() === 2, 'both streams to be connected');
  const expected = state.link + 3 * state.circuit + 2 * state.stream;
  await until(() => core.memoryCap.queuedBytes() === expected, `the accounted total to be ${expected} (is ${core.memoryCap.queuedBytes()})`);
  // Over the cap, but nothing holds data: nothing is freed and it is not an event.
  assert.equal(core.memoryCap.check(), 0);
  const stats = core.memoryCap.stats();
  assert.equal(stats.queuedBytes, expected);
  assert.equal(stats.oomEvents, 0);
  assert.equal(stats.circuitsFreed, 0);
  assert.equal(peer.channel.closed, false);
  assert.equal(core.links.openLinks().length, 1);
});

test('a link that becomes congested makes the cap look at once, not at its next tick', { timeout: 30_000 }, async (t) => {
  const hose = await firehose(t);
  // A timer that never fires within the test: only a link's congestion can start the check.
  const { core, peer } = await exitAndPeer(t, { capBytes: 64 * 1024, lowWaterBytes: 0, checkIntervalMs: 600_000, stateBytes: NO_STATE, bufferOverhead: 0 }, '127.0.0.10');
  const circs: PeerCircuit[] = [];
  for (let i = 0; i < 12; i++) circs.push(await peer.create());
  for (const circ of circs) for (const streamId of [1, 2]) peer.sendRelay(circ, RelayCommand.BEGIN, streamId, encodeBegin({ host: '127.0.0.1', port: hose, flags: 0 }));
  peer.channel.pauseReading();
  await until(() => core.memoryCap.stats().oomEvents >= 1, 'the cap to act on the congested link', 20_000);
  const stats = core.memoryCap.stats();
  assert.ok(stats.circuitsFreed + stats.linksClosed >= 1, JSON.stringify(stats));
  assert.ok(stats.bytesFreed > 0);
});

test('garbage not yet collected counts toward the cap: over it by garbage alone, a collection is asked for and nothing freed; when none can be had, the oldest data is freed; under the low-water mark none is asked for', { timeout: 40_000 }, async (t) => {
  const hose = await firehose(t);
  // ArrayBuffer bytes as the cap sees them: what it holds (its count, all of it held bytes here) plus `extra`,
  // so the garbage the cap finds is exactly what the test adds.
  const relay = async (collect: () => boolean, address: string) => {
    let extra = 0;
    let core: RelayCore | null = null;
    const opts: MemoryCapOptions = {
      capBytes: 4 * 1024 * 1024,
      lowWaterBytes: 3 * 1024 * 1024,
      checkIntervalMs: 0,
      gcMarginBytes: 256 * 1024,
      gcIntervalMs: 600_000,
      collectGarbage: collect,
      arrayBufferBytes: () => core!.memoryCap.queuedBytes() + extra,
      stateBytes: NO_STATE,
      bufferOverhead: 0,
    };
    const made = await exitAndPeer(t, opts, address);
    core = made.core;
    const circs: PeerCircuit[] = [];
    for (let i = 0; i < 12; i++) circs.push(await made.peer.create());
    for (const circ of circs) for (const streamId of [1, 2]) made.peer.sendRelay(circ, RelayCommand.BEGIN, streamId, encodeBegin({ host: '127.0.0.1', port: hose, flags: 0 }));
    made.peer.channel.pauseReading();
    // Stuck: its link queue at the relay fills to the high-water mark and stays there, well under the cap.
    await until(() => core!.memoryCap.queuedBytes() > 150 * 1024, 'the stuck client to back up', 20_000);
    return { core, peer: made.peer, setExtra: (bytes: number) => (extra = bytes) };
  };

  let collections = 0;
  const a = await relay(() => (collections++, true), '127.0.0.11');
  // The first check measures the floor: no garbage.
  assert.equal(a.core.memoryCap.check(), 0);
  assert.equal(a.core.memoryCap.stats().garbageBytes, 0);
  // 2 MiB of garbage (8 times the margin) with the total under the low-water mark: counted, not collected.
  a.setExtra(2 * 1024 * 1024);
  assert.equal(a.core.memoryCap.check(), 0);
  assert.equal(a.core.memoryCap.stats().garbageBytes, 2 * 1024 * 1024);
  assert.equal(collections, 0);
  // Garbage that takes the total over the cap while the count alone is under it: a collection, nothing freed.
  a.setExtra(4 * 1024 * 1024);
  assert.ok(a.core.memoryCap.queuedBytes() < 4 * 1024 * 1024);
  assert.equal(a.core.memoryCap.check(), 0);
  assert.equal(collections, 1);
  let stats = a.core.memoryCap.stats();
  assert.equal(stats.collections, 1);
  assert.equal(stats.oomEvents, 0);
  assert.equal(stats.circuitsFreed + stats.linksClosed, 0);
  assert.equal(a.peer.channel.closed, false);
  // After the collection the floor is measured again: what is still there is the relay's own, not garbage.
  assert.equal(a.core.memoryCap.check(), 0);
  assert.equal(a.core.memoryCap.stats().garbageBytes, 0);

  // A runtime where no collection can be had: the same garbage makes the cap free what holds the oldest data.
  const b = await relay(() => false, '127.0.0.12');
  assert.equal(b.core.memoryCap.check(), 0);
  b.setExtra(4 * 1024 * 1024);
  assert.ok(b.core.memoryCap.check() > 0);
  stats = b.core.memoryCap.stats();
  assert.equal(stats.oomEvents, 1);
  assert.equal(stats.collections, 0);
  assert.ok(stats.circuitsFreed + stats.linksClosed >= 1, JSON.stringify(stats));
});

test('each byte held in buffers counts with the allocator\'s share on top (bufferOverhead)', { timeout: 30_000 }, async (t) => {
  const hose = await firehose(t);
  const { core, peer } = await exitAndPeer(t, { capBytes: 1024 ** 3, checkIntervalMs: 0, stateBytes: NO_STATE, bufferOverhead: 0.5 }, '127.0.0.13');
  const circs: PeerCircuit[] = [];
  // Circuits whose windows together hold more than the kernel's socket buffers between us and the relay.
  for (let i = 0; i < 12; i++) circs.push(await peer.create());
  for (const circ of circs) for (const streamId of [1, 2]) peer.sendRelay(circ, RelayCommand.BEGIN, streamId, encodeBegin({ host: '127.0.0.1', port: hose, flags: 0 }));
  peer.channel.pauseReading();
  /** What the relay holds in buffers now: its links' held bytes and its circuits' streams'. */
  const held = () => {
    let bytes = 0;
    for (const link of core.links.openLinks()) {
      bytes += link.heldBytes;
      for (const slot of core.links.circuitsOf(link).all()) if (slot.side === 'prev') bytes += slot.circuit.streamBytes();
    }
    return bytes;
  };
  await until(() => held() > 100 * 1024, 'the stuck client to back up', 20_000);
  // Read in the same turn, so nothing moves between them.
  const bytes = held();
  assert.equal(core.memoryCap.queuedBytes(), bytes + Math.floor(bytes * 0.5));
  assert.throws(() => new MemoryCap(core.links, { bufferOverhead: -1, checkIntervalMs: 0 }), RangeError);
});
