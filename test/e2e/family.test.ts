/**
 * Families end to end in this process (docs/protocol.md §8.2, §8.4, §9.6,
 * §11.2): three authorities voting over HTTP, four real exit relays on their
 * own loopback /16s, and a real client building circuits to a real HTTP
 * server. relay1 and relay2 list each other (a family); relay3 lists relay4,
 * which does not list it back. With four relays every 3-hop path leaves one
 * out, so the rule decides everything: no circuit may hold relay1 and relay2,
 * so each one holds relay3 and relay4 (the one-sided listing does not count).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { startRelay, type RelayHandle } from '../../relay/relay.js';
import { startClient, type ClientHandle } from '../../client/client.js';
import { withLoopbackExit, DEFAULT_EXIT_POLICY_LINES } from '../../src/netdoc/default-policies.js';
import { equalBytes } from '../../src/bytes.js';
import { TESTNET_FLAG_THRESHOLDS } from '../../directory/flags.js';
import { RelayTester } from '../../directory/relay-tester.js';
import { CLUSTER_INTERVAL_MS as I, startCluster } from '../support/authority-cluster.js';
import { HELLO_BODY, startPayloadServer } from '../support/payload-server.js';

const CIRCUITS = 24;

async function hello(client: ClientHandle, port: number, isolation: string): Promise<{ body: string; path: string[] }> {
  const stream: Duplex = await client.openStream('127.0.0.1', port, { isolation });
  const circuitId = client.streamInfo(stream)?.circuitId;
  const path = client.circuitStatus().find((c) => c.id === circuitId)?.path.map((h) => h.nickname) ?? [];
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  stream.write('GET /hello HTTP/1.0\r\nHost: x\r\n\r\n');
  await once(stream, 'end');
  const all = Buffer.concat(chunks).toString('latin1');
  return { body: all.slice(all.indexOf('\r\n\r\n') + 4), path };
}

test('two relays that list each other never share a circuit; a one-sided listing does not count', { timeout: 120_000 }, async (t) => {
  const tester = new RelayTester({ probeTimeoutMs: 2000, measureTimeoutMs: 5000 });
  t.after(() => tester.close());
  const cluster = await startCluster(t, 3, {
    config: { consensusLifetimeMs: 60_000, exitsAllowLoopback: true, flagThresholds: TESTNET_FLAG_THRESHOLDS, probe: tester.probe },
  });
  const root = mkdtempSync(join(tmpdir(), 'allium-family-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const refs = cluster.authorities.map((a) => ({ url: a.url, identity: a.identity }));
  const relays: RelayHandle[] = [];
  t.after(() => Promise.all(relays.map((r) => r.close())));
  for (let i = 1; i <= 4; i++) {
    relays.push(
      await startRelay({
        nickname: `relay${i}`,
        dataDir: join(root, `relay${i}`),
        address: `127.${i}.0.1`,
        port: 0,
        authorities: refs,
        exit: true,
        exitPolicy: withLoopbackExit(DEFAULT_EXIT_POLICY_LINES),
      }),
    );
  }
  const [r1, r2, r3, r4] = relays as [RelayHandle, RelayHandle, RelayHandle, RelayHandle];
  // As an operator's SIGHUP would: each republishes its descriptor with the family at once.
  r1.reconfigure({ family: [r2.identity] });
  r2.reconfigure({ family: [r1.identity] });
  r3.reconfigure({ family: [r4.identity] });

  const nick = (id: Uint8Array) => relays.find((r) => equalBytes(r.identity, id))?.nickname;
  const { consensus } = await cluster.waitFor(
    0,
    (c) => c.relays.length === 4 && c.relays.filter((r) => r.family !== undefined).length === 2,
    20 * I,
    'a consensus with all four relays and the family of relay1 and relay2',
  );
  assert.ok(consensus.consensusMethod >= 3, `method ${consensus.consensusMethod}`);
  const families = new Map(consensus.relays.map((r) => [r.nickname, (r.family ?? []).map(nick)]));
  assert.deepEqual(Object.fromEntries(families), { relay1: ['relay2'], relay2: ['relay1'], relay3: [], relay4: [] });

  const server = await startPayloadServer({ host: '127.0.0.1', port: 0 });
  t.after(() => server.close());
  const client = await startClient({ authorities: refs, socksHost: '127.0.0.1', socksPort: 0, clockSkewMs: 0, maxConsensusRefreshMs: I });
  t.after(() => client.close());
  await client.whenReady(60_000);
  assert.ok(client.consensus()!.relays.some((r) => r.family !== undefined), 'the client holds the consensus with the family');

  const paths: string[][] = [];
  for (let i = 0; i < CIRCUITS; i++) {
    const { body, path } = await hello(client, server.port, `iso-${i}`);
    assert.equal(body, HELLO_BODY);
    assert.equal(path.length, 3, `circuit ${i}: ${path.join(',')}`);
    paths.push(path);
  }
  for (const c of client.circuitStatus()) paths.push(c.path.map((h) => h.nickname));
  for (const path of paths) {
    assert.ok(!(path.includes('relay1') && path.includes('relay2')), `relay1 and relay2 share a circuit: ${path.join(',')}`);
    assert.ok(path.includes('relay3') && path.includes('relay4'), `a circuit without relay3 or relay4: ${path.join(',')}`);
  }
  const used = new Set(paths.flat());
  assert.ok(used.has('relay1') && used.has('relay2'), `both family members carry circuits (apart): ${[...used].join(',')}`);
});
