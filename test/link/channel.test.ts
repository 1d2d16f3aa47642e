import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { nodeCrypto } from '../../src/crypto/crypto.js';
import { hex } from '../../src/bytes.js';
import { CELL_LENGTH } from '../../src/constants.js';
import { Channel, CHANNEL_HARD_CAP, type LinkIdentity, type StaticKey } from '../../src/link/channel.js';
import { generateKeyPair } from '../../src/link/noise.js';
import { newRelaySigner } from '../../relay/keys.js';

interface RelayKeys {
  linkKey: StaticKey;
  identity: LinkIdentity;
}

function relayKeys(): RelayKeys {
  const seed = nodeCrypto.randomBytes(32);
  return { linkKey: generateKeyPair(), identity: { identity: nodeCrypto.ed25519PublicKey(seed), signer: newRelaySigner(seed, Date.now(), 86_400_000) } };
}

function cell(n: number): Uint8Array {
  const c = new Uint8Array(CELL_LENGTH);
  new DataView(c.buffer).setUint32(0, n);
  c[4] = 3;
  for (let i = 5; i < CELL_LENGTH; i++) c[i] = (n + i) & 0xff;
  return c;
}

function cellNumber(c: Uint8Array): number {
  return new DataView(c.buffer, c.byteOffset).getUint32(0);
}

/** A listening relay whose accepted channels (and failures) are reported. */
async function listen(keys: RelayKeys): Promise<{
  server: Server;
  port: number;
  accepted: Channel[];
  nextChannel: () => Promise<Channel>;
  nextFailure: () => Promise<Error>;
  sockets: Set<Socket>;
}> {
  const accepted: Channel[] = [];
  const failures: Error[] = [];
  const waiters: Array<(c: Channel) => void> = [];
  const failWaiters: Array<(e: Error) => void> = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    Channel.accept(socket, { linkKey: keys.linkKey, identity: keys.identity, timeoutMs: 2000 }).then(
      (ch) => {
        const w = waiters.shift();
        if (w) w(ch);
        else accepted.push(ch);
      },
      (err: Error) => {
        const w = failWaiters.shift();
        if (w) w(err);
        else failures.push(err);
      },
    );
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return {
    server,
    port: address.port,
    accepted,
    sockets,
    nextChannel: () => {
      const c = accepted.shift();
      return c ? Promise.resolve(c) : new Promise((resolve) => waiters.push(resolve));
    },
    nextFailure: () => {
      const e = failures.shift();
      return e ? Promise.resolve(e) : new Promise((resolve) => failWaiters.push(resolve));
    },
  };
}

