/**
 * The relay's DoS defences (relay/dos.ts, docs/protocol.md §3.6) over real
 * TCP on loopback: one address (127.0.0.3) opens 100 links and floods
 * CREATE2; the relay refuses past the configured limits with the documented
 * answers (connection closed; DESTROY RESOURCELIMIT), counts each refusal,
 * and a client on another address (127.0.0.2) builds a circuit through the
 * same relay and carries data all along. The limiters themselves are checked
 * exactly with an injected clock.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { ChannelCommand, cellCircuitId } from '../../src/cell/channel-cell.js';
import { encodeCreate2 } from '../../src/cell/create2.js';
import { DestroyReason, EndReason } from '../../src/cell/reasons.js';
import { RelayCommand } from '../../src/cell/relay-cell.js';
import { encodeBegin } from '../../src/cell/stream-messages.js';
import { HANDSHAKE_TYPE_NTOR_V3 } from '../../src/constants.js';
import type { Channel } from '../../src/link/channel.js';
import { LinkManager } from '../../src/link/link-manager.js';
import { TcpTransport } from '../../src/link/transport.js';
import { ConcurrencyLimiter, RateLimiter, TokenBucket } from '../../src/net/limits.js';
import { OriginCircuit } from '../../client/origin-circuit.js';
import { DosGuard, type DosOptions } from '../../relay/dos.js';
import { HostilePeer, tcpRelay, tcpServer, type TcpRelay } from '../adversarial/hostile-peer.js';

const WAIT_MS = 5000;

test('TokenBucket: starts full, refills at its rate, never above its burst', () => {
  const b = new TokenBucket(2, 3, 0);
  assert.deepEqual([b.take(0), b.take(0), b.take(0), b.take(0)], [true, true, true, false]);
  assert.equal(b.take(499), false);
  assert.equal(b.take(500), true); // 2/s: one token per 500 ms
  assert.equal(b.tokens(100_000), 3);
  assert.throws(() => new TokenBucket(0, 1, 0), { code: 'ERR_CONFIG' });
});

test('RateLimiter: one bucket per key, the table bounded (least recently used forgotten)', () => {
  let now = 0;
  const r = new RateLimiter({ rate: 1, burst: 2, maxKeys: 3, now: () => now });
  assert.deepEqual([r.take('a'), r.take('a'), r.take('a')], [true, true, false]);
  assert.equal(r.take('b'), true);
  now = 1000;
  assert.equal(r.take('a'), true);
  assert.equal(r.take('a'), false);
  r.take('c');
  r.take('d'); // forgets 'b', the least recently used
  assert.equal(r.size, 3);
});

test('ConcurrencyLimiter: refuses past max per key, forgets keys with nothing open', () => {
  const c = new ConcurrencyLimiter(2);
  assert.deepEqual([c.acquire('x'), c.acquire('x'), c.acquire('x'), c.acquire('y')], [true, true, false, true]);
  c.release('x');
  assert.equal(c.acquire('x'), true);
  c.release('x');
  c.release('x');
  c.release('y');
  assert.equal(c.size, 0);
});

test('DosGuard: circuit creation is limited only for an address holding circuitMinLinks links; BEGIN per circuit; counters', () => {
  let now = 0;
  const dos = new DosGuard({ circuitRate: 1, circuitBurst: 2, circuitMinLinks: 2, beginRate: 1, beginBurst: 1, maxStreamsPerCircuit: 3, maxLinksPerAddress: 3, now: () => now });
  const link = {} as Channel;
  dos.tagLink(link, '192.0.2.1');
  assert.ok(dos.admitLink('192.0.2.1'));
  for (let i = 0; i < 10; i++) assert.ok(dos.admitCreate(link), 'one link: not limited');
  assert.ok(dos.admitLink('192.0.2.1'));
  assert.deepEqual([dos.admitCreate(link), dos.admitCreate(link), dos.admitCreate(link)], [true, true, false]);
  now = 1000;
  assert.ok(dos.admitCreate(link));
  assert.ok(dos.admitLink('192.0.2.1'));
  assert.equal(dos.admitLink('192.0.2.1'), false);
  assert.ok(dos.admitCreate({} as Channel), 'a link we dialled is never limited');
  const circuit = {};
  assert.deepEqual([dos.admitBegin(circuit, 0), dos.admitBegin(circuit, 0), dos.admitBegin(circuit, 3)], ['ok', 'rate', 'streams']);
  assert.deepEqual(dos.stats(), { linksRefused: 1, circuitsRefused: 1, beginsRefused: 1, streamsRefused: 1, addressesWithLinks: 1 });
});

/** An exit on TCP loopback with the DoS limits `dos`. */
const dosRelay = (t: TestContext, dos: DosOptions): Promise<TcpRelay> => tcpRelay(t, { exit: true, dialTimeoutMs: WAIT_MS, dos });

