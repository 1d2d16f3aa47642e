/**
 * Load benchmark (plain script):  node dist/bench/load.bench.js [--circuits 10000] [--streams 1000]
 *
 * 1. Circuits held by one relay: a relay runs in a child process (this file
 *    with --relay-child); this process is the load generator. Over two links
 *    from 127.0.0.1 (under the circuit-creation limit's 3-link threshold) it
 *    sends --circuits CREATE2 with genuine ntor-v3 onionskins, paced by the
 *    link's backpressure, and counts CREATED2. Reports circuits held, the time
 *    to create them, and the relay's RSS and V8 heap before and after: memory
 *    per circuit.
 * 2. Concurrent streams through one client: `allium testnet`; --streams SOCKS
 *    connections at once, same credentials (one circuit), each fetching
 *    100 KB from a server on loopback. Reports how many completed, the time,
 *    and the client's RSS.
 * Everything is torn down at the end and on error. Loopback only.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SocksClient } from 'socks';
import { ChannelCommand, encodeChannelCell } from '../src/cell/channel-cell.js';
import { encodeCreate2 } from '../src/cell/create2.js';
import { HANDSHAKE_TYPE_NTOR_V3 } from '../src/constants.js';
import { CIRCUIT_VERIFICATION, EMPTY_NTOR_MESSAGE } from '../src/circuit/handshake-params.js';
import { ntorV3ClientStart } from '../src/crypto/ntor-v3.js';
import { Channel } from '../src/link/channel.js';
import { TcpTransport } from '../src/link/transport.js';
import { loadRelayKeys } from '../relay/keys.js';
import { listenOrPort } from '../relay/or-listener.js';
import { createRelayCore } from '../relay/relay-core.js';
import { startTestnetProcess, type TestnetProcess } from '../test/support/testnet-process.js';
import { childPids, commandLine, rssMiB } from './proc.js';

const MiB = 1024 * 1024;

interface Mem {
  rss: number;
  heap: number;
  circuits: number;
}

/** The relay side: a relay core on 127.0.0.1, answering 'mem' requests over IPC (after a GC). */
async function relayChild(dataDir: string): Promise<void> {
  const keys = loadRelayKeys(dataDir);
  const core = createRelayCore({ keys, exit: { policy: null, localAddress: '127.0.0.1' }, transport: new TcpTransport({ localAddress: '127.0.0.1' }) });
  const listener = await listenOrPort('127.0.0.1', 0, (socket) => core.accept(socket));
  process.on('message', (msg: string) => {
    if (msg === 'mem') {
      (globalThis as { gc?: () => void }).gc?.();
      const m = process.memoryUsage();
      process.send!({ rss: m.rss, heap: m.heapUsed, circuits: core.stats().open });
    } else if (msg === 'stop') {
      core.destroy();
      void listener.close().then(() => process.exit(0));
    }
  });
  process.send!({ port: listener.port });
}

function ask(child: ChildProcess): Promise<Mem> {
  child.send('mem');
  return once(child, 'message').then(([m]) => m as Mem);
}

