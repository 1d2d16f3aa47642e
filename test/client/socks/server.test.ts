import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes, createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { SocksClient } from 'socks';
import { AlliumError, StreamEndedError } from '../../../src/errors.js';
import { EndReason } from '../../../src/cell/reasons.js';
import { startSocksServer, type SocksServer, type SocksConnector } from '../../../client/socks/server.js';
import type { SocksRequest } from '../../../client/socks/handshake.js';

const WAIT_MS = 5_000;

function withTimeout<T>(p: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

// --- a loopback echo server, the stand-in for "the remote end"
let echo: net.Server;
let echoPort: number;
const echoSockets = new Set<net.Socket>();

before(async () => {
  echo = net.createServer({ allowHalfOpen: true }, (s) => {
    echoSockets.add(s);
    s.on('close', () => echoSockets.delete(s));
    s.on('error', () => {});
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', r));
  echoPort = (echo.address() as net.AddressInfo).port;
});

after(async () => {
  for (const s of echoSockets) s.destroy();
  await new Promise<void>((r) => echo.close(() => r()));
});

/** The test connector: whatever the request names, connect to the loopback echo server (early data first). */
function echoConnector(seen?: SocksRequest[]): SocksConnector {
  return (request, _signal, earlyData) => {
    seen?.push(request);
    return new Promise<Duplex>((resolve, reject) => {
      const s = net.connect(echoPort, '127.0.0.1');
      s.once('connect', () => {
        if (earlyData !== undefined) s.write(earlyData);
        resolve(s);
      });
      s.once('error', (e) => reject(new AlliumError('ERR_LINK_CLOSED', 'echo connect failed', { cause: e })));
    });
  };
}

async function withServer(connect: SocksConnector, fn: (s: SocksServer) => Promise<void>, extra: { handshakeTimeoutMs?: number; maxConnections?: number } = {}): Promise<void> {
  const server = await startSocksServer({ host: '127.0.0.1', port: 0, connect, ...extra });
  try {
    await fn(server);
  } finally {
    await withTimeout(server.close(), 'server close');
  }
}

function viaSocks(port: number, dest = { host: 'example.com', port: 80 }, auth?: { userId: string; password: string }) {
  return SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port, type: 5, ...auth },
    command: 'connect',
    destination: dest,
    timeout: WAIT_MS,
  });
}

/** Write `data`, half-close, read everything back until EOF. */
function roundTrip(socket: net.Socket, data: Uint8Array): Promise<Buffer> {
  return withTimeout(
    new Promise<Buffer>((resolve, reject) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.once('end', () => resolve(Buffer.concat(chunks)));
      socket.once('error', reject);
      socket.end(data);
    }),
    'round trip',
  );
}

/** Resolves when the socket closes (and how: with or without data first). */
function closed(socket: net.Socket): Promise<Buffer> {
  return withTimeout(
    new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', () => {});
      socket.once('close', () => resolve(Buffer.concat(chunks)));
    }),
    'socket close',
  );
}

function rawConnect(port: number): Promise<net.Socket> {
  return withTimeout(
    new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    }),
    'raw connect',
  );
}

test('data flows both ways; the request carries the unresolved hostname', async () => {
  const seen: SocksRequest[] = [];
  await withServer(echoConnector(seen), async (server) => {
    const { socket } = await viaSocks(server.address.port, { host: 'some.host.invalid', port: 8080 });
    const back = await roundTrip(socket, Buffer.from('hello, onion'));
    assert.equal(back.toString(), 'hello, onion');
    assert.deepEqual(seen, [{ version: 5, command: 'connect', host: 'some.host.invalid', port: 8080, addressType: 'domain' }]);
  });
});

test('a 1 MB transfer is intact', async () => {
  await withServer(echoConnector(), async (server) => {
    const { socket } = await viaSocks(server.address.port);
    const data = randomBytes(1 << 20);
    const back = await roundTrip(socket, data);
    assert.equal(back.length, data.length);
    assert.equal(createHash('sha256').update(back).digest('hex'), createHash('sha256').update(data).digest('hex'));
  });
});

test('username/password auth: credentials reach the connector', async () => {
  const seen: SocksRequest[] = [];
  await withServer(echoConnector(seen), async (server) => {
    const { socket } = await viaSocks(server.address.port, { host: '10.1.2.3', port: 443 }, { userId: 'tab-7', password: 'x' });
    assert.equal((await roundTrip(socket, Buffer.from('ping'))).toString(), 'ping');
    assert.deepEqual(seen, [
      { version: 5, command: 'connect', host: '10.1.2.3', port: 443, addressType: 'ipv4', username: 'tab-7', password: 'x' },
    ]);
  });
});

