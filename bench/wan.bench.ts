/**
 * WAN benchmark (docs/testnet.md "Latency and bandwidth"; plain script):
 *
 *   node dist/bench/wan.bench.js [--delay 20] [--rate 100] [--mb 20] [--runs 3] [--algs 0,2] [--netns] [--rt]
 *   node dist/bench/wan.bench.js --socks HOST:PORT --label NAME [--delay 20] [--rate 100] [--mb 20] [--runs 3]
 *
 * The second form measures any other network already running behind a SOCKS5
 * port (bench/ctor-wan.sh runs C tor behind the same emulation), against a
 * destination this script serves on 127.0.0.3 (not 127.200.0.1: C tor takes
 * 127.192.0.0/10 for its virtual addresses).
 *
 * On an emulated wide-area testnet (3 relays, so every circuit uses the same
 * three; every link --delay ms one way and --rate Mbit/s, emulated in user
 * space, or with --netns in network namespaces with tbf for the rate), for
 * each congestion-control algorithm (consensus cc_alg 0 = fixed windows,
 * 2 = Vegas):
 *   - one stream: MB/s of an --mb MB download through one circuit (median of
 *     --runs), and the rate it reached: MB/s over the second half of its bytes
 *     (after slow start);
 *   - 20 circuits: aggregate MB/s of 20 downloads of --mb/10 MB on 20 circuits at once;
 *   - time to first byte of a small GET on an idle warm circuit (median of 10),
 *     and on that circuit while a bulk download runs on another circuit
 *     through the same relays (median of 10), with their ratio;
 *   - share: two downloads started together on two circuits; the first one's
 *     share of the bytes both had received when the first finished.
 * First it measures the emulation itself: round trips through a forwarder
 * with the same delay (src/link/forwarder.ts), against the ideal 2 × delay.
 * Downloads use curl (SOCKS5 with remote names; the username picks the
 * circuit) except the one-stream download and the share, read in-process
 * through the `socks` package (the one stream timed from its GET, after the
 * SOCKS connect).
 * Prints a table and one JSON line. Every testnet is torn down, also on error.
 *
 * --rt (root only): run the testnet's processes, curl and this script under
 * SCHED_RR (priority 10), so that other work on a shared machine does not
 * delay the emulated links' timers. Without it, on a machine whose cores are
 * saturated by other work, each delay line's timer fires 2.5-3.5 ms late on
 * average (5 % of them more than 10 ms), six lines per round trip, and Vegas
 * reads that as queueing (docs/testnet.md "Latency and bandwidth").
 */
import { execFile, execFileSync, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { SocksClient } from 'socks';
import { startDestination, type DestinationServer } from '../cli/destination-server.js';
import { startForwarder } from '../src/link/forwarder.js';
import { startTestnetProcess, type TestnetProcess } from '../test/support/testnet-process.js';

interface Args {
  delay: number;
  rate: number;
  mb: number;
  runs: number;
  algs: number[];
  netns: boolean;
  /** Real-time scheduling (SCHED_RR) for the testnet, curl and this process. */
  rt: boolean;
  /** Measure this SOCKS5 port instead of starting testnets. */
  socks: { host: string; port: number } | null;
  label: string;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { delay: 20, rate: 100, mb: 20, runs: 3, algs: [0, 2], netns: false, rt: false, socks: null, label: 'external' };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = argv[i + 1] ?? '';
    if (flag === '--netns' || flag === '--rt') {
      args[flag === '--netns' ? 'netns' : 'rt'] = true;
      continue;
    }
    const socks = /^([0-9.]+):(\d+)$/.exec(value);
    if (flag === '--socks' && socks !== null) args.socks = { host: socks[1]!, port: Number(socks[2]) };
    else if (flag === '--label' && /^[\w.-]+$/.test(value)) args.label = value;
    else if (flag === '--algs' && /^\d(,\d)*$/.test(value)) args.algs = value.split(',').map(Number);
    else if ((flag === '--delay' || flag === '--rate' || flag === '--mb' || flag === '--runs') && Number(value) > 0) args[flag.slice(2) as 'delay' | 'rate' | 'mb' | 'runs'] = Number(value);
    else throw new Error(`usage: node dist/bench/wan.bench.js [--delay MS] [--rate MBIT] [--mb N] [--runs N] [--algs 0,2] [--netns] [--rt] (bad argument ${flag})`);
    i++;
  }
  return args;
}

