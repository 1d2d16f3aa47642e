/**
 * Metrics overhead (plain script):  node dist/bench/metrics.bench.js [--mb 100] [--runs 3] [--scrape-ms 1000]
 *
 * Runs `allium testnet` with metrics off and on, alternating (off, on, on,
 * off, ...) so the shared machine's drift hits both alike, and in each run
 * downloads --mb MB through one circuit from a raw TCP sink. Measures:
 *   - CPU seconds of all relay processes together during the download
 *     (utime + stime from /proc/PID/stat of the testnet's relay children);
 *   - with metrics on, a scrape of every node's /metrics every --scrape-ms
 *     (default 5 s; Prometheus' usual interval is 15 s or more) during the
 *     download, as a real scraper would add it;
 *   - scrape time: after the download, 20 scrapes of every node in a row.
 * Prints a table and one JSON line. Linux only (/proc).
 */
import { createServer, type AddressInfo, type Server } from 'node:net';
import { SocksClient } from 'socks';
import { startTestnetProcess, type TestnetProcess } from '../test/support/testnet-process.js';
import { childPids, commandLine, cpuSeconds } from './proc.js';

const DOWNLOAD_TIMEOUT_MS = 120_000;

interface Args {
  mb: number;
  runs: number;
  scrapeMs: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { mb: 100, runs: 3, scrapeMs: 5000 };
  for (let i = 0; i < argv.length; i += 2) {
    const value = Number(argv[i + 1]);
    if (!Number.isInteger(value) || value <= 0) throw new Error(`usage: metrics.bench.js [--mb N] [--runs N] [--scrape-ms N] (bad ${argv[i]})`);
    if (argv[i] === '--mb') args.mb = value;
    else if (argv[i] === '--runs') args.runs = value;
    else if (argv[i] === '--scrape-ms') args.scrapeMs = value;
    else throw new Error(`unknown argument ${argv[i]}`);
  }
  return args;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

/** PIDs of the testnet's relay children (their command line runs the `relay` role). */
function relayPids(testnetPid: number): number[] {
  return childPids(testnetPid).filter((pid) => commandLine(pid).includes('relay'));
}

/** A TCP server that sends `bytes` bytes to whoever connects, then ends. */
async function startSink(bytes: number): Promise<Server> {
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  const server = createServer((socket) => {
    let left = bytes;
    socket.on('error', () => {});
    const pump = () => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!socket.write(n === chunk.length ? chunk : chunk.subarray(0, n))) return void socket.once('drain', pump);
      }
      socket.end();
    };
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.200.0.1', resolve));
  return server;
}

async function download(tn: TestnetProcess, port: number, bytes: number): Promise<number> {
  const t0 = performance.now();
  const { socket } = await SocksClient.createConnection({
    proxy: { host: tn.socksHost, port: tn.socksPort, type: 5 },
    command: 'connect',
    destination: { host: '127.200.0.1', port },
    timeout: 20_000,
  });
  let received = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`download not done in ${DOWNLOAD_TIMEOUT_MS} ms`)), DOWNLOAD_TIMEOUT_MS);
    socket.on('data', (c: Buffer) => (received += c.length));
    socket.once('end', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.once('error', reject);
  });
  socket.destroy();
  if (received !== bytes) throw new Error(`received ${received} of ${bytes} bytes`);
  return performance.now() - t0;
}

interface RunResult {
  metrics: boolean;
  cpuS: number;
  seconds: number;
  /** Scrapes during the download. */
  scrapesMs: number[];
  /** Scrapes after it, in a row. */
  quietMs: number[];
  /** Relay CPU per quiet scrape, ms (10 ms clock ticks, so averaged over many). */
  cpuPerScrapeMs: number;
}

