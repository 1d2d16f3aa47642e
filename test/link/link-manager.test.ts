/**
 * The link manager (src/link/link-manager.ts) over real TCP links on
 * loopback: reuse of an inbound link for an outbound need, one shared dial
 * for concurrent requests, closed links forgotten, link-key mismatch, dial
 * timeout and link limit, demultiplexing by circuit id, and the link events
 * and stats. Dials go through a counting transport that wraps TcpTransport.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { once } from 'node:events';
import type { Duplex } from 'node:stream';
import { nodeCrypto } from '../../src/crypto/crypto.js';
import { ChannelCommand, cellCircuitId, encodeChannelCell } from '../../src/cell/channel-cell.js';
import type { CircuitSlot } from '../../src/circuit/circuit-ids.js';
import { AlliumError } from '../../src/errors.js';
import { subscribe, type LinkCloseEvent, type LinkOpenEvent } from '../../src/events.js';
import type { Channel, LinkIdentity, StaticKey } from '../../src/link/channel.js';
import { LinkManager, probeLink, type LinkCircuitHandler, type LinkTarget } from '../../src/link/link-manager.js';
import { generateKeyPair } from '../../src/link/noise.js';
import { newRelaySigner } from '../../relay/keys.js';
import { TcpTransport, type PeerAddress, type Transport, type TransportConnectOptions } from '../../src/link/transport.js';

const WAIT_MS = 3000;

interface Keys {
  linkKey: StaticKey;
  identity: LinkIdentity;
}

function relayKeys(): Keys {
  const seed = nodeCrypto.randomBytes(32);
  return { linkKey: generateKeyPair(), identity: { identity: nodeCrypto.ed25519PublicKey(seed), signer: newRelaySigner(seed, Date.now(), 86_400_000) } };
}

/** TCP, counting connects: the transport interface is what the manager dials through. */
class CountingTransport implements Transport {
  connects = 0;
  readonly #tcp = new TcpTransport({ localAddress: '127.0.0.1' });
  connect(peer: PeerAddress, opts?: TransportConnectOptions): Promise<Duplex> {
    this.connects++;
    return this.#tcp.connect(peer, opts);
  }
}

/** What a handler saw. */
interface Seen {
  cells: Array<{ circuit: string; cell: Uint8Array }>;
  unknown: Uint8Array[];
  closed: string[];
}

function recordingHandler(): { handler: LinkCircuitHandler<string>; seen: Seen } {
  const seen: Seen = { cells: [], unknown: [], closed: [] };
  return {
    seen,
    handler: {
      onCircuitCell: (slot: CircuitSlot<string>, cell) => seen.cells.push({ circuit: slot.circuit, cell }),
      onUnknownCell: (cell) => seen.unknown.push(cell),
      onLinkClosed: (slot) => seen.closed.push(slot.circuit),
    },
  };
}