function median(xs: number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

const round = (x: number, digits = 2) => Number(x.toFixed(digits));

/** Round trips of one byte through a forwarder adding `delayMs` each way: [median, p90, min] ms. */
async function emulationRtt(delayMs: number, samples = 40): Promise<{ median: number; p90: number; min: number }> {
  const echo = createServer((s) => {
    s.on('error', () => {});
    s.pipe(s);
  });
  echo.listen(0, '127.0.0.1');
  await once(echo, 'listening');
  const fwd = await startForwarder({ listen: { host: '127.0.0.1', port: 0 }, target: { host: '127.0.0.1', port: (echo.address() as AddressInfo).port }, shape: { delayMs } });
  const socket = connect((fwd.address as { port: number }).port, '127.0.0.1');
  try {
    await once(socket, 'connect');
    const rtts: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t0 = performance.now();
      socket.write('x');
      await once(socket, 'data');
      rtts.push(performance.now() - t0);
    }
    return { median: median(rtts), p90: percentile(rtts, 90), min: Math.min(...rtts) };
  } finally {
    socket.destroy();
    await fwd.close();
    echo.close();
  }
}

/** SCHED_RR priority of --rt: above every ordinary process, far below the kernel's own threads. */
const RT_PRIORITY = 10;
/** Set by --rt: curl runs under SCHED_RR too. */
let realtime = false;

/** Every descendant of `root` (pids), from /proc. */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const walk = (pid: number): void => {
    for (const child of children.get(pid) ?? []) {
      out.push(child);
      walk(child);
    }
  };
  walk(root);
  return out;
}

/** Put `pids` (every thread of each) under SCHED_RR; throws if chrt fails (not root). */
function makeRealtime(pids: number[]): void {
  for (const pid of pids) execFileSync('chrt', ['-a', '-r', '-p', String(RT_PRIORITY), String(pid)], { stdio: 'ignore' });
}

interface Download {
  /** MB/s over the whole download. */
  mbps: number;
  /** MB/s over the second half of the bytes. */
  secondHalfMBps: number;
}

/** GET /bytes/`bytes` through the SOCKS port on circuit `circuit`, timing the whole and its second half. */
async function download(tn: Proxy, host: string, port: number, circuit: string, bytes: number): Promise<Download> {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: tn.socksHost, port: tn.socksPort, type: 5, userId: circuit, password: 'x' },
    command: 'connect',
    destination: { host, port },
    timeout: 30_000,
  });
  try {
    const t0 = performance.now();
    let received = 0;
    let half = NaN;
    socket.write(`GET /bytes/${bytes} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
    await new Promise<void>((resolve, reject) => {
      socket.on('data', (c: Buffer) => {
        received += c.length;
        if (Number.isNaN(half) && received >= bytes / 2) half = performance.now();
      });
      socket.once('end', resolve);
      socket.once('error', reject);
      socket.setTimeout(180_000, () => socket.destroy(new Error('download timed out')));
    });
    const end = performance.now();
    if (received < bytes) throw new Error(`download ended after ${received} of ${bytes} bytes`);
    return { mbps: bytes / 1e6 / ((end - t0) / 1000), secondHalfMBps: bytes / 2 / 1e6 / ((end - half) / 1000) };
  } finally {
    socket.destroy();
  }
}

interface CurlResult {
  ttfbMs: number;
  totalMs: number;
  bytes: number;
}

/** Where to send SOCKS5 requests. */
type Proxy = Pick<TestnetProcess, 'socksHost' | 'socksPort'>;

/** One curl GET through the SOCKS port; `circuit` (the SOCKS username) picks the circuit. */
function curl(tn: Proxy, url: string, circuit: string, timeoutMs: number, started?: (child: ChildProcess) => void): Promise<CurlResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      realtime ? 'chrt' : 'curl',
      [...(realtime ? ['-r', String(RT_PRIORITY), 'curl'] : []), '-sS', '-o', '/dev/null', '--max-time', String(Math.ceil(timeoutMs / 1000)), '-w', '%{time_starttransfer} %{time_total} %{size_download} %{http_code}',
        '-x', `socks5h://${circuit}:x@${tn.socksHost}:${tn.socksPort}`, url],
      { timeout: timeoutMs + 5_000, encoding: 'utf8' },
      (error, stdout, stderr) => {
        const [ttfb, total, size, code] = stdout.trim().split(' ');
        if (error !== null || code !== '200') {
          reject(new Error(`curl ${url}: ${error?.message ?? `HTTP ${code}`} ${stderr}`));
          return;
        }
        resolve({ ttfbMs: Number(ttfb) * 1000, totalMs: Number(total) * 1000, bytes: Number(size) });
      },
    );
    started?.(child);
  });
}

