/**
 * A relay with two worker processes (relay/relay-workers.ts) over real TCP on
 * 127.0.0.1: links opened to it from different addresses land on different workers, circuits through
 * it carry data both ways, its counters add up the workers', and close()
 * takes the workers down.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crypto } from '../../src/crypto/crypto.js';
import { hex } from '../../src/bytes.js';
import { TcpTransport } from '../../src/link/transport.js';
import { LinkManager, dialLink } from '../../src/link/link-manager.js';
import { OriginCircuit, type HopInfo } from '../../client/origin-circuit.js';
import { loadRelayKeys } from '../../relay/keys.js';
import { startRelay, type RelayHandle } from '../../relay/relay.js';

async function echoServer(t: TestContext): Promise<number> {
  const server = createServer((socket) => {
    socket.on('error', () => {});
    socket.pipe(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.after(() => server.close());
  return (server.address() as AddressInfo).port;
}

function hopOf(relay: RelayHandle, dataDir: string): HopInfo {
  const keys = loadRelayKeys(dataDir);
  return {
    nickname: relay.nickname,
    identity: keys.identity.identity,
    linkKey: keys.linkKey.public,
    ntorOnionKey: keys.ntor.onionKey,
    address: relay.address,
    orPort: relay.port,
  };
}

async function roundTrip(circuit: OriginCircuit, port: number, size: number): Promise<void> {
  const stream = await circuit.openStream('127.0.0.1', port, 5000);
  const sent = crypto.randomBytes(size);
  const chunks: Buffer[] = [];
  let received = 0;
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= size) resolve();
    });
    stream.on('error', reject);
  });
  stream.write(sent);
  await done;
  assert.equal(hex(crypto.sha256(Buffer.concat(chunks))), hex(crypto.sha256(sent)));
  stream.end();
}

test('a relay with two workers carries circuits on links spread over both, and closes them', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'allium-workers-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await echoServer(t);
  const middleDir = join(dir, 'middle');
  const exitDir = join(dir, 'exit');
  const middle = await startRelay({ nickname: 'middle', dataDir: middleDir, address: '127.0.0.1', port: 0, authorities: [], exit: false, workers: 2 });
  let middleClosed = false;
  t.after(async () => {
    if (!middleClosed) await middle.close();
  });
  const exit = await startRelay({
    nickname: 'exit',
    dataDir: exitDir,
    address: '127.0.0.1',
    port: 0,
    authorities: [],
    exit: true,
    exitPolicy: ['accept 127.0.0.0/8:*', 'reject *:*'],
  });
  t.after(() => exit.close());
  const path = [hopOf(middle, middleDir), hopOf(exit, exitDir)];

  const transport = new TcpTransport();
  const links = new LinkManager<OriginCircuit>({
    transport,
    handler: {
      onCircuitCell: (slot, cell) => slot.circuit.receive(cell),
      onRelayCells: (slot, cells) => slot.circuit.receiveCells(cells),
      onLinkClosed: (slot) => slot.circuit.linkClosed(),
    },
  });
  t.after(() => links.destroy());
  const target = { address: middle.address, port: middle.port, identity: path[0]!.identity, linkKey: path[0]!.linkKey };
  // Four links from four addresses: the main process gives each new address to the worker carrying the fewest links
  // (all the links of one address go to one worker: relay/link-affinity.ts).
  const circuits: OriginCircuit[] = [];
  for (let i = 0; i < 4; i++) {
    const channel = await dialLink({ transport: new TcpTransport({ localAddress: `127.0.0.${11 + i}` }), target, timeoutMs: 10_000 });
    links.adopt(channel);
    circuits.push(await OriginCircuit.build(channel, links.circuitsOf(channel), path, 10_000));
  }
  await Promise.all(circuits.map((c, i) => roundTrip(c, port, 100_000 + i * 10_000)));

  // Each worker reports its counters once a second; together they hold the 4 client links
  // (plus the links the workers dialled to the exit).
  const deadline = Date.now() + 5000;
  while (middle.linkStats().open < 6 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  const stats = middle.linkStats();
  assert.equal(stats.open, 6, `links open at the middle: ${stats.open}`);
  assert.equal(middle.circuitStats().open, 4);
  // The exit sees one link per worker that extended a circuit to it: two.
  assert.equal(exit.linkStats().open, 2);

  await middle.close();
  middleClosed = true;
  for (const c of circuits) {
    const deadline2 = Date.now() + 5000;
    while (!c.closed && Date.now() < deadline2) await new Promise((r) => setTimeout(r, 50));
    assert.equal(c.closed, true, 'circuits through a closed relay end');
  }
});

test('with workers, the exit policy changes on reconfigure and the workers read through the relay\'s bandwidth rate together', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'allium-workers-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const port = await echoServer(t);
  const middleDir = join(dir, 'middle');
  const exitDir = join(dir, 'exit');
  const middle = await startRelay({ nickname: 'middle', dataDir: middleDir, address: '127.0.0.1', port: 0, authorities: [], exit: false, workers: 1 });
  t.after(() => middle.close());
  // 200 kB/s for the relay, shared between its two workers by use (relay/bandwidth/share.ts).
  const exit = await startRelay({
    nickname: 'exit',
    dataDir: exitDir,
    address: '127.0.0.1',
    port: 0,
    authorities: [],
    exit: true,
    exitPolicy: ['reject *:*'],
    workers: 2,
    bandwidthRate: 200_000,
  });
  t.after(() => exit.close());
  const path = [hopOf(middle, middleDir), hopOf(exit, exitDir)];
  const transport = new TcpTransport();
  const links = new LinkManager<OriginCircuit>({
    transport,
    handler: {
      onCircuitCell: (slot, cell) => slot.circuit.receive(cell),
      onRelayCells: (slot, cells) => slot.circuit.receiveCells(cells),
      onLinkClosed: (slot) => slot.circuit.linkClosed(),
    },
  });
  t.after(() => links.destroy());
  const target = { address: middle.address, port: middle.port, identity: path[0]!.identity, linkKey: path[0]!.linkKey };
  const channel = await dialLink({ transport, target, timeoutMs: 10_000 });
  links.adopt(channel);
  const circuit = await OriginCircuit.build(channel, links.circuitsOf(channel), path, 10_000);

  await assert.rejects(circuit.openStream('127.0.0.1', port, 5000), 'the policy the workers started with refuses the stream');
  exit.reconfigure({ exitPolicy: ['accept 127.0.0.0/8:*', 'reject *:*'] });
  // The new policy reaches the workers over IPC: bounded wait for a stream it accepts.
  const deadline = Date.now() + 5000;
  for (;;) {
    const opened = await circuit.openStream('127.0.0.1', port, 5000).then(
      (s) => (s.destroy(), true),
      () => false,
    );
    if (opened) break;
    assert.ok(Date.now() < deadline, 'the workers did not take the new exit policy within 5 s');
    await new Promise((r) => setTimeout(r, 100));
  }

  // 600 kB through one link, so one worker: at most the relay's 200 kB/s after a bucket of at most 200 kB: at least 2 s.
  const started = Date.now();
  await roundTrip(circuit, port, 600_000);
  const elapsed = Date.now() - started;
  assert.ok(elapsed >= 1800, `600 kB crossed a 200 kB/s relay in ${elapsed} ms`);
  const statsDeadline = Date.now() + 5000;
  while ((exit.bandwidthStats()?.limited ?? 0) === 0 && Date.now() < statsDeadline) await new Promise((r) => setTimeout(r, 100));
  const stats = exit.bandwidthStats();
  assert.equal(stats?.rate, 200_000);
  assert.ok((stats?.limited ?? 0) > 0, 'a worker reported that its bucket ran empty');
});
