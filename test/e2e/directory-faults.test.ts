/**
 * The control plane under faults, end to end in this process (docs/protocol.md
 * §9.5-§9.8, §11): three authorities voting over HTTP every 2 s, four real
 * relays (two exits) on their own loopback /16s, and real clients building
 * circuits to a real HTTP server.
 *
 * - with the authorities' HTTP ports closed to it, a client that has a guard
 *   keeps refreshing its consensus through the guard's directory cache;
 * - one authority down: the next consensus has two signatures and the client takes it;
 * - a relay that stops answering loses Running, leaves the consensus, and
 *   the client no longer builds circuits through it;
 * - two authorities down: no new consensus; the client keeps working from
 *   the consensus it has, a restarted client works from its disk cache with
 *   no authority reachable, and once the consensus expires both say why they
 *   cannot build circuits.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { startRelay, type RelayHandle } from '../../relay/relay.js';
import { startClient, type ClientHandle } from '../../client/client.js';
import { withLoopbackExit, DEFAULT_EXIT_POLICY_LINES } from '../../src/netdoc/default-policies.js';
import { AlliumError } from '../../src/errors.js';
import { hex } from '../../src/bytes.js';
import { TESTNET_FLAG_THRESHOLDS } from '../../directory/flags.js';
import { RelayTester } from '../../directory/relay-tester.js';
import { CLUSTER_INTERVAL_MS as I, LinkProxy, startCluster } from '../support/authority-cluster.js';
import { HELLO_BODY, startPayloadServer } from '../support/payload-server.js';

const LIFETIME_MS = 10_000;
const WAIT_MS = 10 * I;

async function until<T>(get: () => T | null | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = get();
    if (v !== null && v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

async function hello(client: ClientHandle, port: number, isolation: string): Promise<string> {
  const stream: Duplex = await client.openStream('127.0.0.1', port, { isolation });
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.write('GET /hello HTTP/1.0\r\nHost: x\r\n\r\n');
  await once(stream, 'end');
  const all = Buffer.concat(chunks).toString('latin1');
  return all.slice(all.indexOf('\r\n\r\n') + 4);
}

test('authorities and relays failing: two signatures suffice, a dead relay is dropped, two authorities down leave clients on their cached consensus until it expires', { timeout: 180_000 }, async (t) => {
  // Reachability as deployed authorities test it: a link handshake and a one-hop circuit.
  const tester = new RelayTester({ probeTimeoutMs: 2000, measureTimeoutMs: 5000 });
  t.after(() => tester.close());
  const cluster = await startCluster(t, 3, {
    config: { consensusLifetimeMs: LIFETIME_MS, exitsAllowLoopback: true, flagThresholds: TESTNET_FLAG_THRESHOLDS, probe: tester.probe },
  });
  const root = mkdtempSync(join(tmpdir(), 'allium-faults-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const refs = cluster.authorities.map((a) => ({ url: a.url, identity: a.identity }));
  const relays: RelayHandle[] = [];
  t.after(async () => {
    await Promise.all(relays.map((r) => r.close()));
  });
  for (let i = 1; i <= 4; i++) {
    const exit = i <= 2;
    relays.push(
      await startRelay({
        nickname: `relay${i}`,
        dataDir: join(root, `relay${i}`),
        address: `127.${i}.0.1`,
        port: 0,
        authorities: refs,
        exit,
        ...(exit ? { exitPolicy: withLoopbackExit(DEFAULT_EXIT_POLICY_LINES) } : {}),
      }),
    );
  }
  const server = await startPayloadServer({ host: '127.0.0.1', port: 0 });
  t.after(() => server.close());

  const problems: (string | null)[] = [];
  const client = await startClient({
    authorities: refs,
    socksHost: '127.0.0.1',
    socksPort: 0,
    dataDir: join(root, 'client'),
    clockSkewMs: 0,
    maxConsensusRefreshMs: I,
    onDirectoryProblem: (p) => problems.push(p),
  });
  t.after(() => client.close());
  await client.whenReady(60_000);
  assert.equal(await hello(client, server.port, 'a'), HELLO_BODY);
  // All three authorities up: a round's consensus carries all three signatures, unless a signature
  // arrived after an authority published (§9.8: it happens on a loaded machine); the client refreshes every I.
  const first = await until(() => (client.consensus()?.verifiedSigners.length === 3 ? client.consensus() : null), WAIT_MS, 'a consensus signed by all three authorities');
  assert.equal(first.verifiedSigners.length, 3);
  assert.equal(statSync(join(root, 'client', 'cached-consensus')).mode & 0o777, 0o600);

  // A client that reaches the authorities only through proxies: once it has a consensus (and so a
  // directory guard), the proxies are cut, and it keeps refreshing through its guard's cache.
  const proxies = await Promise.all(
    cluster.authorities.map(async (a) => {
      const p = new LinkProxy();
      await p.listen();
      p.target = Number(new URL(a.url).port);
      return p;
    }),
  );
  t.after(() => Promise.all(proxies.map((p) => p.close())));
  const guarded = await startClient({
    authorities: cluster.authorities.map((a, i) => ({ url: `http://127.0.0.1:${proxies[i]!.port}`, identity: a.identity })),
    socksHost: '127.0.0.1',
    socksPort: 0,
    clockSkewMs: 0,
    maxConsensusRefreshMs: I,
  });
  t.after(() => guarded.close());
  await guarded.whenReady(60_000);
  for (const p of proxies) p.cut();
  const closedAt = Date.now();
  await until(() => {
    const s = guarded.directoryStatus().consensus;
    return s !== null && s.validAfter > closedAt && s.source === 'relay';
  }, WAIT_MS, 'a newer consensus through the directory guard');
  assert.equal(await hello(guarded, server.port, 'guarded'), HELLO_BODY);
  // The guard's cache holds the consensus the client has, so the next ones come as diffs (§8.9).
  await until(() => guarded.directoryStatus().diffsApplied > 0, WAIT_MS, 'a consensus that came as a diff');
  await guarded.close();

  // One of three authorities down: the consensus still forms, with two signatures, and the client takes it.
  await cluster.stop(2);
  const stopped = Date.now();
  const two = await until(() => {
    const c = client.consensus();
    return c !== null && c.validAfter > stopped && c.verifiedSigners.length === 2 ? c : null;
  }, WAIT_MS, 'a consensus with two signatures at the client');
  assert.equal(two.relays.length, 4);
  assert.equal(await hello(client, server.port, 'b'), HELLO_BODY);

  // A relay stops answering: it loses Running, leaves the consensus, and new circuits avoid it.
  const dead = relays[3]!;
  const deadId = hex(dead.identity);
  await dead.close();
  relays.pop();
  await until(() => {
    const c = client.consensus();
    return c !== null && !c.relays.some((r) => hex(r.identity) === deadId);
  }, WAIT_MS, 'the dead relay to leave the consensus');
  for (let i = 0; i < 6; i++) assert.equal(await hello(client, server.port, `after-dead-${i}`), HELLO_BODY);

  // Two of three down: no new consensus; the client keeps working from the one it has.
  await cluster.stop(1);
  const alone = Date.now();
  const last = client.consensus()!;
  await new Promise((r) => setTimeout(r, 2 * I + I / 2));
  const still = client.consensus()!;
  assert.ok(still.validAfter <= last.validAfter + I, 'a consensus formed with one authority of three');
  assert.equal(await hello(client, server.port, 'c'), HELLO_BODY);
  assert.ok(Date.now() - alone < LIFETIME_MS);

  // A restarted client with no authority reachable works from its disk cache while it is valid.
  const unreachable = refs.map((r) => ({ url: 'http://127.0.0.1:1', identity: r.identity }));
  const restarted = await startClient({ authorities: unreachable, socksHost: '127.0.0.1', socksPort: 0, dataDir: join(root, 'client'), clockSkewMs: 0, maxConsensusRefreshMs: I });
  t.after(() => restarted.close());
  assert.equal(restarted.directoryStatus().consensus?.source, 'cache');
  await restarted.whenReady(30_000);
  assert.equal(await hello(restarted, server.port, 'd'), HELLO_BODY);

  // The consensus expires: both clients refuse to build circuits and say why.
  const expiry = still.validUntil;
  await new Promise((r) => setTimeout(r, Math.max(0, expiry - Date.now()) + 300));
  for (const c of [client, restarted]) {
    await assert.rejects(c.openStream('127.0.0.1', server.port, { isolation: 'e' }), (e: unknown) => {
      assert.ok(e instanceof AlliumError && e.code === 'ERR_NO_PATH');
      assert.match(e.message, /^cannot build circuits: the consensus in use expired at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d and no newer one was accepted: /);
      return true;
    });
  }
  const why = await until(() => {
    const p = client.directoryStatus().problem;
    return p !== null && /no authority gave an acceptable consensus/.test(p) ? p : null;
  }, WAIT_MS, 'a fetch after the expiry');
  // auth1 still serves the old consensus, now outside its window; auth2 and auth3 are gone.
  assert.match(why, /outside its validity window: expired at/);
  assert.match(why, /ECONNREFUSED|closed|connect/i);
  await until(() => /no authority gave an acceptable consensus \(http:\/\/127\.0\.0\.1:1: /.test(restarted.directoryStatus().problem ?? ''), WAIT_MS, 'the restarted client to ask the (unreachable) authorities');
  assert.ok(problems.some((p) => p !== null && /expired at/.test(p)), JSON.stringify(problems));
  assert.equal(client.consensus(), null);
});
