/**
 * Half-close and the ends of streams, in one process but with every real
 * part: a SOCKS port, a client circuit through three relay cores (real Noise
 * links and tor1 layers over in-memory pairs), the exit's real TCP sockets to
 * a destination on 127.0.0.1 (docs/protocol.md §6.4, §6.7, §12).
 *
 * - negotiation: BEGIN asks (bit 32), CONNECTED answers; a client that does
 *   not ask, and an exit that does not answer, end streams Tor's way (END);
 * - both directions close independently, bytes counted exactly;
 * - END DONE from a client without half-close: the destination still gets
 *   every byte, then its FIN; the exit then reads and drops, never resets;
 * - afterwards no stream, socket or timer is left anywhere in the process.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { RelayCommand } from '../../src/cell/relay-cell.js';
import { BeginFlag, encodeConnected } from '../../src/cell/stream-messages.js';
import { EndReason } from '../../src/cell/reasons.js';
import { startSocksServer, type SocksServer } from '../../client/socks/server.js';
import { memoryCircuit, memoryNetwork, type MemoryNetwork } from '../support/memory-network.js';
import { payloadBytes } from '../support/payload-server.js';
import { clientAgainstFake, destination, until, within } from './harness.js';
import { assertReset, drainSocket, portsOf, socksConnect, writeAll } from './e2e-support.js';
import type { OriginCircuit } from '../../client/origin-circuit.js';
import type { Channel } from '../../src/link/channel.js';
import { congestionControlFlow } from '../../src/circuit/cc-negotiation.js';
import { DEFAULT_CONGESTION_PARAMS } from '../../src/flow/cc-params.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Handles and timers of the process, by kind (what `process.getActiveResourcesInfo()` lists). */
function resources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo()) counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

interface World {
  network: MemoryNetwork;
  circuit: OriginCircuit;
  channel: Channel;
  socks: SocksServer;
  /** Streams the SOCKS port opens ask for half-close unless this is false. */
  halfClose: { on: boolean };
}

async function world(t: TestContext): Promise<World> {
  const network = memoryNetwork(3);
  t.after(() => network.cleanup());
  const { circuit, channel } = await memoryCircuit(network.relays);
  t.after(() => channel.destroy());
  const halfClose = { on: true };
  const socks = await startSocksServer({
    port: 0,
    connect: (request, _signal, earlyData) =>
      circuit.openStream(request.host, request.port, 5000, { halfClose: halfClose.on, ...(earlyData !== undefined ? { earlyData } : {}) }),
  });
  t.after(() => socks.close());
  return { network, circuit, channel, socks, halfClose };
}

async function app(w: World, port: number): Promise<Socket> {
  const { reply, socket } = await socksConnect(w.socks.address.port, '127.0.0.1', port, { timeoutMs: 5000 });
  assert.equal(reply, 0);
  return socket;
}

