/**
 * With workers (relay/relay-workers.ts), the per-address DoS limits are
 * relay-wide. Links: the main process counts each accepted connection until
 * the worker carrying it reports it closed; a relay with 2 workers and
 * dos.maxLinksPerAddress 4 keeps 4 connections from one address open (not
 * 2 × 4), closes the rest at once, counts them, and admits that address
 * again once its connections close; another address is not affected.
 * Circuit creation: every link of one address goes to one worker
 * (relay/link-affinity.ts), so a CREATE2 flood over 8 links from one address
 * gets the relay's burst, not one burst per worker, and the rest is answered
 * DESTROY RESOURCELIMIT; a client on another address builds a circuit and
 * carries data meanwhile.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChannelCommand, cellCircuitId } from '../../src/cell/channel-cell.js';
import { encodeCreate2 } from '../../src/cell/create2.js';
import { DestroyReason } from '../../src/cell/reasons.js';
import { HANDSHAKE_TYPE_NTOR_V3 } from '../../src/constants.js';
import { LinkManager } from '../../src/link/link-manager.js';
import { TcpTransport } from '../../src/link/transport.js';
import { OriginCircuit, type HopInfo } from '../../client/origin-circuit.js';
import { loadRelayKeys } from '../../relay/keys.js';
import { startRelay } from '../../relay/relay.js';
import { HostilePeer, type RelayTarget } from '../adversarial/hostile-peer.js';

const LIMIT = 4;
const WAIT_MS = 10_000;

async function until(cond: () => boolean, what: string, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

test('with 2 workers, links per address are limited relay-wide (not per worker), and released when they close', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'allium-workers-dos-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const relay = await startRelay({
    nickname: 'capped',
    dataDir: dir,
    address: '127.0.0.1',
    port: 0,
    authorities: [],
    exit: false,
    workers: 2,
    dos: { maxLinksPerAddress: LIMIT },
  });
  t.after(() => relay.close());

  /** `n` connections from `from` that send nothing (each stays open until the handshake timeout, 10 s); which are still open after a moment. */
  const open = async (from: string, n: number): Promise<Array<{ socket: Socket; closed: boolean }>> => {
    const out: Array<{ socket: Socket; closed: boolean }> = [];
    for (let i = 0; i < n; i++) {
      const socket = connect({ host: relay.address, port: relay.port, localAddress: from });
      const entry = { socket, closed: false };
      socket.on('error', () => {});
      socket.on('close', () => (entry.closed = true));
      t.after(() => socket.destroy());
      out.push(entry);
      // One at a time, so that the main process has counted each before the next.
      await new Promise((resolve) => socket.once('connect', resolve));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return out;
  };

  const first = await open('127.0.0.9', 3 * LIMIT);
  await until(() => first.filter((c) => c.closed).length >= 2 * LIMIT, 'the connections past the limit to be closed');
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(first.map((c) => c.closed), first.map((_, i) => i >= LIMIT), 'the first LIMIT stay open, the rest are closed');
  assert.equal(relay.dosStats().linksRefused >= 2 * LIMIT, true);

  // Another address is not affected.
  const other = await open('127.0.0.10', 2);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(other.map((c) => c.closed), [false, false]);

  // Once the first address's connections close (the workers report it), it is admitted again.
  for (const c of first) c.socket.destroy();
  await until(() => relay.dosStats().addressesWithLinks === 1, 'the workers to report the closed connections');
  const again = await open('127.0.0.9', LIMIT);
  await new Promise((resolve) => setTimeout(resolve, 300));
  assert.deepEqual(again.map((c) => c.closed), again.map(() => false));
});

