/**
 * The authority's relay tests (docs/protocol.md §9.4) against real relays:
 * reachability is a link handshake plus a one-hop circuit; bandwidth is the
 * rate of the relay's bandwidth-test document through such a circuit. A relay
 * that stops answering, or a port that speaks nothing, fails in bounded time.
 * With measurements, the consensus weight is the measured median.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hex } from '../../src/bytes.js';
import { parseDescriptor, type RelayDescriptor } from '../../src/netdoc/descriptor.js';
import { verifyConsensus } from '../../src/netdoc/consensus.js';
import { startAuthority } from '../../directory/authority.js';
import { RelayTester } from '../../directory/relay-tester.js';
import { startRelay } from '../../relay/relay.js';
import { http } from '../support/authority-cluster.js';
import { makeDescriptor, relayKeys } from '../netdoc/helpers.js';

test('reachability and bandwidth tests over a link and a one-hop circuit', { timeout: 60_000 }, async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'allium-tester-'));
  const tester = new RelayTester({ probeTimeoutMs: 2000, measureTimeoutMs: 5000 });
  const authority = await startAuthority({
    nickname: 'auth1',
    dataDir: join(root, 'auth'),
    host: '127.0.0.1',
    port: 0,
    votingIntervalMs: 60_000,
    consensusLifetimeMs: 180_000,
    probe: tester.probe,
    measure: tester.measure,
    measureIntervalMs: 60_000,
    closeWith: tester,
  });
  const relay = await startRelay({
    nickname: 'relay1',
    dataDir: join(root, 'relay1'),
    address: '127.1.0.1',
    port: 0,
    authorities: [{ url: authority.url, identity: authority.identity }],
    exit: false,
  });
  let relayClosed = false;
  t.after(async () => {
    if (!relayClosed) await relay.close();
    await authority.close();
    rmSync(root, { recursive: true, force: true });
  });
  const deadline = Date.now() + 10_000;
  let descriptor: RelayDescriptor | undefined;
  while (descriptor === undefined && Date.now() < deadline) {
    const r = await http(`${authority.url}/allium/v1/descriptor/${hex(relay.identity)}`);
    if (r.status === 200) descriptor = parseDescriptor(r.body).descriptor;
    else await new Promise((res) => setTimeout(res, 50));
  }
  assert.ok(descriptor !== undefined, 'the relay uploaded its descriptor');

  // Reachable, and fast on loopback.
  assert.equal(await tester.probe(descriptor), true);
  const bw = await tester.measure(descriptor);
  assert.ok(bw !== undefined && bw > 100_000, `measured ${bw} bytes/s`);
  // The relay saw circuits: the tests are real circuits (and ended).
  assert.ok(relay.circuitStats().built >= 2);

  // The authority measured it too, so the consensus weight is measured (1 of 1 voters).
  const seenMeasured = Date.now() + 15_000;
  let weight: { bandwidth: number; unmeasured?: boolean } | undefined;
  while (Date.now() < seenMeasured) {
    await authority.publishNow();
    const c = verifyConsensus((await http(`${authority.url}/allium/v1/consensus`)).body, [authority.identity], Date.now());
    weight = c.relays.find((r) => r.nickname === 'relay1');
    if (weight !== undefined && weight.unmeasured !== true) break;
    await new Promise((res) => setTimeout(res, 200));
  }
  assert.ok(weight !== undefined && weight.unmeasured !== true, 'the consensus weight is a measurement');
  assert.notEqual(weight.bandwidth, descriptor.bandwidth);

  // A wrong link key: the handshake fails.
  assert.equal(await tester.probe({ ...descriptor, linkKey: new Uint8Array(32).fill(7) }), false);
  // A wrong ntor key: the link works, the circuit does not.
  assert.equal(await tester.probe({ ...descriptor, ntorOnionKey: new Uint8Array(32).fill(9) }), false);
  assert.equal(await tester.measure({ ...descriptor, ntorOnionKey: new Uint8Array(32).fill(9) }), undefined);

  // The relay stops answering: both tests fail, quickly (the port is closed).
  await relay.close();
  relayClosed = true;
  const started = Date.now();
  assert.equal(await tester.probe(descriptor), false);
  assert.equal(await tester.measure(descriptor), undefined);
  assert.ok(Date.now() - started < 5000);
});

test('a port that accepts but never speaks fails the tests within their time limits', { timeout: 30_000 }, async (t) => {
  const accepted: Socket[] = [];
  const silent = createServer((socket) => accepted.push(socket));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const s of accepted) s.destroy();
    silent.close();
  });
  const tester = new RelayTester({ probeTimeoutMs: 500, measureTimeoutMs: 500 });
  t.after(() => tester.close());
  const d = makeDescriptor(relayKeys(91), { orPort: (silent.address() as { port: number }).port });
  const started = Date.now();
  assert.equal(await tester.probe(d), false);
  assert.equal(await tester.measure(d), undefined);
  assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
});