test('half-close both ways, exact bytes; without the extension streams end as before; nothing is left behind', { timeout: 60_000 }, async (t) => {
  const w = await world(t);
  const exitStats = () => w.network.relays[2]!.stats();
  // Everything that lives for the whole test is up: what the streams add must go away again.
  const before = resources();

  await t.test('the application half-closes: the request and its EOF reach the destination, the 1 MiB answer comes back', async () => {
    const answer = payloadBytes(1024 * 1024, 'hc1');
    const dest = await destination(t, (s) => {
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      s.on('end', () => s.end(Buffer.concat([Buffer.from(`${Buffer.concat(chunks).length}\n`), answer])));
    });
    const socket = await app(w, dest.port);
    socket.end(payloadBytes(300_000, 'req'));
    const got = await drainSocket(socket);
    assert.equal(got.error, null);
    assert.equal(got.data.subarray(0, 7).toString(), '300000\n');
    assert.equal(sha256(got.data.subarray(7)), sha256(answer));
  });

  await t.test('the destination half-closes first: its FIN reaches the application, whose 200 KB still reach the destination', async () => {
    let received = 0;
    let resolveEnd!: () => void;
    const ended = new Promise<void>((resolve) => (resolveEnd = resolve));
    const dest = await destination(t, (s) => {
      s.end('banner\n');
      s.on('data', (c: Buffer) => (received += c.length));
      s.on('end', () => {
        resolveEnd();
        s.destroy();
      });
    });
    const socket = await app(w, dest.port);
    const banner = await drainSocket(socket);
    assert.equal(banner.data.toString(), 'banner\n');
    await writeAll(socket, payloadBytes(200_000, 'late'));
    socket.end();
    await within(ended, "the application's EOF at the destination");
    assert.equal(received, 200_000);
  });

  await t.test('a client that does not ask for half-close ends with END DONE: the destination gets every byte and a FIN, the answer is lost as in Tor', async () => {
    w.halfClose.on = false;
    try {
      let resolveSeen!: (n: number) => void;
      const seen = new Promise<number>((resolve) => (resolveSeen = resolve));
      const dest = await destination(t, (s) => {
        let n = 0;
        s.on('data', (c: Buffer) => (n += c.length));
        s.on('end', () => {
          resolveSeen(n);
          // Answering after the FIN: the exit reads and drops, and closes without a reset.
          s.write('too late\n', () => s.end());
        });
      });
      const socket = await app(w, dest.port);
      const reading = drainSocket(socket);
      socket.end(payloadBytes(100_000, 'old'));
      assert.equal(await within(seen, 'the request at the destination'), 100_000);
      const got = await reading;
      assert.equal(got.error, null);
      assert.equal(got.data.length, 0);
      await until(() => dest.sockets.size === 0, 'the destination socket to close');
    } finally {
      w.halfClose.on = true;
    }
  });

  await t.test('the link under the circuit is lost mid-download: the application gets a reset, never a clean EOF', async () => {
    const dest = await destination(t, (s) => s.write(payloadBytes(2 * 1024 * 1024, 'lost')));
    const socket = await app(w, dest.port);
    const ports = portsOf(socket);
    const reading = drainSocket(socket);
    await until(() => socket.bytesRead > 0, 'the first bytes');
    w.channel.destroy();
    const got = await reading;
    assertReset(ports, got, `after ${got.data.length} bytes`);
    await until(() => dest.sockets.size === 0, "the exit to drop the destination's connection");
  });

  await t.test('afterwards: no stream at any relay or at the client, no socket and no timer left in the process', async () => {
    await until(() => w.network.relays.every((r) => r.stats().streams === 0), 'every relay to forget its streams');
    assert.equal(w.circuit.streamCount, 0);
    assert.equal(exitStats().streamsOpened, 4);
    await until(() => {
      const now = resources();
      return ['TCPSocketWrap', 'Timeout'].every((kind) => (now.get(kind) ?? 0) <= (before.get(kind) ?? 0));
    }, 'sockets and timers to go back to what they were', 15_000).catch((error: Error) => {
      throw new Error(`${error.message}: before ${JSON.stringify([...before])}, now ${JSON.stringify([...resources()])}`);
    });
  });
});

test('the client uses half-close only when the exit agreed in CONNECTED; end() sends FIN or END DONE accordingly', { timeout: 20_000 }, async (t) => {
  const c = await clientAgainstFake(t);
  const victim = await c.build();
  // Agreed: FIN, and the stream still reads.
  const agreed = await c.open(victim, { flags: BeginFlag.HALF_CLOSE });
  const begin1 = victim.fc.messages.find((m) => m.command === RelayCommand.BEGIN && m.streamId === agreed.streamId)!;
  assert.equal(new DataView(begin1.data.buffer, begin1.data.byteOffset).getUint32(begin1.data.length - 4), BeginFlag.HALF_CLOSE, 'BEGIN asks for half-close');
  assert.equal(agreed.stream.halfClose, true);
  agreed.stream.end();
  await c.fake.until(() => victim.fc.messages.some((m) => m.streamId === agreed.streamId && m.command === RelayCommand.FIN), 'FIN');
  c.fake.sendRelay(victim.fc, RelayCommand.DATA, agreed.streamId, new TextEncoder().encode('still reading'));
  c.fake.sendRelay(victim.fc, RelayCommand.FIN, agreed.streamId);
  const got = await within(
    new Promise<string>((resolve) => {
      let text = '';
      agreed.stream.on('data', (b: Buffer) => (text += b.toString()));
      agreed.stream.on('end', () => resolve(text));
    }),
    'the answer after our FIN',
  );
  assert.equal(got, 'still reading');
  await until(() => agreed.stream.destroyed, 'the stream to close after FIN both ways');
  assert.equal(agreed.stream.endReason, EndReason.DONE);
  assert.equal(victim.fc.messages.filter((m) => m.streamId === agreed.streamId && m.command === RelayCommand.END).length, 0, 'no END after FIN both ways');
  // Not agreed (an exit without the extension): END DONE, both ways at once.
  const old = await c.open(victim);
  assert.equal(old.stream.halfClose, false);
  old.stream.end();
  await c.fake.until(() => victim.fc.messages.some((m) => m.streamId === old.streamId && m.command === RelayCommand.END), 'END');
  const end = victim.fc.messages.find((m) => m.streamId === old.streamId && m.command === RelayCommand.END)!;
  assert.equal(end.data[0], EndReason.DONE);
  assert.equal(victim.fc.messages.some((m) => m.streamId === old.streamId && m.command === RelayCommand.FIN), false);
  // A client told not to ask sends BEGIN without the flag.
  const plain = victim.circuit.openStream('127.0.0.1', 80, 5000, { halfClose: false });
  const begin = await c.nextBegin(victim.fc);
  assert.equal(begin.data[begin.data.length - 1], 0, 'BEGIN without flags ends with the NUL');
  c.fake.sendRelay(victim.fc, RelayCommand.CONNECTED, begin.streamId, encodeConnected('127.0.0.1'));
  (await plain).destroy();
  assert.equal(victim.circuit.closed, false);
});

