/**
 * One relay process under load from another process, no testnet:
 *
 *   node dist/bench/relay-load.bench.js [--seconds 8] [--links 8] [--circuits 8] [--workers 1,2]
 *
 * For each worker count, starts the relay under test (bench/relay-target.js,
 * `--workers N`) and, in this process, a sink relay and an anonymous client
 * with --links links to the relay and --circuits two-hop circuits (relay →
 * sink) on each. The client then sends RELAY cells with random payloads as
 * fast as the links take them; the relay takes its layer off each, finds it
 * is not for itself and forwards it to the sink, which only counts. The
 * generator does no onion crypto at all (link crypto only), so most of the
 * machine is left to the relay. After a 2 s warm-up it measures for
 * --seconds: cells per second through the relay and the relay's CPU (main
 * process and workers, utime+stime from /proc) per cell. On a machine whose
 * cores other processes also use (see the load average it prints), cells/s
 * follows the share the relay gets; CPU per cell is the steadier figure.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { ChannelCommand, cellCircuitId, cellCommand, cellPayload, encodeChannelCell, setCellCircuitId } from '../src/cell/channel-cell.js';
import { decodeCreate2, encodeCreated2 } from '../src/cell/create2.js';
import { CIRCUIT_VERIFICATION, EMPTY_NTOR_MESSAGE } from '../src/circuit/handshake-params.js';
import { ChannelRoom } from '../src/circuit/channel-room.js';
import { TOR1_KEY_MATERIAL_LENGTH } from '../src/constants.js';
import { crypto } from '../src/crypto/crypto.js';
import { ntorV3ServerHandshake } from '../src/crypto/ntor-v3.js';
import type { Channel } from '../src/link/channel.js';
import { LinkManager, dialLink } from '../src/link/link-manager.js';
import { TcpTransport } from '../src/link/transport.js';
import { OriginCircuit, type HopInfo } from '../client/origin-circuit.js';
import { loadRelayKeys } from '../relay/keys.js';
import { listenOrPort } from '../relay/or-listener.js';

interface Args {
  seconds: number;
  links: number;
  circuits: number;
  workers: number[];
}

function parseArgs(argv: string[]): Args {
  const args: Args = { seconds: 8, links: 8, circuits: 8, workers: [1, 2] };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1] ?? ''];
    if (flag === '--workers') args.workers = value.split(',').map(Number);
    else if (flag === '--seconds' || flag === '--links' || flag === '--circuits') args[flag.slice(2) as 'seconds'] = Number(value);
    else throw new Error(`usage: relay-load.bench.js [--seconds S] [--links N] [--circuits N] [--workers 1,2] (bad ${flag})`);
  }
  for (const n of [args.seconds, args.links, args.circuits, ...args.workers]) {
    if (!Number.isInteger(n) || n < 1) throw new Error(`relay-load: every count must be a positive integer`);
  }
  return args;
}

const CLK_TCK = 100;

/** utime+stime (s) of `pid` and every live process whose parent it is (the workers). */
function cpuSeconds(pid: number): number {
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ppid = Number(fields[1]);
    if (Number(entry) === pid || ppid === pid) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks / CLK_TCK;
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

/** A relay in this process that answers CREATE2 and counts the RELAY cells it gets, nothing more. */
async function startSink(dataDir: string): Promise<{ info: HopInfo; cells: () => number; close: () => Promise<void> }> {
  const keys = loadRelayKeys(dataDir);
  let cells = 0;
  const links: LinkManager<null> = new LinkManager<null>({
    transport: new TcpTransport({ localAddress: '127.0.0.1' }),
    keys: { linkKey: keys.linkKey, identity: keys.identity },
    handler: {
      onCircuitCell: (_slot, cell) => {
        if (cellCommand(cell) === ChannelCommand.RELAY) cells++;
      },
      onRelayCells: (_slot, batch) => {
        cells += batch.length;
      },
      onUnknownCell: (cell, link, circuits) => {
        if (cellCommand(cell) !== ChannelCommand.CREATE2) return;
        const id = cellCircuitId(cell);
        const { handshakeData } = decodeCreate2(cellPayload(cell));
        const { reply } = ntorV3ServerHandshake(keys.ntor, handshakeData, CIRCUIT_VERIFICATION, () => EMPTY_NTOR_MESSAGE, TOR1_KEY_MATERIAL_LENGTH);
        circuits.set(id, { circuit: null, side: 'prev' });
        ChannelRoom.of(link).send(encodeChannelCell(id, ChannelCommand.CREATED2, encodeCreated2(reply)));
      },
      onLinkClosed: () => {},
    },
  });
  const listener = await listenOrPort('127.0.0.1', 0, (socket) => links.accept(socket));
  const info: HopInfo = {
    nickname: 'sink',
    identity: keys.identity.identity,
    linkKey: keys.linkKey.public,
    ntorOnionKey: keys.ntor.onionKey,
    address: '127.0.0.1',
    orPort: listener.port,
  };
  return {
    info,
    cells: () => cells,
    close: async () => {
      links.destroy();
      await listener.close();
    },
  };
}

/** Send RELAY cells with a random payload on `circuitIds` of `link`, round robin, as fast as the link takes them, until stop(). */
function pump(link: Channel, circuitIds: number[]): () => void {
  const cell = encodeChannelCell(circuitIds[0]!, ChannelCommand.RELAY, crypto.randomBytes(509));
  let stopped = false;
  let next = 0;
  const run = (): void => {
    while (!stopped && !link.closed) {
      setCellCircuitId(cell, circuitIds[next++ % circuitIds.length]!);
      if (!link.sendCell(cell)) {
        link.once('drain', run);
        return;
      }
    }
  };
  setImmediate(run);
  return () => {
    stopped = true;
  };
}

interface Result {
  workers: number;
  cellsPerSecond: number;
  relayCpuSeconds: number;
  usPerCell: number;
  relayCores: number;
  generatorCores: number;
}

async function runOnce(args: Args, workers: number): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'allium-relay-load-'));
  let target: { child: ChildProcess; port: number } | undefined;
  let sink: Awaited<ReturnType<typeof startSink>> | undefined;
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
    sink = await startSink(join(dir, 'sink'));
    const keys = loadRelayKeys(join(dir, 'target'));
    const relay: HopInfo = {
      nickname: 'loadtarget',
      identity: keys.identity.identity,
      linkKey: keys.linkKey.public,
      ntorOnionKey: keys.ntor.onionKey,
      address: '127.0.0.1',
      orPort: target.port,
    };
    const stops: Array<() => void> = [];
    const transport = new TcpTransport();
    for (let l = 0; l < args.links; l++) {
      const link = await dialLink({ transport, target: { address: relay.address, port: relay.orPort, identity: relay.identity, linkKey: relay.linkKey }, timeoutMs: 10_000 });
      client.adopt(link);
      const ids: number[] = [];
      for (let c = 0; c < args.circuits; c++) ids.push((await OriginCircuit.build(link, client.circuitsOf(link), [relay, sink.info], 10_000)).id);
      stops.push(pump(link, ids));
    }
    await sleep(2000);
    const cells0 = sink.cells();
    const cpu0 = cpuSeconds(target.child.pid!);
    const own0 = process.cpuUsage();
    const t0 = performance.now();
    await sleep(args.seconds * 1000);
    const seconds = (performance.now() - t0) / 1000;
    const cells = sink.cells() - cells0;
    const cpu = cpuSeconds(target.child.pid!) - cpu0;
    const own = process.cpuUsage(own0);
    for (const stop of stops) stop();
    return {
      workers,
      cellsPerSecond: cells / seconds,
      relayCpuSeconds: cpu,
      usPerCell: (cpu / cells) * 1e6,
      relayCores: cpu / seconds,
      generatorCores: (own.user + own.system) / 1e6 / seconds,
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

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  console.log(`relay under load: ${args.links} links x ${args.circuits} circuits, ${args.seconds} s per run, node ${process.version}`);
  // Other processes on the machine take their share of the cores: say how busy it was.
  console.log(`load average at start: ${loadavg().map((x) => x.toFixed(2)).join(' ')} on ${availableParallelism()} cores`);
  const results: Result[] = [];
  for (const workers of args.workers) results.push(await runOnce(args, workers));
  console.log('| workers | cells/s | relay CPU µs/cell | relay cores busy | load generator cores |');
  console.log('|---:|---:|---:|---:|---:|');
  for (const r of results) {
    console.log(`| ${r.workers} | ${Math.round(r.cellsPerSecond).toLocaleString('en-US')} | ${r.usPerCell.toFixed(2)} | ${r.relayCores.toFixed(2)} | ${r.generatorCores.toFixed(2)} |`);
  }
  const base = results.find((r) => r.workers === 1);
  for (const r of results) {
    if (base !== undefined && r !== base) console.log(`${r.workers} workers / 1 worker: ${(r.cellsPerSecond / base.cellsPerSecond).toFixed(2)}x cells/s`);
  }
  console.log(JSON.stringify({ bench: 'relay-load', results }));
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