/** Two downloads of `bytes` started together on two circuits: the first finisher's share of what both had received then. */
async function share(tn: Proxy, host: string, port: number, bytes: number): Promise<number> {
  const open = async (circuit: string): Promise<Socket> => {
    const { socket } = await SocksClient.createConnection({
      proxy: { host: tn.socksHost, port: tn.socksPort, type: 5, userId: circuit, password: 'x' },
      command: 'connect',
      destination: { host, port },
      timeout: 30_000,
    });
    return socket;
  };
  const sockets = await Promise.all([open('share-a'), open('share-b')]);
  const received = [0, 0];
  const done = sockets.map(
    (socket, i) =>
      new Promise<number>((resolve, reject) => {
        socket.on('data', (c: Buffer) => (received[i]! += c.length));
        socket.once('end', () => resolve(i));
        socket.once('error', reject);
        socket.setTimeout(120_000, () => socket.destroy(new Error('share download timed out')));
      }),
  );
  for (const socket of sockets) socket.write(`GET /bytes/${bytes} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  const first = await Promise.race(done);
  const snapshot = [...received];
  await Promise.all(done);
  for (const s of sockets) s.destroy();
  return snapshot[first]! / (snapshot[0]! + snapshot[1]!);
}

interface AlgResult {
  /** `cc_alg=N` for our testnets, the --label otherwise. */
  name: string;
  oneStreamMBps: number;
  oneStreamRunsMBps: number[];
  /** Median over the runs of the MB/s over each download's second half. */
  oneStreamReachedMBps: number;
  circuits20MBps: number;
  ttfbIdleMs: number;
  ttfbLoadedMs: number;
  ttfbRatio: number;
  firstFinisherShare: number;
}

/** Every measure of the header against `proxy`, with the destination at host:port. */
async function measure(args: Args, name: string, proxy: Proxy, host: string, port: number): Promise<AlgResult> {
  const background: ChildProcess[] = [];
  const base = `http://${host}:${port}`;
  const timeout = 180_000;
  try {
    // Warm two circuits: "bulk" and "probe".
    await curl(proxy, `${base}/hello`, 'bulk', timeout);
    await curl(proxy, `${base}/hello`, 'probe', timeout);

    const idle: number[] = [];
    for (let i = 0; i < 10; i++) idle.push((await curl(proxy, `${base}/hello`, 'probe', timeout)).ttfbMs);

    const runs: number[] = [];
    const reached: number[] = [];
    for (let i = 0; i < args.runs; i++) {
      const r = await download(proxy, host, port, 'bulk', args.mb * 1_000_000);
      runs.push(r.mbps);
      reached.push(r.secondHalfMBps);
    }

    // A bulk download on "bulk" while "probe" asks for small pages (through the same three relays, on our testnet).
    let bulk: ChildProcess | undefined;
    const bulkDone = curl(proxy, `${base}/bytes/${1_000_000_000}`, 'bulk', timeout, (child) => {
      bulk = child;
      background.push(child);
    }).catch(() => null);
    await new Promise((r) => setTimeout(r, 3_000));
    const loaded: number[] = [];
    for (let i = 0; i < 10; i++) loaded.push((await curl(proxy, `${base}/hello`, 'probe', timeout)).ttfbMs);
    bulk?.kill('SIGTERM');
    await bulkDone;

    const t0 = performance.now();
    const each = Math.max(1, Math.round(args.mb / 10)) * 1_000_000;
    const parallel = await Promise.all(Array.from({ length: 20 }, (_, i) => curl(proxy, `${base}/bytes/${each}`, `par${i}`, timeout)));
    const circuits20 = parallel.reduce((sum, r) => sum + r.bytes, 0) / 1e6 / ((performance.now() - t0) / 1000);

    const firstShare = await share(proxy, host, port, Math.max(2, Math.round(args.mb / 2)) * 1_000_000);

    const ttfbIdle = median(idle);
    const ttfbLoaded = median(loaded);
    return {
      name,
      oneStreamMBps: round(median(runs)),
      oneStreamRunsMBps: runs.map((x) => round(x)),
      oneStreamReachedMBps: round(median(reached)),
      circuits20MBps: round(circuits20),
      ttfbIdleMs: round(ttfbIdle, 1),
      ttfbLoadedMs: round(ttfbLoaded, 1),
      ttfbRatio: round(ttfbLoaded / ttfbIdle),
      firstFinisherShare: round(firstShare),
    };
  } finally {
    for (const child of background) if (child.exitCode === null) child.kill('SIGKILL');
  }
}

/** Our testnet with consensus cc_alg `ccAlg`, measured. */
async function measureAlg(args: Args, ccAlg: number): Promise<AlgResult> {
  const extra = ['--link-delay', String(args.delay), '--link-rate', String(args.rate), '--param', `cc_alg=${ccAlg}`, ...(args.netns ? ['--netns'] : [])];
  const tn = await startTestnetProcess(undefined, { relays: 3, exits: 1, extraArgs: extra, readyTimeoutMs: 120_000 });
  let dest: DestinationServer | null = null;
  try {
    if (args.rt) makeRealtime([tn.pid, ...descendants(tn.pid)]);
    if (args.netns) {
      const node = tn.nodes.find((n) => n.role === 'destination');
      if (node === undefined || node.role !== 'destination') throw new Error('the netns testnet started no destination');
      return await measure(args, `cc_alg=${ccAlg}`, tn, node.address, node.port);
    }
    dest = await startDestination('127.0.0.3', 0);
    return await measure(args, `cc_alg=${ccAlg}`, tn, dest.address, dest.port);
  } finally {
    await dest?.close();
    await tn.stop();
  }
}

/** Another network behind a SOCKS5 port (its exits must reach 127.0.0.3), measured. */
async function measureExternal(args: Args, proxy: { host: string; port: number }): Promise<AlgResult> {
  const dest = await startDestination('127.0.0.3', 0);
  try {
    return await measure(args, args.label, { socksHost: proxy.host, socksPort: proxy.port }, dest.address, dest.port);
  } finally {
    await dest.close();
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (args.rt) {
    makeRealtime([process.pid]);
    realtime = true;
  }
  const linkMBps = args.rate / 8;
  const where = args.socks !== null ? `${args.label} behind ${args.socks.host}:${args.socks.port}` : `3 relays${args.netns ? ', network namespaces' : ', loopback'}`;
  process.stdout.write(`WAN benchmark: ${where}; ${args.delay} ms one way and ${args.rate} Mbit/s (${linkMBps} MB/s) per link${args.rt ? '; SCHED_RR' : ''}\n\n`);
  const rtt = await emulationRtt(args.delay);
  process.stdout.write(`emulation: round trip through a ${args.delay} ms forwarder: median ${rtt.median.toFixed(2)} ms, p90 ${rtt.p90.toFixed(2)}, min ${rtt.min.toFixed(2)} (ideal ${2 * args.delay})\n\n`);
  const results: AlgResult[] = [];
  if (args.socks !== null) results.push(await measureExternal(args, args.socks));
  else for (const alg of args.algs) results.push(await measureAlg(args, alg));
  const rows: Array<[string, (r: AlgResult) => string]> = [
    ['one stream, MB/s (median)', (r) => `${r.oneStreamMBps} (${r.oneStreamRunsMBps.join(', ')})`],
    [`  share of the link rate (${linkMBps} MB/s)`, (r) => `${Math.round((100 * r.oneStreamMBps) / linkMBps)} %`],
    ['one stream, rate reached (second half of the bytes), MB/s', (r) => `${r.oneStreamReachedMBps} (${Math.round((100 * r.oneStreamReachedMBps) / linkMBps)} %)`],
    ['20 circuits, aggregate MB/s', (r) => String(r.circuits20MBps)],
    ['TTFB small GET, idle circuit, ms', (r) => String(r.ttfbIdleMs)],
    ['TTFB small GET beside a bulk download, ms', (r) => String(r.ttfbLoadedMs)],
    ['  loaded / idle', (r) => String(r.ttfbRatio)],
    ['two downloads: first finisher’s share', (r) => `${Math.round(100 * r.firstFinisherShare)} %`],
  ];
  const header = `| measure | ${results.map((r) => r.name).join(' | ')} |`;
  process.stdout.write(`${header}\n|---|${results.map(() => '---:').join('|')}|\n`);
  for (const [name, cell] of rows) process.stdout.write(`| ${name} | ${results.map(cell).join(' | ')} |\n`);
  const fixed = results.find((r) => r.name === 'cc_alg=0');
  const vegas = results.find((r) => r.name === 'cc_alg=2');
  if (fixed !== undefined && vegas !== undefined) {
    process.stdout.write(`\nVegas / fixed, one stream: ${(vegas.oneStreamMBps / fixed.oneStreamMBps).toFixed(2)}x (rate reached: ${(vegas.oneStreamReachedMBps / fixed.oneStreamReachedMBps).toFixed(2)}x)\n`);
  }
  process.stdout.write(`load average at the end: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}\n`);
  process.stdout.write(`\n${JSON.stringify({ bench: 'wan', delayMs: args.delay, rateMbit: args.rate, netns: args.netns, rt: args.rt, socks: args.socks, emulationRttMs: rtt, results })}\n`);
}

await main();
