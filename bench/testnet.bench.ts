/**
 * Testnet benchmark (plain script):  node dist/bench/testnet.bench.js [--mb 100] [--samples 20] [--runs 3]
 *
 * Starts `allium testnet` as one child process (SOCKS port 0) and measures:
 *   - seconds from spawn to the `ready` line;
 *   - time to first byte of a small GET through SOCKS (median of --samples,
 *     each a fresh SOCKS connection, i.e. a fresh stream);
 *   - MB/s of a --mb MB download through the circuit (median of --runs;
 *     later runs are skipped if one run already took more than 35 s).
 * Prints a table and one JSON line. The testnet is always torn down, also on
 * error or Ctrl-C.
 */
import { createHash } from 'node:crypto';
import type { Socket } from 'node:net';
import { SocksClient } from 'socks';
import { payloadSha256, startPayloadServer, type PayloadServer } from '../test/support/payload-server.js';
import { startTestnetProcess, type TestnetProcess } from '../test/support/testnet-process.js';

const PAYLOAD_HOST = '127.200.0.1';
const REQUEST_TIMEOUT_MS = 20_000;
const DOWNLOAD_TIMEOUT_MS = 60_000;
const SKIP_MORE_RUNS_AFTER_MS = 35_000;

interface Args {
  mb: number;
  samples: number;
  runs: number;
}

