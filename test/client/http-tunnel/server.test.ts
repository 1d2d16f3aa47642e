/**
 * The HTTP tunnel port over real sockets: a CONNECT is spliced to the
 * connector's stream (early data first), failures become their 4xx/5xx with
 * the END reason named, bad requests get their status, slow ones a 408, and
 * none of it disturbs a tunnel that is open.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { PassThrough, type Duplex } from 'node:stream';
import { startHttpTunnel, type HttpTunnelServer, type TunnelConnector } from '../../../client/http-tunnel/server.js';
import type { ConnectRequest } from '../../../client/http-tunnel/request.js';
import { AlliumError, StreamEndedError } from '../../../src/errors.js';
import { EndReason } from '../../../src/cell/reasons.js';

/** An in-process "stream" that echoes what it is sent. */
function echoStream(): Duplex {
  const p = new PassThrough();
  return p;
}

async function withTunnel(connect: TunnelConnector, fn: (port: number) => Promise<void>, headerTimeoutMs?: number): Promise<void> {
  const server: HttpTunnelServer = await startHttpTunnel({ port: 0, connect, ...(headerTimeoutMs !== undefined ? { headerTimeoutMs } : {}) });
  try {
    await fn(server.address.port);
  } finally {
    await server.close();
  }
}

/** Send `text`, collect everything until the server closes (bounded). */
async function exchange(port: number, text: string): Promise<string> {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  await once(s, 'connect');
  const chunks: Buffer[] = [];
  s.on('data', (c: Buffer) => chunks.push(c));
  s.write(text);
  const timer = setTimeout(() => s.destroy(), 5_000);
  await once(s, 'close');
  clearTimeout(timer);
  return Buffer.concat(chunks).toString('latin1');
}

test('CONNECT: 200, then bytes both ways; early data reaches the connector; Proxy-Authorization is passed on', async () => {
  const seen: Array<{ request: ConnectRequest; early: string }> = [];
  await withTunnel(
    async (request, _signal, early) => {
      seen.push({ request, early: early ? Buffer.from(early).toString() : '' });
      const stream = echoStream();
      if (early) stream.write(early);
      return stream;
    },
    async (port) => {
      const s = net.connect(port, '127.0.0.1');
      await once(s, 'connect');
      s.write('CONNECT example.com:443 HTTP/1.1\r\nProxy-Authorization: Basic abc\r\n\r\nearly;');
      let got = '';
      s.on('data', (c: Buffer) => (got += c.toString()));
      const deadline = Date.now() + 5_000;
      while (!got.includes('early;') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.equal(got, 'HTTP/1.1 200 Connection established\r\n\r\nearly;');
      s.write('more');
      while (!got.endsWith('more') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.ok(got.endsWith('early;more'));
      s.destroy();
    },
  );
  assert.deepEqual(seen, [{ request: { host: 'example.com', port: 443, httpVersion: '1.1', proxyAuthorization: 'Basic abc' }, early: 'early;' }]);
});

test('failures map to statuses with the END reason named; the answer closes the connection', async () => {
  const cases: Array<[unknown, number, string | null]> = [
    [new StreamEndedError(EndReason.EXITPOLICY, 'x'), 403, 'EXITPOLICY'],
    [new StreamEndedError(EndReason.RESOLVEFAILED, 'x'), 502, 'RESOLVEFAILED'],
    [new StreamEndedError(EndReason.CONNECTREFUSED, 'x'), 502, 'CONNECTREFUSED'],
    [new StreamEndedError(EndReason.TIMEOUT, 'x'), 504, 'TIMEOUT'],
    [new StreamEndedError(EndReason.RESOURCELIMIT, 'x'), 503, 'RESOURCELIMIT'],
    [new StreamEndedError(EndReason.MISC, 'x'), 502, 'MISC'],
    [new AlliumError('ERR_TIMEOUT', 'slow'), 504, null],
    [new AlliumError('ERR_NO_PATH', 'no exit allows port 25'), 503, null],
    [new Error('plain'), 502, null],
  ];
  for (const [error, status, reason] of cases) {
    await withTunnel(
      () => Promise.reject(error),
      async (port) => {
        const answer = await exchange(port, 'CONNECT a.example:25 HTTP/1.0\r\n\r\n');
        assert.match(answer, new RegExp(`^HTTP/1\\.0 ${status} `), answer);
        assert.match(answer, /\r\nConnection: close\r\n/);
        if (reason !== null) assert.match(answer, new RegExp(`\\r\\nAllium-End-Reason: ${reason}\\r\\n`));
        else assert.doesNotMatch(answer, /Allium-End-Reason/);
        const body = answer.slice(answer.indexOf('\r\n\r\n') + 4);
        assert.equal(Number(/Content-Length: (\d+)/.exec(answer)?.[1]), Buffer.byteLength(body));
      },
    );
  }
});

test('bad requests get 400/405/414/431, a silent client 408; an open tunnel is not disturbed', async () => {
  await withTunnel(
    async () => echoStream(),
    async (port) => {
      const open = net.connect(port, '127.0.0.1');
      await once(open, 'connect');
      open.write('CONNECT keep.example:80 HTTP/1.1\r\n\r\n');
      await once(open, 'data');
      assert.match(await exchange(port, 'GET / HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 405 [^\r]*\r\n(.*\r\n)*Allow: CONNECT\r\n/);
      assert.match(await exchange(port, 'CONNECT nope HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 400 /);
      assert.match(await exchange(port, `CONNECT ${'a'.repeat(3000)}:1 HTTP/1.1\r\n\r\n`), /^HTTP\/1\.1 414 /);
      assert.match(await exchange(port, `CONNECT a:1 HTTP/1.1\r\n${'X: y\r\n'.repeat(2000)}`), /^HTTP\/1\.1 431 /);
      assert.match(await exchange(port, '\u0000\u0001\u0002\r\n\r\n'), /^HTTP\/1\.1 400 /);
      open.write('still open');
      const [echoed] = (await once(open, 'data')) as [Buffer];
      assert.equal(echoed.toString(), 'still open');
      open.destroy();
    },
  );
  await withTunnel(
    async () => echoStream(),
    async (port) => assert.match(await exchange(port, 'CONNECT a:1 HTTP/1.1\r\n'), /^HTTP\/1\.1 408 /),
    200,
  );
});
