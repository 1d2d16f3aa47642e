/**
 * Soak benchmark (plain script):  node dist/bench/soak.bench.js
 *   SOAK_MINUTES (default 3; 10-60 for a real soak), SOAK_SAMPLE_S (default 10), SOAK_WARMUP_S
 *
 * Starts `allium testnet` (authority, 5 relays, client) and runs, for the
 * whole duration, a mix of honest and hostile traffic:
 *   - circuit churn: requests with fresh SOCKS credentials (a new circuit each);
 *   - stream churn: many small requests over one isolation key;
 *   - bulk: 5 MB downloads, one after another;
 *   - hostile: garbage on the relays' OR ports, slowloris on the SOCKS and
 *     authority ports, and clients that open a bulk stream and never read it
 *     (from 127.66.0.x, so the per-address limits meet them, not the client).
 * Every SOAK_SAMPLE_S it reads the RSS of every node (/proc/<pid>/status),
 * and prints a line; at the end the RSS of each role at the start (after
 * warm-up), after 10 minutes and at the end, the least-squares slope in MiB
 * per 10 minutes after warm-up, and the request counts. The testnet is torn
 * down at the end, on error and on Ctrl-C. Traffic goes to loopback only.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { connect, type Socket } from 'node:net';
import { SocksClient } from 'socks';
import { startTestnetProcess, type TestnetProcess } from '../test/support/testnet-process.js';

const MINUTES = Number(process.env.SOAK_MINUTES ?? 3);
const SAMPLE_MS = Number(process.env.SOAK_SAMPLE_S ?? 10) * 1000;
const DURATION_MS = MINUTES * 60_000;
/** V8 sizes its heap over the first minutes: slopes are taken after this (SOAK_WARMUP_S, default 5 min or 40 % of the run). */
const WARMUP_MS = process.env.SOAK_WARMUP_S !== undefined ? Number(process.env.SOAK_WARMUP_S) * 1000 : Math.min(300_000, DURATION_MS * 0.4);
const TARGET_HOST = '127.200.0.1';
const HOSTILE = ['127.66.0.1', '127.66.0.2', '127.66.0.3', '127.66.0.4'] as const;
const REQUEST_TIMEOUT_MS = 30_000;

interface Counters {
  ok: number;
  failed: number;
  bytes: number;
}
const counts: Record<string, Counters> = {};
const tally = (name: string): Counters => (counts[name] ??= { ok: 0, failed: 0, bytes: 0 });

let stopping = false;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The destination: /small (1 KiB) and /bytes/N (N bytes, streamed with backpressure). No request log. */
async function startTarget(): Promise<{ server: Server; port: number }> {
  const small = Buffer.alloc(1024, 0x61);
  const chunk = Buffer.alloc(64 * 1024, 0x62);
  const server = createServer((req, res) => {
    const m = /^\/bytes\/(\d{1,10})$/.exec(req.url ?? '');
    if (m === null) {
      res.writeHead(200, { 'content-length': small.length });
      res.end(small);
      return;
    }
    let left = Number(m[1]);
    res.writeHead(200, { 'content-length': left });
    const pump = () => {
      while (left > 0 && !res.destroyed) {
        const n = Math.min(left, chunk.length);
        left -= n;
        if (!res.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, TARGET_HOST, () => resolve()));
  return { server, port: (server.address() as { port: number }).port };
}

/** GET `path` through SOCKS with `user` as the isolation key; resolves with the body length. */
async function get(tn: TestnetProcess, port: number, path: string, user: string): Promise<number> {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: tn.socksHost, port: tn.socksPort, type: 5, userId: user, password: 'x' },
    command: 'connect',
    destination: { host: TARGET_HOST, port },
    timeout: REQUEST_TIMEOUT_MS,
  });
  return new Promise((resolve, reject) => {
    let n = 0;
    let headerEnd = -1;
    let head = Buffer.alloc(0);
    let length = -1;
    const timer = setTimeout(() => finish(new Error('request timed out')), REQUEST_TIMEOUT_MS);
    const finish = (error?: Error) => {
      clearTimeout(timer);
      socket.destroy();
      if (error !== undefined) reject(error);
      else resolve(n);
    };
    socket.on('data', (c: Buffer) => {
      if (headerEnd < 0) {
        head = Buffer.concat([head, c]);
        headerEnd = head.indexOf('\r\n\r\n');
        if (headerEnd < 0) return;
        length = Number(/content-length: (\d+)/i.exec(head.subarray(0, headerEnd).toString())?.[1] ?? -1);
        n = head.length - headerEnd - 4;
      } else {
        n += c.length;
      }
      if (length >= 0 && n >= length) finish();
    });
    socket.on('error', (e) => finish(e));
    socket.on('close', () => finish(length >= 0 && n >= length ? undefined : new Error('closed early')));
    socket.write(`GET ${path} HTTP/1.1\r\nHost: ${TARGET_HOST}\r\nConnection: close\r\n\r\n`);
  });
}