/** A relay node: a manager with keys and a TCP listener handing sockets to it. */
async function relayNode(t: TestContext, opts: { maxLinks?: number } = {}) {
  const keys = relayKeys();
  const transport = new CountingTransport();
  const { handler, seen } = recordingHandler();
  const links = new LinkManager<string>({ transport, handler, keys, dialTimeoutMs: WAIT_MS, ...opts });
  const accepted: Channel[] = [];
  const acceptWaiters: Array<(c: Channel) => void> = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    links.accept(socket).then(
      (channel) => {
        const waiter = acceptWaiters.shift();
        if (waiter !== undefined) waiter(channel);
        else accepted.push(channel);
      },
      () => {},
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  t.after(async () => {
    links.destroy();
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  const target: LinkTarget = { address: '127.0.0.1', port, identity: keys.identity.identity, linkKey: keys.linkKey.public };
  const nextAccepted = (): Promise<Channel> =>
    accepted.length > 0 ? Promise.resolve(accepted.shift()!) : bounded(new Promise((resolve) => acceptWaiters.push(resolve)), 'an accepted link');
  return { keys, links, transport, seen, target, nextAccepted };
}

function clientNode(t: TestContext) {
  const transport = new CountingTransport();
  const { handler, seen } = recordingHandler();
  const links = new LinkManager<string>({ transport, handler, dialTimeoutMs: WAIT_MS });
  t.after(() => links.destroy());
  return { links, transport, seen };
}

function bounded<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function closedLink(channel: Channel): Promise<unknown> {
  return channel.state === 'closed' ? Promise.resolve() : bounded(once(channel, 'close'), 'the link to close');
}

test('concurrent requests for one relay share one dial, and the open link is reused', async (t) => {
  const relay = await relayNode(t);
  const client = clientNode(t);
  const [a, b, c] = await Promise.all([client.links.get(relay.target), client.links.get(relay.target), client.links.get(relay.target)]);
  assert.equal(a, b);
  assert.equal(b, c);
  assert.equal(client.transport.connects, 1);
  assert.equal(await client.links.get(relay.target), a);
  assert.equal(client.transport.connects, 1);
  assert.equal(a!.state, 'open');
  assert.equal(client.links.size, 1);
});

test('a relay reuses the link a peer relay opened to it, instead of dialling', async (t) => {
  const alice = await relayNode(t);
  const bob = await relayNode(t);
  const outbound = await bob.links.get(alice.target);
  const inbound = await alice.nextAccepted();
  assert.equal(outbound.isInitiator, true);
  assert.equal(inbound.isInitiator, false);
  // Alice needs a link to Bob: the one Bob opened is authenticated with Bob's identity and link key.
  assert.equal(await alice.links.get(bob.target), inbound);
  assert.equal(alice.transport.connects, 0);
  // A different link key for the same identity is not that link: a new dial is made.
  const stale = { ...bob.target, linkKey: generateKeyPair().public };
  await assert.rejects(alice.links.get(stale), (e: AlliumError) => e.code === 'ERR_LINK_CLOSED');
  assert.equal(alice.transport.connects, 1);
});

test('a closed link is forgotten: the next request dials again', async (t) => {
  const relay = await relayNode(t);
  const client = clientNode(t);
  const first = await client.links.get(relay.target);
  first.destroy();
  await closedLink(first);
  assert.equal(client.links.size, 0);
  const second = await client.links.get(relay.target);
  assert.notEqual(second, first);
  assert.equal(second.state, 'open');
  assert.equal(client.transport.connects, 2);
  // The relay forgot its side of the first link as well.
  await until(() => relay.links.size === 1, 'the relay to forget the closed link');
});

test('dials are bounded: a silent peer times out, and past maxLinks a dial is refused', async (t) => {
  const sockets = new Set<Socket>();
  const silent = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });
  const keys = relayKeys();
  const { handler } = recordingHandler();
  const links = new LinkManager<string>({ transport: new TcpTransport(), handler, dialTimeoutMs: 200, maxLinks: 1 });
  t.after(() => links.destroy());
  const silentTarget = { address: '127.0.0.1', port: (silent.address() as { port: number }).port, identity: keys.identity.identity, linkKey: keys.linkKey.public };
  const started = Date.now();
  const pending = links.get(silentTarget);
  // While that dial is under way, the one link allowed is taken.
  const other = relayKeys();
  await assert.rejects(links.get({ ...silentTarget, identity: other.identity.identity }), (e: AlliumError) => e.code === 'ERR_RESOURCE_LIMIT');
  await assert.rejects(pending, (e: AlliumError) => e.code === 'ERR_TIMEOUT');
  assert.ok(Date.now() - started < 2000);
});

test('cells are demultiplexed by circuit id; unknown ids go to the hook; closing the link reaches every circuit on it', async (t) => {
  const relay = await relayNode(t);
  const client = clientNode(t);
  const link = await client.links.get(relay.target);
  const relaySide = await relay.nextAccepted();
  const table = relay.links.circuitsOf(relaySide);
  table.set(0x80000001, { circuit: 'one', side: 'prev' });
  table.set(0x80000002, { circuit: 'two', side: 'prev' });
  link.sendCell(encodeChannelCell(0x80000002, ChannelCommand.RELAY));
  link.sendCell(encodeChannelCell(0x80000001, ChannelCommand.DESTROY));
  link.sendCell(encodeChannelCell(0, ChannelCommand.PADDING));
  link.sendCell(encodeChannelCell(0x80000003, ChannelCommand.CREATE2));
  link.sendCell(encodeChannelCell(0x80000002, ChannelCommand.RELAY_EARLY));
  await until(() => relay.seen.cells.length === 3 && relay.seen.unknown.length === 1, 'the cells');
  assert.deepEqual(
    relay.seen.cells.map((c) => [c.circuit, cellCircuitId(c.cell), c.cell[4]]),
    [
      ['two', 0x80000002, ChannelCommand.RELAY],
      ['one', 0x80000001, ChannelCommand.DESTROY],
      ['two', 0x80000002, ChannelCommand.RELAY_EARLY],
    ],
  );
  assert.equal(cellCircuitId(relay.seen.unknown[0]!), 0x80000003);
  table.delete(0x80000001);
  link.destroy();
  await closedLink(relaySide);
  assert.deepEqual(relay.seen.closed, ['two']);
});

test('a cell other than PADDING on circuit id 0 closes the link', async (t) => {
  const relay = await relayNode(t);
  const client = clientNode(t);
  const link = await client.links.get(relay.target);
  const relaySide = await relay.nextAccepted();
  link.sendCell(new Uint8Array(514).fill(0, 0, 4).fill(ChannelCommand.RELAY, 4, 5));
  const [error] = (await bounded(once(relaySide, 'close'), 'the relay to close the link')) as [AlliumError];
  assert.equal(error.code, 'ERR_PROTOCOL');
  assert.equal(relay.seen.cells.length + relay.seen.unknown.length, 0);
});

test('a probe is a full link handshake through the transport: true for the relay, false for a wrong key', async (t) => {
  const relay = await relayNode(t);
  const transport = new CountingTransport();
  assert.equal(await probeLink(transport, relay.target, WAIT_MS), true);
  assert.equal(await probeLink(transport, { ...relay.target, linkKey: generateKeyPair().public }, WAIT_MS), false);
  assert.equal(transport.connects, 2);
});

test('allium:link:open and allium:link:close fire with cell counts that match what was sent; stats agree', async (t) => {
  const opens: LinkOpenEvent[] = [];
  const closes: LinkCloseEvent[] = [];
  const unsubscribe = [subscribe('allium:link:open', (e) => opens.push(e)), subscribe('allium:link:close', (e) => closes.push(e))];
  t.after(() => unsubscribe.forEach((u) => u()));

  const relay = await relayNode(t);
  const client = clientNode(t);
  const link = await client.links.get(relay.target);
  const relaySide = await relay.nextAccepted();
  const mine = (id: number) => id === link.linkId || id === relaySide.linkId;

  const SENT = 37;
  const ANSWERED = 5;
  relay.links.circuitsOf(relaySide).set(0x80000001, { circuit: 'c', side: 'prev' });
  client.links.circuitsOf(link).set(0x80000001, { circuit: 'c', side: 'next' });
  for (let i = 0; i < SENT; i++) link.sendCell(encodeChannelCell(0x80000001, ChannelCommand.RELAY));
  await until(() => relay.seen.cells.length === SENT, 'the cells at the relay');
  for (let i = 0; i < ANSWERED; i++) relaySide.sendCell(encodeChannelCell(0x80000001, ChannelCommand.RELAY));
  await until(() => client.seen.cells.length === ANSWERED, 'the answers at the client');

  assert.deepEqual(client.links.stats(), { open: 1, opened: 1, closed: 0, cellsIn: ANSWERED, cellsOut: SENT, queuedBytes: 0 });
  assert.deepEqual(relay.links.stats(), { open: 1, opened: 1, closed: 0, cellsIn: SENT, cellsOut: ANSWERED, queuedBytes: 0 });

  const opened = opens.filter((e) => mine(e.linkId));
  assert.deepEqual(
    opened.map((e) => [e.initiator, e.peerIdentity]).sort(),
    [
      [false, null],
      [true, Buffer.from(relay.keys.identity.identity).toString('hex')],
    ],
  );

  link.close();
  await closedLink(link);
  await closedLink(relaySide);
  const closed = closes.filter((e) => mine(e.linkId));
  assert.equal(closed.length, 2);
  const clientClose = closed.find((e) => e.linkId === link.linkId)!;
  const relayClose = closed.find((e) => e.linkId === relaySide.linkId)!;
  assert.deepEqual(clientClose, { linkId: link.linkId, code: null, cellsIn: ANSWERED, cellsOut: SENT });
  assert.deepEqual(relayClose, { linkId: relaySide.linkId, code: null, cellsIn: SENT, cellsOut: ANSWERED });
  assert.deepEqual(client.links.stats(), { open: 0, opened: 1, closed: 1, cellsIn: ANSWERED, cellsOut: SENT, queuedBytes: 0 });
  assert.deepEqual(relay.links.stats(), { open: 0, opened: 1, closed: 1, cellsIn: SENT, cellsOut: ANSWERED, queuedBytes: 0 });
  // No event carries an address.
  for (const e of [...opened, ...closed]) assert.ok(!JSON.stringify(e).includes('127.0.0.1'));
});

test("a link's state: open, then closing on close() or destroy(), then closed with its 'close' event", async (t) => {
  const relay = await relayNode(t);
  const client = clientNode(t);
  const graceful = await client.links.get(relay.target);
  assert.equal(graceful.state, 'open');
  graceful.close();
  assert.equal(graceful.state, 'closing');
  assert.equal(graceful.closed, true);
  assert.equal(graceful.sendCell(encodeChannelCell(0x80000001, ChannelCommand.RELAY)), false);
  await closedLink(graceful);
  assert.equal(graceful.state, 'closed');

  const abrupt = await client.links.get(relay.target);
  abrupt.destroy(new AlliumError('ERR_PROTOCOL', 'test'));
  assert.equal(abrupt.state, 'closing');
  const [error] = (await bounded(once(abrupt, 'close'), 'close')) as [AlliumError];
  assert.equal(abrupt.state, 'closed');
  assert.equal(error.code, 'ERR_PROTOCOL');
});
