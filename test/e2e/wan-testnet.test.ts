/**
 * The loopback testnet with its links shaped and its congestion control
 * chosen from the consensus (docs/testnet.md): `--link-delay` really delays
 * every link (a small GET takes at least its two round trips of 6 delays
 * each; never less, whatever the load), and `--param cc_alg=0` versus the
 * default decides whether the exit runs Vegas (its NODE_DEBUG=allium:cc log)
 * or fixed windows, with the same bytes arriving either way.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import { SocksClient } from 'socks';
import { payloadSha256, startPayloadServer } from '../support/payload-server.js';
import { startTestnetProcess, type TestnetProcess } from '../support/testnet-process.js';
import { createHash } from 'node:crypto';

const DELAY_MS = 5;

async function get(tn: TestnetProcess, port: number, path: string): Promise<{ ms: number; body: Buffer }> {
  const t0 = performance.now();
  const { socket } = await SocksClient.createConnection({
    proxy: { host: tn.socksHost, port: tn.socksPort, type: 5 },
    command: 'connect',
    destination: { host: '127.200.0.1', port },
    timeout: 30_000,
  });
  const body = await readBody(socket, path);
  return { ms: performance.now() - t0, body };
}

async function readBody(socket: Socket, path: string): Promise<Buffer> {
  socket.setTimeout(60_000, () => socket.destroy(new Error('HTTP read timed out')));
  socket.write(`GET ${path} HTTP/1.0\r\nHost: 127.200.0.1\r\n\r\n`);
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  await once(socket, 'end');
  const all = Buffer.concat(chunks);
  return all.subarray(all.indexOf('\r\n\r\n') + 4);
}

function exitLog(tn: TestnetProcess): string {
  const exit = tn.relays.find((r) => r.exit)!;
  return readFileSync(join(tn.dataDir, exit.nickname, `${exit.nickname}.log`), 'utf8');
}

for (const ccAlg of [0, 2]) {
  test(`--link-delay ${DELAY_MS} --param cc_alg=${ccAlg}: every link delayed; the exit runs ${ccAlg === 2 ? 'Vegas' : 'fixed windows'}`, { timeout: 150_000 }, async (t) => {
    const server = await startPayloadServer({ host: '127.200.0.1' });
    t.after(() => server.close());
    const tn = await startTestnetProcess(t, {
      relays: 3,
      exits: 1,
      extraArgs: ['--link-delay', String(DELAY_MS), '--link-rate', '200', '--param', `cc_alg=${ccAlg}`],
      env: { NODE_DEBUG: 'allium:cc' },
    });
    // BEGIN/CONNECTED, then the request and its answer: two round trips of six delayed traversals.
    const hello = await get(tn, server.port, '/hello');
    assert.ok(hello.ms >= 2 * 6 * DELAY_MS, `a small GET took ${hello.ms.toFixed(1)} ms, less than two round trips`);
    const size = 3_000_000;
    const big = await get(tn, server.port, `/bytes/${size}`);
    assert.equal(big.body.length, size);
    assert.equal(createHash('sha256').update(big.body).digest('hex'), payloadSha256(size));
    // 3 MB is over 6000 cells: a Vegas sender has logged its window (every 100 SENDMEs); a fixed one never does.
    const vegasLines = exitLog(tn).split('\n').filter((l) => /ALLIUM:CC .*vegas cwnd/.test(l));
    if (ccAlg === 2) assert.ok(vegasLines.length > 0, 'the exit ran Vegas');
    else assert.deepEqual(vegasLines, [], 'no hop ran Vegas');
  });
}
