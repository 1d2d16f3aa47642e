/**
 * Slowloris against the three ports a stranger can reach: the authority's
 * HTTP port, the client's SOCKS port and a relay's OR port. 100 connections
 * from one address each send one byte per second; meanwhile a normal user
 * on another address is served. The per-address limits close what is past
 * them at once, and the handshake and header timeouts bound the rest.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { createDirectoryServer, type DirectoryHandlers } from '../../directory/http-server.js';
import { startSocksServer } from '../../client/socks/server.js';
import { HostilePeer, tcpRelay, tcpServer } from './hostile-peer.js';

const ATTACKER = '127.0.0.9';
const USER = '127.0.0.2';

/** 100 connections from ATTACKER to `port`, each writing one byte of `bytes` per second; stopped after the test. */
function slowloris(t: TestContext, port: number, bytes: Uint8Array): { sockets: Socket[] } {
  const sockets: Socket[] = [];
  for (let i = 0; i < 100; i++) {
    const socket = connect({ host: '127.0.0.1', port, localAddress: ATTACKER });
    socket.on('error', () => {});
    let at = 0;
    const tick = () => {
      if (!socket.destroyed && at < bytes.length) socket.write(bytes.subarray(at, ++at));
    };
    socket.once('connect', tick);
    const timer = setInterval(tick, 1000);
    socket.once('close', () => clearInterval(timer));
    sockets.push(socket);
  }
  t.after(() => sockets.forEach((s) => s.destroy()));
  return { sockets };
}

const settle = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function withinMs<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} took over ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

test('slowloris on the authority port: past 16 connections per address they are closed at once; a normal GET is answered', { timeout: 20_000 }, async (t) => {
  const handlers: DirectoryHandlers = {
    uploadDescriptor: () => ({ status: 400, body: 'no\n' }),
    getConsensus: () => ({ status: 404, body: 'none\n' }),
    getDescriptor: () => ({ status: 404, body: 'none\n' }),
    getAuthority: () => ({ status: 200, body: '{"nickname":"auth"}\n', contentType: 'application/json' }),
    uploadVote: () => ({ status: 400, body: 'no\n' }),
    getVote: () => ({ status: 404, body: 'none\n' }),
    uploadSignature: () => ({ status: 400, body: 'no\n' }),
    getSignature: () => ({ status: 404, body: 'none\n' }),
    getStatusPage: () => ({ status: 200, body: '<html></html>\n', contentType: 'text/html; charset=utf-8' }),
  };
  const server = createDirectoryServer(handlers);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    // Everything at once: close() alone would wait for the slow connections.
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    return closed;
  });
  const port = (server.address() as { port: number }).port;
  const { sockets } = slowloris(t, port, Buffer.from('GET /allium/v1/authority HTTP/1.1\r\nHost: x\r\n\r\n'));
  await settle(1500);
  assert.ok(sockets.filter((s) => s.destroyed || s.readableEnded).length >= 80, 'connections past the per-address limit are closed');
  const body = await withinMs(
    fetch(`http://127.0.0.1:${port}/allium/v1/authority`).then(async (r) => [r.status, await r.text()] as const),
    3000,
    'a normal request',
  );
  assert.deepEqual(body, [200, '{"nickname":"auth"}\n']);
});

test('slowloris on the SOCKS port: a normal SOCKS5 CONNECT is served meanwhile', { timeout: 20_000 }, async (t) => {
  const { port: echoPort } = await tcpServer(t, (socket) => socket.pipe(socket));
  const socks = await startSocksServer({
    port: 0,
    handshakeTimeoutMs: 10_000,
    // The bytes that came with the request (the 'ping', when it shares a read with it) are the connector's to deliver first.
    connect: async (_request, _signal, earlyData) => {
      const s = connect({ host: '127.0.0.1', port: echoPort });
      await once(s, 'connect');
      if (earlyData !== undefined) s.write(earlyData);
      return s;
    },
  });
  t.after(() => socks.close());
  slowloris(t, socks.address.port, Uint8Array.of(5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80));
  await settle(1500);
  const user = connect({ host: '127.0.0.1', port: socks.address.port, localAddress: USER });
  t.after(() => user.destroy());
  await once(user, 'connect');
  user.write(Uint8Array.of(5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, echoPort >> 8, echoPort & 0xff));
  user.write('ping');
  const got: Buffer[] = [];
  await withinMs(
    new Promise<void>((resolve) => {
      user.on('data', (c: Buffer) => {
        got.push(c);
        // method selection (2) + reply (10) + echo (4)
        if (Buffer.concat(got).length >= 16) resolve();
      });
    }),
    3000,
    'a normal SOCKS exchange',
  );
  const all = Buffer.concat(got);
  assert.deepEqual([...all.subarray(0, 4)], [5, 0, 5, 0]);
  assert.equal(all.subarray(12).toString(), 'ping');
});

test("slowloris on a relay's OR port: past 50 links per address closed at once; a client elsewhere completes its handshake and a circuit", { timeout: 20_000 }, async (t) => {
  const relay = await tcpRelay(t);
  slowloris(t, relay.port, new Uint8Array(48).fill(7));
  await settle(1500);
  assert.equal(relay.core.dos.stats().linksRefused, 50);
  const peer = await withinMs(HostilePeer.connect(t, relay.from(USER)), 3000, 'a normal link handshake');
  await withinMs(peer.create(), 3000, 'a normal CREATE2');
});

test('the authority answers 429 past the per-address request rate, and serves that address again once its bucket refills', { timeout: 20_000 }, async (t) => {
  let now = 0;
  const server = createDirectoryServer(
    {
      uploadDescriptor: () => ({ status: 400, body: 'no\n' }),
      getConsensus: () => ({ status: 404, body: 'none\n' }),
      getDescriptor: () => ({ status: 404, body: 'none\n' }),
      getAuthority: () => ({ status: 200, body: 'me\n' }),
      uploadVote: () => ({ status: 400, body: 'no\n' }),
      getVote: () => ({ status: 404, body: 'none\n' }),
      uploadSignature: () => ({ status: 400, body: 'no\n' }),
      getSignature: () => ({ status: 404, body: 'none\n' }),
      getStatusPage: () => ({ status: 200, body: '<html></html>\n', contentType: 'text/html; charset=utf-8' }),
    },
    { requestRate: 1, requestBurst: 2, now: () => now },
  );
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    return closed;
  });
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/allium/v1/authority`;
  const status = async () => (await fetch(url)).status;
  assert.deepEqual([await status(), await status(), await status()], [200, 200, 429]);
  now += 1000;
  assert.equal(await status(), 200);
});