function shutdown(server: Server, sockets: Set<Socket>, ...channels: Channel[]): Promise<void> {
  for (const c of channels) c.destroy();
  for (const s of sockets) s.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

function dial(port: number): Socket {
  const s = connect({ host: '127.0.0.1', port });
  s.on('error', () => {});
  return s;
}

test('relay-to-relay link: both sides learn the right peer and exchange cells', { timeout: 10_000 }, async () => {
  const r = relayKeys();
  const me = relayKeys();
  const srv = await listen(r);
  const [client, server] = await Promise.all([
    Channel.connect(dial(srv.port), {
      peerLinkKey: r.linkKey.public,
      peerIdentity: r.identity.identity,
      linkKey: me.linkKey,
      identity: me.identity,
      timeoutMs: 2000,
    }),
    srv.nextChannel(),
  ]);
  assert.equal(client.isInitiator, true);
  assert.equal(server.isInitiator, false);
  assert.equal(hex(client.peer.identity!), hex(r.identity.identity));
  assert.equal(hex(client.peer.linkKey), hex(r.linkKey.public));
  assert.equal(hex(server.peer.identity!), hex(me.identity.identity));
  assert.equal(hex(server.peer.linkKey), hex(me.linkKey.public));

  const got = new Promise<Uint8Array>((resolve) => server.once('cell', resolve));
  assert.equal(client.sendCell(cell(42)), true);
  const c = await got;
  assert.equal(c.length, CELL_LENGTH);
  assert.equal(hex(c), hex(cell(42)));
  const back = new Promise<Uint8Array>((resolve) => client.once('cell', resolve));
  server.sendCell(cell(7));
  assert.equal(cellNumber(await back), 7);

  const closed = once(server, 'close');
  client.close();
  assert.equal(client.closed, true);
  assert.equal(client.sendCell(cell(1)), false);
  const [err] = await closed;
  assert.equal(err, undefined, 'a graceful close carries no error');
  await shutdown(srv.server, srv.sockets, client, server);
});

test('client-to-relay link: the relay sees an anonymous peer with a fresh key each time', { timeout: 10_000 }, async () => {
  const r = relayKeys();
  const srv = await listen(r);
  const opts = { peerLinkKey: r.linkKey.public, peerIdentity: r.identity.identity, timeoutMs: 2000 };
  const [c1, s1] = await Promise.all([Channel.connect(dial(srv.port), opts), srv.nextChannel()]);
  const [c2, s2] = await Promise.all([Channel.connect(dial(srv.port), opts), srv.nextChannel()]);
  assert.equal(s1.peer.identity, null);
  assert.equal(s2.peer.identity, null);
  assert.notEqual(hex(s1.peer.linkKey), hex(s2.peer.linkKey));
  assert.equal(hex(c1.peer.identity!), hex(r.identity.identity));
  const got = new Promise<Uint8Array>((resolve) => s2.once('cell', resolve));
  c2.sendCell(cell(99));
  assert.equal(cellNumber(await got), 99);
  await shutdown(srv.server, srv.sockets, c1, s1, c2, s2);
});

test('wrong expected identity or wrong link key: HandshakeError on the initiator', { timeout: 10_000 }, async () => {
  const r = relayKeys();
  const other = relayKeys();
  const srv = await listen(r);
  // Expected identity differs from the one the relay proves.
  await assert.rejects(
    Channel.connect(dial(srv.port), { peerLinkKey: r.linkKey.public, peerIdentity: other.identity.identity, timeoutMs: 2000 }),
    { name: 'HandshakeError', code: 'ERR_HANDSHAKE' },
  );
  // The relay saw the initiator hang up after message 2.
  assert.equal((await srv.nextFailure()).name, 'HandshakeError');
  // Wrong link key: the relay cannot read message 1 and hangs up.
  await assert.rejects(
    Channel.connect(dial(srv.port), { peerLinkKey: other.linkKey.public, peerIdentity: r.identity.identity, timeoutMs: 2000 }),
    { name: 'HandshakeError', code: 'ERR_HANDSHAKE' },
  );
  assert.equal((await srv.nextFailure()).name, 'HandshakeError');
  await shutdown(srv.server, srv.sockets);
});

test('handshake timeout and config errors', { timeout: 10_000 }, async () => {
  const r = relayKeys();
  const silent = createServer(() => {});
  const held: Socket[] = [];
  silent.on('connection', (s) => held.push(s));
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  const port = (silent.address() as { port: number }).port;
  const started = Date.now();
  await assert.rejects(
    Channel.connect(dial(port), { peerLinkKey: r.linkKey.public, peerIdentity: r.identity.identity, timeoutMs: 200 }),
    { code: 'ERR_TIMEOUT' },
  );
  assert.ok(Date.now() - started < 2000);
  await assert.rejects(
    Channel.connect(dial(port), { peerLinkKey: r.linkKey.public, peerIdentity: r.identity.identity, linkKey: r.linkKey, timeoutMs: 200 }),
    { code: 'ERR_CONFIG' },
  );
  // A silent initiator times out at the responder.
  const srv = await listen(r);
  const idle = dial(srv.port);
  await once(idle, 'connect');
  void idle;
  const failure = await srv.nextFailure();
  assert.equal((failure as Error & { code?: string }).code, 'ERR_TIMEOUT');
  for (const s of held) s.destroy();
  await new Promise((resolve) => silent.close(resolve));
  await shutdown(srv.server, srv.sockets);
});

test('garbage to a responder closes that socket cleanly while another channel keeps exchanging cells', { timeout: 10_000 }, async () => {
  const r = relayKeys();
  const srv = await listen(r);
  const opts = { peerLinkKey: r.linkKey.public, peerIdentity: r.identity.identity, timeoutMs: 2000 };
  const [good, goodServer] = await Promise.all([Channel.connect(dial(srv.port), opts), srv.nextChannel()]);
  goodServer.on('cell', (c: Uint8Array) => goodServer.sendCell(c));
  const echoed: number[] = [];
  good.on('cell', (c: Uint8Array) => echoed.push(cellNumber(c)));

  // 1. Garbage instead of a handshake.
  const junk = dial(srv.port);
  await once(junk, 'connect');
  const junkClosed = once(junk, 'close');
  junk.write(Buffer.from('GET / HTTP/1.1\r\nHost: example\r\n\r\n'));
  assert.equal((await srv.nextFailure()).name, 'HandshakeError');
  await junkClosed;

  // 2. Garbage after a good handshake: a bad frame length, then a frame that fails authentication.
  for (const garbage of [Buffer.from([0xff, 0xff, 1, 2, 3]), Buffer.concat([Buffer.from([0x02, 0x12]), Buffer.alloc(530, 7)])]) {
    const raw = dial(srv.port);
    const [bad, badServer] = await Promise.all([Channel.connect(raw, opts), srv.nextChannel()]);
    const cells: number[] = [];
    badServer.on('cell', (c: Uint8Array) => cells.push(cellNumber(c)));
    const closed = once(badServer, 'close');
    const rawClosed = once(raw, 'close');
    bad.sendCell(cell(1));
    // The good cell first, then the garbage (waiting for it, not a fixed sleep: on a loaded machine 50 ms was not always enough).
    const cellDeadline = Date.now() + 5000;
    while (cells.length === 0 && Date.now() < cellDeadline) await new Promise((resolve) => setTimeout(resolve, 10));
    raw.write(garbage);
    const [err] = (await closed) as [Error & { code?: string }];
    assert.ok(err instanceof Error);
    assert.ok(['ERR_OVERSIZED', 'ERR_PROTOCOL'].includes(err.code ?? ''), String(err.code));
    assert.deepEqual(cells, [1]);
    await rawClosed;
    assert.equal(badServer.closed, true);
    bad.destroy();
  }

  // The good channel is unaffected.
  for (let i = 0; i < 50; i++) good.sendCell(cell(i));
  const deadline = Date.now() + 5000;
  while (echoed.length < 50 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(echoed, Array.from({ length: 50 }, (_, i) => i));
  await shutdown(srv.server, srv.sockets, good, goodServer);
});

test('thousands of cells both ways arrive intact and in order', { timeout: 20_000 }, async () => {
  const r = relayKeys();
  const srv = await listen(r);
  const [client, server] = await Promise.all([
    Channel.connect(dial(srv.port), { peerLinkKey: r.linkKey.public, peerIdentity: r.identity.identity, timeoutMs: 2000 }),
    srv.nextChannel(),
  ]);
  const N = 5000;
  const receive = (ch: Channel) =>
    new Promise<void>((resolve, reject) => {
      let next = 0;
      ch.on('cell', (c: Uint8Array) => {
        if (hex(c) !== hex(cell(next))) reject(new Error(`cell ${next} wrong`));
        if (++next === N) resolve();
      });
      ch.once('close', (err) => reject(err ?? new Error('closed early')));
    });
  const send = async (ch: Channel) => {
    for (let i = 0; i < N; i++) {
      if (!ch.sendCell(cell(i))) await once(ch, 'drain');
      if (i % 500 === 0) await new Promise((resolve) => setImmediate(resolve));
    }
  };
  await Promise.all([receive(server), receive(client), send(client), send(server)]);
  await shutdown(srv.server, srv.sockets, client, server);
});

test('every cell sent before a graceful close reaches the \'cells\' listener in order, before \'close\'', { timeout: 10_000 }, async () => {
  // Reads are delivered once per poll of the event loop (several reads per
  // batch): the peer's end of stream must not overtake the cells read before it.
  const r = relayKeys();
  const srv = await listen(r);
  const [client, server] = await Promise.all([
    Channel.connect(dial(srv.port), { peerLinkKey: r.linkKey.public, peerIdentity: r.identity.identity, timeoutMs: 2000 }),
    srv.nextChannel(),
  ]);
  const N = 3000;
  const got: number[] = [];
  server.on('cells', (cells: Uint8Array[]) => {
    for (const c of cells) got.push(cellNumber(c));
  });
  const closed = once(server, 'close');
  for (let i = 0; i < N; i++) client.sendCell(cell(i));
  client.close();
  await closed;
  assert.deepEqual(got, Array.from({ length: N }, (_, i) => i));
  await shutdown(srv.server, srv.sockets, client, server);
});

test('cells sent right after connect, before the responder listens, are not lost', { timeout: 10_000 }, async () => {
  const r = relayKeys();
  const srv = await listen(r);
  const client = await Channel.connect(dial(srv.port), { peerLinkKey: r.linkKey.public, peerIdentity: r.identity.identity, timeoutMs: 2000 });
  for (let i = 0; i < 300; i++) client.sendCell(cell(i));
  const server = await srv.nextChannel();
  await new Promise((resolve) => setTimeout(resolve, 100));
  const got: number[] = [];
  await new Promise<void>((resolve) => {
    server.on('cell', (c: Uint8Array) => {
      got.push(cellNumber(c));
      if (got.length === 300) resolve();
    });
  });
  assert.deepEqual(got, Array.from({ length: 300 }, (_, i) => i));
  await shutdown(srv.server, srv.sockets, client, server);
});

test('a paused reader makes sendCell return false; drain follows resume', { timeout: 20_000 }, async () => {
  const r = relayKeys();
  const srv = await listen(r);
  const [client, server] = await Promise.all([
    Channel.connect(dial(srv.port), { peerLinkKey: r.linkKey.public, peerIdentity: r.identity.identity, timeoutMs: 2000 }),
    srv.nextChannel(),
  ]);
  let received = 0;
  server.on('cell', () => received++);
  server.pauseReading();
  let sent = 0;
  let full = false;
  // Bounded: loopback socket buffers are a few MB at most.
  for (let round = 0; round < 2000 && !full; round++) {
    for (let i = 0; i < 64; i++) {
      sent++;
      if (!client.sendCell(cell(sent))) {
        full = true;
        break;
      }
    }
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.equal(full, true, 'sendCell returned false');
  await new Promise((resolve) => setTimeout(resolve, 100));
  assert.equal(received, 0, 'nothing delivered while paused');
  assert.ok(client.queuedBytes > 0);
  const drained = once(client, 'drain');
  server.resumeReading();
  await drained;
  const deadline = Date.now() + 10_000;
  while (received < sent && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.equal(received, sent);
  assert.equal(client.closed, false);
  await shutdown(srv.server, srv.sockets, client, server);
});

test('more than the hard cap queued destroys the channel with ERR_RESOURCE_LIMIT', { timeout: 10_000 }, async () => {
  const r = relayKeys();
  const srv = await listen(r);
  const [client, server] = await Promise.all([
    Channel.connect(dial(srv.port), { peerLinkKey: r.linkKey.public, peerIdentity: r.identity.identity, timeoutMs: 2000 }),
    srv.nextChannel(),
  ]);
  const closed = once(client, 'close');
  const peerClosed = once(server, 'close');
  server.on('cell', () => {});
  let i = 0;
  while (client.sendCell(cell(i)) || !client.closed) {
    if (++i > CHANNEL_HARD_CAP / CELL_LENGTH + 10) break;
  }
  const [err] = (await closed) as [Error & { code?: string }];
  assert.equal(err.code, 'ERR_RESOURCE_LIMIT');
  await peerClosed;
  assert.throws(() => client.sendCell(new Uint8Array(10)), RangeError);
  await shutdown(srv.server, srv.sockets, client, server);
});

test('dropQueuedCells drops one circuit\'s queued cells and packs the rest, in order, into fewer frames', { timeout: 10_000 }, async () => {
  const r = relayKeys();
  const srv = await listen(r);
  const [client, server] = await Promise.all([
    Channel.connect(dial(srv.port), { peerLinkKey: r.linkKey.public, peerIdentity: r.identity.identity, timeoutMs: 2000 }),
    srv.nextChannel(),
  ]);
  const received: number[] = [];
  server.on('cell', (c: Uint8Array) => {
    // Every cell arrives whole: its body is the one cell() made for its number.
    assert.deepEqual(c, cell(cellNumber(c)));
    received.push(cellNumber(c));
  });
  // Ids 1 and 2 interleaved over three frames (127 cells each), queued in one turn: nothing is sent yet.
  const ids = Array.from({ length: 300 }, (_, i) => (i % 3 === 0 ? 1 : 2));
  for (const id of ids) assert.equal(client.sendCell(cell(id)), true);
  assert.equal(client.queuedBytes, 300 * CELL_LENGTH);
  assert.deepEqual([...client.queuedByCircuit()].map(([id, q]) => [id, q.bytes]), [[1, 100 * CELL_LENGTH], [2, 200 * CELL_LENGTH]]);
  assert.equal(client.dropQueuedCells(1), 100 * CELL_LENGTH);
  assert.equal(client.dropQueuedCells(7), 0);
  assert.equal(client.queuedBytes, 200 * CELL_LENGTH);
  assert.equal(client.heldBytes, 200 * CELL_LENGTH);
  assert.deepEqual([...client.queuedByCircuit()].map(([id, q]) => [id, q.bytes]), [[2, 200 * CELL_LENGTH]]);
  // More cells after the drop go behind the packed ones.
  for (let n = 3; n < 10; n++) client.sendCell(cell(n));
  const deadline = Date.now() + 5000;
  while (received.length < 207 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(received, [...Array<number>(200).fill(2), 3, 4, 5, 6, 7, 8, 9]);
  assert.equal(client.heldBytes, 0);
  await shutdown(srv.server, srv.sockets, client, server);
});

test('a peer that does not read: heldBytes counts the frames its socket holds unsent; destroy() frees them', { timeout: 20_000 }, async () => {
  const r = relayKeys();
  const srv = await listen(r);
  const [client, server] = await Promise.all([
    Channel.connect(dial(srv.port), { peerLinkKey: r.linkKey.public, peerIdentity: r.identity.identity, timeoutMs: 2000 }),
    srv.nextChannel(),
  ]);
  server.on('cell', () => {});
  server.pauseReading();
  let sent = 0;
  // Bounded: loopback socket buffers are a few MB at most; sendCell says false once the socket pushed back.
  for (let round = 0; round < 2000 && client.unsentSocketBytes === 0; round++) {
    for (let i = 0; i < 64 && client.queuedBytes < 128 * 1024; i++) client.sendCell(cell(++sent));
    await new Promise((resolve) => setImmediate(resolve));
  }
  assert.ok(client.unsentSocketBytes > 0, 'the socket holds sealed frames it could not send');
  assert.equal(client.heldBytes, client.queuedBytes + client.unsentSocketBytes);
  const closed = once(client, 'close');
  client.destroy();
  assert.equal(client.heldBytes, 0);
  assert.equal(client.unsentSocketBytes, 0);
  await closed;
  await shutdown(srv.server, srv.sockets, client, server);
});