function parseArgs(argv: string[]): Args {
  const args: Args = { mb: 100, samples: 20, runs: 3 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = Number(argv[i + 1]);
    if ((flag === '--mb' || flag === '--samples' || flag === '--runs') && Number.isInteger(value) && value > 0) {
      args[flag.slice(2) as keyof Args] = value;
      i++;
    } else {
      throw new Error(`usage: node dist/bench/testnet.bench.js [--mb N] [--samples N] [--runs N] (bad argument ${flag})`);
    }
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
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

interface GetResult {
  /** ms from starting the SOCKS connect to the first response byte. */
  ttfbMs: number;
  /** ms from sending the request to the last body byte. */
  transferMs: number;
  status: number;
  bodyBytes: number;
  sha256: string;
}

/** GET `path` from host:port through the SOCKS5 proxy (hostname resolved at the exit). */
async function socksGet(tn: TestnetProcess, host: string, port: number, path: string, timeoutMs: number): Promise<GetResult> {
  const t0 = performance.now();
  const { socket } = await SocksClient.createConnection({
    proxy: { host: tn.socksHost, port: tn.socksPort, type: 5 },
    command: 'connect',
    destination: { host, port },
    timeout: REQUEST_TIMEOUT_MS,
  });
  return readResponse(socket, `GET ${path} HTTP/1.1\r\nHost: ${host}:${port}\r\nConnection: close\r\n\r\n`, t0, timeoutMs);
}

function readResponse(socket: Socket, request: string, t0: number, timeoutMs: number): Promise<GetResult> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let head = Buffer.alloc(0);
    let headerDone = false;
    let status = 0;
    let contentLength = -1;
    let bodyBytes = 0;
    let ttfbMs = -1;
    let tSend = 0;
    let settled = false;
    const finish = (error?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (error !== undefined) reject(error);
      else resolve({ ttfbMs, transferMs: performance.now() - tSend, status, bodyBytes, sha256: hash.digest('hex') });
    };
    const timer = setTimeout(() => finish(new Error(`no complete response within ${timeoutMs} ms (${bodyBytes} body bytes)`)), timeoutMs);
    const body = (chunk: Buffer) => {
      bodyBytes += chunk.length;
      hash.update(chunk);
      if (contentLength >= 0 && bodyBytes >= contentLength) finish();
    };
    socket.on('data', (chunk: Buffer) => {
      if (ttfbMs < 0) ttfbMs = performance.now() - t0;
      if (headerDone) return body(chunk);
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) {
        if (head.length > 64 * 1024) finish(new Error('response header too long'));
        return;
      }
      const text = head.subarray(0, end).toString('latin1');
      status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0);
      const cl = /\r\ncontent-length:\s*(\d+)/i.exec(text);
      contentLength = cl === null ? -1 : Number(cl[1]);
      headerDone = true;
      const rest = head.subarray(end + 4);
      head = Buffer.alloc(0);
      if (rest.length > 0 || contentLength === 0) body(rest);
    });
    socket.once('end', () => finish(contentLength < 0 || bodyBytes >= contentLength ? undefined : new Error(`response cut short at ${bodyBytes} of ${contentLength} bytes`)));
    socket.once('error', (error) => finish(error));
    socket.once('close', () => finish(new Error('connection closed')));
    tSend = performance.now();
    socket.write(request);
  });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  let testnet: TestnetProcess | undefined;
  let server: PayloadServer | undefined;
  const teardown = async () => {
    await testnet?.stop();
    await server?.close();
  };
  const onSignal = () => {
    process.stderr.write('interrupted; tearing the testnet down\n');
    teardown().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);

  try {
    server = await startPayloadServer({ host: PAYLOAD_HOST });
    process.stderr.write(`payload server on ${PAYLOAD_HOST}:${server.port}; starting the testnet…\n`);
    testnet = await startTestnetProcess(undefined, { readyTimeoutMs: 90_000 });
    const startupS = testnet.startupMs / 1000;
    process.stderr.write(`testnet ready after ${startupS.toFixed(1)} s: ${testnet.readyLine}\n`);

    // Time to first byte: fresh SOCKS connection + small GET.
    const ttfb: number[] = [];
    let ttfbFailures = 0;
    for (let i = 0; i < args.samples; i++) {
      try {
        const r = await socksGet(testnet, PAYLOAD_HOST, server.port, '/hello', REQUEST_TIMEOUT_MS);
        if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
        ttfb.push(r.ttfbMs);
      } catch (error) {
        ttfbFailures++;
        process.stderr.write(`hello #${i + 1} failed: ${(error as Error).message}\n`);
      }
    }
    process.stderr.write(`ttfb: ${ttfb.length} samples, median ${median(ttfb).toFixed(1)} ms\n`);

    // Bulk download.
    const bytes = args.mb * 1_000_000;
    const expected = payloadSha256(bytes);
    const mbps: number[] = [];
    let downloadFailures = 0;
    for (let run = 0; run < args.runs; run++) {
      try {
        const r = await socksGet(testnet, PAYLOAD_HOST, server.port, `/bytes/${bytes}`, DOWNLOAD_TIMEOUT_MS);
        if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
        if (r.bodyBytes !== bytes || r.sha256 !== expected) throw new Error(`payload mismatch (${r.bodyBytes} bytes)`);
        const rate = bytes / 1e6 / (r.transferMs / 1000);
        mbps.push(rate);
        process.stderr.write(`download #${run + 1}: ${args.mb} MB in ${(r.transferMs / 1000).toFixed(1)} s = ${rate.toFixed(2)} MB/s\n`);
        if (r.transferMs > SKIP_MORE_RUNS_AFTER_MS) {
          process.stderr.write(`that took over ${SKIP_MORE_RUNS_AFTER_MS / 1000} s; skipping further runs\n`);
          break;
        }
      } catch (error) {
        downloadFailures++;
        process.stderr.write(`download #${run + 1} failed: ${(error as Error).message}\n`);
        break;
      }
    }

    const seen = server.remoteAddresses();
    const exitAddresses = new Set(testnet.relays.filter((r) => r.exit).map((r) => r.address));
    const result = {
      bench: 'testnet',
      relays: testnet.relays.length,
      startup_s: Number(startupS.toFixed(2)),
      ttfb_ms_median: Number(median(ttfb).toFixed(2)),
      ttfb_ms_p90: Number(percentile(ttfb, 90).toFixed(2)),
      ttfb_samples: ttfb.length,
      ttfb_failures: ttfbFailures,
      download_mb: args.mb,
      download_mb_per_s_median: Number(median(mbps).toFixed(2)),
      download_runs: mbps.length,
      download_failures: downloadFailures,
      server_saw_only_exits: seen.length > 0 && seen.every((a) => exitAddresses.has(a)),
    };
    const rows: [string, string][] = [
      ['startup (spawn → ready)', `${result.startup_s.toFixed(2)} s`],
      [`TTFB small GET (median of ${ttfb.length})`, `${result.ttfb_ms_median.toFixed(1)} ms (p90 ${result.ttfb_ms_p90.toFixed(1)} ms)`],
      [`download ${args.mb} MB (median of ${mbps.length})`, `${result.download_mb_per_s_median.toFixed(2)} MB/s`],
      ['server saw only exit addresses', String(result.server_saw_only_exits)],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    console.log(`\nAllium testnet benchmark (${result.relays} relays, loopback, Node ${process.versions.node})`);
    for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
    console.log(JSON.stringify(result));
    if (ttfb.length === 0 || mbps.length === 0) process.exitCode = 1;
  } catch (error) {
    process.stderr.write(`benchmark failed: ${(error as Error).message}\n`);
    process.exitCode = 1;
  } finally {
    await teardown();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

await main();
