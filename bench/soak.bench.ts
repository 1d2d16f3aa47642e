/**
 * Soak benchmark (plain script):  node dist/bench/soak.bench.js
 *   SOAK_MINUTES (default 3; 10-60 for a real soak), SOAK_SAMPLE_S (default 10), SOAK_WARMUP_S,
 *   SOAK_KILL_EVERY_S (default 300; 0 = never), SOAK_KILL_DOWN_S (default 10)
 *
 * Starts `allium testnet` (authority, 5 relays, client) and runs, for the
 * whole duration, a mix of honest and hostile traffic:
 *   - circuit churn: requests with fresh SOCKS credentials (a new circuit each);
 *   - stream churn: many small requests over one isolation key;
 *   - bulk: 5 MB downloads, one after another;
 *   - hostile: garbage on the relays' OR ports, slowloris on the SOCKS and
 *     authority ports, and clients that open a bulk stream and never read it
 *     (from 127.66.0.x, so the per-address limits meet them, not the client).
 *   - a relay killed and restarted: every SOAK_KILL_EVERY_S one relay (the
 *     last middle relay, always the same one: "the victim") gets SIGKILL by
 *     PID through the testnet's supervisor (`ctl kill`), and is started again
 *     (`ctl start`, same keys and port) SOAK_KILL_DOWN_S later.
 * Every SOAK_SAMPLE_S it reads the RSS of every node (/proc/<pid>/status, the
 * PIDs from `ctl status`, so a restarted node is followed; the testnet's own
 * supervisor process too, RSS only) and its V8 heap in
 * use (nodejs_heap_size_used_bytes from the node's metrics port), and prints
 * a line; at the end, per node and in total, RSS and heap after warm-up,
 * after 10 minutes and at the end, and the least-squares slope in MiB per 10
 * minutes over the post-warm-up samples. The victim's figures restart with
 * each incarnation, so its slope is taken within incarnations (one intercept
 * per incarnation, one common slope) and it is left out of the total, which
 * is over the nodes that ran throughout. Then the request counts (failures
 * included), the restarts done and the load average. The testnet is torn
 * down at the end, on error and on Ctrl-C. Traffic goes to loopback only.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, get as httpGet, type Server } from 'node:http';
import { loadavg } from 'node:os';
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
const KILL_EVERY_MS = Number(process.env.SOAK_KILL_EVERY_S ?? 300) * 1000;
const KILL_DOWN_MS = Number(process.env.SOAK_KILL_DOWN_S ?? 10) * 1000;
const METRICS_TIMEOUT_MS = 3_000;

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

/** The testnet's node processes: nickname → PID, from the supervisor (`ctl status` lines `nick role state pid=N`). */
async function nodes(tn: TestnetProcess): Promise<Map<string, number>> {
  const out = new Map<string, number>();
  const { lines } = await tn.ctl('status', 10_000);
  for (const line of lines) {
    const m = /^(\S+) (\S+) running pid=(\d+)/.exec(line);
    if (m !== null && m[2] !== 'destination' && m[2] !== 'forward') out.set(m[1]!, Number(m[3]));
  }
  out.set('testnet', tn.pid);
  return out;
}

/** V8 heap in use of a node, MiB, from its metrics port; NaN when it does not answer in time. */
function heapMiB(hostPort: string | undefined): Promise<number> {
  if (hostPort === undefined) return Promise.resolve(NaN);
  return new Promise((resolve) => {
    const req = httpGet(`http://${hostPort}/metrics`, { timeout: METRICS_TIMEOUT_MS }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        const m = /^nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(body);
        resolve(m === null ? NaN : Number(m[1]) / 1048576);
      });
      res.on('error', () => resolve(NaN));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(NaN));
  });
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

/**
 * Least-squares slope in y per 10 minutes with one intercept per segment
 * (points are [t ms, y, segment]): the common within-segment slope, for a node restarted between segments.
 */