test('connector rejections map to SOCKS reply codes', async () => {
  const cases: Array<[Error, string]> = [
    [new StreamEndedError(EndReason.EXITPOLICY, 'exit policy'), 'NotAllowed'],
    [new StreamEndedError(EndReason.CONNECTREFUSED, 'refused'), 'ConnectionRefused'],
    [new StreamEndedError(EndReason.RESOLVEFAILED, 'no such host'), 'HostUnreachable'],
    [new StreamEndedError(EndReason.NOROUTE, 'no route'), 'HostUnreachable'],
    [new StreamEndedError(EndReason.DONE, 'closed before CONNECTED'), 'ConnectionRefused'],
    [new StreamEndedError(EndReason.CONNRESET, 'reset'), 'ConnectionRefused'],
    [new AlliumError('ERR_TIMEOUT', 'slow'), 'TTLExpired'],
    [new AlliumError('ERR_NO_PATH', 'no relays'), 'Failure'],
    [new Error('plain'), 'Failure'],
  ];
  for (const [err, name] of cases) {
    await withServer(
      () => Promise.reject(err),
      async (server) => {
        await assert.rejects(viaSocks(server.address.port), (e: Error) => {
          assert.match(e.message, new RegExp(`rejected connection - ${name}$`));
          return true;
        });
      },
    );
  }
});

test('a connector that throws synchronously gives a general failure, not a crash', async () => {
  await withServer(
    () => {
      throw new Error('boom');
    },
    async (server) => {
      await assert.rejects(viaSocks(server.address.port), /rejected connection - Failure/);
    },
  );
});

test('20 parallel connections', async () => {
  await withServer(echoConnector(), async (server) => {
    const results = await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const { socket } = await viaSocks(server.address.port, { host: `h${i}.example`, port: 80 });
        return (await roundTrip(socket, Buffer.from(`conn ${i}`))).toString();
      }),
    );
    assert.deepEqual(results, Array.from({ length: 20 }, (_, i) => `conn ${i}`));
  });
});

test('pipelined data sent with the request reaches the remote first', async () => {
  await withServer(echoConnector(), async (server) => {
    const s = await rawConnect(server.address.port);
    const req = Buffer.concat([
      Buffer.from([5, 1, 0]),
      Buffer.from([5, 1, 0, 3, 4]),
      Buffer.from('a.bc'),
      Buffer.from([0, 80]),
      Buffer.from('early!'),
    ]);
    const back = await roundTrip(s, req);
    // 2 (method) + 10 (reply) + echoed early data
    assert.equal(back.subarray(0, 12).toString('hex'), '050005000001000000000000');
    assert.equal(back.subarray(12).toString(), 'early!');
  });
});

test('garbage and a silent client get a clean close; others keep working', async () => {
  await withServer(
    echoConnector(),
    async (server) => {
      const port = server.address.port;
      const garbage = await rawConnect(port);
      const garbageClosed = closed(garbage);
      garbage.write('GET / HTTP/1.1\r\n\r\n');
      const silent = await rawConnect(port);
      const silentClosed = closed(silent);
      const bind = await rawConnect(port);
      const bindClosed = closed(bind);
      bind.write(Buffer.from([5, 1, 0, 5, 2, 0, 1, 127, 0, 0, 1, 0, 80]));

      // Meanwhile a well-behaved client is served.
      const { socket } = await viaSocks(port);
      const open = roundTrip(socket, Buffer.from('still here'));

      assert.equal((await garbageClosed).length, 0);
      assert.equal((await bindClosed).toString('hex'), '050005070001000000000000');
      const t0 = Date.now();
      assert.equal((await silentClosed).length, 0);
      assert.ok(Date.now() - t0 < 3_000);
      assert.equal((await open).toString(), 'still here');

      // And a new one after all that.
      const again = await viaSocks(port);
      assert.equal((await roundTrip(again.socket, Buffer.from('again'))).toString(), 'again');
    },
    { handshakeTimeoutMs: 300 },
  );
});