test('with 2 workers, circuit creation per address is limited relay-wide: a CREATE2 flood over 8 links from one address gets one burst; another address builds a circuit and carries data', { timeout: 60_000 }, async (t) => {
  const BURST = 8;
  const RATE = 0.2; // per second: at most a token or two refill while the test runs
  const dir = mkdtempSync(join(tmpdir(), 'allium-workers-dos-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const echo = createServer((socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  t.after(() => echo.close());
  const echoPort = (echo.address() as AddressInfo).port;
  const relay = await startRelay({
    nickname: 'ratecap',
    dataDir: dir,
    address: '127.0.0.1',
    port: 0,
    authorities: [],
    exit: true,
    exitPolicy: ['accept 127.0.0.0/8:*', 'reject *:*'],
    workers: 2,
    dos: { maxLinksPerAddress: 20, circuitRate: RATE, circuitBurst: BURST, circuitMinLinks: 3 },
  });
  t.after(() => relay.close());
  const keys = loadRelayKeys(dir);
  const from = (localAddress: string): RelayTarget => ({
    keys,
    async open() {
      const socket = connect({ host: relay.address, port: relay.port, localAddress });
      socket.on('error', () => {});
      return socket;
    },
  });
  const info: HopInfo = { nickname: 'ratecap', identity: keys.identity.identity, linkKey: keys.linkKey.public, ntorOnionKey: keys.ntor.onionKey, address: relay.address, orPort: relay.port };

  // The bystander: a real client on another address, a one-hop circuit exiting to the echo server.
  const bystander = async (t: TestContext, round: number): Promise<void> => {
    const links = new LinkManager<OriginCircuit>({
      transport: new TcpTransport({ localAddress: '127.0.0.4' }),
      handler: { onCircuitCell: (slot, cell) => slot.circuit.receive(cell), onLinkClosed: (slot) => slot.circuit.linkClosed() },
      dialTimeoutMs: WAIT_MS,
    });
    t.after(() => links.destroy());
    const channel = await links.get({ address: relay.address, port: relay.port, identity: info.identity, linkKey: info.linkKey });
    const circuit = await OriginCircuit.build(channel, links.circuitsOf(channel), [info], WAIT_MS);
    const stream = await circuit.openStream('127.0.0.1', echoPort, WAIT_MS);
    const message = Buffer.from(`round ${round}: ${'x'.repeat(5000)}`);
    const got: Buffer[] = [];
    let length = 0;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('echo did not come back')), WAIT_MS);
      stream.on('data', (chunk: Buffer) => {
        got.push(chunk);
        length += chunk.length;
        if (length >= message.length) {
          clearTimeout(timer);
          resolve();
        }
      });
      stream.on('error', reject);
      stream.write(message);
    });
    assert.deepEqual(Buffer.concat(got), message);
    stream.destroy();
    links.destroy();
  };
  await bystander(t, 1);

  // 8 links from 127.0.0.3, every one handshaken (so counted by the worker) before any CREATE2.
  const peers: HostilePeer[] = [];
  for (let i = 0; i < 8; i++) peers.push(await HostilePeer.connect(t, from('127.0.0.3')));
  const started = Date.now();
  const { onionskin } = peers[0]!.onionskin();
  const body = encodeCreate2({ handshakeType: HANDSHAKE_TYPE_NTOR_V3, handshakeData: onionskin });
  const sent = new Map<HostilePeer, number[]>();
  for (const peer of peers) {
    const ids = Array.from({ length: 6 }, () => peer.freshId());
    sent.set(peer, ids);
    for (const id of ids) peer.sendCell(id, ChannelCommand.CREATE2, body);
  }
  // While the flood is answered, the bystander builds a circuit and moves data.
  await bystander(t, 2);
  const total = 8 * 6;
  const answered = () => peers.reduce((n, p) => n + p.received.length, 0);
  await until(() => answered() >= total, 'every CREATE2 to be answered');
  const elapsed = (Date.now() - started) / 1000;
  let created = 0;
  let refused = 0;
  for (const peer of peers) {
    for (const cell of peer.received) {
      assert.ok(sent.get(peer)!.includes(cellCircuitId(cell)));
      if (cell[4] === ChannelCommand.CREATED2) created++;
      else {
        assert.deepEqual([cell[4], cell[5]], [ChannelCommand.DESTROY, DestroyReason.RESOURCELIMIT]);
        refused++;
      }
    }
  }
  // One bucket for the address, relay-wide: the burst plus what the rate refilled meanwhile.
  // (Per worker, two buckets would have let 2 × BURST through.)
  assert.ok(created >= BURST && created <= BURST + Math.floor(RATE * elapsed) + 1, `created ${created} in ${elapsed.toFixed(2)} s`);
  assert.equal(refused, total - created);
  await until(() => relay.dosStats().circuitsRefused === refused, 'the workers to report the refusals');
  assert.ok(peers.every((p) => !p.channel.closed), 'a refused circuit does not close its link');
});