async function circuitsBench(count: number): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'allium-load-'));
  const child = fork(fileURLToPath(import.meta.url), ['--relay-child', dataDir], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const [{ port }] = (await once(child, 'message')) as [{ port: number }];
    const keys = loadRelayKeys(dataDir);
    const before = await ask(child);
    const links = await Promise.all(
      [0, 1].map(async () => {
        const socket = connect({ host: '127.0.0.1', port });
        socket.on('error', () => {});
        return Channel.connect(socket, { peerLinkKey: keys.linkKey.public, peerIdentity: keys.identity.identity, timeoutMs: 10_000 });
      }),
    );
    let created = 0;
    let refused = 0;
    for (const link of links) link.on('cell', (cell: Uint8Array) => (cell[4] === ChannelCommand.CREATED2 ? created++ : refused++));
    const started = performance.now();
    const relay = { identity: keys.identity.identity, onionKey: keys.ntor.onionKey };
    let nextId = 0x80000001;
    for (let i = 0; i < count; i++) {
      const link = links[i % 2]!;
      const { onionskin } = ntorV3ClientStart(relay, EMPTY_NTOR_MESSAGE, CIRCUIT_VERIFICATION);
      const id = nextId + Math.floor(i / 2);
      if (!link.sendCell(encodeChannelCell(id, ChannelCommand.CREATE2, encodeCreate2({ handshakeType: HANDSHAKE_TYPE_NTOR_V3, handshakeData: onionskin })))) {
        await Promise.race([once(link, 'drain'), new Promise((resolve) => setTimeout(resolve, 5000))]);
      }
      if (i % 500 === 499) await new Promise((resolve) => setImmediate(resolve));
    }
    const deadline = Date.now() + 120_000;
    while (created + refused < count && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    const seconds = (performance.now() - started) / 1000;
    const after = await ask(child);
    const perCircuit = (after.rss - before.rss) / Math.max(1, created);
    const heapPer = (after.heap - before.heap) / Math.max(1, created);
    process.stdout.write('| circuits asked | CREATED2 | refused | held by the relay | seconds | circuits/s | relay RSS before → after (MiB) | heap before → after (MiB) | RSS / circuit | heap / circuit |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n');
    process.stdout.write(
      `| ${count} | ${created} | ${refused} | ${after.circuits} | ${seconds.toFixed(1)} | ${Math.round(created / seconds)} | ${(before.rss / MiB).toFixed(1)} → ${(after.rss / MiB).toFixed(1)} | ${(before.heap / MiB).toFixed(1)} → ${(after.heap / MiB).toFixed(1)} | ${(perCircuit / 1024).toFixed(2)} KiB | ${(heapPer / 1024).toFixed(2)} KiB |\n`,
    );
    process.stdout.write(`${JSON.stringify({ bench: 'load-circuits', asked: count, created, refused, seconds, before, after, rssPerCircuit: perCircuit, heapPerCircuit: heapPer })}\n\n`);
    for (const link of links) link.destroy();
  } finally {
    child.send('stop');
    await Promise.race([once(child, 'exit'), new Promise((resolve) => setTimeout(resolve, 5000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
}

async function streamsBench(count: number): Promise<void> {
  const body = Buffer.alloc(100_000, 0x63);
  const server: Server = createServer((_req, res) => {
    res.writeHead(200, { 'content-length': body.length });
    res.end(body);
  });
  server.maxConnections = count + 100;
  await new Promise<void>((resolve) => server.listen(0, '127.200.0.1', () => resolve()));
  const port = (server.address() as { port: number }).port;
  let tn: TestnetProcess | undefined;
  try {
    tn = await startTestnetProcess(undefined, {});
    const t = tn;
    // The testnet's client: the child whose command is `node [node flags] .../main.js client ...`.
    const isClient = (pid: number) => {
      const args = commandLine(pid);
      return args[args.findIndex((a) => a.endsWith('main.js')) + 1] === 'client';
    };
    const clientPid = childPids(t.pid).find(isClient);
    if (clientPid === undefined) throw new Error('the testnet has no client process');
    const rss = () => rssMiB(clientPid);
    // One stream first, so the circuit exists.
    const fetchOne = async (): Promise<boolean> => {
      const { socket } = await SocksClient.createConnection({ proxy: { host: t.socksHost, port: t.socksPort, type: 5, userId: 'load', password: 'x' }, command: 'connect', destination: { host: '127.200.0.1', port }, timeout: 60_000 });
      return new Promise((resolve) => {
        let n = 0;
        const timer = setTimeout(() => done(false), 90_000);
        const done = (ok: boolean) => {
          clearTimeout(timer);
          socket.destroy();
          resolve(ok);
        };
        socket.on('data', (c: Buffer) => {
          n += c.length;
          if (n >= body.length) done(true);
        });
        socket.on('error', () => done(false));
        socket.on('close', () => done(n >= body.length));
        socket.write('GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
      });
    };
    await fetchOne();
    const rssBefore = rss();
    const started = performance.now();
    const results = await Promise.all(Array.from({ length: count }, () => fetchOne().catch(() => false)));
    const seconds = (performance.now() - started) / 1000;
    const ok = results.filter(Boolean).length;
    process.stdout.write('| concurrent streams | completed | seconds | client RSS before → after (MiB) |\n|---:|---:|---:|---:|\n');
    process.stdout.write(`| ${count} | ${ok} | ${seconds.toFixed(1)} | ${rssBefore.toFixed(1)} → ${rss().toFixed(1)} |\n`);
    process.stdout.write(`${JSON.stringify({ bench: 'load-streams', streams: count, completed: ok, seconds })}\n`);
  } finally {
    await tn?.stop();
    server.closeAllConnections();
    server.close();
  }
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv[0] === '--relay-child') return relayChild(argv[1]!);
  const arg = (flag: string, fallback: number) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? Number(argv[i + 1]) : fallback;
  };
  await circuitsBench(arg('--circuits', 10_000));
  await streamsBench(arg('--streams', 1000));
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