/** An echo server on 127.0.0.1 (the exit's destination). */
async function echoServer(t: TestContext): Promise<number> {
  const { port } = await tcpServer(t, (socket) => socket.pipe(socket));
  return port;
}

/** A real client (OriginCircuit) from `localAddress`: a one-hop circuit to the relay, exiting to the echo server. */
async function honestClient(t: TestContext, relay: TcpRelay, localAddress: string, echoPort: number): Promise<() => Promise<void>> {
  const links = new LinkManager<OriginCircuit>({
    transport: new TcpTransport({ localAddress }),
    handler: { onCircuitCell: (slot, cell) => slot.circuit.receive(cell), onLinkClosed: (slot) => slot.circuit.linkClosed() },
    dialTimeoutMs: WAIT_MS,
  });
  t.after(() => links.destroy());
  const channel = await links.get({ address: '127.0.0.1', port: relay.port, identity: relay.info.identity, linkKey: relay.info.linkKey });
  let round = 0;
  return async () => {
    const circuit = await OriginCircuit.build(channel, links.circuitsOf(channel), [relay.info], WAIT_MS);
    const stream = await circuit.openStream('127.0.0.1', echoPort, WAIT_MS);
    const message = Buffer.from(`round ${++round}: ${'x'.repeat(2000)}`);
    const got: Buffer[] = [];
    let length = 0;
    const done = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('echo did not come back')), WAIT_MS);
      stream.on('data', (chunk: Buffer) => {
        got.push(chunk);
        length += chunk.length;
        if (length >= message.length) {
          clearTimeout(timer);
          resolve();
        }
      });
      stream.on('error', reject);
    });
    stream.write(message);
    await done;
    assert.deepEqual(Buffer.concat(got), message);
    stream.destroy();
    circuit.destroy(DestroyReason.REQUESTED, 'done');
  };
}

/** Open `count` TCP connections from `localAddress`; resolves with the ones the relay keeps open past a short wait. */
async function openMany(relay: TcpRelay, localAddress: string, count: number): Promise<{ open: Socket[]; closed: number }> {
  const sockets = await Promise.all(
    Array.from({ length: count }, async () => {
      const socket = connect({ host: '127.0.0.1', port: relay.port, localAddress });
      socket.on('error', () => {});
      await once(socket, 'connect');
      return socket;
    }),
  );
  // A refused connection is closed at once by the relay; give that time to arrive.
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline && relay.core.dos.stats().linksRefused < count - relay.core.dos.options.maxLinksPerAddress) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  await new Promise((resolve) => setTimeout(resolve, 100));
  const open = sockets.filter((s) => !s.destroyed && !s.readableEnded);
  for (const s of sockets) if (!open.includes(s)) s.destroy();
  return { open, closed: count - open.length };
}

test('100 links from one address: past the per-address limit the relay closes them at once; the bystander on another address is served', { timeout: 30_000 }, async (t) => {
  const relay = await dosRelay(t, { maxLinksPerAddress: 20 });
  const echoPort = await echoServer(t);
  const bystander = await honestClient(t, relay, '127.0.0.2', echoPort);
  await bystander();
  const { open, closed } = await openMany(relay, '127.0.0.3', 100);
  t.after(() => open.forEach((s) => s.destroy()));
  assert.equal(open.length, 20);
  assert.equal(closed, 80);
  assert.equal(relay.core.dos.stats().linksRefused, 80);
  await bystander();
  // Closing the attacker's connections frees its slots.
  for (const s of open) s.destroy();
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline && relay.core.dos.stats().addressesWithLinks > 1) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(relay.core.dos.stats().addressesWithLinks, 1, 'only the bystander holds links');
  const again = await HostilePeer.connect(t, relay.from('127.0.0.3'));
  assert.equal(again.channel.closed, false);
});

