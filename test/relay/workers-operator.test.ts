/**
 * A relay with two worker processes (relay/relay-workers.ts) under the
 * operator's controls, over real TCP on 127.0.0.1 with real circuits:
 * - its bandwidth rate is the relay's, not a fixed half per worker: a
 *   download through a 2-worker middle at 1 MB/s arrives at 1 MB/s ± 10 %
 *   (application bytes, as test/relay/bandwidth.test.ts measures), while two
 *   downloads on the two workers share it;
 * - accounting counts what the workers carry, and once the budget is spent
 *   every worker refuses new circuits;
 * - an onion-key rotation reaches every worker: circuits with the new key,
 *   and with the previous one during its grace period, are built on links
 *   that land on either worker.
 * The sharing rule itself is bandwidth/share.ts, tested here with fixed inputs.
 */
import { describe, it, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { equalBytes } from '../../src/bytes.js';
import { TcpTransport } from '../../src/link/transport.js';
import { LinkManager, dialLink } from '../../src/link/link-manager.js';
import { OriginCircuit, type HopInfo } from '../../client/origin-circuit.js';
import { loadRelayKeys } from '../../relay/keys.js';
import { OnionKeyRing } from '../../relay/onion-keys.js';
import { startRelay, type RelayConfig, type RelayHandle } from '../../relay/relay.js';
import { shareRate } from '../../relay/bandwidth/share.js';
import { CircuitDestroyedError } from '../../src/errors.js';
import { DestroyReason } from '../../src/cell/reasons.js';

describe('sharing the rate among workers', () => {
  it('max-min fair by use; the shares always add up to the rate', () => {
    const total = (s: { rate: number }[]) => s.reduce((n, x) => n + x.rate, 0);
    // One busy worker, one idle: the busy one gets all but the idle one's floor (2 % of an equal share).
    const one = shareRate(1_000_000, 2_000_000, [{ bytes: 250_000, limited: true }, { bytes: 0, limited: false }], 250);
    assert.deepEqual(one.map((s) => Math.round(s.rate)), [990_000, 10_000]);
    assert.deepEqual(one.map((s) => Math.round(s.burst)), [1_980_000, 20_000]);
    // Both busy: equal.
    assert.deepEqual(shareRate(1_000_000, 1_000_000, [{ bytes: 1, limited: true }, { bytes: 999, limited: true }], 250).map((s) => s.rate), [500_000, 500_000]);
    // One limited, one using 100 kB/s: that one gets 125 kB/s (use and headroom), the other the rest.
    const mixed = shareRate(1_000_000, 1_000_000, [{ bytes: 25_000, limited: false }, { bytes: 50_000, limited: true }, { bytes: 0, limited: false }], 250);
    assert.deepEqual(mixed.map((s) => Math.round(s.rate)), [125_000, 868_333, 6_667]);
    // Nobody limited: the rest is spread equally.
    const idle = shareRate(900, 900, [{ bytes: 0, limited: false }, { bytes: 0, limited: false }, { bytes: 0, limited: false }], 250);
    assert.deepEqual(idle.map((s) => s.rate), [300, 300, 300]);
    for (const s of [one, mixed, idle]) assert.ok(Math.abs(total(s) - (s === idle ? 900 : 1_000_000)) < 1e-6);
    assert.deepEqual(shareRate(1, 1, [], 250), []);
  });
});

/** A TCP server on 127.0.0.1 that sends `bytes` bytes to every connection and closes it. */
async function sink(t: TestContext, bytes: number): Promise<number> {
  const payload = Buffer.alloc(bytes, 0x61);
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.end(payload);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => {
    // The exits keep their half of each connection open until they close: do not wait for that.
    for (const socket of sockets) socket.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}

interface Net {
  start(nickname: string, over: Partial<RelayConfig>): Promise<{ relay: RelayHandle; hop: HopInfo; dir: string }>;
  /** A fresh link from the test to `hop` (a new worker each time, round robin), and a circuit over it through `path`. */
  circuit(path: HopInfo[]): Promise<OriginCircuit>;
}

function network(t: TestContext): Net {
  const root = mkdtempSync(join(tmpdir(), 'allium-workers-op-'));
  const relays: RelayHandle[] = [];
  const transport = new TcpTransport();
  let dialled = 0;
  const links = new LinkManager<OriginCircuit>({
    transport,
    handler: {
      onCircuitCell: (slot, cell) => slot.circuit.receive(cell),
      onRelayCells: (slot, cells) => slot.circuit.receiveCells(cells),
      onLinkClosed: (slot) => slot.circuit.linkClosed(),
    },
  });
  t.after(async () => {
    links.destroy();
    await Promise.all(relays.map((r) => r.close()));
    rmSync(root, { recursive: true, force: true });
  });
  return {
    async start(nickname, over) {
      const dir = join(root, nickname);
      const relay = await startRelay({ nickname, dataDir: dir, address: '127.0.0.1', port: 0, authorities: [], exit: false, workers: 1, ...over });
      relays.push(relay);
      const keys = loadRelayKeys(dir);
      return { relay, dir, hop: { nickname, identity: keys.identity.identity, linkKey: keys.linkKey.public, ntorOnionKey: keys.ntor.onionKey, address: relay.address, orPort: relay.port } };
    },
    async circuit(path) {
      const first = path[0]!;
      // Each link from a new address: a relay gives every link of one address to one worker, and a new address
      // to the worker carrying the fewest links, so consecutive links land on its two workers in turn.
      const from = new TcpTransport({ localAddress: `127.0.0.${40 + dialled++}` });
      const channel = await dialLink({ transport: from, target: { address: first.address, port: first.orPort, identity: first.identity, linkKey: first.linkKey }, timeoutMs: 10_000 });
      links.adopt(channel);
      return OriginCircuit.build(channel, links.circuitsOf(channel), path, 10_000);
    },
  };
}

/** Reads a stream from `circuit` to 127.0.0.1:port to its end; the rate (bytes/s) after the first `skip` bytes, and the byte count. */
async function download(circuit: OriginCircuit, port: number, skip: number): Promise<{ rate: number; bytes: number }> {
  const stream = await circuit.openStream('127.0.0.1', port, 10_000);
  let received = 0;
  let from = 0;
  const seconds = await new Promise<number>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => {
      const before = received;
      received += chunk.length;
      if (before < skip && received >= skip) from = performance.now();
    });
    stream.once('end', () => resolve((performance.now() - from) / 1000));
    stream.once('error', reject);
    setTimeout(() => reject(new Error(`download not done in 60 s (${received} bytes)`)), 60_000).unref();
  });
  return { rate: (received - skip) / seconds, bytes: received };
}