test('connections over the limit are closed; the limit frees up', async () => {
  await withServer(
    echoConnector(),
    async (server) => {
      const port = server.address.port;
      const a = await viaSocks(port);
      const b = await viaSocks(port);
      await assert.rejects(viaSocks(port));
      a.socket.destroy();
      b.socket.destroy();
      // Wait until the server has seen them go.
      for (let i = 0; i < 50; i++) {
        try {
          const c = await viaSocks(port);
          assert.equal((await roundTrip(c.socket, Buffer.from('ok'))).toString(), 'ok');
          return;
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
      }
      assert.fail('limit never freed');
    },
    { maxConnections: 2 },
  );
});

test('close() destroys open client sockets, including ones waiting on the connector', async () => {
  let signal: AbortSignal | undefined;
  const hanging: SocksConnector = (_req, s) => {
    signal = s;
    return new Promise<Duplex>(() => {});
  };
  const server = await startSocksServer({ port: 0, connect: hanging });
  const waiting = await rawConnect(server.address.port);
  const waitingClosed = closed(waiting);
  waiting.write(Buffer.from([5, 1, 0, 5, 1, 0, 1, 127, 0, 0, 1, 0, 80]));
  for (let i = 0; i < 100 && signal === undefined; i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(signal, 'connector was called');
  assert.equal(server.address.host, '127.0.0.1');
  await withTimeout(server.close(), 'close');
  await waitingClosed;
  assert.equal(signal.aborted, true);
  await assert.rejects(rawConnect(server.address.port));
});

test('SOCKS4 and SOCKS4a through the socks package: the USERID reaches the connector as the username', async () => {
  const seen: SocksRequest[] = [];
  await withServer(echoConnector(seen), async (server) => {
    for (const host of ['10.9.8.7', 'four-a.example']) {
      const { socket } = await SocksClient.createConnection({
        proxy: { host: '127.0.0.1', port: server.address.port, type: 4, userId: 'tab-9' },
        command: 'connect',
        destination: { host, port: 8080 },
        timeout: WAIT_MS,
      });
      assert.equal((await roundTrip(socket, Buffer.from('v4'))).toString(), 'v4');
    }
  });
  assert.deepEqual(seen, [
    { version: 4, command: 'connect', host: '10.9.8.7', port: 8080, addressType: 'ipv4', username: 'tab-9', password: '' },
    { version: 4, command: 'connect', host: 'four-a.example', port: 8080, addressType: 'domain', username: 'tab-9', password: '' },
  ]);
});

test('RESOLVE and RESOLVE_PTR go to the resolver; answers and failures get Tor-style replies; without a resolver 0x07', async () => {
  const asked: Array<[string, string]> = [];
  const server = await startSocksServer({
    port: 0,
    connect: echoConnector(),
    resolve: async (request) => {
      asked.push([request.command, request.host]);
      if (request.host === 'fails.example') return null;
      if (request.host === 'broken.example') throw new StreamEndedError(EndReason.TIMEOUT, 'slow');
      return request.command === 'resolve_ptr' ? { type: 'hostname', value: 'name.example' } : { type: 'ipv4', value: '192.0.2.7' };
    },
  });
  try {
    const ask = async (bytes: number[]) => {
      const s = await rawConnect(server.address.port);
      const chunks: Buffer[] = [];
      s.on('data', (c: Buffer) => chunks.push(c));
      const done = closed(s);
      s.write(Buffer.from(bytes));
      await done;
      return [...Buffer.concat(chunks)];
    };
    const name = (n: string) => [n.length, ...Buffer.from(n)];
    assert.deepEqual(await ask([5, 1, 0, 5, 0xf0, 0, 3, ...name('ok.example'), 0, 0]), [5, 0, 5, 0, 0, 1, 192, 0, 2, 7, 0, 0]);
    assert.deepEqual(await ask([5, 1, 0, 5, 0xf1, 0, 1, 192, 0, 2, 7, 0, 0]), [5, 0, 5, 0, 0, 3, ...name('name.example'), 0, 0]);
    assert.deepEqual(await ask([5, 1, 0, 5, 0xf0, 0, 3, ...name('fails.example'), 0, 0]), [5, 0, 5, 4, 0, 1, 0, 0, 0, 0, 0, 0]);
    assert.deepEqual(await ask([5, 1, 0, 5, 0xf0, 0, 3, ...name('broken.example'), 0, 0]), [5, 0, 5, 6, 0, 1, 0, 0, 0, 0, 0, 0]);
    // SOCKS4a RESOLVE: the address in DSTIP, port 0.
    assert.deepEqual(await ask([4, 0xf0, 0, 0, 0, 0, 0, 1, 0, ...Buffer.from('ok.example'), 0]), [0, 90, 0, 0, 192, 0, 2, 7]);
    assert.deepEqual(asked, [
      ['resolve', 'ok.example'],
      ['resolve_ptr', '192.0.2.7'],
      ['resolve', 'fails.example'],
      ['resolve', 'broken.example'],
      ['resolve', 'ok.example'],
    ]);
  } finally {
    await server.close();
  }
  await withServer(echoConnector(), async (s) => {
    const sock = await rawConnect(s.address.port);
    const chunks: Buffer[] = [];
    sock.on('data', (c: Buffer) => chunks.push(c));
    const done = closed(sock);
    sock.write(Buffer.from([5, 1, 0, 5, 0xf0, 0, 3, 1, 0x61, 0, 0]));
    await done;
    assert.deepEqual([...Buffer.concat(chunks)], [5, 0, 5, 7, 0, 1, 0, 0, 0, 0, 0, 0]);
  });
});
