/**
 * IPv6 OR ports end to end in this process (docs/protocol.md §6.3, §8.2,
 * §8.4, §9.4): three authorities, three exit relays that each also listen on
 * [::1], and real clients. The authorities test both OR ports and the
 * consensus carries every relay's `a` line. Each relay's IPv4 OR port sits
 * behind a forwarder that refuses every connection from another relay (the
 * authorities, testing from 127.99.0.1, still reach it), so a link between two
 * relays can only be made over IPv6:
 * - a default client (IPv4 first, from 127.0.0.1, let through) reaches its
 *   guard over IPv4; each EXTEND2 lists both addresses, the relay's IPv4
 *   attempt is refused, and it falls back to IPv6: the circuits carry streams;
 * - then the forwarders refuse clients too: a client that prefers IPv6 reaches
 *   its guard over [::1] and its EXTEND2s name the IPv6 address alone, so no
 *   relay tries IPv4 again.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { startRelay, type RelayHandle } from '../../relay/relay.js';
import { startClient, type ClientHandle } from '../../client/client.js';
import { withLoopbackExit, DEFAULT_EXIT_POLICY_LINES } from '../../src/netdoc/default-policies.js';
import { TESTNET_FLAG_THRESHOLDS } from '../../directory/flags.js';
import { RelayTester } from '../../directory/relay-tester.js';
import { CLUSTER_INTERVAL_MS as I, startCluster } from '../support/authority-cluster.js';
import { HELLO_BODY, startPayloadServer } from '../support/payload-server.js';
import { TcpTransport } from '../../src/link/transport.js';

/** Where the authorities' reachability tests come from. */
const AUTHORITY_SOURCE = '127.99.0.1';
/** Where the relays' own links come from (each relay dials from its address). */
const RELAY_SOURCE = /^127\.[1-3]\.0\.1$/;

/** A forwarder on `address` to a port set later; a connection whose source `allow` refuses is closed and counted. */
class Forwarder {
  readonly server: Server;
  readonly sockets = new Set<Socket>();
  target = 0;
  refused = 0;
  readonly refusedFrom: string[] = [];
  allow: (from: string) => boolean = () => true;

  constructor() {
    this.server = createServer((socket) => {
      const from = socket.remoteAddress ?? '';
      if (!this.allow(from) || this.target === 0) {
        this.refused++;
        this.refusedFrom.push(from);
        socket.destroy();
        return;
      }
      const upstream = connect({ host: (this.server.address() as { address: string }).address, port: this.target });
      for (const s of [socket, upstream]) {
        this.sockets.add(s);
        s.on('error', () => {});
        s.once('close', () => {
          this.sockets.delete(s);
          socket.destroy();
          upstream.destroy();
        });
      }
      socket.pipe(upstream);
      upstream.pipe(socket);
    });
  }

  async listen(address: string): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, address, resolve));
    return (this.server.address() as { port: number }).port;
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
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

test('relays with an IPv6 OR port: in the consensus, probed, and extended to over IPv6 (fallback and preferred)', { timeout: 120_000 }, async (t) => {
  const tester = new RelayTester({ probeTimeoutMs: 2000, measureTimeoutMs: 5000, transport: new TcpTransport({ localAddress: AUTHORITY_SOURCE }) });
  t.after(() => tester.close());
  const cluster = await startCluster(t, 3, {
    config: { consensusLifetimeMs: 60_000, exitsAllowLoopback: true, flagThresholds: TESTNET_FLAG_THRESHOLDS, probe: tester.probe },
  });
  const root = mkdtempSync(join(tmpdir(), 'allium-ipv6-'));
  t.after(() => rmSync(root, { recursive: true, force: true }));
  const refs = cluster.authorities.map((a) => ({ url: a.url, identity: a.identity }));
  const relays: RelayHandle[] = [];
  const forwarders: Forwarder[] = [];
  t.after(async () => {
    await Promise.all(relays.map((r) => r.close()));
    await Promise.all(forwarders.map((f) => f.close()));
  });
  for (let i = 1; i <= 3; i++) {
    const address = `127.${i}.0.1`;
    const forwarder = new Forwarder();
    // Not another relay (each dials from its own 127.N.0.1).
    forwarder.allow = (from) => !RELAY_SOURCE.test(from);
    forwarders.push(forwarder);
    const advertised = await forwarder.listen(address);
    const relay = await startRelay({
      nickname: `relay${i}`,
      dataDir: join(root, `relay${i}`),
      address,
      port: advertised,
      listenPort: 0,
      ipv6Address: '::1',
      ipv6Port: 0,
      authorities: refs,
      exit: true,
      exitPolicy: withLoopbackExit(DEFAULT_EXIT_POLICY_LINES),
    });
    relays.push(relay);
    forwarder.target = relay.listening.port;
    assert.equal(relay.orAddress6?.address, '::1');
  }

  const { consensus, text } = await cluster.waitFor(0, (c) => c.relays.length === 3, 20 * I, 'a consensus with the three relays');
  assert.equal(consensus.consensusMethod, 4);
  for (const relay of relays) {
    const entry = consensus.relays.find((r) => r.nickname === relay.nickname)!;
    assert.deepEqual(entry.orAddress6, relay.orAddress6, relay.nickname);
    assert.ok(text.includes(`\na [::1]:${relay.orAddress6!.port}\n`));
  }

  const server = await startPayloadServer({ host: '127.0.0.1', port: 0 });
  t.after(() => server.close());
  const refused = () => forwarders.reduce((n, f) => n + f.refused, 0);
  assert.equal(refused(), 0, 'no relay linked to another yet');

  // IPv4 first: the relays' IPv4 attempts are refused, and they fall back to IPv6.
  const v4 = await startClient({ authorities: refs, socksHost: '127.0.0.1', socksPort: 0, clockSkewMs: 0, maxConsensusRefreshMs: I });
  t.after(() => v4.close());
  await v4.whenReady(60_000);
  for (let i = 0; i < 4; i++) assert.equal(await hello(v4, server.port, `v4-${i}`), HELLO_BODY);
  const afterFallback = refused();
  assert.ok(afterFallback > 0, 'relays tried IPv4 first');
  await v4.close();

  // IPv6 preferred, with the IPv4 OR ports now closed to clients as well.
  for (const f of forwarders) f.allow = (from) => from === AUTHORITY_SOURCE;
  const v6 = await startClient({ authorities: refs, socksHost: '127.0.0.1', socksPort: 0, clockSkewMs: 0, maxConsensusRefreshMs: I, preferIPv6: true });
  t.after(() => v6.close());
  await v6.whenReady(60_000);
  for (let i = 0; i < 4; i++) assert.equal(await hello(v6, server.port, `v6-${i}`), HELLO_BODY);
  assert.equal(refused(), afterFallback, `neither the client nor a relay tried IPv4 (refused: ${forwarders.flatMap((f) => f.refusedFrom).join(' ')})`);
});
