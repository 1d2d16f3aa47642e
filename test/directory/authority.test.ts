import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { connect, createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync, statSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, inflateSync } from 'node:zlib';
import { startAuthority, type AuthorityConfig, type AuthorityHandle } from '../../directory/authority.js';
import { encodeDescriptor, parseDescriptor, type RelayDescriptor } from '../../src/netdoc/descriptor.js';
import { parseExitPolicy, summaryAllowsPort } from '../../src/netdoc/exit-policy.js';
import { verifyConsensus, type Consensus } from '../../src/netdoc/consensus.js';
import { hex } from '../../src/bytes.js';
import { b64 } from '../../src/netdoc/text.js';
import { makeDescriptor, relayKeys, type RelayKeys } from '../netdoc/helpers.js';

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'allium-auth-'));
  dirs.push(d);
  return join(d, 'data');
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

function http(url: string, opts: { method?: string; body?: string | Buffer; headers?: Record<string, string> } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: opts.method ?? 'GET', headers: opts.headers ?? {}, timeout: 5000 });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', reject);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.end(opts.body);
  });
}

const post = (a: AuthorityHandle, text: string | Buffer) => http(`${a.url}/allium/v1/descriptor`, { method: 'POST', body: text });

/** A TCP listener standing in for the relay's OR port. */
async function listener(): Promise<{ server: Server; port: number }> {
  const server = createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as { port: number }).port };
}

/** Probe: a real TCP connect, bounded. */
function tcpProbe(d: RelayDescriptor): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: d.address, port: d.orPort });
    s.setTimeout(2000, () => {
      s.destroy();
      resolve(false);
    });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

function config(dataDir: string, over: Partial<AuthorityConfig> = {}): AuthorityConfig {
  return { nickname: 'auth1', dataDir, host: '127.0.0.1', port: 0, votingIntervalMs: 60_000, consensusLifetimeMs: 180_000, probe: tcpProbe, ...over };
}

const nowSec = () => Math.floor(Date.now() / 1000) * 1000;

function descriptorText(keys: RelayKeys, port: number, over: Partial<RelayDescriptor> = {}): string {
  return encodeDescriptor(makeDescriptor(keys, { orPort: port, published: nowSec(), ...over }), keys.signer);
}

async function fetchConsensus(a: AuthorityHandle, encoding?: string): Promise<Res> {
  return http(`${a.url}/allium/v1/consensus`, encoding === undefined ? {} : { headers: { 'accept-encoding': encoding } });
}

