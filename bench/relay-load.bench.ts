/**
 * One relay process under load from another process, no testnet:
 *
 *   node dist/bench/relay-load.bench.js [--cells 6000000] [--links 8] [--circuits 8] [--workers 1,2,1,2]
 *   (or npm run bench -- relay-load --workers 1,2,1,2; --help prints the options)
 *
 * About 20 s per run of 6,000,000 cells on the project machine, plus setup.
 * The sealed recordings take about 530 MB of memory per million cells
 * (3.2 GB at the default): use fewer --cells on a smaller machine.
 *
 * For each worker count in turn (alternating runs: noise on a shared
 * machine hits both), starts the relay under test (bench/relay-target.js,
 * `--workers N`) and, in this process, a sink (bench/count-sink.ts) and an
 * anonymous client with --links links to the relay, each from its own
 * loopback address (127.0.0.20, .21, ...: the relay gives all links of one
 * address to one worker, so distinct addresses are what spreads load over
 * workers, as many clients and relays do), and --circuits two-hop circuits
 * (relay → sink) on each. The client then sends --cells RELAY cells in all
 * (round robin over each link's circuits) as fast as the links take them;
 * the relay does its full work on each (link frame open, its onion layer,
 * routing, link frame seal towards the sink).
 *
 * The load generator is the measuring instrument and must cost far less per
 * cell than the relay: on a 2-core machine every microsecond it spends is
 * taken from the relay's second worker. So it seals its load before the
 * run: each link's Channel queues and seals the run's cells as usual
 * (src/link/send-queue.ts, the link's real nonces and rekeying), but its
 * socket records what the Channel writes instead of sending it; then every
 * link replays its recording in 1 MiB writes, and all the generator does
 * during the run is those writes and the sink's reads. The cells carry
 * random payloads (no onion crypto: the relay finds them unrecognized). The
 * sink decrypts and checks every cell during the warm-up (the first
 * WINDOW_START of the cells), then counts cells by frame length
 * (docs/protocol.md §3.4) without decrypting. Correctness end to end: every
 * cell sent must reach the sink.
 *
 * Measured over the steady window between the sink counting WINDOW_START and
 * WINDOW_END of the cells (or the first link running out of recording, if
 * sooner): cells/s at the sink; CPU (utime+stime from /proc) of the relay's
 * main process and of each worker, and of this process (replay and sink),
 * each per cell. The summary gives medians per worker count, cells/s per
 * relay core, and the ceiling a 2-core machine puts on the 2-worker
 * speed-up given those costs: 2 · r1 / (r2 + g) for relay costs r1, r2 and
 * generator cost g per cell.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ChannelCommand, encodeChannelCell, setCellCircuitId } from '../src/cell/channel-cell.js';
import { crypto } from '../src/crypto/crypto.js';
import type { Channel } from '../src/link/channel.js';
import { LinkManager, dialLink } from '../src/link/link-manager.js';
import { TcpTransport, type PeerAddress, type Transport, type TransportConnectOptions } from '../src/link/transport.js';
import { OriginCircuit, type HopInfo } from '../client/origin-circuit.js';
import { loadRelayKeys } from '../relay/keys.js';
import { startCountSink, type CountSink } from './count-sink.js';
import { childPids, cpuSeconds } from './proc.js';

interface Args {
  /** Cells sent per run, over all links. */
  cells: number;
  links: number;
  circuits: number;
  workers: number[];
}

const USAGE = 'usage: node dist/bench/relay-load.bench.js [--cells N (default 6000000)] [--links N (default 8)] [--circuits N (default 8)] [--workers 1,2,1,2]';

/** A bad command line: printed without a stack trace. */
class UsageError extends Error {}

/** The options, or null for --help. Throws UsageError for anything else. */
function parseArgs(argv: string[]): Args | null {
  const args: Args = { cells: 6_000_000, links: 8, circuits: 8, workers: [1, 2, 1, 2] };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (flag === '--help' || flag === '-h') return null;
    if (value === undefined) throw new UsageError(`${USAGE}\n(${flag} needs a value)`);
    if (flag === '--workers') args.workers = value.split(',').map(Number);
    else if (flag === '--cells' || flag === '--links' || flag === '--circuits') args[flag.slice(2) as 'cells'] = Number(value);
    else throw new UsageError(`${USAGE}\n(bad argument ${flag})`);
  }
  for (const n of [args.cells, args.links, args.circuits, ...args.workers]) {
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`${USAGE}\n(every count must be a positive integer)`);
  }
  return args;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The relay under test, in its own process. */
async function startTarget(dataDir: string, workers: number): Promise<{ child: ChildProcess; port: number }> {
  const script = fileURLToPath(new URL('./relay-target.js', import.meta.url));
  const child = spawn(process.execPath, [script, dataDir, String(workers)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('relay under test did not start within 20 s')), 20_000);
    lines.on('line', (line) => {
      if (!line.startsWith('{"port":')) return; // anything else the process prints
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (code) => reject(new Error(`relay under test exited (${code})`)));
  });
  return { child, port };
}

