/**
 * Events and stats (src/events.ts): a client and three relays in memory over
 * real Noise links. Building, using and destroying one circuit publishes
 * `allium:circuit:built` / `allium:circuit:destroyed` at every hop and
 * `allium:stream:open` / `allium:stream:close` at both ends, with relay cell
 * counts that match the cells seen on the client's link and add up hop by
 * hop, and byte counts that match what the stream carried.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Channel } from '../../src/link/channel.js';
import { ChannelCircuits } from '../../src/circuit/circuit-ids.js';
import { CircuitStatsRecorder } from '../../src/circuit/circuit-stats.js';
import { ChannelCommand, cellCircuitId, cellCommand } from '../../src/cell/channel-cell.js';
import { DestroyReason, EndReason } from '../../src/cell/reasons.js';
import { crypto } from '../../src/crypto/crypto.js';
import {
  subscribe,
  type AlliumEventName,
  type AlliumEvents,
  type CircuitBuiltEvent,
  type CircuitDestroyedEvent,
  type StreamCloseEvent,
  type StreamOpenEvent,
} from '../../src/events.js';
import { OriginCircuit } from '../../client/origin-circuit.js';
import { memoryNetwork, type MemoryRelay } from '../support/memory-network.js';
import { echoServer } from '../support/echo-server.js';
import { duplexPair } from '../support/duplex-pair.js';
import { until, within } from '../support/edge-pair.js';

function record<N extends AlliumEventName>(t: TestContext, name: N): Array<AlliumEvents[N]> {
  const events: Array<AlliumEvents[N]> = [];
  t.after(subscribe(name, (e) => events.push(e)));
  return events;
}

const isRelayCell = (cell: Uint8Array) => cellCommand(cell) === ChannelCommand.RELAY || cellCommand(cell) === ChannelCommand.RELAY_EARLY;

/** An anonymous client link to `guard` that counts the relay cells it sends and receives, and its circuit table. */
async function countedLink(t: TestContext, guard: MemoryRelay) {
  const [near, far] = duplexPair();
  guard.accept(far);
  const channel = await Channel.connect(near, { peerLinkKey: guard.info.linkKey, peerIdentity: guard.info.identity, timeoutMs: 5000 });
  t.after(() => channel.destroy());
  const wire = { in: 0, out: 0 };
  const sendCell = channel.sendCell.bind(channel);
  channel.sendCell = (cell: Uint8Array) => {
    if (isRelayCell(cell)) wire.out++;
    return sendCell(cell);
  };
  const table = new ChannelCircuits<OriginCircuit>();
  channel.on('cell', (cell: Uint8Array) => {
    if (isRelayCell(cell)) wire.in++;
    table.get(cellCircuitId(cell))?.circuit.receive(cell);
  });
  return { channel, table, wire };
}

/** A circuit through `relays` over a counted link. */
async function countedCircuit(t: TestContext, relays: MemoryRelay[], stats: CircuitStatsRecorder) {
  const { channel, table, wire } = await countedLink(t, relays[0]!);
  const circuit = await OriginCircuit.build(channel, table, relays.map((r) => r.info), 10_000, { stats });
  return { circuit, channel, wire };
}

