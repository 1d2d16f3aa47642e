/**
 * The shared directory HTTP client (src/dirclient/http.ts) and the relay's
 * descriptor upload on top of it, against real HTTP servers on 127.0.0.1:
 * success, status errors, time limit, size caps (declared and streamed),
 * compression, early close, refused connection, and no keep-alive.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { dirRequest, HttpStatusError } from '../../src/dirclient/http.js';
import { uploadDescriptor } from '../../relay/publisher.js';
import { AlliumError } from '../../src/errors.js';

async function serve(t: TestContext, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<URL> {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x`);
}

/** A raw TCP server, for answers no HTTP server would send. */
async function serveRaw(t: TestContext, onSocket: (socket: Socket) => void): Promise<URL> {
  const sockets = new Set<Socket>();
  const server = createTcpServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    onSocket(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/x`);
}

const isAllium = (code: string) => (e: unknown) => e instanceof AlliumError && e.code === code;
const opts = { what: 'test request', maxBodyBytes: 1000 };

test('GET: a 200 body comes back; the request closes its connection (no keep-alive)', async (t) => {
  let connection: string | undefined;
  const url = await serve(t, (req, res) => {
    connection = req.headers.connection;
    res.end('hello');
  });
  assert.equal(Buffer.from(await dirRequest(url, opts)).toString(), 'hello');
  assert.equal(connection, 'close');
});

test('POST: the body arrives as text/plain with its length', async (t) => {
  let got = '';
  let type: string | undefined;
  const url = await serve(t, (req, res) => {
    type = req.headers['content-type'];
    req.setEncoding('utf8');
    req.on('data', (c: string) => (got += c));
    req.on('end', () => res.end('accepted'));
  });
  await dirRequest(url, { ...opts, method: 'POST', body: 'descriptor text\n' });
  assert.equal(got, 'descriptor text\n');
  assert.equal(type, 'text/plain; charset=utf-8');
});

test('a status other than 200 is an HttpStatusError carrying the status', async (t) => {
  const url = await serve(t, (_req, res) => {
    res.statusCode = 409;
    res.end('stale');
  });
  await assert.rejects(dirRequest(url, opts), (e: unknown) => e instanceof HttpStatusError && e.status === 409 && e.code === 'ERR_DOCUMENT');
  // The relay's upload reports the authority's refusal the same way.
  await assert.rejects(uploadDescriptor({ url: url.origin, identity: new Uint8Array(32) }, 'x\n'), (e: unknown) => e instanceof HttpStatusError && e.status === 409);
});

test('bodies over the cap: declared, streamed, or after decompression', async (t) => {
  const declared = await serve(t, (_req, res) => {
    res.setHeader('content-length', 5000);
    res.flushHeaders(); // the headers alone must be enough to refuse
  });
  await assert.rejects(dirRequest(declared, opts), isAllium('ERR_OVERSIZED'));
  const streamed = await serve(t, (_req, res) => {
    res.write(Buffer.alloc(600));
    res.end(Buffer.alloc(600));
  });
  await assert.rejects(dirRequest(streamed, opts), isAllium('ERR_OVERSIZED'));
  const bomb = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-encoding': 'gzip' });
    res.end(gzipSync(Buffer.alloc(100_000)));
  });
  await assert.rejects(dirRequest(bomb, { ...opts, acceptGzip: true }), isAllium('ERR_OVERSIZED'));
  const exact = await serve(t, (_req, res) => res.end(Buffer.alloc(1000, 0x41)));
  assert.equal((await dirRequest(exact, opts)).length, 1000);
});

test('compression: gzip when asked; broken gzip, unasked gzip and other codings are malformed', async (t) => {
  let asked: string | undefined;
  const gz = await serve(t, (req, res) => {
    asked = req.headers['accept-encoding'];
    res.writeHead(200, { 'content-encoding': 'gzip' });
    res.end(gzipSync('zipped'));
  });
  assert.equal(Buffer.from(await dirRequest(gz, { ...opts, acceptGzip: true })).toString(), 'zipped');
  assert.equal(asked, 'gzip');
  await assert.rejects(dirRequest(gz, opts), isAllium('ERR_MALFORMED'));
  const broken = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-encoding': 'gzip' });
    res.end(gzipSync('zipped').subarray(0, 12));
  });
  await assert.rejects(dirRequest(broken, { ...opts, acceptGzip: true }), isAllium('ERR_MALFORMED'));
  const br = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-encoding': 'br' });
    res.end('x');
  });
  await assert.rejects(dirRequest(br, { ...opts, acceptGzip: true }), isAllium('ERR_MALFORMED'));
});

test('the whole-request time limit holds against a server that trickles', async (t) => {
  const url = await serveRaw(t, (socket) => {
    socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n');
    const timer = setInterval(() => socket.write('x'), 20); // never idle, never done
    socket.on('close', () => clearInterval(timer));
  });
  const started = Date.now();
  await assert.rejects(dirRequest(url, { ...opts, timeoutMs: 300 }), isAllium('ERR_TIMEOUT'));
  assert.ok(Date.now() - started < 2000);
});

test('a refused connection or an answer cut short is ERR_LINK_CLOSED', async (t) => {
  const closed = await serveRaw(t, (socket) => {
    socket.end('HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly part');
  });
  await assert.rejects(dirRequest(closed, opts), isAllium('ERR_LINK_CLOSED'));
  // A port nobody listens on: take one from a server we close again.
  const probe = createTcpServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const free = (probe.address() as AddressInfo).port;
  probe.close();
  await once(probe, 'close');
  await assert.rejects(dirRequest(new URL(`http://127.0.0.1:${free}/x`), opts), isAllium('ERR_LINK_CLOSED'));
  const garbage = await serveRaw(t, (socket) => socket.end('not http at all\r\n\r\n'));
  await assert.rejects(dirRequest(garbage, opts), isAllium('ERR_LINK_CLOSED'));
});