/** The sink has counted this share of the run's cells when the measured window starts (the warm-up before it). */
const WINDOW_START = 0.2;
/** ... and this share when it ends (unless a link ran out of recording first). */
const WINDOW_END = 0.8;
/** Bytes per replayed write (and per recording block). */
const BLOCK_BYTES = 1024 * 1024;

/** TCP, remembering the socket of each connection (for the recorder). */
class KeepingTransport implements Transport {
  readonly #tcp: TcpTransport;
  socket: Socket | null = null;
  constructor(localAddress: string) {
    this.#tcp = new TcpTransport({ localAddress });
  }
  async connect(peer: PeerAddress, opts?: TransportConnectOptions): Promise<Duplex> {
    const socket = await this.#tcp.connect(peer, opts);
    this.socket = socket as Socket;
    return socket;
  }
}

type WriteCallback = (error?: Error | null) => void;
interface WritableInternals {
  _write(chunk: Uint8Array, encoding: string, callback: WriteCallback): void;
  _writev(chunks: Array<{ chunk: Uint8Array }>, callback: WriteCallback): void;
}

/**
 * Queue `count` RELAY cells with a random payload on `circuitIds` of `link`,
 * round robin, while its socket records instead of sending: resolves with
 * the sealed link bytes the Channel wrote, in BLOCK_BYTES blocks (the last
 * shorter). The socket sends again afterwards.
 */
async function record(link: Channel, socket: Socket, circuitIds: number[], count: number): Promise<Uint8Array[]> {
  const blocks: Uint8Array[] = [];
  let block = Buffer.allocUnsafeSlow(BLOCK_BYTES);
  let used = 0;
  const keep = (chunk: Uint8Array): void => {
    for (let at = 0; at < chunk.length; ) {
      const n = Math.min(chunk.length - at, BLOCK_BYTES - used);
      block.set(chunk.subarray(at, at + n), used);
      used += n;
      at += n;
      if (used === BLOCK_BYTES) {
        blocks.push(block);
        block = Buffer.allocUnsafeSlow(BLOCK_BYTES);
        used = 0;
      }
    }
  };
  const internals = socket as unknown as WritableInternals;
  const own = { write: internals._write, writev: internals._writev };
  internals._write = (chunk, _encoding, callback) => {
    keep(chunk);
    callback();
  };
  internals._writev = (chunks, callback) => {
    for (const c of chunks) keep(c.chunk);
    callback();
  };
  try {
    const cell = encodeChannelCell(circuitIds[0]!, ChannelCommand.RELAY, crypto.randomBytes(509));
    let next = 0;
    for (let sent = 0; sent < count; ) {
      if (link.closed) throw new Error('relay-load: a link closed while recording');
      setCellCircuitId(cell, circuitIds[next]!);
      next = next + 1 === circuitIds.length ? 0 : next + 1;
      sent++;
      if (!link.sendCell(cell)) await new Promise((resolve) => link.once('drain', resolve));
    }
    // The Channel seals and writes what it queued on its next turns.
    const deadline = Date.now() + 30_000;
    while (link.queuedBytes > 0 && Date.now() < deadline) await sleep(1);
    if (link.queuedBytes > 0) throw new Error('relay-load: a link did not flush its recording within 30 s');
  } finally {
    internals._write = own.write;
    internals._writev = own.writev;
  }
  if (used > 0) blocks.push(block.subarray(0, used));
  return blocks;
}

/** Write `blocks` to `socket` as fast as it takes them; `done()` once all are handed to it. */
function replay(socket: Socket, blocks: Uint8Array[]): { done: () => boolean } {
  let next = 0;
  const run = (): void => {
    while (next < blocks.length && !socket.destroyed) {
      if (!socket.write(blocks[next++]!)) {
        socket.once('drain', run);
        return;
      }
    }
  };
  setImmediate(run);
  return { done: () => next === blocks.length };
}

interface Result {
  workers: number;
  cellsPerSecond: number;
  /** Relay CPU (main process and workers), µs per cell. */
  usPerCell: number;
  /** Of which the relay's main process, µs per cell. */
  mainUsPerCell: number;
  relayCores: number;
  /** Cores used by each worker process (none with 1 worker: the relay runs in its main process). */
  workerCores: number[];
  /** Each worker's CPU, µs per cell. */
  workerUsPerCell: number[];
  /** This process (sender and sink), µs per cell and cores. */
  generatorUsPerCell: number;
  /** Of which in the kernel (system time), µs per cell. */
  generatorSysUsPerCell: number;
  /** Of which the sink's socket handlers (wall time in them), µs per cell. */
  sinkUsPerCell: number;
  generatorCores: number;
  /** Cells per second per core the relay used. */
  cellsPerRelayCoreSecond: number;
  /** Load average (1 min) at the start of the window. */
  load: number;
  /** Links the relay opened to the sink (one per worker that carries circuits). */
  sinkLinks: number;
  /** Cells checked (decrypted) by the sink during the warm-up, and cells sent in all (every one counted by the sink). */
  verified: number;
  sent: number;
}