async function loop(name: string, pauseMs: number, body: (i: number) => Promise<number>): Promise<void> {
  for (let i = 0; !stopping; i++) {
    try {
      tally(name).bytes += await body(i);
      tally(name).ok++;
    } catch {
      tally(name).failed++;
      await sleep(500);
    }
    await sleep(pauseMs);
  }
}

/** Bytes at a port from a hostile address, then gone: garbage every second to a random relay. */
async function garbage(tn: TestnetProcess): Promise<void> {
  while (!stopping) {
    const relay = tn.relays[Math.floor(Math.random() * tn.relays.length)]!;
    for (let i = 0; i < 5; i++) {
      const s = connect({ host: relay.address, port: relay.port, localAddress: HOSTILE[0] });
      s.on('error', () => {});
      s.on('connect', () => s.write(randomBytes(200)));
      setTimeout(() => s.destroy(), 500);
    }
    tally('hostile: garbage on OR ports').ok += 5;
    await sleep(1000);
  }
}

/** `count` connections from `from` to host:port, each sending one byte a second, replaced when closed. */
async function slowloris(name: string, host: string, port: number, from: string, count: number): Promise<void> {
  const open = new Set<Socket>();
  while (!stopping) {
    while (open.size < count) {
      const s = connect({ host, port, localAddress: from });
      s.on('error', () => {});
      open.add(s);
      const timer = setInterval(() => s.write('G'), 1000);
      s.once('close', () => {
        clearInterval(timer);
        open.delete(s);
      });
      tally(name).ok++;
    }
    await sleep(1000);
  }
  for (const s of open) s.destroy();
}

/** Every 10 s a SOCKS stream to a 50 MB body that is never read, dropped after 15 s. */
async function nonReaders(tn: TestnetProcess, port: number): Promise<void> {
  while (!stopping) {
    SocksClient.createConnection({
      proxy: { host: tn.socksHost, port: tn.socksPort, type: 5, userId: `stuck${Date.now()}`, password: 'x' },
      command: 'connect',
      destination: { host: TARGET_HOST, port },
      timeout: REQUEST_TIMEOUT_MS,
    }).then(
      ({ socket }) => {
        socket.on('error', () => {});
        socket.write(`GET /bytes/50000000 HTTP/1.1\r\nHost: ${TARGET_HOST}\r\n\r\n`);
        socket.pause();
        setTimeout(() => socket.destroy(), 15_000);
        tally('hostile: never-reading streams').ok++;
      },
      () => tally('hostile: never-reading streams').failed++,
    );
    await sleep(10_000);
  }
}