function pooledSlopePer10Min(points: Array<[number, number, number]>): number {
  const segments = new Map<number, Array<[number, number]>>();
  for (const [t, y, seg] of points) if (Number.isFinite(y)) (segments.get(seg) ?? segments.set(seg, []).get(seg)!).push([t, y]);
  let num = 0;
  let den = 0;
  for (const pts of segments.values()) {
    if (pts.length < 2) continue;
    const mt = pts.reduce((s, [t]) => s + t, 0) / pts.length;
    const my = pts.reduce((s, [, y]) => s + y, 0) / pts.length;
    for (const [t, y] of pts) {
      num += (t - mt) * (y - my);
      den += (t - mt) ** 2;
    }
  }
  return den === 0 ? NaN : (num / den) * 600_000;
}

/** Every KILL_EVERY_MS: SIGKILL the victim through the supervisor, wait KILL_DOWN_MS, start it again. */
async function killer(tn: TestnetProcess, victim: string, log: Array<{ atMin: number; what: string; ok: boolean }>, started: number): Promise<void> {
  if (KILL_EVERY_MS <= 0) return;
  for (let next = KILL_EVERY_MS; !stopping; next += KILL_EVERY_MS) {
    while (!stopping && Date.now() - started < next) await sleep(Math.min(1000, next - (Date.now() - started)));
    if (stopping) return;
    const atMin = (Date.now() - started) / 60_000;
    const killed = await tn.ctl(`kill ${victim}`, 15_000).catch((e: Error) => ({ ok: false, lines: [e.message] }));
    log.push({ atMin, what: `kill ${victim}: ${killed.lines.join('; ')}`, ok: killed.ok });
    process.stdout.write(`# ${atMin.toFixed(1)} min: kill ${victim}: ${killed.lines.join('; ')}\n`);
    await sleep(KILL_DOWN_MS);
    const back = await tn.ctl(`start ${victim}`, 60_000).catch((e: Error) => ({ ok: false, lines: [e.message] }));
    log.push({ atMin: (Date.now() - started) / 60_000, what: `start ${victim}: ${back.lines.join('; ')}`, ok: back.ok });
    process.stdout.write(`# ${((Date.now() - started) / 60_000).toFixed(1)} min: start ${victim}: ${back.lines.join('; ')}\n`);
  }
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
    tn = await startTestnetProcess(undefined, { metrics: true });
    const procs = await nodes(tn);
    const victim = [...tn.relays].reverse().find((r) => !r.exit)?.nickname ?? tn.relays[tn.relays.length - 1]!.nickname;
    const kills: Array<{ atMin: number; what: string; ok: boolean }> = [];
    process.stdout.write(
      `soak: ${MINUTES} min, sample every ${SAMPLE_MS / 1000} s, warm-up ${WARMUP_MS / 1000} s; nodes ${[...procs.keys()].join(', ')}; ` +
        `${KILL_EVERY_MS > 0 ? `${victim} killed every ${KILL_EVERY_MS / 1000} s, down ${KILL_DOWN_MS / 1000} s` : 'no kills'}\n\n`,
    );
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
    // [t ms, MiB, incarnation (PID)] per node and measure; the totals are over the nodes that are never restarted.
    type Series = Map<string, Array<[number, number, number]>>;
    const rss: Series = new Map(roles.map((r) => [r, []]));
    const heap: Series = new Map(roles.map((r) => [r, []]));
    rss.set('total', []);
    heap.set('total', []);
    const loads: Array<[number, number]> = [];
    const started = Date.now();
    work.push(killer(t, victim, kills, started));
    process.stdout.write(
      `| min | ${roles.map((r) => `${r} RSS/heap`).join(' | ')} | total RSS/heap MiB (without ${victim}) | requests ok / failed | load 1 min |\n` +
        `|---:|${roles.map(() => '---:').join('|')}|---:|---:|---:|\n`,
    );
    while (Date.now() - started < DURATION_MS) {
      await sleep(Math.min(SAMPLE_MS, DURATION_MS - (Date.now() - started)));
      const at = Date.now() - started;
      const pids = await nodes(t).catch(() => new Map<string, number>());
      const heaps = await Promise.all(roles.map((r) => heapMiB(t.metrics.get(r))));
      let totalRss = 0;
      let totalHeap = 0;
      const row: string[] = [];
      roles.forEach((role, i) => {
        const pid = pids.get(role);
        const r = pid === undefined ? NaN : rssMiB(pid);
        const h = pid === undefined ? NaN : heaps[i]!;
        rss.get(role)!.push([at, r, pid ?? 0]);
        heap.get(role)!.push([at, h, pid ?? 0]);
        if (role !== victim) {
          totalRss += r;
          if (role !== 'testnet') totalHeap += h; // the supervisor has no metrics port
        }
        row.push(`${r.toFixed(1)}/${h.toFixed(1)}`);
      });
      rss.get('total')!.push([at, totalRss, 0]);
      heap.get('total')!.push([at, totalHeap, 0]);
      const load = loadavg()[0]!;
      loads.push([at, load]);
      const ok = Object.entries(counts).filter(([k]) => !k.startsWith('hostile')).reduce((s, [, c]) => s + c.ok, 0);
      const failed = Object.entries(counts).filter(([k]) => !k.startsWith('hostile')).reduce((s, [, c]) => s + c.failed, 0);
      process.stdout.write(`| ${(at / 60_000).toFixed(1)} | ${row.join(' | ')} | ${totalRss.toFixed(1)}/${totalHeap.toFixed(1)} | ${ok} / ${failed} | ${load.toFixed(2)} |\n`);
    }
    stopping = true;
    await Promise.race([Promise.all(work), sleep(REQUEST_TIMEOUT_MS)]);

    const f = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(1));
    const summary: Record<string, Record<string, unknown>> = {};
    for (const [measure, series] of [['RSS', rss], ['heap', heap]] as const) {
      process.stdout.write(`\n| node | ${measure} after warm-up | after 10 min | at the end | ${measure} slope after warm-up (MiB / 10 min) |\n|---|---:|---:|---:|---:|\n`);
      for (const [role, points] of series) {
        const after = points.filter(([at, y]) => at >= WARMUP_MS && Number.isFinite(y));
        const first = after[0]?.[1];
        const ten = points.find(([at, y]) => at >= 600_000 && Number.isFinite(y))?.[1];
        const last = [...points].reverse().find(([, y]) => Number.isFinite(y))?.[1];
        const slope = role === victim ? pooledSlopePer10Min(after) : slopePer10Min(after.map(([at, y]) => [at, y]));
        (summary[role] ??= {})[measure] = { start: first ?? null, tenMin: ten ?? null, end: last ?? null, slopePer10Min: slope };
        const name = role === victim ? `${role} (restarted; slope within incarnations)` : role === 'total' ? `total (without ${victim})` : role;
        process.stdout.write(`| ${name} | ${f(first)} | ${f(ten)} | ${f(last)} | ${slope.toFixed(2)} |\n`);
      }
    }
    process.stdout.write('\n| traffic | ok | failed | MB |\n|---|---:|---:|---:|\n');
    for (const [name, c] of Object.entries(counts)) process.stdout.write(`| ${name} | ${c.ok} | ${c.failed} | ${(c.bytes / 1e6).toFixed(1)} |\n`);
    const restarts = kills.filter((k) => k.what.startsWith('start') && k.ok).length;
    const meanLoad = loads.reduce((s, [, l]) => s + l, 0) / Math.max(1, loads.length);
    process.stdout.write(`\nkills/restarts of ${victim}: ${kills.filter((k) => k.what.startsWith('kill') && k.ok).length} killed, ${restarts} started again, ${kills.filter((k) => !k.ok).length} failed commands\n`);
    process.stdout.write(`load average (1 min) over the run: mean ${meanLoad.toFixed(2)}, max ${Math.max(...loads.map(([, l]) => l)).toFixed(2)}\n`);
    process.stdout.write(`\n${JSON.stringify({ bench: 'soak', minutes: MINUTES, victim, memory: summary, traffic: counts, kills, meanLoad })}\n`);
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
