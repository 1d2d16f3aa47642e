/**
 * Accounting (docs/protocol.md §8.2.1) with an injected clock: periods on
 * multiples of their length, the max and sum rules, hibernation once the
 * budget is spent and waking at the next period. Then a testnet whose relays
 * have a 20 MB budget: after a 24 MB download they hibernate, say so in
 * their descriptors, leave the consensus, and clients build no new circuit
 * through them.
 */
import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { SocksClient } from 'socks';
import { Accounting } from '../../relay/bandwidth/accounting.js';
import { parseConsensus } from '../../src/netdoc/consensus.js';
import { parsePromText, valueOf } from '../support/prom-text.js';
import { startTestnetProcess } from '../support/testnet-process.js';

const DAY = 86_400_000;

it('hibernates when the budget is spent and wakes at the next period', () => {
  let now = 10 * DAY + 3_600_000; // 01:00 UTC
  const bytes = { read: 0, written: 0 };
  const a = new Accounting({ maxBytes: 20_000_000, periodMs: DAY, rule: 'max' }, () => ({ ...bytes }), () => now);
  assert.equal(a.state().periodEnd, 11 * DAY);
  bytes.read = 19_000_000;
  bytes.written = 19_500_000;
  assert.equal(a.check(), null);
  bytes.written = 20_000_000;
  assert.equal(a.check(), 'hibernate');
  assert.equal(a.hibernating, true);
  assert.equal(a.check(), null, 'said once');
  now = 11 * DAY + 5;
  assert.equal(a.check(), 'wake');
  assert.equal(a.hibernating, false);
  assert.equal(a.state().usedBytes, 0, 'counted from the new period');
  assert.equal(a.state().periodEnd, 12 * DAY);
});

it('sum counts both directions; a period that ends while awake just restarts the count', () => {
  let now = 0;
  const bytes = { read: 0, written: 0 };
  const a = new Accounting({ maxBytes: 1_000_000, periodMs: 60_000, rule: 'sum' }, () => ({ ...bytes }), () => now);
  bytes.read = 600_000;
  bytes.written = 300_000;
  assert.equal(a.check(), null);
  now = 60_000;
  assert.equal(a.check(), null);
  bytes.read += 500_000;
  bytes.written += 500_000;
  assert.equal(a.check(), 'hibernate');
  assert.throws(() => new Accounting({ maxBytes: 0, periodMs: 1, rule: 'max' }, () => bytes), /positive/);
});

it('relays with a 20 MB budget hibernate after carrying it, say so in their descriptors, leave the consensus, and clients stop using them', { timeout: 180_000 }, async (t) => {
  const TOTAL = 24_000_000;
  const payload = Buffer.alloc(TOTAL, 0x63);
  const sink = createServer((socket) => socket.end(payload));
  await new Promise<void>((resolve) => sink.listen(0, '127.200.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => sink.close(() => resolve())));
  const sinkPort = (sink.address() as AddressInfo).port;
  const net = await startTestnetProcess(t, { relays: 3, exits: 1, relayAccountingMax: '20 MB', metrics: true });

  const stream = (user: string) =>
    SocksClient.createConnection({
      proxy: { host: net.socksHost, port: net.socksPort, type: 5, userId: user, password: 'x' },
      command: 'connect',
      destination: { host: '127.200.0.1', port: sinkPort },
      timeout: 15_000,
    });
  const { socket } = await stream('first');
  let received = 0;
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (c: Buffer) => (received += c.length));
    socket.once('end', resolve);
    socket.once('error', reject);
    setTimeout(() => reject(new Error(`download not done in 60 s (${received})`)), 60_000).unref();
  });
  socket.destroy();
  assert.equal(received, TOTAL, 'circuits already built keep working while their relays hibernate');

  // Every relay carried the download (3 relays, 3 hops): each hibernates and says so.
  const descriptor = (id: string) => fetch(`${net.authorityUrl}/allium/v1/descriptor/${id}`).then((r) => r.text());
  await until('every relay hibernating in its descriptor', 20_000, async () => {
    const texts = await Promise.all(net.relays.map((r) => descriptor(r.identity)));
    return texts.every((text) => /^hibernating 1$/m.test(text));
  });
  for (const relay of net.relays) {
    const samples = parsePromText(await (await fetch(`http://${relay.metrics}/metrics`)).text());
    assert.equal(valueOf(samples, 'allium_hibernating'), 1, relay.nickname);
    assert.ok(valueOf(samples, 'allium_accounting_bytes', { kind: 'used' }) >= 20_000_000);
    assert.match(readFileSync(join(net.dataDir, relay.nickname, `${relay.nickname}.log`), 'utf8'), /\[notice\] Hibernating: \d+ of 20000000 accounting bytes used this period; accepting no new circuits until/);
  }
  await until('no relay in the consensus', 20_000, async () => parseConsensus(await (await fetch(`${net.authorityUrl}/allium/v1/consensus`)).text()).relays.length === 0);

  // Once the client holds that consensus (it refetches every 30 s), no circuit through them takes
  // a new stream: not a circuit it built ahead before they hibernated (it would claim that one for
  // a new isolation key), and no new circuit can be built through them.
  const clientMetrics = net.metrics.get('client');
  assert.ok(clientMetrics !== undefined, 'the client has a metrics port');
  await until('the client has the consensus without them', 45_000, async () =>
    valueOf(parsePromText(await (await fetch(`http://${clientMetrics}/metrics`)).text()), 'allium_consensus_relays') === 0,
  );
  await assert.rejects(stream('second'), 'no new stream while every relay hibernates');
});

async function until(what: string, timeoutMs: number, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
