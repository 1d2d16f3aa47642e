/**
 * BandwidthRate / BandwidthBurst: the token bucket with an injected clock,
 * and a testnet whose relays are limited to 1 MB/s carrying a download at
 * 1 MB/s ± 10 % (application bytes: 498 of every 514 cell bytes), with the
 * limit reported as Tor's rate-limit metric.
 */
import { createServer, type AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { SocksClient } from 'socks';
import { TokenBucket } from '../../relay/bandwidth/token-bucket.js';
import { parsePromText, valueOf } from '../support/prom-text.js';
import { startTestnetProcess } from '../support/testnet-process.js';

describe('token bucket', () => {
  it('starts full, refills at the rate up to the burst, and counts the times it ran empty', () => {
    let now = 0;
    const b = new TokenBucket(1000, 2000, () => now);
    assert.equal(b.take(1500), true);
    assert.equal(b.take(600), false, 'below zero');
    assert.equal(b.emptied, 1);
    assert.equal(b.msUntilPositive(), 101);
    now = 101;
    assert.equal(b.msUntilPositive(), 0);
    now = 10_000;
    assert.equal(b.take(1999), true, 'refilled to the burst, not beyond');
    assert.equal(b.take(2), false);
    assert.equal(b.emptied, 2);
    b.configure(4000, 4000);
    now += 500;
    assert.equal(b.msUntilPositive(), 0, '2000 tokens in 0.5 s at the new rate');
    assert.throws(() => b.configure(1000, 500), /burst ≥ rate/);
    assert.throws(() => new TokenBucket(0, 10), /rate > 0/);
  });
});

it('relays limited to 1 MB/s carry a download at 1 MB/s ± 10 %', { timeout: 120_000 }, async (t) => {
  const TOTAL = 6_000_000;
  const SKIP = 1_500_000; // the first bytes may come from the full buckets (burst)
  const payload = Buffer.alloc(TOTAL, 0x62);
  const sink = createServer((socket) => socket.end(payload));
  await new Promise<void>((resolve) => sink.listen(0, '127.200.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => sink.close(() => resolve())));

  const net = await startTestnetProcess(t, { relays: 3, exits: 1, relayBandwidthRate: '1 MB', metrics: true });
  const { socket } = await SocksClient.createConnection({
    proxy: { host: net.socksHost, port: net.socksPort, type: 5 },
    command: 'connect',
    destination: { host: '127.200.0.1', port: (sink.address() as AddressInfo).port },
    timeout: 20_000,
  });
  let received = 0;
  let from = 0;
  const seconds = await new Promise<number>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      const before = received;
      received += chunk.length;
      if (before < SKIP && received >= SKIP) from = performance.now();
    });
    socket.once('end', () => resolve((performance.now() - from) / 1000));
    socket.once('error', reject);
    setTimeout(() => reject(new Error(`download not done in 60 s (${received} bytes)`)), 60_000).unref();
  });
  socket.destroy();
  assert.equal(received, TOTAL);
  const mbps = (TOTAL - SKIP) / 1e6 / seconds;
  t.diagnostic(`measured ${mbps.toFixed(3)} MB/s of application bytes with every relay at 1 MB/s`);
  assert.ok(mbps >= 0.9 && mbps <= 1.1, `${mbps.toFixed(3)} MB/s is not within 1 MB/s ± 10 %`);

  let limited = 0;
  for (const relay of net.relays) {
    const samples = parsePromText(await (await fetch(`http://${relay.metrics}/metrics`)).text());
    assert.equal(valueOf(samples, 'allium_bandwidth_rate_bytes', { kind: 'rate' }), 1_000_000);
    limited += valueOf(samples, 'tor_relay_load_global_rate_limit_reached_total', { side: 'read' });
  }
  assert.ok(limited > 0, 'the limit was reached');
});
