/**
 * CPU per byte of every testnet process, run by run (plain script):
 *   node dist/bench/cpu-per-byte.bench.js [--single 6] [--mb 100] [--parallel 3]
 *
 * Starts `allium testnet` (SOCKS port 0) and a payload server, then runs, one
 * after another: --single downloads of --mb MB on one stream and one circuit
 * (the default SOCKS identity), then --parallel rounds of 20 downloads of 5 MB
 * at once, each on a circuit of its own (a new SOCKS user name per download,
 * so 20 new circuits per round). For each run and each node process (read from
 * /proc of the testnet's children) it prints the user and system CPU seconds
 * and the minor page faults per 100 MB delivered, and the run's MB/s; at the
 * end, each process's RSS.
 *
 * What it shows that a single figure hides: a process's first heavy runs cost
 * far more per byte than later ones (JIT compilation, and the heap and
 * malloc arenas growing, each new page a fault; on the project machine a
 * fault costs tens of µs), so a figure is only comparable with one taken at
 * the same point of a testnet's life. Which relay is guard, middle or exit is
 * the path's choice, not known here; a relay the runs did not use shows near
 * zero. With a small --mb, fixed costs dominate the per-100 MB figures (an
 * idle authority's voting shows as seconds per 100 MB). Ends with one JSON
 * line. The testnet and its data directory are always removed, also on error,
 * Ctrl-C (SIGINT) or SIGTERM, during startup too. Options only in this form
 * (`npm run bench -- cpu-per-byte` runs the defaults); --help prints them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SocksClient } from 'socks';
import { startPayloadServer, type PayloadServer } from '../test/support/payload-server.js';
import { startTestnetProcess, type TestnetProcess } from '../test/support/testnet-process.js';
import { childPids, commandLine, procStat, rssMiB, type ProcStat } from './proc.js';

const PAYLOAD_HOST = '127.200.0.1';
const PARALLEL_STREAMS = 20;
const PARALLEL_BYTES = 5_000_000;
const DOWNLOAD_TIMEOUT_MS = 120_000;

interface Args {
  single: number;
  mb: number;
  parallel: number;
}

const USAGE = 'usage: node dist/bench/cpu-per-byte.bench.js [--single N (default 6)] [--mb N (default 100)] [--parallel N (default 3)]';

/** A bad command line: its message is printed alone and the bench exits with status 2. */
class UsageError extends Error {}

/** The options, or null for --help. Throws UsageError for anything else. */
function parseArgs(argv: string[]): Args | null {
  const args: Args = { single: 6, mb: 100, parallel: 3 };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    if (flag === '--help' || flag === '-h') return null;
    const value = Number(argv[i + 1]);
    if ((flag === '--single' || flag === '--mb' || flag === '--parallel') && argv[i + 1] !== undefined && Number.isInteger(value) && value >= 0) {
      args[flag.slice(2) as keyof Args] = value;
    } else {
      throw new UsageError(`${USAGE}\n(bad argument ${flag}${argv[i + 1] === undefined ? '' : ` ${argv[i + 1]}`})`);
    }
  }
  if (args.mb < 1) throw new UsageError(`${USAGE}\n(--mb must be at least 1)`);
  return args;
}

/** One node process of the testnet: its nickname (or role) and PID. */
interface NodePid {
  name: string;
  pid: number;
}

/** The testnet's node processes (its direct children), authorities first, then relays, then the client. */
function nodePids(testnetPid: number): NodePid[] {
  const out: NodePid[] = [];
  for (const pid of childPids(testnetPid)) {
    const argv = commandLine(pid);
    const nick = argv.indexOf('--nickname');
    const role = ['authority', 'relay', 'client'].find((r) => argv.includes(r));
    if (role !== undefined) out.push({ name: nick >= 0 ? argv[nick + 1]! : role, pid });
  }
  const rank = (n: string) => (n.startsWith('auth') ? 0 : n.startsWith('relay') ? 1 : 2);
  return out.sort((a, b) => rank(a.name) - rank(b.name) || a.name.localeCompare(b.name, 'en', { numeric: true }));
}

/** What a process that is gone counts as: no CPU time, no faults. */
const GONE: ProcStat = { ppid: 0, minorFaults: 0, userS: 0, systemS: 0 };

/** Download `bytes` from the payload server through SOCKS as `user`; resolves with the body bytes received. */
async function download(tn: TestnetProcess, server: PayloadServer, bytes: number, user: string | undefined): Promise<number> {
  const proxy = user === undefined
    ? { host: tn.socksHost, port: tn.socksPort, type: 5 as const }
    : { host: tn.socksHost, port: tn.socksPort, type: 5 as const, userId: user, password: 'x' };
  const { socket } = await SocksClient.createConnection({
    proxy,
    command: 'connect',
    destination: { host: PAYLOAD_HOST, port: server.port },
    timeout: 30_000,
  });
  return new Promise((resolve, reject) => {
    let received = 0;
    let headerDone = false;
    let head = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`download of ${bytes} bytes not done in ${DOWNLOAD_TIMEOUT_MS} ms (${received} received)`));
    }, DOWNLOAD_TIMEOUT_MS);
    socket.on('data', (chunk: Buffer) => {
      if (headerDone) {
        received += chunk.length;
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      headerDone = true;
      received += head.length - end - 4;
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      if (received === bytes) resolve(received);
      else reject(new Error(`download ended after ${received} of ${bytes} bytes`));
    });
    socket.write(`GET /bytes/${bytes} HTTP/1.1\r\nHost: ${PAYLOAD_HOST}\r\nConnection: close\r\n\r\n`);
  });
}