/** The testnet's node processes by role name (from their command lines). */
function nodes(tn: TestnetProcess): Map<string, number> {
  const out = new Map<string, number>();
  const children = readFileSync(`/proc/${tn.pid}/task/${tn.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  for (const pid of children) {
    try {
      const args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      const role = args[2] ?? '?';
      const nick = args[args.indexOf('--nickname') + 1];
      out.set(role === 'relay' && nick !== undefined ? nick : role, pid);
    } catch {
      // gone
    }
  }
  return out;
}

function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? NaN : Number(m[1]) / 1024;
  } catch {
    return NaN;
  }
}

/** Least-squares slope of (t ms, y) in y per 10 minutes. */
function slopePer10Min(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return NaN;
  const mt = points.reduce((s, [t]) => s + t, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  let num = 0;
  let den = 0;
  for (const [t, y] of points) {
    num += (t - mt) * (y - my);
    den += (t - mt) ** 2;
  }
  return den === 0 ? NaN : (num / den) * 600_000;
}

async function main(): Promise<void> {
  let tn: TestnetProcess | undefined;
  let target: { server: Server; port: number } | undefined;
  const teardown = async () => {
    stopping = true;
    await tn?.stop();
    target?.server.closeAllConnections();
    target?.server.close();
  };
  const onSignal = () => {
    process.stderr.write('interrupted; tearing the testnet down\n');
    void teardown().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    target = await startTarget();
    tn = await startTestnetProcess(undefined, {});
    const procs = nodes(tn);
    process.stdout.write(`soak: ${MINUTES} min, sample every ${SAMPLE_MS / 1000} s, warm-up ${WARMUP_MS / 1000} s; nodes ${[...procs.keys()].join(', ')}\n\n`);
    const port = target.port;
    const t = tn;
    const work = [
      ...[0, 1, 2].map((w) => loop('circuit churn (fresh credentials)', 200, (i) => get(t, port, '/small', `churn-${w}-${i}`))),
      ...[0, 1, 2].map(() => loop('stream churn (one circuit)', 50, () => get(t, port, '/small', 'streams'))),
      loop('bulk 5 MB', 0, () => get(t, port, '/bytes/5000000', 'bulk')),
      garbage(t),
      slowloris('hostile: slowloris SOCKS', t.socksHost, t.socksPort, HOSTILE[1], 20),
      slowloris('hostile: slowloris authority', new URL(t.authorityUrl).hostname, Number(new URL(t.authorityUrl).port), HOSTILE[2], 20),
      nonReaders(t, port),
    ];
    const roles = [...procs.keys()].sort();
    const series = new Map<string, Array<[number, number]>>(roles.map((r) => [r, []]));
    series.set('total', []);
    process.stdout.write(`| min | ${roles.join(' | ')} | total RSS MiB | requests ok / failed |\n|---:|${roles.map(() => '---:').join('|')}|---:|---:|\n`);
    const started = Date.now();
    while (Date.now() - started < DURATION_MS) {
      await sleep(Math.min(SAMPLE_MS, DURATION_MS - (Date.now() - started)));
      const at = Date.now() - started;
      let total = 0;
      const row: string[] = [];
      for (const role of roles) {
        const rss = rssMiB(procs.get(role)!);
        total += rss;
        series.get(role)!.push([at, rss]);
        row.push(rss.toFixed(1));
      }
      series.get('total')!.push([at, total]);
      const ok = Object.entries(counts).filter(([k]) => !k.startsWith('hostile')).reduce((s, [, c]) => s + c.ok, 0);
      const failed = Object.entries(counts).filter(([k]) => !k.startsWith('hostile')).reduce((s, [, c]) => s + c.failed, 0);
      process.stdout.write(`| ${(at / 60_000).toFixed(1)} | ${row.join(' | ')} | ${total.toFixed(1)} | ${ok} / ${failed} |\n`);
    }
    stopping = true;
    await Promise.race([Promise.all(work), sleep(REQUEST_TIMEOUT_MS)]);

    process.stdout.write('\n| node | RSS after warm-up | after 10 min | at the end | slope after warm-up (MiB / 10 min) |\n|---|---:|---:|---:|---:|\n');
    const summary: Record<string, unknown> = {};
    for (const [role, points] of series) {
      const after = points.filter(([at]) => at >= WARMUP_MS);
      const first = after[0]?.[1];
      const ten = points.find(([at]) => at >= 600_000)?.[1];
      const last = points[points.length - 1]?.[1];
      const slope = slopePer10Min(after);
      summary[role] = { start: first, tenMin: ten ?? null, end: last, slopePer10Min: slope };
      const f = (x: number | undefined) => (x === undefined ? '-' : x.toFixed(1));
      process.stdout.write(`| ${role} | ${f(first)} | ${f(ten)} | ${f(last)} | ${slope.toFixed(2)} |\n`);
    }
    process.stdout.write('\n| traffic | ok | failed | MB |\n|---|---:|---:|---:|\n');
    for (const [name, c] of Object.entries(counts)) process.stdout.write(`| ${name} | ${c.ok} | ${c.failed} | ${(c.bytes / 1e6).toFixed(1)} |\n`);
    process.stdout.write(`\n${JSON.stringify({ bench: 'soak', minutes: MINUTES, rss: summary, traffic: counts })}\n`);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await teardown();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${(error as Error).stack ?? String(error)}\n`);
    process.exit(1);
  },
);