test('authority: upload, probe, publish, verify, fetch compressed', async () => {
  const relayPort = await listener();
  const closedPort = await listener();
  await new Promise<void>((r) => closedPort.server.close(() => r()));
  const a = await startAuthority(config(tempDir()));
  try {
    assert.match(a.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal((await fetchConsensus(a)).status, 404);

    const exitKeys = relayKeys(11, Date.now());
    const middleKeys = relayKeys(12, Date.now());
    const deadKeys = relayKeys(13, Date.now());
    const exitText = descriptorText(exitKeys, relayPort.port, { nickname: 'exit1', exitPolicy: parseExitPolicy(['reject private:*', 'accept *:*']) });
    const middleText = descriptorText(middleKeys, relayPort.port, { nickname: 'middle1', bandwidth: 10_000, exitPolicy: parseExitPolicy(['reject *:*']) });
    const deadText = descriptorText(deadKeys, closedPort.port, { nickname: 'dead1' });

    // Garbage and a good upload at the same time.
    const [garbage, ok] = await Promise.all([post(a, 'this is not a descriptor\n'), post(a, exitText)]);
    assert.equal(garbage.status, 400);
    assert.equal(ok.status, 200);
    assert.equal((await post(a, middleText)).status, 200);
    assert.equal((await post(a, deadText)).status, 200);
    // The same bytes again: idempotent.
    assert.equal((await post(a, exitText)).status, 200);

    await a.publishNow();
    const res = await fetchConsensus(a);
    assert.equal(res.status, 200);
    const text = res.body.toString('utf8');
    const c: Consensus = verifyConsensus(text, [a.identity], Date.now());
    assert.equal(c.authorities.length, 1);
    assert.equal(c.authorities[0]!.nickname, 'auth1');
    assert.equal(`http://${c.authorities[0]!.address}:${c.authorities[0]!.dirPort}`, a.url);
    const byNick = new Map(c.relays.map((r) => [r.nickname, r]));
    assert.deepEqual([...byNick.keys()].sort(), ['exit1', 'middle1']); // dead1 is not Running
    const exit = byNick.get('exit1')!;
    // Two relays up since their first probe: both MTBFs are at least the lower median, so both are Stable;
    // 10 kB/s is the 1/8 quantile of the two bandwidths, so both are Fast (§9.4).
    assert.deepEqual(exit.flags, ['Exit', 'Fast', 'Guard', 'Running', 'Stable', 'Valid']);
    assert.deepEqual(exit.identity, exitKeys.identity);
    assert.deepEqual(exit.linkKey, exitKeys.linkKey);
    assert.deepEqual(exit.ntorOnionKey, exitKeys.ntorOnionKey);
    assert.deepEqual(exit.descriptorDigest, parseDescriptor(exitText).digest);
    assert.equal(exit.orPort, relayPort.port);
    assert.equal(summaryAllowsPort(exit.exitSummary, 443), true);
    const middle = byNick.get('middle1')!;
    assert.deepEqual(middle.flags, ['Fast', 'Guard', 'Running', 'Stable', 'Valid']); // small network: every Running relay guards
    assert.equal(summaryAllowsPort(middle.exitSummary, 80), false);

    const gz = await fetchConsensus(a, 'gzip');
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(gz.body).toString('utf8'), text);
    const df = await fetchConsensus(a, 'deflate');
    assert.equal(df.headers['content-encoding'], 'deflate');
    assert.equal(inflateSync(df.body).toString('utf8'), text);
    const none = await fetchConsensus(a, 'gzip;q=0, br');
    assert.equal(none.headers['content-encoding'], undefined);
    assert.equal(none.body.toString('utf8'), text);

    // Descriptors by identity.
    const got = await http(`${a.url}/allium/v1/descriptor/${hex(exitKeys.identity)}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.toString('utf8'), exitText);
    assert.equal((await http(`${a.url}/allium/v1/descriptor/${hex(relayKeys(99, Date.now()).identity)}`)).status, 404);
    assert.equal((await http(`${a.url}/allium/v1/descriptor/xyz`)).status, 404);

    // Authority info.
    const info = await http(`${a.url}/allium/v1/authority`);
    assert.equal(info.status, 200);
    const json = JSON.parse(info.body.toString('utf8')) as Record<string, unknown>;
    assert.equal(json.nickname, 'auth1');
    assert.equal(json.identity, b64(a.identity));
    assert.equal(json.identityHex, hex(a.identity));
    assert.equal(json.address, '127.0.0.1');
    assert.equal(json.url, a.url);

    // Methods and paths.
    assert.equal((await http(`${a.url}/allium/v1/consensus`, { method: 'POST', body: 'x' })).status, 405);
    assert.equal((await http(`${a.url}/allium/v1/descriptor`)).status, 405);
    assert.equal((await http(`${a.url}/nothing`)).status, 404);
  } finally {
    await a.close();
    await new Promise<void>((r) => relayPort.server.close(() => r()));
  }
});

test('authority: refuses bad signatures, oversized, stale and older descriptors', async () => {
  const relayPort = await listener();
  const a = await startAuthority(config(tempDir()));
  try {
    const keys = relayKeys(21, Date.now());
    const good = descriptorText(keys, relayPort.port);
    const forged = good.replace('bandwidth 1000000', 'bandwidth 9000000');
    const badSig = await post(a, forged);
    assert.equal(badSig.status, 403);

    const big = await post(a, 'x'.repeat(30 * 1024));
    assert.equal(big.status, 413);
    // A body that is over the limit without a content-length header (chunked).
    const chunked = await new Promise<number>((resolve, reject) => {
      const req = request(`${a.url}/allium/v1/descriptor`, { method: 'POST', timeout: 5000 });
      req.on('error', reject);
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      for (let i = 0; i < 30; i++) req.write('y'.repeat(1024));
      req.end();
    });
    assert.equal(chunked, 413);

    const stale = descriptorText(keys, relayPort.port, { published: nowSec() - 37 * 3600_000 });
    assert.equal((await post(a, stale)).status, 409);
    const future = descriptorText(keys, relayPort.port, { published: nowSec() + 2 * 3600_000 });
    assert.equal((await post(a, future)).status, 409);
    assert.equal((await post(a, Buffer.from([0xff, 0xfe, 0x0a]))).status, 400);

    const newer = descriptorText(keys, relayPort.port, { published: nowSec() + 10_000 });
    assert.equal((await post(a, newer)).status, 200);
    assert.equal((await post(a, good)).status, 409); // older than the one held

    await a.publishNow();
    const c = verifyConsensus((await fetchConsensus(a)).body.toString('utf8'), [a.identity], Date.now());
    assert.equal(c.relays.length, 1);
    assert.deepEqual(c.relays[0]!.descriptorDigest, parseDescriptor(newer).digest);
    const forgedIdentity = relayKeys(22, Date.now());
    assert.ok(!c.relays.some((r) => hex(r.identity) === hex(forgedIdentity.identity)));
  } finally {
    await a.close();
    await new Promise<void>((r) => relayPort.server.close(() => r()));
  }
});

test('authority: a bad-signature relay is never listed; the server keeps serving during a slow upload', async () => {
  const relayPort = await listener();
  const a = await startAuthority(config(tempDir(), { requestTimeoutMs: 400 }));
  try {
    const keys = relayKeys(31, Date.now());
    const text = descriptorText(keys, relayPort.port);
    const sigAt = text.lastIndexOf('signature ') + 10;
    const sig = Buffer.from(text.slice(sigAt, -1), 'base64');
    sig[0]! ^= 1;
    assert.equal((await post(a, text.slice(0, sigAt) + b64(sig) + '\n')).status, 403);

    // A slow upload: headers promise 1000 bytes, only 10 come.
    const slow = connect({ host: '127.0.0.1', port: Number(new URL(a.url).port) });
    const slowDone = new Promise<string>((resolve) => {
      let got = '';
      slow.on('data', (d: Buffer) => (got += d.toString('latin1')));
      slow.on('close', () => resolve(got));
      slow.on('error', () => {});
    });
    slow.write('POST /allium/v1/descriptor HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n0123456789');
    // Meanwhile other requests are served.
    assert.equal((await http(`${a.url}/allium/v1/authority`)).status, 200);
    const started = Date.now();
    let guard: NodeJS.Timeout | undefined;
    const answer = await Promise.race([slowDone, new Promise<string>((_, rej) => (guard = setTimeout(() => rej(new Error('slow upload never cut')), 5000)))]);
    clearTimeout(guard);
    assert.ok(Date.now() - started < 5000);
    assert.match(answer, /^HTTP\/1\.1 408/);

    await a.publishNow();
    const c = verifyConsensus((await fetchConsensus(a)).body.toString('utf8'), [a.identity], Date.now());
    assert.equal(c.relays.length, 0);
    assert.equal((await http(`${a.url}/allium/v1/descriptor/${hex(keys.identity)}`)).status, 404);
  } finally {
    await a.close();
    await new Promise<void>((r) => relayPort.server.close(() => r()));
  }
});

test('authority: restart keeps identity, descriptors and consensus; key file 0600', async () => {
  const relayPort = await listener();
  const dataDir = tempDir();
  const keys = relayKeys(41, Date.now());
  const text = descriptorText(keys, relayPort.port);
  let identity: Uint8Array;
  let first: string;
  {
    const a = await startAuthority(config(dataDir));
    identity = a.identity;
    assert.equal((await post(a, text)).status, 200);
    await a.publishNow();
    first = (await fetchConsensus(a)).body.toString('utf8');
    await a.close();
  }
  if (process.platform !== 'win32') {
    assert.equal(statSync(join(dataDir, 'keys', 'authority_identity_key')).mode & 0o777, 0o600);
    assert.equal(statSync(dataDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(dataDir, 'keys')).mode & 0o777, 0o700);
  }
  assert.deepEqual(readdirSync(join(dataDir, 'descriptors')), [hex(keys.identity)]);
  const b = await startAuthority(config(dataDir));
  try {
    assert.deepEqual(b.identity, identity);
    const again = await fetchConsensus(b);
    assert.equal(again.status, 200);
    assert.equal(again.body.toString('utf8'), first);
    assert.ok(verifyConsensus(first, [b.identity], Date.now()));
    assert.equal((await http(`${b.url}/allium/v1/descriptor/${hex(keys.identity)}`)).body.toString('utf8'), text);
    await b.publishNow();
    const c = verifyConsensus((await fetchConsensus(b)).body.toString('utf8'), [b.identity], Date.now());
    assert.deepEqual(c.relays.map((r) => hex(r.identity)), [hex(keys.identity)]);
  } finally {
    await b.close();
    await new Promise<void>((r) => relayPort.server.close(() => r()));
  }
});

test('authority: publishes on its own every voting interval', async () => {
  const a = await startAuthority(config(tempDir(), { votingIntervalMs: 1000, consensusLifetimeMs: 60_000 }));
  try {
    const deadline = Date.now() + 5000;
    let status = 404;
    while (status !== 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      status = (await fetchConsensus(a)).status;
    }
    assert.equal(status, 200);
  } finally {
    await a.close();
  }
});

test('authority: bad configuration is refused', async () => {
  await assert.rejects(startAuthority(config(tempDir(), { nickname: 'no-good' })), { code: 'ERR_CONFIG' });
  await assert.rejects(startAuthority(config(tempDir(), { host: 'localhost' })), { code: 'ERR_CONFIG' });
  await assert.rejects(startAuthority(config(tempDir(), { votingIntervalMs: 0 })), { code: 'ERR_CONFIG' });
  await assert.rejects(startAuthority(config(tempDir(), { votingIntervalMs: 1500 })), /whole number of seconds/);
  await assert.rejects(startAuthority(config(tempDir(), { votingIntervalMs: 2000, consensusLifetimeMs: 1000 })), /at least the voting interval/);
});

test('authority: an operator-listed bad exit is voted BadExit, and the consensus then drops its Exit flag', async () => {
  const relayPort = await listener();
  const exitKeys = relayKeys(51, Date.now());
  const a = await startAuthority(config(tempDir(), { badExits: [exitKeys.identity] }));
  try {
    const exitText = descriptorText(exitKeys, relayPort.port, { nickname: 'exit51', exitPolicy: parseExitPolicy(['reject private:*', 'accept *:*']) });
    const otherText = descriptorText(relayKeys(52, Date.now()), relayPort.port, { nickname: 'exit52', exitPolicy: parseExitPolicy(['reject private:*', 'accept *:*']) });
    assert.equal((await post(a, exitText)).status, 200);
    assert.equal((await post(a, otherText)).status, 200);
    await a.publishNow();
    const c = verifyConsensus((await fetchConsensus(a)).body.toString('utf8'), [a.identity], Date.now());
    const flags = new Map(c.relays.map((r) => [r.nickname, r.flags.join(' ')]));
    assert.equal(flags.get('exit51'), 'BadExit Fast Guard Running Stable Valid');
    assert.equal(flags.get('exit52'), 'Exit Fast Guard Running Stable Valid');
  } finally {
    await a.close();
    await new Promise<void>((r) => relayPort.server.close(() => r()));
  }
});

test('authority: at most 16 vote bodies are read at once; the 17th gets 503 and the server keeps answering', async () => {
  const a = await startAuthority(config(tempDir(), { requestTimeoutMs: 2000 }));
  const port = Number(new URL(a.url).port);
  const slow: ReturnType<typeof connect>[] = [];
  try {
    // Each from its own loopback address, as votes come from different authorities: the per-address
    // connection limit (16, §9.2) must not be what refuses the 17th.
    for (let i = 0; i < 16; i++) {
      const s = connect({ host: '127.0.0.1', port, localAddress: `127.0.1.${i + 1}` });
      s.on('error', () => {});
      await new Promise<void>((r) => s.once('connect', () => r()));
      s.write('POST /allium/v1/vote HTTP/1.1\r\nhost: x\r\ncontent-length: 1000000\r\n\r\n@type allium-vote 1\n');
      slow.push(s);
    }
    // Once the server has all sixteen under way, the next upload is refused (a 400 means it was
    // read: the server had not reached all sixteen yet; ask again, for at most 5 s).
    const deadline = Date.now() + 5000;
    let status = 0;
    while (Date.now() < deadline) {
      status = (await http(`${a.url}/allium/v1/vote`, { method: 'POST', body: 'x' })).status;
      if (status !== 400) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(status, 503);
    assert.equal((await http(`${a.url}/allium/v1/authority`)).status, 200);
  } finally {
    for (const s of slow) s.destroy();
    await a.close();
  }
});
