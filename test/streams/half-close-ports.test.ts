/**
 * The ends of streams on every application port, in one process with every
 * real part (as half-close.test.ts): SOCKS4a and the HTTP CONNECT tunnel
 * splice their sockets to streams the same way SOCKS5 does
 * (src/stream/splice.ts, docs/protocol.md §6.7, §12), the bytes an
 * application pipelines behind its request still go first as optimistic
 * data, and a bad destination is refused on those ports before anything is
 * sent (SOCKS4a 91, HTTP 400; SOCKS5 RESOLVE 0x04).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import net, { type Socket } from 'node:net';
import { once } from 'node:events';
import { startSocksServer, type SocksServer } from '../../client/socks/server.js';
import { startHttpTunnel, type HttpTunnelServer } from '../../client/http-tunnel/server.js';
import { encodeGreeting, encodeRequest, encodeSocks4Request } from '../../client/socks/messages.js';
import { memoryCircuit, memoryNetwork } from '../support/memory-network.js';
import { payloadBytes } from '../support/payload-server.js';
import { destination, until, within } from './harness.js';
import { assertReset, drainSocket, portsOf, writeAll } from './e2e-support.js';
import type { Channel } from '../../src/link/channel.js';

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface World {
  channel: Channel;
  socks: SocksServer;
  tunnel: HttpTunnelServer;
  /** Requests that reached a connector or resolver (a refused destination must never get there). */
  calls: { connect: number; resolve: number };
  /** Bytes the connectors were handed as early data. */
  early: { bytes: number };
}

async function world(t: TestContext): Promise<World> {
  const network = memoryNetwork(3);
  t.after(() => network.cleanup());
  const { circuit, channel } = await memoryCircuit(network.relays);
  t.after(() => channel.destroy());
  const calls = { connect: 0, resolve: 0 };
  const early = { bytes: 0 };
  const open = (host: string, port: number, earlyData: Uint8Array | undefined) => {
    calls.connect++;
    early.bytes += earlyData?.length ?? 0;
    return circuit.openStream(host, port, 5000, earlyData !== undefined ? { earlyData } : {});
  };
  const socks = await startSocksServer({
    port: 0,
    connect: (request, _signal, earlyData) => open(request.host, request.port, earlyData),
    resolve: async () => {
      calls.resolve++;
      return null;
    },
  });
  t.after(() => socks.close());
  const tunnel = await startHttpTunnel({ port: 0, connect: (request, _signal, earlyData) => open(request.host, request.port, earlyData) });
  t.after(() => tunnel.close());
  return { channel, socks, tunnel, calls, early };
}

/** A half-open socket to 127.0.0.1:`port` that has written `hello` in one write. */
async function dial(port: number, hello: Uint8Array): Promise<Socket> {
  const socket = net.connect({ host: '127.0.0.1', port, allowHalfOpen: true });
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(hello);
  return socket;
}

/** Read exactly `n` bytes of reply from `socket`; what came after them is unshifted for later readers. */
async function readReply(socket: Socket, n: number): Promise<Buffer> {
  return within(
    new Promise<Buffer>((resolve, reject) => {
      let buffer = Buffer.alloc(0);
      const onData = (c: Buffer) => {
        buffer = Buffer.concat([buffer, c]);
        if (buffer.length < n) return;
        socket.off('data', onData);
        socket.off('close', onClose);
        socket.pause();
        if (buffer.length > n) socket.unshift(buffer.subarray(n));
        resolve(buffer.subarray(0, n));
      };
      const onClose = () => reject(new Error(`closed after ${buffer.length} of ${n} reply bytes`));
      socket.on('data', onData);
      socket.on('close', onClose);
    }),
    'the reply',
  );
}

/** The HTTP answer head (up to the empty line); the rest is unshifted. */
async function readHead(socket: Socket): Promise<string> {
  return within(
    new Promise<string>((resolve, reject) => {
      let buffer = Buffer.alloc(0);
      const onData = (c: Buffer) => {
        buffer = Buffer.concat([buffer, c]);
        const end = buffer.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        socket.off('close', onClose);
        socket.pause();
        if (buffer.length > end + 4) socket.unshift(buffer.subarray(end + 4));
        resolve(buffer.subarray(0, end).toString('latin1'));
      };
      const onClose = () => reject(new Error(`closed before the answer head: ${JSON.stringify(buffer.toString('latin1'))}`));
      socket.on('data', onData);
      socket.on('close', onClose);
    }),
    'the answer head',
  );
}

/** A destination that answers, once the application's EOF is in, with the SHA-256 of the request (64 hex digits, a newline) and `answer`. */
async function digestThenAnswer(t: TestContext, answer: Buffer) {
  return destination(t, (s) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => s.end(Buffer.concat([Buffer.from(`${sha256(Buffer.concat(chunks))}\n`), answer])));
  });
}