test('a CREATE2 flood over many links from one address: past the burst DESTROY RESOURCELIMIT, the rate still admits; a client elsewhere keeps building circuits and carrying data', { timeout: 30_000 }, async (t) => {
  const relay = await dosRelay(t, { maxLinksPerAddress: 20, circuitRate: 5, circuitBurst: 10, circuitMinLinks: 3 });
  const echoPort = await echoServer(t);
  const bystander = await honestClient(t, relay, '127.0.0.2', echoPort);
  // 100 links from 127.0.0.3: 20 are kept, and handshake.
  const attempts = await Promise.allSettled(Array.from({ length: 100 }, () => HostilePeer.connect(null, relay.from('127.0.0.3'))));
  const peers = attempts.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
  t.after(() => peers.forEach((p) => p.channel.destroy()));
  assert.equal(peers.length, 20);
  assert.equal(relay.core.dos.stats().linksRefused, 80);
  // As fast as we can: 10 CREATE2 on each link, 200 in all, with one genuine onionskin.
  const started = Date.now();
  const { onionskin } = peers[0]!.onionskin();
  const body = encodeCreate2({ handshakeType: HANDSHAKE_TYPE_NTOR_V3, handshakeData: onionskin });
  const sent = new Map<HostilePeer, number[]>();
  for (const peer of peers) {
    const ids = Array.from({ length: 10 }, () => peer.freshId());
    sent.set(peer, ids);
    for (const id of ids) peer.sendCell(id, ChannelCommand.CREATE2, body);
  }
  // While the flood is answered, the bystander builds circuits and moves data.
  await bystander();
  const deadline = Date.now() + 15_000;
  const answered = () => peers.reduce((n, p) => n + p.received.length, 0);
  while (answered() < 200 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  const elapsed = (Date.now() - started) / 1000;
  assert.equal(answered(), 200, 'every CREATE2 answered');
  let created = 0;
  let refused = 0;
  for (const peer of peers) {
    for (const cell of peer.received) {
      assert.ok(sent.get(peer)!.includes(cellCircuitId(cell)));
      if (cell[4] === ChannelCommand.CREATED2) created++;
      else {
        assert.deepEqual([cell[4], cell[5]], [ChannelCommand.DESTROY, DestroyReason.RESOURCELIMIT]);
        refused++;
      }
    }
  }
  // The burst (10) plus what the rate (5/s) refilled while the flood was answered; the first links
  // to finish their handshake may also get in before the address reached circuitMinLinks.
  assert.ok(created >= 10 && created <= 10 + 5 * elapsed + 2 * 10 + 1, `created ${created} in ${elapsed.toFixed(2)} s`);
  assert.equal(refused, 200 - created);
  assert.equal(relay.core.dos.stats().circuitsRefused, refused);
  await bystander();
  // The links themselves live on: a refused circuit is the circuit's business, not the link's.
  assert.ok(peers.every((p) => !p.channel.closed));
});

test('BEGIN past the per-circuit rate at an exit: END RESOURCELIMIT on that stream only; the circuit lives', { timeout: 20_000 }, async (t) => {
  const relay = await dosRelay(t, { beginRate: 1, beginBurst: 3 });
  const echoPort = await echoServer(t);
  const peer = await HostilePeer.connect(t, relay.from('127.0.0.4'));
  const circ = await peer.create();
  const begin = encodeBegin({ host: '127.0.0.1', port: echoPort, flags: 0 });
  for (let s = 1; s <= 6; s++) peer.sendRelay(circ, RelayCommand.BEGIN, s, begin);
  const replies = new Map<number, number>();
  for (let i = 0; i < 6; i++) {
    const cell = await peer.relay(circ, 'CONNECTED or END');
    replies.set(cell.streamId, cell.command === RelayCommand.END ? -cell.data[0]! : cell.command);
  }
  assert.deepEqual([...replies.entries()].sort((a, b) => a[0] - b[0]), [
    [1, RelayCommand.CONNECTED],
    [2, RelayCommand.CONNECTED],
    [3, RelayCommand.CONNECTED],
    [4, -EndReason.RESOURCELIMIT],
    [5, -EndReason.RESOURCELIMIT],
    [6, -EndReason.RESOURCELIMIT],
  ]);
  assert.equal(relay.core.dos.stats().beginsRefused, 3);
  assert.equal(peer.channel.closed, false);
  assert.equal(peer.pending(circ.id).some((c) => c[4] === ChannelCommand.DESTROY), false);
});

test('a connection that never finishes its link handshake is closed after dos.handshakeTimeoutMs (default 10 s); a client that handshakes is served', { timeout: 20_000 }, async (t) => {
  const relay = await tcpRelay(t, { dos: { handshakeTimeoutMs: 300 } });
  const silent = connect({ host: '127.0.0.1', port: relay.port });
  silent.on('error', () => {});
  await once(silent, 'connect');
  const started = Date.now();
  const closed = await Promise.race([once(silent, 'close').then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000))]);
  const elapsed = Date.now() - started;
  silent.destroy();
  assert.equal(closed, true, 'the relay closes a connection that sends nothing within 5 s when told 300 ms (by default it waits 10 s)');
  assert.ok(elapsed >= 250, `closed after ${elapsed} ms: by the timeout, not at once`);
  // A client that does handshake is not hurried: its link opens and carries a circuit.
  const peer = await HostilePeer.connect(t, relay.from('127.0.0.1'));
  const circ = await peer.create();
  assert.ok(circ.id > 0);
});