async function oneRun(metrics: boolean, args: Args, sinkPort: number): Promise<RunResult> {
  const tn = await startTestnetProcess(undefined, { metrics, readyTimeoutMs: 90_000 });
  try {
    const pids = relayPids(tn.pid);
    if (pids.length !== tn.relays.length) throw new Error(`found ${pids.length} relay processes, expected ${tn.relays.length}`);
    const scrapesMs: number[] = [];
    let scraping = metrics;
    const scraper = (async () => {
      while (scraping) {
        for (const endpoint of tn.metrics.values()) {
          const t0 = performance.now();
          const res = await fetch(`http://${endpoint}/metrics`, { signal: AbortSignal.timeout(5_000) });
          await res.text();
          scrapesMs.push(performance.now() - t0);
        }
        await new Promise((r) => setTimeout(r, args.scrapeMs));
      }
    })();
    const cpu0 = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
    const ms = await download(tn, sinkPort, args.mb * 1_000_000);
    const cpu1 = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
    scraping = false;
    await scraper;
    const quietMs: number[] = [];
    const quietCpu0 = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
    if (metrics) {
      for (let i = 0; i < 20; i++) {
        for (const endpoint of tn.metrics.values()) {
          const t0 = performance.now();
          const res = await fetch(`http://${endpoint}/metrics`, { signal: AbortSignal.timeout(5_000) });
          await res.text();
          quietMs.push(performance.now() - t0);
        }
      }
    }
    // CPU the relays spent answering the quiet scrapes (20 each), per scrape.
    const cpuPerScrapeMs = metrics ? ((pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0) - quietCpu0) / (20 * pids.length)) * 1000 : NaN;
    return { metrics, cpuS: cpu1 - cpu0, seconds: ms / 1000, scrapesMs, quietMs, cpuPerScrapeMs };
  } finally {
    await tn.stop();
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const sink = await startSink(args.mb * 1_000_000);
  const sinkPort = (sink.address() as AddressInfo).port;
  const results: RunResult[] = [];
  try {
    for (let run = 0; run < args.runs; run++) {
      // off, on | on, off | off, on ...
      const order = run % 2 === 0 ? [false, true] : [true, false];
      for (const metrics of order) {
        const r = await oneRun(metrics, args, sinkPort);
        results.push(r);
        process.stderr.write(`run ${run + 1} metrics ${metrics ? 'on ' : 'off'}: relays' CPU ${r.cpuS.toFixed(2)} s, ${(args.mb / r.seconds).toFixed(1)} MB/s${metrics ? `, ${r.scrapesMs.length} scrapes median ${median(r.scrapesMs).toFixed(2)} ms` : ''}\n`);
      }
    }
  } finally {
    await new Promise<void>((resolve) => sink.close(() => resolve()));
  }
  const off = results.filter((r) => !r.metrics);
  const on = results.filter((r) => r.metrics);
  const scrapes = on.flatMap((r) => r.scrapesMs);
  const quiet = on.flatMap((r) => r.quietMs);
  const cpuOff = median(off.map((r) => r.cpuS));
  const cpuOn = median(on.map((r) => r.cpuS));
  const result = {
    bench: 'metrics',
    download_mb: args.mb,
    runs: args.runs,
    relays_cpu_s_off_median: Number(cpuOff.toFixed(3)),
    relays_cpu_s_on_median: Number(cpuOn.toFixed(3)),
    cpu_difference_percent: Number((((cpuOn - cpuOff) / cpuOff) * 100).toFixed(1)),
    mb_per_s_off_median: Number(median(off.map((r) => args.mb / r.seconds)).toFixed(2)),
    mb_per_s_on_median: Number(median(on.map((r) => args.mb / r.seconds)).toFixed(2)),
    scrape_every_ms: args.scrapeMs,
    scrapes_during_download: scrapes.length,
    scrape_during_download_ms_median: Number(median(scrapes).toFixed(2)),
    scrape_ms_median: Number(median(quiet).toFixed(2)),
    scrape_ms_p99: Number(percentile(quiet, 99).toFixed(2)),
    relay_cpu_ms_per_scrape: Number(median(on.map((r) => r.cpuPerScrapeMs)).toFixed(2)),
  };
  console.log(`\nMetrics overhead (${args.mb} MB through one circuit, ${args.runs} runs per mode, all relays' CPU)`);
  console.log(`  relays' CPU, metrics off / on (median)  ${result.relays_cpu_s_off_median} s / ${result.relays_cpu_s_on_median} s (${result.cpu_difference_percent} %)`);
  console.log(`  throughput off / on (median)            ${result.mb_per_s_off_median} / ${result.mb_per_s_on_median} MB/s`);
  console.log(`  /metrics scrape during the download      median ${result.scrape_during_download_ms_median} ms (${scrapes.length}, one per node every ${args.scrapeMs} ms)`);
  console.log(`  /metrics scrape, idle network           median ${result.scrape_ms_median} ms, p99 ${result.scrape_ms_p99} ms (${quiet.length})`);
  console.log(`  relay CPU per scrape (quiet)            ${result.relay_cpu_ms_per_scrape} ms`);
  console.log(JSON.stringify(result));
}

await main();
