/**
 * End to end through real processes, started exactly as `npm start` starts
 * them: one `allium testnet` process (3 authorities, 5 relays, client), a real
 * HTTP server on 127.0.0.1, and curl / the `socks` package as applications.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { once } from 'node:events';
import { request } from 'node:http';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { SocksClient, type SocksClientError } from 'socks';
import { startTestnetProcess } from '../support/testnet-process.js';
import { payloadSha256, startPayloadServer, HELLO_BODY } from '../support/payload-server.js';
import { crypto } from '../../src/crypto/crypto.js';
import { encodeDescriptor } from '../../src/netdoc/descriptor.js';
import { parseConsensus, verifyConsensus } from '../../src/netdoc/consensus.js';
import { parseExitPolicy } from '../../src/netdoc/exit-policy.js';
import { signLinkCertificate } from '../../src/link/link-handshake.js';
import { newRelaySigner } from '../../relay/keys.js';
import { fromHex, hex } from '../../src/bytes.js';
import { StreamEndedError } from '../../src/errors.js';
import { EndReason } from '../../src/cell/reasons.js';
import { startClient } from '../../client/client.js';

interface HttpResult {
  status: number;
  body: Buffer;
}

/** GET over a SOCKS5 stream opened by the `socks` package; the exit resolves `host`. */
async function socksGet(socksPort: number, host: string, port: number, path: string, isolation?: string): Promise<HttpResult> {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: '127.0.0.1', port: socksPort, type: 5, ...(isolation ? { userId: isolation, password: 'x' } : {}) },
    command: 'connect',
    destination: { host, port },
    timeout: 30_000,
  });
  return readHttp(socket, host, path);
}

async function readHttp(socket: Socket, host: string, path: string): Promise<HttpResult> {
  socket.setTimeout(60_000, () => socket.destroy(new Error('HTTP read timed out')));
  socket.write(`GET ${path} HTTP/1.0\r\nHost: ${host}\r\n\r\n`);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'end');
  const all = Buffer.concat(chunks);
  const split = all.indexOf('\r\n\r\n');
  assert.ok(split > 0, 'HTTP response has a header');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(all.subarray(0, split).toString('latin1'))?.[1]);
  return { status, body: all.subarray(split + 4) };
}