test('END after CONNECTED, every reason: DONE gives the application every byte and a clean EOF, any other reason a reset', { timeout: 30_000 }, async (t) => {
  const c = await clientAgainstFake(t);
  const victim = await c.build();
  let next: Promise<number> = Promise.resolve(0);
  const socks = await startSocksServer({
    port: 0,
    connect: async () => {
      const opening = victim.circuit.openStream('127.0.0.1', 80, 5000);
      const begin = await c.nextBegin(victim.fc);
      c.fake.sendRelay(victim.fc, RelayCommand.CONNECTED, begin.streamId, encodeConnected('127.0.0.1', 300, BeginFlag.HALF_CLOSE));
      next = Promise.resolve(begin.streamId);
      return opening;
    },
  });
  t.after(() => socks.close());
  const reasons = [...Object.values(EndReason), 0, 15, 200, 255];
  for (const reason of reasons) {
    const { reply, socket } = await socksConnect(socks.address.port, 'example.com', 80, { timeoutMs: 5000 });
    assert.equal(reply, 0);
    const streamId = await next;
    const ports = portsOf(socket);
    const reading = drainSocket(socket, 5000);
    c.fake.sendRelay(victim.fc, RelayCommand.DATA, streamId, new TextEncoder().encode('abc'));
    c.fake.sendRelay(victim.fc, RelayCommand.END, streamId, Uint8Array.of(reason));
    const got = await reading;
    if (reason === EndReason.DONE) {
      assert.equal(got.error, null, 'DONE: a clean EOF');
      assert.equal(got.data.toString(), 'abc');
    } else {
      assertReset(ports, got, `reason ${reason}: a reset`);
    }
    socket.destroy();
  }
  assert.equal(victim.circuit.closed, false, 'the circuit carried every one of them');
  await until(() => victim.circuit.streamCount === 0, 'the streams to be forgotten');
});

test('on a congestion-controlled hop a FIN needs no XON: the reader that stopped the far end (XOFF) says nothing more after its FIN', { timeout: 30_000 }, async (t) => {
  const c = await clientAgainstFake(t);
  const params = DEFAULT_CONGESTION_PARAMS;
  const victim = await c.build({ flow: congestionControlFlow(params, 'client') });
  const opening = victim.circuit.openStream('127.0.0.1', 80, 10_000);
  const begin = await c.nextBegin(victim.fc);
  c.fake.sendRelay(victim.fc, RelayCommand.CONNECTED, begin.streamId, encodeConnected('127.0.0.1', 300, BeginFlag.HALF_CLOSE));
  const stream = await opening;
  assert.equal(stream.halfClose, true);
  // A second stream, whose DATA shows (by the circuit SENDMEs it draws) that the client has handled every cell before it.
  const other = await c.open(victim);
  other.stream.resume();
  const sent = (command: number, streamId = begin.streamId) =>
    victim.fc.messages.filter((m) => m.streamId === streamId && m.command === command).length;
  // The application does not read: past cc_xoff_client cells the client says XOFF.
  const cells = params.xoffClientBytes / 498 + 20;
  for (let i = 0; i < cells; i++) c.fake.sendRelay(victim.fc, RelayCommand.DATA, begin.streamId, new Uint8Array(498).fill(i & 0xff));
  await c.fake.until(() => sent(RelayCommand.XOFF) === 1, 'the XOFF');
  c.fake.sendRelay(victim.fc, RelayCommand.FIN, begin.streamId);
  const inc = params.sendmeInc;
  for (let i = 0; i < inc; i++) c.fake.sendRelay(victim.fc, RelayCommand.DATA, other.streamId, new Uint8Array(498));
  const due = Math.floor((cells + inc) / inc);
  await c.fake.until(() => sent(RelayCommand.SENDME, 0) === due, 'the circuit SENDMEs after the FIN');
  // Now it reads everything, and its readable side ends; the far end has finished sending, so no XON.
  let received = 0;
  stream.on('data', (chunk: Buffer) => (received += chunk.length));
  await within(new Promise((resolve) => stream.once('end', resolve)), 'the end of the readable side');
  assert.equal(received, cells * 498);
  // The stream's writing side still works (half-close), and its DATA goes out after the reads.
  stream.write(Buffer.from('still talking'));
  await c.fake.until(() => sent(RelayCommand.DATA) === 1, 'DATA after the peer FIN');
  assert.equal(sent(RelayCommand.XON), 0, 'no XON after the FIN');
  assert.equal(sent(RelayCommand.SENDME), 0, 'no stream SENDME on a congestion-controlled hop');
  assert.equal(victim.circuit.closed, false);
  stream.destroy();
});