test('SOCKS4a and the HTTP tunnel: early data first, the application half-closes, the whole answer comes back', { timeout: 60_000 }, async (t) => {
  const w = await world(t);

  await t.test('SOCKS4a (the IP literal as a hostname): request, pipelined bytes and EOF at once; 1 MiB after it', async () => {
    const answer = payloadBytes(1024 * 1024, 's4a');
    const dest = await digestThenAnswer(t, answer);
    const pipelined = payloadBytes(2000, 's4a-early');
    const rest = payloadBytes(100_000, 's4a-rest');
    const before = w.early.bytes;
    const request = encodeSocks4Request({ command: 1, addressType: 'domain', host: '127.0.0.1', port: dest.port, userId: '' });
    const socket = await dial(w.socks.address.port, Buffer.concat([request, pipelined]));
    socket.end(rest);
    assert.equal((await readReply(socket, 8)).toString('hex'), '005a000000000000');
    const reading = drainSocket(socket);
    socket.resume();
    const got = await reading;
    assert.equal(got.error, null);
    // What came in with the request went as optimistic data (how much of the rest came along is the kernel's choice).
    assert.ok(w.early.bytes - before >= 2000, `${w.early.bytes - before} early bytes`);
    // Early data first, then the rest, every byte in order, then the application's EOF: the destination's digest says so.
    assert.equal(got.data.subarray(0, 65).toString(), `${sha256(Buffer.concat([pipelined, rest]))}\n`);
    assert.equal(sha256(got.data.subarray(65)), sha256(answer));
  });

  await t.test('HTTP tunnel: CONNECT, early bytes and EOF at once; 512 KiB after it', async () => {
    const answer = payloadBytes(512 * 1024, 'tun');
    const dest = await digestThenAnswer(t, answer);
    const pipelined = payloadBytes(1500, 'tun-early');
    const rest = payloadBytes(50_000, 'tun-rest');
    const before = w.early.bytes;
    const socket = await dial(w.tunnel.address.port, Buffer.concat([Buffer.from(`CONNECT 127.0.0.1:${dest.port} HTTP/1.1\r\n\r\n`), pipelined]));
    socket.end(rest);
    assert.match(await readHead(socket), /^HTTP\/1\.1 200 /);
    const reading = drainSocket(socket);
    socket.resume();
    const got = await reading;
    assert.equal(got.error, null);
    assert.ok(w.early.bytes - before >= 1500, `${w.early.bytes - before} early bytes`);
    assert.equal(got.data.subarray(0, 65).toString(), `${sha256(Buffer.concat([pipelined, rest]))}\n`);
    assert.equal(sha256(got.data.subarray(65)), sha256(answer));
  });

  await t.test('HTTP tunnel: the destination half-closes first; the application still sends 200 KB', async () => {
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
    const socket = await dial(w.tunnel.address.port, Buffer.from(`CONNECT 127.0.0.1:${dest.port} HTTP/1.0\r\n\r\n`));
    assert.match(await readHead(socket), /^HTTP\/1\.0 200 /);
    const reading = drainSocket(socket);
    socket.resume();
    const banner = await reading;
    assert.equal(banner.data.toString(), 'banner\n');
    await writeAll(socket, payloadBytes(200_000, 'tun-late'));
    socket.end();
    await within(ended, "the application's EOF at the destination");
    assert.equal(received, 200_000);
  });

  await t.test('HTTP tunnel: the link under the circuit is lost mid-download: a reset, never a clean EOF', async () => {
    const dest = await destination(t, (s) => s.write(payloadBytes(2 * 1024 * 1024, 'tun-lost')));
    const socket = await dial(w.tunnel.address.port, Buffer.from(`CONNECT 127.0.0.1:${dest.port} HTTP/1.1\r\n\r\n`));
    assert.match(await readHead(socket), /^HTTP\/1\.1 200 /);
    const ports = portsOf(socket);
    const reading = drainSocket(socket);
    socket.resume();
    await until(() => socket.bytesRead > 200, 'the first bytes');
    w.channel.destroy();
    const got = await reading;
    assertReset(ports, got, `after ${got.data.length} bytes`);
  });
});

test('bad destinations are refused on every port before anything is sent', { timeout: 30_000 }, async (t) => {
  const w = await world(t);
  const everything = (socket: Socket) =>
    within(
      new Promise<Buffer>((resolve) => {
        const chunks: Buffer[] = [];
        socket.on('data', (c: Buffer) => chunks.push(c));
        socket.on('close', () => resolve(Buffer.concat(chunks)));
        socket.on('end', () => socket.end());
      }),
      'the refusal and the close',
    );
  for (const host of ['*', 'a*b.example', '127.0.9.1:443', 'a..b', '127.1', `${'a'.repeat(64)}.example`]) {
    const s4a = await dial(w.socks.address.port, encodeSocks4Request({ command: 1, addressType: 'domain', host, port: 443, userId: '' }));
    assert.equal((await everything(s4a)).toString('hex'), '005b000000000000', `SOCKS4a ${host}`);
    const resolve = await dial(w.socks.address.port, Buffer.concat([encodeGreeting({ methods: [0] }), encodeRequest({ command: 0xf0, addressType: 'domain', host, port: 0 })]));
    assert.equal((await everything(resolve)).toString('hex'), '0500' + '05040001000000000000', `SOCKS5 RESOLVE ${host}`);
    if (host.includes(':')) continue; // host:port has no place in a CONNECT target
    const tunnel = await dial(w.tunnel.address.port, Buffer.from(`CONNECT ${host}:443 HTTP/1.1\r\n\r\n`));
    assert.match((await everything(tunnel)).toString('latin1'), /^HTTP\/1\.1 400 /, `HTTP CONNECT ${host}`);
  }
  assert.deepEqual(w.calls, { connect: 0, resolve: 0 });
});