const EXIT = { exit: true, exitPolicy: ['accept 127.0.0.0/8:*', 'reject *:*'] };

it('a 2-worker relay at 1 MB/s carries one download at 1 MB/s ± 10 %; two downloads on its two workers share the rate', { timeout: 120_000 }, async (t) => {
  const TOTAL = 6_000_000;
  const SKIP = 1_500_000; // the first bytes may come from the full bucket (burst)
  const port = await sink(t, TOTAL);
  const net = network(t);
  const exit = await net.start('exit', EXIT);
  const middle = await net.start('middle', { workers: 2, bandwidthRate: 1_000_000 });
  // The test's links go straight to the limited relay: consecutive links land on its two workers.
  const one = await download(await net.circuit([middle.hop, exit.hop]), port, SKIP);
  assert.equal(one.bytes, TOTAL);
  t.diagnostic(`one download through a 2-worker relay at 1 MB/s: ${(one.rate / 1e6).toFixed(3)} MB/s of application bytes`);
  assert.ok(one.rate >= 0.9e6 && one.rate <= 1.1e6, `${(one.rate / 1e6).toFixed(3)} MB/s is not within 1 MB/s ± 10 %`);

  // Two at once, on two links (so on both workers): together still at most the rate (+10 %).
  const [a, b] = [await net.circuit([middle.hop, exit.hop]), await net.circuit([middle.hop, exit.hop])];
  const started = performance.now();
  const both = await Promise.all([download(a!, port, 0), download(b!, port, 0)]);
  const seconds = (performance.now() - started) / 1000;
  const together = (both[0]!.bytes + both[1]!.bytes) / seconds;
  t.diagnostic(`two downloads on two workers: ${(together / 1e6).toFixed(3)} MB/s together`);
  // 12 MB at 1 MB/s after a 1 MB bucket: at least 11 s / 1.1.
  assert.ok(together <= 1.1e6 * (12 / 11), `${(together / 1e6).toFixed(3)} MB/s together exceeds the rate`);
});

it('accounting counts what the workers carry; once spent, every worker refuses new circuits', { timeout: 60_000 }, async (t) => {
  const port = await sink(t, 3_000_000);
  const net = network(t);
  const exit = await net.start('exit', EXIT);
  const middle = await net.start('middle', { workers: 2, accounting: { maxBytes: 2_000_000, periodMs: 86_400_000, rule: 'max' } });
  const before = await net.circuit([middle.hop, exit.hop]);
  assert.equal((await download(before, port, 0)).bytes, 3_000_000);
  const deadline = Date.now() + 10_000;
  while (middle.relay.accountingStats()?.hibernating !== true) {
    assert.ok(Date.now() < deadline, `not hibernating within 10 s: ${JSON.stringify(middle.relay.accountingStats())}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.ok(middle.relay.accountingStats()!.usedBytes >= 2_000_000);
  // Two fresh links, one per worker: each answers the CREATE2 with DESTROY HIBERNATING (bounded at 3 s).
  for (let i = 0; i < 2; i++) {
    await assert.rejects(
      waitForState(() => net.circuit([middle.hop]), 3000),
      (e: unknown) => e instanceof CircuitDestroyedError && e.reason === DestroyReason.HIBERNATING,
      `worker ${i + 1} still builds circuits`,
    );
  }
});

it('an onion-key rotation reaches every worker: the new key and, during its grace period, the previous one', { timeout: 60_000 }, async (t) => {
  const net = network(t);
  const relay = await net.start('rotating', { workers: 2, onionKeyLifetimeMs: 4000, onionKeyGraceMs: 60_000 });
  const first = relay.hop.ntorOnionKey;
  const deadline = Date.now() + 15_000;
  let current = first;
  while (equalBytes(current, first)) {
    assert.ok(Date.now() < deadline, 'no rotation within 15 s');
    await new Promise((r) => setTimeout(r, 100));
    current = new OnionKeyRing(join(relay.dir, 'keys'), relay.hop.identity).current.onionKey;
  }
  // The workers reload on the rotation's IPC message; give it a bounded moment.
  await new Promise((r) => setTimeout(r, 300));
  for (const key of [current, first]) {
    for (let i = 0; i < 2; i++) {
      const circuit = await net.circuit([{ ...relay.hop, ntorOnionKey: key }]);
      circuit.destroy(0, 'done');
    }
  }
});

/** `make()`, bounded by `ms` (rejects with a timeout otherwise). */
async function waitForState<T>(make: () => Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([make(), new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