async function runOnce(args: Args, workers: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'allium-relay-load-'));
  let target: { child: ChildProcess; port: number } | undefined;
  let sink: CountSink | undefined;
  const client = new LinkManager<OriginCircuit>({
    transport: new TcpTransport(),
    handler: {
      onCircuitCell: (slot, cell) => slot.circuit.receive(cell),
      onRelayCells: (slot, cells) => slot.circuit.receiveCells(cells),
      onLinkClosed: (slot) => slot.circuit.linkClosed(),
    },
  });
  try {
    target = await startTarget(join(dir, 'target'), workers);
    sink = await startCountSink(loadRelayKeys(join(dir, 'sink')));
    const keys = loadRelayKeys(join(dir, 'target'));
    const relay: HopInfo = {
      nickname: 'loadtarget',
      identity: keys.identity.identity,
      linkKey: keys.linkKey.public,
      ntorOnionKey: keys.ntor.onionKey,
      address: '127.0.0.1',
      orPort: target.port,
    };
    const links: Channel[] = [];
    const recordings: Array<{ socket: Socket; blocks: Uint8Array[] }> = [];
    const perLink = Math.ceil(args.cells / args.links);
    const sent = perLink * args.links;
    for (let l = 0; l < args.links; l++) {
      // Each link from its own address: the relay spreads addresses over its workers.
      const transport = new KeepingTransport(`127.0.0.${20 + l}`);
      const link = await dialLink({ transport, target: { address: relay.address, port: relay.orPort, identity: relay.identity, linkKey: relay.linkKey }, timeoutMs: 10_000 });
      client.adopt(link);
      links.push(link);
      const ids: number[] = [];
      for (let c = 0; c < args.circuits; c++) ids.push((await OriginCircuit.build(link, client.circuitsOf(link), [relay, sink.info], 10_000)).id);
      recordings.push({ socket: transport.socket!, blocks: await record(link, transport.socket!, ids, perLink) });
    }
    const replays = recordings.map((r) => replay(r.socket, r.blocks));
    // Warm-up: the sink decrypts and checks every cell until WINDOW_START of them arrived.
    const waitFor = async (what: string, done: () => boolean): Promise<void> => {
      const deadline = Date.now() + 120_000;
      while (!done()) {
        if (sink!.failure() !== null) throw sink!.failure()!;
        if (Date.now() > deadline) throw new Error(`relay-load: ${what} not within 120 s (the sink counted ${sink!.cells()} of ${sent} cells)`);
        await sleep(2);
      }
    };
    await waitFor('warm-up', () => sink!.cells() >= sent * WINDOW_START);
    const verified = sink.cells();
    sink.countOnly();
    const pids = [target.child.pid!, ...childPids(target.child.pid!).sort((a, b) => a - b)];
    const load = loadavg()[0]!;
    const cells0 = sink.cells();
    const cpu0 = pids.map(cpuSeconds);
    const own0 = process.cpuUsage();
    const busy0 = sink.busyMs();
    const t0 = performance.now();
    await waitFor('the window', () => sink!.cells() >= sent * WINDOW_END || replays.some((r) => r.done()));
    const cells = sink.cells() - cells0;
    const cpu = pids.map((pid, i) => cpuSeconds(pid) - cpu0[i]!);
    const own = process.cpuUsage(own0);
    const busy = sink.busyMs() - busy0;
    const seconds = (performance.now() - t0) / 1000;
    // End to end: every cell sent reaches the sink once the relay's queues drain.
    await waitFor('every cell at the sink', () => sink!.cells() >= sent);
    if (sink.cells() !== sent) {
      const queued = links.map((l) => `${l.queuedBytes}${l.closed ? ' closed' : ''}`).join(', ');
      throw new Error(`relay-load (${workers} workers): sent ${sent} cells, the sink counted ${sink.cells()}; bytes still queued on the generator's links: ${queued}`);
    }
    if (sink.failure() !== null) throw sink.failure()!;
    if (sink.circuits() !== args.links * args.circuits) throw new Error(`relay-load: ${sink.circuits()} circuits at the sink`);
    const relayCpu = cpu.reduce((a, b) => a + b, 0);
    const ownCpu = (own.user + own.system) / 1e6;
    return {
      workers,
      cellsPerSecond: cells / seconds,
      usPerCell: (relayCpu / cells) * 1e6,
      mainUsPerCell: (cpu[0]! / cells) * 1e6,
      relayCores: relayCpu / seconds,
      workerCores: cpu.slice(1).map((c) => c / seconds),
      workerUsPerCell: cpu.slice(1).map((c) => (c / cells) * 1e6),
      generatorUsPerCell: (ownCpu / cells) * 1e6,
      generatorSysUsPerCell: own.system / cells,
      sinkUsPerCell: (busy / cells) * 1e3,
      generatorCores: ownCpu / seconds,
      cellsPerRelayCoreSecond: cells / relayCpu,
      load,
      sinkLinks: sink.links(),
      verified,
      sent,
    };
  } finally {
    client.destroy();
    await sink?.close();
    if (target !== undefined) {
      const exited = new Promise((resolve) => target!.child.once('exit', resolve));
      target.child.kill('SIGTERM');
      await Promise.race([exited, sleep(12_000)]);
      target.child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const fmt = (x: number, digits = 2) => x.toFixed(digits);
const int = (x: number) => Math.round(x).toLocaleString('en-US');

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args === null) {
    console.log(USAGE);
    return;
  }
  const cores = availableParallelism();
  console.log(`relay under load: ${args.links} links (one address each) x ${args.circuits} circuits, ${args.cells.toLocaleString('en-US')} cells per run (sealed before it, replayed), node ${process.version}`);
  // Other processes on the machine take their share of the cores: say how busy it was.
  console.log(`load average at start: ${loadavg().map((x) => x.toFixed(2)).join(' ')} on ${cores} cores`);
  const results: Result[] = [];
  for (const workers of args.workers) results.push(await runOnce(args, workers));
  console.log('| workers | cells/s | relay µs/cell (main) | relay cores | cores per worker | links to sink | cells/s per relay core | generator µs/cell (kernel; sink) | generator cores | load 1 min |');
  console.log('|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|');
  for (const r of results) {
    console.log(
      `| ${r.workers} | ${int(r.cellsPerSecond)} | ${fmt(r.usPerCell)} (${fmt(r.mainUsPerCell)}) | ${fmt(r.relayCores)} | ${r.workerCores.map((c) => fmt(c)).join(' / ') || '(one process)'} | ${r.sinkLinks} | ${int(r.cellsPerRelayCoreSecond)} | ${fmt(r.generatorUsPerCell)} (${fmt(r.generatorSysUsPerCell)}; ${fmt(r.sinkUsPerCell)}) | ${fmt(r.generatorCores)} | ${fmt(r.load)} |`,
    );
  }
  console.log(`every run: all ${int(results.reduce((n, r) => n + r.sent, 0))} cells sent reached the sink; ${int(results.reduce((n, r) => n + r.verified, 0))} of them decrypted and checked during the warm-ups`);
  const by = new Map<number, Result[]>();
  for (const r of results) by.set(r.workers, [...(by.get(r.workers) ?? []), r]);
  const one = by.get(1);
  const two = by.get(2);
  if (one !== undefined && two !== undefined) {
    const x1 = median(one.map((r) => r.cellsPerSecond));
    const x2 = median(two.map((r) => r.cellsPerSecond));
    const r1 = median(one.map((r) => r.usPerCell));
    const r2 = median(two.map((r) => r.usPerCell));
    // The busiest relay process in a 1-worker run (the whole relay: with 1 worker it runs in one process).
    const w1 = median(one.map((r) => Math.max(r.mainUsPerCell, ...r.workerUsPerCell)));
    const g = median(results.map((r) => r.generatorUsPerCell));
    console.log(`medians: 1 worker ${int(x1)} cells/s, 2 workers ${int(x2)} cells/s: ${fmt(x2 / x1)}x`);
    // What the machine allows with these costs: one worker's thread can use one core (V8's own helper
    // threads, garbage collection and compilation, add a few percent: 1.03-1.07 cores measured); with
    // two, relay and generator together can use at most every core.
    const ceil1 = 1e6 / w1;
    const ceil2 = (cores * 1e6) / (r2 + g);
    console.log(
      `ceiling on ${cores} cores with the measured costs: 1 worker ≈ 1e6 / ${fmt(w1)} µs (one core at its busiest process's CPU per cell) = ${int(ceil1)} cells/s; ` +
        `2 workers ≤ ${cores}e6 / (${fmt(r2)} relay + ${fmt(g)} generator µs) = ${int(ceil2)} cells/s; speed-up ≤ about ${fmt(ceil2 / ceil1)}x ` +
        `(relay µs/cell 1 worker ${fmt(r1)}, 2 workers ${fmt(r2)})`,
    );
  }
  console.log(JSON.stringify({ bench: 'relay-load', results }));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    if (error instanceof UsageError) {
      console.error(error.message);
      process.exit(2);
    }
    console.error(error);
    process.exit(1);
  },
);