function curl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('curl', args, { timeout: 60_000, encoding: 'utf8' }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Sends garbage to host:port and resolves once the far end closed the connection. */
async function garbageIsClosed(host: string, port: number): Promise<void> {
  const socket = connect({ host, port });
  socket.on('error', () => {});
  await once(socket, 'connect');
  socket.write(crypto.randomBytes(4096));
  socket.resume();
  const timer = setTimeout(() => socket.destroy(new Error('not closed in time')), 15_000);
  await once(socket, 'close');
  clearTimeout(timer);
  assert.equal(socket.destroyed, true);
}

test('testnet end to end: curl, socks, 10 MB, 50 streams, exit policy, garbage, bad descriptor', { timeout: 300_000 }, async (t) => {
  const net = await startTestnetProcess(t);
  const server = await startPayloadServer({ host: '127.0.0.1', port: 0 });
  t.after(() => server.close());
  assert.match(net.readyLine, /^ready .*127\.0\.0\.1:\d+/);
  assert.ok(net.relays.length >= 5);
  const exitAddresses = net.relays.filter((r) => r.exit).map((r) => r.address);
  assert.ok(exitAddresses.length >= 2);

  await t.test('curl --socks5-hostname fetches a page and a 10 MB body, the name resolved at the exit', async () => {
    const result = await curl(['-sS', '--max-time', '60', '--socks5-hostname', `127.0.0.1:${net.socksPort}`, `http://localhost:${server.port}/hello`]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, HELLO_BODY);
    const file = join(mkdtempSync(join(tmpdir(), 'allium-curl-')), 'body');
    const big = await curl(['-sS', '--max-time', '120', '-o', file, '--socks5-hostname', `127.0.0.1:${net.socksPort}`, `http://localhost:${server.port}/bytes/10000000`]);
    assert.equal(big.code, 0, big.stderr);
    const body = readFileSync(file);
    rmSync(dirname(file), { recursive: true, force: true });
    assert.equal(body.length, 10_000_000);
    assert.equal(hex(crypto.sha256(body)), payloadSha256(10_000_000));
  });

  await t.test('the socks package fetches a page and a 10 MB body whose SHA-256 matches', async () => {
    const hello = await socksGet(net.socksPort, 'localhost', server.port, '/hello');
    assert.equal(hello.status, 200);
    assert.equal(hello.body.toString(), HELLO_BODY);
    const big = await socksGet(net.socksPort, '127.0.0.1', server.port, '/bytes/10000000');
    assert.equal(big.status, 200);
    assert.equal(big.body.length, 10_000_000);
    assert.equal(hex(crypto.sha256(big.body)), payloadSha256(10_000_000));
  });

  await t.test('the destination sees an exit relay, never 127.0.0.1', () => {
    const seen = server.remoteAddresses();
    assert.ok(seen.length > 0);
    for (const address of seen) {
      assert.notEqual(address, '127.0.0.1');
      assert.ok(exitAddresses.includes(address), `${address} is not an exit (${exitAddresses.join(', ')})`);
    }
  });

  await t.test('50 concurrent streams all complete', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => socksGet(net.socksPort, '127.0.0.1', server.port, `/bytes/${20_000 + i}?seed=s${i}`)),
    );
    results.forEach((r, i) => {
      assert.equal(r.status, 200);
      assert.equal(hex(crypto.sha256(r.body)), payloadSha256(20_000 + i, `s${i}`));
    });
  });

  await t.test('a port no exit allows gets SOCKS reply 0x02 (not allowed by ruleset)', async () => {
    const error = await SocksClient.createConnection({
      proxy: { host: '127.0.0.1', port: net.socksPort, type: 5 },
      command: 'connect',
      destination: { host: '127.0.0.1', port: 25 },
      timeout: 30_000,
    }).then(
      () => null,
      (e: SocksClientError) => e,
    );
    assert.ok(error !== null, 'connection to port 25 must fail');
    assert.match(error.message, /not allowed|NotAllowed/i);
  });

  await t.test('garbage to a relay port and to the SOCKS port: clean close, other streams keep working', async () => {
    // A stream that is open before, during and after the garbage.
    const { socket } = await SocksClient.createConnection({
      proxy: { host: '127.0.0.1', port: net.socksPort, type: 5 },
      command: 'connect',
      destination: { host: '127.0.0.1', port: server.port },
      timeout: 30_000,
    });
    const relay = net.relays[0]!;
    await Promise.all([garbageIsClosed(relay.address, relay.port), garbageIsClosed('127.0.0.1', net.socksPort)]);
    for (const r of net.relays) await garbageIsClosed(r.address, r.port);
    const during = await readHttp(socket, '127.0.0.1', '/hello');
    assert.equal(during.body.toString(), HELLO_BODY);
    const after = await socksGet(net.socksPort, 'localhost', server.port, '/hello', 'fresh-circuit');
    assert.equal(after.body.toString(), HELLO_BODY);
  });

  await t.test('SOCKS CONNECT to an IPv6 address reaches a server on ::1', async () => {
    const v6 = await startPayloadServer({ host: '::1', port: 0 });
    try {
      const result = await socksGet(net.socksPort, '::1', v6.port, '/hello');
      assert.equal(result.status, 200);
      assert.equal(result.body.toString(), HELLO_BODY);
    } finally {
      await v6.close();
    }
  });

  await t.test('the programmatic API opens a stream the same way the SOCKS port does', async () => {
    const client = await startClient({
      authorities: net.authorities.map((a) => ({ url: a.url, identity: fromHex(a.identity) })),
      socksHost: '127.0.0.1',
      socksPort: 0,
    });
    try {
      await client.whenReady(60_000);
      const stream = await client.openStream('localhost', server.port);
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.write(`GET /bytes/100000 HTTP/1.0\r\nHost: localhost\r\n\r\n`);
      await once(stream, 'end');
      const all = Buffer.concat(chunks);
      const body = all.subarray(all.indexOf('\r\n\r\n') + 4);
      assert.equal(hex(crypto.sha256(body)), payloadSha256(100_000));
      // A port no exit allows is refused with the EXITPOLICY reason.
      await assert.rejects(client.openStream('127.0.0.1', 25), (e: unknown) => e instanceof StreamEndedError && e.reason === EndReason.EXITPOLICY);
    } finally {
      await client.close();
    }
  });

  await t.test('the three authorities serve byte-identical consensuses, each with three signatures', async () => {
    assert.equal(net.authorities.length, 3);
    const trusted = net.authorities.map((a) => fromHex(a.identity));
    const get = (url: string) =>
      new Promise<string>((resolve, reject) => {
        const req = request(new URL('/allium/v1/consensus', url), { timeout: 10_000 });
        req.on('response', (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (c: string) => (body += c));
          res.on('end', () => resolve(body));
        });
        req.on('error', reject);
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.end();
      });
    // Poll (bounded) until all three serve the same round: they publish it at the same moment, give or take.
    // The testnet is up once the client can build a circuit, which a round listing 3 of the 5 relays allows.
    const deadline = Date.now() + 30_000;
    let texts: string[] = [];
    while (Date.now() < deadline) {
      texts = await Promise.all(net.authorities.map((a) => get(a.url)));
      const served = new Set(texts).size === 1 ? parseConsensus(texts[0]!) : null;
      if (served !== null && served.signatures.length === 3 && served.relays.length === 5) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(texts[0], texts[1]);
    assert.equal(texts[1], texts[2]);
    const c = verifyConsensus(texts[0]!, trusted, Date.now());
    assert.equal(c.verifiedSigners.length, 3);
    assert.equal(c.authorities.length, 3);
    assert.equal(c.relays.length, 5);
    assert.ok(c.bandwidthWeights !== undefined, 'a testnet consensus carries bandwidth weights');
  });

  await t.test('the authority refuses a descriptor with a bad signature', async () => {
    const seed = crypto.randomBytes(32);
    const identity = crypto.ed25519PublicKey(seed);
    const signer = newRelaySigner(seed, Date.now(), 86_400_000);
    const linkSecret = crypto.randomBytes(32);
    const linkKey = crypto.x25519PublicKey(linkSecret);
    const text = encodeDescriptor(
      {
        nickname: 'forger',
        identity,
        linkKey,
        linkCert: signLinkCertificate(signer, linkKey),
        ntorOnionKey: crypto.x25519PublicKey(crypto.randomBytes(32)),
        address: '127.9.0.1',
        orPort: 9999,
        bandwidth: 1000,
        platform: 'test',
        published: Math.floor(Date.now() / 1000) * 1000,
        exitPolicy: parseExitPolicy(['reject *:*']),
      },
      signer,
    );
    const post = (body: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(new URL('/allium/v1/descriptor', net.authorityUrl), { method: 'POST', timeout: 10_000 });
        req.on('response', (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.on('timeout', () => req.destroy(new Error('timeout')));
        req.end(body);
      });
    // Change one character of the signature line.
    const lines = text.split('\n');
    const sigIndex = lines.findIndex((l) => l.startsWith('signature '));
    const sig = lines[sigIndex]!;
    const at = sig.length - 5;
    lines[sigIndex] = sig.slice(0, at) + (sig[at] === 'A' ? 'B' : 'A') + sig.slice(at + 1);
    assert.equal(await post(lines.join('\n')), 403);
  });
});