interface RunResult {
  run: string;
  mbPerS: number;
  /** Per node name: CPU seconds (user, sys) and faults (thousands), each per 100 MB delivered. */
  per100MB: Record<string, { user: number; sys: number; kfaults: number }>;
}

async function measured(label: string, nodes: NodePid[], bytes: number, work: () => Promise<unknown>): Promise<RunResult> {
  const before = nodes.map((n) => procStat(n.pid) ?? GONE);
  const t0 = performance.now();
  await work();
  const seconds = (performance.now() - t0) / 1000;
  const scale = 100e6 / bytes;
  const per100MB: RunResult['per100MB'] = {};
  nodes.forEach((n, i) => {
    const after = procStat(n.pid) ?? GONE;
    per100MB[n.name] = {
      user: (after.userS - before[i]!.userS) * scale,
      sys: (after.systemS - before[i]!.systemS) * scale,
      kfaults: ((after.minorFaults - before[i]!.minorFaults) * scale) / 1000,
    };
  });
  return { run: label, mbPerS: bytes / 1e6 / seconds, per100MB };
}

function printTable(nodes: NodePid[], runs: RunResult[], rss: number[]): void {
  const names = nodes.map((n) => n.name);
  process.stdout.write('CPU s per 100 MB as user+sys (minor faults per 100 MB, thousands)\n\n');
  process.stdout.write(`| run | MB/s | ${names.join(' | ')} | all |\n|---|---:|${names.map(() => '---:|').join('')}---:|\n`);
  for (const r of runs) {
    let all = 0;
    const cells = names.map((name) => {
      const u = r.per100MB[name]!;
      all += u.user + u.sys;
      return `${u.user.toFixed(2)}+${u.sys.toFixed(2)} (${u.kfaults.toFixed(1)})`;
    });
    process.stdout.write(`| ${r.run} | ${r.mbPerS.toFixed(1)} | ${cells.join(' | ')} | ${all.toFixed(2)} |\n`);
  }
  process.stdout.write(`| RSS MiB after the runs | | ${rss.map((x) => x.toFixed(1)).join(' | ')} | |\n`);
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args === null) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const dataDir = mkdtempSync(join(tmpdir(), 'allium-cpu-per-byte-'));
  let starting: Promise<TestnetProcess> | undefined;
  let testnet: TestnetProcess | undefined;
  let server: PayloadServer | undefined;
  const teardown = async () => {
    // Interrupted while starting: wait for the start to end (bounded by its ready timeout) and stop what it started.
    const tn = testnet ?? (await starting?.catch(() => undefined));
    await tn?.stop();
    await server?.close();
    rmSync(dataDir, { recursive: true, force: true });
  };
  const onSignal = () => {
    process.stderr.write('interrupted; tearing the testnet down\n');
    teardown().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    server = await startPayloadServer({ host: PAYLOAD_HOST });
    starting = startTestnetProcess(undefined, { readyTimeoutMs: 90_000, dataDir });
    testnet = await starting;
    const nodes = nodePids(testnet.pid);
    process.stderr.write(`testnet ready after ${(testnet.startupMs / 1000).toFixed(1)} s; nodes: ${nodes.map((n) => `${n.name}:${n.pid}`).join(' ')}\n`);
    const runs: RunResult[] = [];
    const single = args.mb * 1_000_000;
    for (let i = 1; i <= args.single; i++) {
      const r = await measured(`single ${i}`, nodes, single, () => download(testnet!, server!, single, undefined));
      process.stderr.write(`single ${i}: ${r.mbPerS.toFixed(1)} MB/s\n`);
      runs.push(r);
    }
    for (let i = 1; i <= args.parallel; i++) {
      const r = await measured(`20 circuits ${i}`, nodes, PARALLEL_STREAMS * PARALLEL_BYTES, () =>
        Promise.all(Array.from({ length: PARALLEL_STREAMS }, (_, j) => download(testnet!, server!, PARALLEL_BYTES, `cpb-${i}-${j}`))),
      );
      process.stderr.write(`20 circuits ${i}: ${r.mbPerS.toFixed(1)} MB/s aggregate\n`);
      runs.push(r);
    }
    const rss = nodes.map((n) => rssMiB(n.pid));
    printTable(nodes, runs, rss);
    const round = (x: number) => Number(x.toFixed(3));
    const json = runs.map((r) => ({
      run: r.run,
      mb_per_s: round(r.mbPerS),
      per_100mb: Object.fromEntries(Object.entries(r.per100MB).map(([k, v]) => [k, { user_s: round(v.user), sys_s: round(v.sys), kfaults: round(v.kfaults) }])),
    }));
    const rssByNode = Object.fromEntries(nodes.map((n, i) => [n.name, Number(rss[i]!.toFixed(1))]));
    process.stdout.write(`\n${JSON.stringify({ bench: 'cpu-per-byte', mb: args.mb, runs: json, rss_mib_after: rssByNode })}\n`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await teardown();
  }
}

main().catch((error) => {
  if (error instanceof UsageError) {
    process.stderr.write(`${error.message}\n`);
    process.exitCode = 2;
    return;
  }
  process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
  process.exitCode = 1;
});