test('circuit and stream events fire at every hop with counts that match what was sent', { timeout: 30_000 }, async (t) => {
  const built: CircuitBuiltEvent[] = record(t, 'allium:circuit:built');
  const destroyed: CircuitDestroyedEvent[] = record(t, 'allium:circuit:destroyed');
  const opened: StreamOpenEvent[] = record(t, 'allium:stream:open');
  const closed: StreamCloseEvent[] = record(t, 'allium:stream:close');
  const port = await echoServer(t);
  const network = memoryNetwork(3);
  t.after(() => network.cleanup());
  const relays = network.relays;
  const stats = new CircuitStatsRecorder();
  const { circuit, wire } = await countedCircuit(t, relays, stats);

  // One CREATE2 answered at each relay, in path order, then the client's own event.
  assert.deepEqual(built.map((e) => [e.role, e.hops]), [['relay', 1], ['relay', 1], ['relay', 1], ['origin', 3]]);
  assert.equal(built[3]!.circuitId, circuit.eventId);
  assert.equal(new Set(built.map((e) => e.circuitId)).size, 4);
  const [guardId, middleId, exitId] = built.map((e) => e.circuitId);

  // A stream: 60 000 bytes echoed through the exit, then closed by the client.
  const size = 60_000;
  const stream = await circuit.openStream('127.0.0.1', port, 5000);
  const sent = crypto.randomBytes(size);
  let received = 0;
  stream.on('data', (c: Buffer) => (received += c.length));
  stream.write(sent);
  await until(() => received === size, 10_000, 'echo');
  stream.end();
  await within(once(stream, 'close'), 'client stream closed');
  await until(() => closed.length === 2, 5000, 'both stream:close events');

  assert.deepEqual(opened.map((e) => e.kind).sort(), ['client', 'exit']);
  const client = closed.find((e) => e.kind === 'client')!;
  const exit = closed.find((e) => e.kind === 'exit')!;
  assert.deepEqual(client, { circuitId: circuit.eventId, streamId: stream.streamId, kind: 'client', reason: EndReason.DONE, bytesIn: size, bytesOut: size });
  assert.deepEqual(exit, { circuitId: exitId, streamId: stream.streamId, kind: 'exit', reason: EndReason.DONE, bytesIn: size, bytesOut: size });
  assert.deepEqual(opened.find((e) => e.kind === 'exit'), { circuitId: exitId, streamId: stream.streamId, kind: 'exit' });

  circuit.destroy(DestroyReason.FINISHED, 'done');
  await until(() => destroyed.length === 4, 5000, 'four allium:circuit:destroyed events');
  const at = (id: number | undefined) => destroyed.find((e) => e.circuitId === id)!;
  const origin = at(circuit.eventId);
  assert.deepEqual(
    { ...origin },
    { circuitId: circuit.eventId, role: 'origin', reason: DestroyReason.FINISHED, remote: false, relayCellsIn: wire.in, relayCellsOut: wire.out },
  );
  assert.deepEqual(circuit.relayCells, { in: wire.in, out: wire.out });
  for (const id of [guardId, middleId, exitId]) {
    assert.equal(at(id).role, 'relay');
    assert.equal(at(id).reason, DestroyReason.FINISHED, 'the reason is passed on unchanged');
    assert.equal(at(id).remote, true);
  }
  // Hop by hop: the guard and the middle each answered one EXTEND2 with one EXTENDED2 of their own;
  // every other relay cell passed through.
  const { in: cin, out: cout } = { in: wire.in, out: wire.out };
  assert.deepEqual([at(guardId).relayCellsIn, at(guardId).relayCellsOut], [cout + (cin - 1), (cout - 1) + cin], 'guard');
  assert.deepEqual([at(middleId).relayCellsIn, at(middleId).relayCellsOut], [(cout - 1) + (cin - 2), (cout - 2) + (cin - 1)], 'middle');
  assert.deepEqual([at(exitId).relayCellsIn, at(exitId).relayCellsOut], [cout - 2, cin - 2], 'exit');
  assert.ok(cout > Math.ceil(size / 498) && cin > Math.ceil(size / 498), `cells ${cout}/${cin}`);

  assert.deepEqual(stats.snapshot(), { open: 0, built: 1, destroyed: 1, streams: 0, streamsOpened: 1, streamBytesIn: size, streamBytesOut: size, dirBytesIn: 0, dirBytesOut: 0 });
  assert.deepEqual(relays[2]!.stats(), { open: 0, built: 1, destroyed: 1, streams: 0, streamsOpened: 1, streamBytesIn: size, streamBytesOut: size, dirBytesIn: 0, dirBytesOut: 0 });
  assert.deepEqual(relays[0]!.stats(), { open: 0, built: 1, destroyed: 1, streams: 0, streamsOpened: 0, streamBytesIn: 0, streamBytesOut: 0, dirBytesIn: 0, dirBytesOut: 0 });
});

test('a circuit destroyed by the network reports remote with the reason; a failed build publishes nothing', { timeout: 30_000 }, async (t) => {
  const destroyed: CircuitDestroyedEvent[] = record(t, 'allium:circuit:destroyed');
  const network = memoryNetwork(3);
  t.after(() => network.cleanup());
  const stats = new CircuitStatsRecorder();
  const { circuit } = await countedCircuit(t, network.relays, stats);
  const gone = new Promise<Error>((resolve) => circuit.onClose(resolve));
  network.relays[1]!.inbound[0]!.destroy(); // the guard–middle link
  await within(gone, 'circuit closed');
  const origin = destroyed.find((e) => e.circuitId === circuit.eventId)!;
  assert.equal(origin.remote, true);
  assert.equal(origin.reason, DestroyReason.CHANNEL_CLOSED);
  assert.equal(stats.snapshot().destroyed, 1);

  // A build that fails (the second hop is a relay nobody runs) counts and publishes nothing at the origin.
  const before = destroyed.filter((e) => e.role === 'origin').length;
  const { channel, table } = await countedLink(t, network.relays[0]!);
  const nobody = { ...network.relays[2]!.info, identity: crypto.randomBytes(32) };
  await assert.rejects(OriginCircuit.build(channel, table, [network.relays[0]!.info, nobody], 5000, { stats }));
  assert.equal(destroyed.filter((e) => e.role === 'origin').length, before);
  assert.deepEqual(stats.snapshot(), { open: 0, built: 1, destroyed: 1, streams: 0, streamsOpened: 0, streamBytesIn: 0, streamBytesOut: 0, dirBytesIn: 0, dirBytesOut: 0 });
});
