/**
 * The relay's RSS against its memory cap (plain script):
 *   node dist/bench/mem-cap.bench.js [--cap-mib 64] [--seconds 60] [--peers-per-wave 8] [--quiet] [--gc] [--diag] [--node-defaults]
 *
 * A relay (exit to 127.0.0.1) runs in a child process (this file with
 * --relay-child) with memoryCap.capBytes = --cap-mib. After its idle baseline
 * RSS is sampled (cold: a process that has carried nothing yet), one client
 * of the load below runs for 4 s and leaves, and the relay's RSS is sampled
 * again after a full collection (warm: the baseline of a relay that has
 * carried traffic: V8 has compiled and grown its heap for the relay's code
 * paths, and glibc's malloc keeps the pages it was given). Then this process
 * runs the memory cap's load: every 2 s a wave
 * of --peers-per-wave clients, each from its own loopback address (so no
 * per-address limit meets them), opens one link, 8 circuits and 2 streams on
 * each to a destination that sends without end, then never reads its link;
 * clients older than 30 s are dropped. Every 500 ms it samples the relay's
 * RSS, V8 heap, external memory (Buffers) and accounted queued bytes.
 * Reports both baselines, the highest RSS and its excess over each baseline
 * + cap, where the RSS is at the cold baseline, the warm one and the highest
 * sample (read from /proc/PID/smaps by this process: mapped files such as
 * node's own binary, glibc malloc's main heap, and other anonymous memory,
 * mostly V8's heap pages and mmapped buffers), the cap's events, circuits
 * freed and bytes freed, and the load average. --quiet: the destination
 * never sends, so the relay holds only the state of the links, circuits and
 * streams (run it with a cap above what that state accounts); reports the
 * RSS grown over the lower of the two baselines (a warm baseline can be the
 * lower: its full collection frees what startup left) against the state
 * accounted for it (relay/mem-cap.ts DEFAULT_STATE_BYTES), instead of the
 * comparison with the cap. --gc (a diagnosis, not the figure): the relay runs with
 * --expose-gc and collects garbage before each sample, which tells live
 * buffers from garbage not yet collected. --gc-after-cap (a diagnosis too):
 * a full GC within 50 ms after each cap event and at no other time. --diag adds where the bytes are:
 * the userland write and read buffers of the relay's OR sockets and of its
 * destination sockets, the link queues and the streams. The relay runs with
 * the Node flags and environment the testnet gives relays (cli/node-process.ts
 * NODE_FLAGS, NODE_ENV_VARS); --node-defaults runs it with neither. Everything is torn down at the end and
 * on error. Loopback only.
 */
import { fork, type ChildProcess } from 'node:child_process';
import diagnostics from 'node:diagnostics_channel';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RelayCommand } from '../src/cell/relay-cell.js';
import { encodeBegin } from '../src/cell/stream-messages.js';
import { TcpTransport } from '../src/link/transport.js';
import { parseExitPolicy } from '../src/netdoc/exit-policy.js';
import { loadRelayKeys } from '../relay/keys.js';
import { listenOrPort } from '../relay/or-listener.js';
import { createRelayCore } from '../relay/relay-core.js';
import type { MemoryCapStats } from '../relay/mem-cap.js';
import { collectGarbage } from '../src/collect-garbage.js';
import { HostilePeer } from '../test/adversarial/hostile-peer.js';

const MiB = 1024 * 1024;
const WAVE_MS = 2000;
const PEER_LIFETIME_MS = 30_000;
const SAMPLE_MS = 500;

/** A process's RSS by kind of mapping, bytes (/proc/PID/smaps). */
interface Mappings {
  /** Mapped files: node's binary and shared libraries. */
  files: number;
  /** glibc malloc's main heap ([heap]): Buffers under the mmap threshold, native objects. */
  mallocHeap: number;
  /** Other anonymous memory: V8's heap pages, mmapped buffers, other malloc arenas, stacks. */
  anonymous: number;
}

/** RSS of process `pid` by kind of mapping; null where /proc is not readable. */
function mappings(pid: number): Mappings | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/smaps`, 'utf8');
  } catch {
    return null;
  }
  const out: Mappings = { files: 0, mallocHeap: 0, anonymous: 0 };
  let kind: keyof Mappings = 'anonymous';
  for (const line of text.split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head !== null) {
      const name = head[1]!;
      kind = name.startsWith('/') ? 'files' : name === '[heap]' ? 'mallocHeap' : 'anonymous';
      continue;
    }
    const rss = /^Rss:\s+(\d+) kB/.exec(line);
    if (rss !== null) out[kind] += Number(rss[1]) * 1024;
  }
  return out;
}

function showMappings(m: Mappings | null | undefined): string {
  if (m == null) return 'mappings unknown';
  return `files ${(m.files / MiB).toFixed(1)}, malloc heap ${(m.mallocHeap / MiB).toFixed(1)}, other anonymous ${(m.anonymous / MiB).toFixed(1)} MiB`;
}

interface Sample {
  rss: number;
  /** RSS by kind of mapping, read by the bench from outside the relay. */
  map?: Mappings | null;
  heap: number;
  /** V8's heap as reserved (process.memoryUsage().heapTotal): the young generation's semi-spaces count here. */
  heapTotal: number;
  external: number;
  /** process.memoryUsage().arrayBuffers: the part of external held by ArrayBuffers (Buffers). */
  arrayBuffers: number;
  queued: number;
  cap: MemoryCapStats;
  /** Where the bytes are (--diag): userland socket buffers of links and of destinations, link queues. */
  diag?: { links: number; orWrite: number; orRead: number; dests: number; destWrite: number; destRead: number; linkQueued: number; streams: number };
}

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

/** The relay: an exit to 127.0.0.1 with the given cap, answering 'mem' over IPC. */
async function relayChild(dataDir: string, capBytes: number): Promise<void> {
  const keys = loadRelayKeys(dataDir);
  const core = createRelayCore({
    keys,
    exit: { policy: parseExitPolicy(['accept 127.0.0.1:*', 'reject *:*']), localAddress: '127.0.0.1' },
    transport: new TcpTransport({ localAddress: '127.0.0.1' }),
    memoryCap: { capBytes },
  });
  // --diag: the OR sockets and destination sockets, to see what their userland buffers hold.
  const orSockets = new Set<Socket>();
  const destSockets = new Set<Socket>();
  const diag = process.argv.includes('--diag');
  // --gc-after-cap: a full GC right after each cap event, and at no other time (what asking V8 to return freed buffers at once would give).
  const gcAfterCap = process.argv.includes('--gc-after-cap');
  if (gcAfterCap) {
    let seen = 0;
    setInterval(() => {
      const events = core.memoryCap.stats().oomEvents;
      if (events !== seen) (globalThis as { gc?: () => void }).gc?.();
      seen = events;
    }, 50).unref();
  }
  if (diag) {
    diagnostics.subscribe('net.client.socket', (m) => {
      const socket = (m as { socket: Socket }).socket;
      destSockets.add(socket);
      socket.once('close', () => destSockets.delete(socket));
    });
  }
  const listener = await listenOrPort('127.0.0.1', 0, (socket) => {
    if (diag) {
      orSockets.add(socket as Socket);
      socket.once('close', () => orSockets.delete(socket as Socket));
    }
    return core.accept(socket).catch(() => socket.destroy());
  });
  const where = (): Sample['diag'] => {
    let orWrite = 0, orRead = 0, destWrite = 0, destRead = 0, linkQueued = 0, streams = 0;
    for (const s of orSockets) { orWrite += s.writableLength; orRead += s.readableLength; }
    for (const s of destSockets) { destWrite += s.writableLength; destRead += s.readableLength; }
    for (const link of core.links.openLinks()) {
      linkQueued += link.queuedBytes;
      for (const slot of core.links.circuitsOf(link).all()) if (slot.side === 'prev') streams += slot.circuit.streamBytes();
    }
    return { links: orSockets.size, orWrite, orRead, dests: destSockets.size, destWrite, destRead, linkQueued, streams };
  };
  process.on('message', (msg: string) => {
    if (msg === 'mem') {
      if (!gcAfterCap) (globalThis as { gc?: () => void }).gc?.();
      const m = process.memoryUsage();
      process.send!({ rss: m.rss, heap: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, queued: core.memoryCap.queuedBytes(), cap: core.memoryCap.stats(), ...(diag ? { diag: where() } : {}) } satisfies Sample);
    } else if (msg === 'collect') {
      collectGarbage();
    } else if (msg === 'stop') {
      core.destroy();
      void listener.close().then(() => process.exit(0));
    }
  });
  process.send!({ port: listener.port });
}

async function ask(child: ChildProcess): Promise<Sample> {
  child.send('mem');
  const [m] = (await once(child, 'message')) as [Sample];
  return { ...m, map: mappings(child.pid!) };
}

/** A destination that writes to every connection until it closes, respecting backpressure; `quiet`: one that never writes. */
async function firehose(quiet: boolean): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    if (quiet) return;
    const pump = () => {
      while (!socket.destroyed) {
        if (!socket.write(chunk)) {
          socket.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port, sockets };
}

async function main(): Promise<void> {
  const capMiB = arg('cap-mib', 64);
  const seconds = arg('seconds', 60);
  const perWave = arg('peers-per-wave', 8);
  const dataDir = mkdtempSync(join(tmpdir(), 'allium-memcap-'));
  const gcAfterCap = process.argv.includes('--gc-after-cap');
  const gc = process.argv.includes('--gc') || gcAfterCap;
  const diag = process.argv.includes('--diag');
  // The relay runs with the Node flags the testnet gives relays (--node-defaults: none, as Node's own defaults).
  // Imported here, not at the top: the relay child (this file) should load no more than a relay does.
  const { NODE_ENV_VARS, NODE_FLAGS } = await import('../cli/testnet.js');
  const nodeDefaults = process.argv.includes('--node-defaults');
  const nodeFlags = nodeDefaults ? [] : [...(NODE_FLAGS.relay ?? [])];
  const nodeEnv = nodeDefaults ? {} : { ...NODE_ENV_VARS.relay };
  const child = fork(fileURLToPath(import.meta.url), ['--relay-child', dataDir, String(capMiB * MiB), ...(diag ? ['--diag'] : []), ...(gcAfterCap ? ['--gc-after-cap'] : [])], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: [...nodeFlags, ...(gc ? ['--expose-gc'] : [])],
    env: { ...process.env, ...nodeEnv },
  });
  // --quiet: streams to a destination that never sends, so the relay holds only their state (no cap events
  // with a cap above it): what the process holds per link, circuit and stream, against DEFAULT_STATE_BYTES.
  const quiet = process.argv.includes('--quiet');
  const hose = await firehose(quiet);
  const peers: Array<{ peer: HostilePeer; at: number }> = [];
  try {
    const [{ port }] = (await once(child, 'message')) as [{ port: number }];
    const keys = loadRelayKeys(dataDir);
    const target = (localAddress: string) => ({
      keys,
      async open() {
        const socket = connect({ host: '127.0.0.1', port, localAddress });
        socket.on('error', () => {});
        return socket;
      },
    });
    let peerNo = 0;
    let failed = 0;
    /** One wave: `clients` (default perWave), each from its own address, with 8 circuits and 2 streams on each to the firehose, then never reading. */
    const wave = (clients = perWave) =>
      Promise.all(
        Array.from({ length: clients }, async () => {
          const n = ++peerNo;
          try {
            const peer = await HostilePeer.connect(null, target(`127.77.${(n >> 8) & 255}.${(n & 255) || 1}`));
            const circs = [];
            for (let c = 0; c < 8; c++) circs.push(await peer.create());
            for (const circ of circs) for (const streamId of [1, 2]) peer.sendRelay(circ, RelayCommand.BEGIN, streamId, encodeBegin({ host: '127.0.0.1', port: hose.port, flags: 0 }));
            peer.channel.pauseReading();
            peers.push({ peer, at: Date.now() });
          } catch {
            failed++;
          }
        }),
      );
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
    /** The sample with the highest RSS of 5, 200 ms apart. */
    const idleSample = async () => {
      let top: Sample | null = null;
      for (let i = 0; i < 5; i++) {
        const s = await ask(child);
        if (top === null || s.rss > top.rss) top = s;
        await sleep(200);
      }
      return top!;
    };
    // Cold baseline: the relay up, nothing connected yet.
    await sleep(3000);
    const cold = await idleSample();
    // Warm baseline: the same after one such client has run the relay's code paths for 4 s and left, and a full collection.
    await wave(1);
    await sleep(4000);
    for (const p of peers.splice(0)) p.peer.channel.destroy();
    await sleep(2000);
    child.send('collect');
    await sleep(2000);
    const warm = await idleSample();
    process.stdout.write(
      `mem-cap: cap ${capMiB} MiB, ${seconds} s, ${perWave} ${quiet ? 'clients with streams that get nothing' : 'stuck clients'} every ${WAVE_MS / 1000} s${gcAfterCap ? ', GC after each cap event' : gc ? ', GC before each sample' : ''}; relay node flags [${nodeFlags.join(' ')}], environment [${Object.entries(nodeEnv).map(([k, v]) => `${k}=${v}`).join(' ')}]; relay idle RSS ${(cold.rss / MiB).toFixed(1)} MiB cold (${showMappings(cold.map)}), ${(warm.rss / MiB).toFixed(1)} MiB warm (${showMappings(warm.map)})\n\n`,
    );
    process.stdout.write(
      `| s | relay RSS MiB | heap | external | arrayBuffers | queued (accounted) MiB | garbage MiB | cap events | circuits freed | links closed | clients | load 1 min |${diag ? ' links | OR write | OR read | dests | dest write | dest read | link queues | streams |' : ''}\n` +
        `|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|${diag ? '---:|---:|---:|---:|---:|---:|---:|---:|' : ''}\n`,
    );

    let most: Sample | null = null;
    const started = Date.now();
    let nextWave = 0;
    let maxQueued = 0;
    while (Date.now() - started < seconds * 1000) {
      const now = Date.now() - started;
      if (now >= nextWave) {
        nextWave += WAVE_MS;
        for (const p of peers.filter((x) => Date.now() - x.at > PEER_LIFETIME_MS)) p.peer.channel.destroy();
        peers.splice(0, peers.length, ...peers.filter((x) => Date.now() - x.at <= PEER_LIFETIME_MS));
        await wave();
      }
      const s = await ask(child);
      if (most === null || s.rss > most.rss) most = s;
      maxQueued = Math.max(maxQueued, s.queued);
      process.stdout.write(
        `| ${(now / 1000).toFixed(1)} | ${(s.rss / MiB).toFixed(1)} | ${(s.heap / MiB).toFixed(1)} | ${(s.external / MiB).toFixed(1)} | ${(s.arrayBuffers / MiB).toFixed(1)} | ${(s.queued / MiB).toFixed(1)} | ${((s.cap.garbageBytes ?? 0) / MiB).toFixed(1)} | ${s.cap.oomEvents} | ${s.cap.circuitsFreed} | ${s.cap.linksClosed} | ${peers.length} | ${loadavg()[0]!.toFixed(2)} |` +
          (s.diag === undefined ? '' : ` ${s.diag.links} | ${(s.diag.orWrite / MiB).toFixed(1)} | ${(s.diag.orRead / MiB).toFixed(1)} | ${s.diag.dests} | ${(s.diag.destWrite / MiB).toFixed(1)} | ${(s.diag.destRead / MiB).toFixed(1)} | ${(s.diag.linkQueued / MiB).toFixed(1)} | ${(s.diag.streams / MiB).toFixed(1)} |`) +
          '\n',
      );
      await new Promise((resolve) => setTimeout(resolve, SAMPLE_MS));
    }
    const last = await ask(child);
    const over = (base: number) => {
      const excess = most!.rss - base - capMiB * MiB;
      return `${((base + capMiB * MiB) / MiB).toFixed(1)} MiB, so the highest RSS is ${excess <= 0 ? `${(-excess / MiB).toFixed(1)} MiB under` : `${(excess / MiB).toFixed(1)} MiB over`} it`;
    };
    if (!quiet) process.stdout.write(
      `\nidle RSS ${(cold.rss / MiB).toFixed(1)} MiB cold, ${(warm.rss / MiB).toFixed(1)} MiB warm; highest RSS ${(most!.rss / MiB).toFixed(1)} MiB (${showMappings(most!.map)}; heap ${(most!.heap / MiB).toFixed(1)} of ${(most!.heapTotal / MiB).toFixed(1)}, external ${(most!.external / MiB).toFixed(1)}, accounted queue ${(most!.queued / MiB).toFixed(1)}); highest accounted queue ${(maxQueued / MiB).toFixed(1)} MiB; ` +
        `warm baseline + cap = ${over(warm.rss)}; cold baseline + cap = ${over(cold.rss)}; ` +
        `cap events ${last.cap.oomEvents}, circuits freed ${last.cap.circuitsFreed}, links closed ${last.cap.linksClosed}, full collections requested ${last.cap.collections ?? 0}, ${(last.cap.bytesFreed / MiB).toFixed(1)} MiB freed; ${peerNo} clients (${failed} failed to connect); load ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`,
    );
    if (quiet) {
      // The clients alive at the highest sample: each holds one link, 8 circuits and 16 streams, all state.
      // Against the lower baseline (the warm one can be lower than the cold one: its full collection freed
      // what startup left), so the growth is not understated.
      const base = Math.min(cold.rss, warm.rss);
      const grown = most!.rss - base;
      process.stdout.write(
        `\nstate only (--quiet): highest RSS ${(most!.rss / MiB).toFixed(1)} MiB (${showMappings(most!.map)}), ${most!.queued === 0 ? 'nothing accounted' : `${(grown / MiB).toFixed(1)} MiB over the lower idle baseline against ${(most!.queued / MiB).toFixed(1)} MiB accounted as state (DEFAULT_STATE_BYTES): ${(grown / most!.queued).toFixed(2)}×`}; ${peerNo} clients (${failed} failed to connect); load ${loadavg().map((l) => l.toFixed(2)).join(' ')}\n`,
      );
    }
    process.stdout.write(`${JSON.stringify({ bench: 'mem-cap', capMiB, seconds, idleRss: cold.rss, warmRss: warm.rss, cold, warm, highest: most, maxQueued, last, clients: peerNo, failed })}\n`);
  } finally {
    for (const p of peers) p.peer.channel.destroy();
    for (const s of hose.sockets) s.destroy();
    hose.server.close();
    child.send('stop');
    await Promise.race([once(child, 'exit'), new Promise((resolve) => setTimeout(resolve, 5000))]);
    if (child.exitCode === null) child.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  }
}

if (process.argv[2] === '--relay-child') {
  void relayChild(process.argv[3]!, Number(process.argv[4]));
} else {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
      process.exit(1);
    },
  );
}
