/**
 * Diagnostic companion of wan.bench.ts (not a benchmark of record): starts one
 * emulated WAN testnet (3 relays; --rate 0 = no rate, only the delay), downloads
 * --mb MB on one circuit --runs times with curl, and for each run prints MB/s,
 * the load average and the CPU share of every node process (from
 * /proc/PID/stat). The testnet's data dir is kept, so that the nodes' logs can
 * be read afterwards: with NODE_DEBUG=allium:cc-trace the exit's log has one
 * line per circuit SENDME (cwnd, inflight, BDP and queue estimates, min/EWMA
 * RTT). --rt N (root): the testnet, curl and this process under SCHED_RR N.
 *
 *   NODE_DEBUG=allium:cc-trace node dist/bench/wan-probe.js [--delay 20] [--rate 100] [--mb 20] [--runs 3] [--alg 2] [--rt 10] [-- more testnet args]
 */
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { startDestination } from '../cli/destination-server.js';
import { startTestnetProcess } from '../test/support/testnet-process.js';

const argv = process.argv.slice(2);
const dash = argv.indexOf('--');
const own = dash < 0 ? argv : argv.slice(0, dash);
const extra = dash < 0 ? [] : argv.slice(dash + 1);
const opt = (name: string, dflt: number) => {
  const i = own.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(own[i + 1]);
};
const delay = opt('delay', 20);
const rate = opt('rate', 100);
const mb = opt('mb', 20);
const runs = opt('runs', 3);
const alg = opt('alg', 2);
/** Diagnostic: give the testnet's processes (and this one) SCHED_RR at this priority (root only); NaN = leave them. */
const rt = opt('rt', NaN);

/** Every descendant pid of `root` with its command line. */
function descendants(root: number): Array<{ pid: number; cmd: string }> {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(d));
      children.set(ppid, list);
    } catch {
      // gone
    }
  }
  const out: Array<{ pid: number; cmd: string }> = [];
  const walk = (pid: number) => {
    for (const c of children.get(pid) ?? []) {
      try {
        out.push({ pid: c, cmd: readFileSync(`/proc/${c}/cmdline`, 'utf8').split('\0').join(' ') });
      } catch {
        // gone
      }
      walk(c);
    }
  };
  walk(root);
  return out;
}

/** utime+stime of `pid`, in clock ticks (100/s). */
function cpuTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}

function nickname(cmd: string): string {
  const m = /--nickname (\S+)/.exec(cmd) ?? /\b(relay|client|authority|destination|forward)\b/.exec(cmd);
  return m?.[1] ?? cmd.slice(0, 40);
}

function curl(socksPort: number, url: string): Promise<{ totalMs: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    execFile(Number.isNaN(rt) ? 'curl' : 'chrt', [...(Number.isNaN(rt) ? [] : ['-r', String(rt), 'curl']),'-sS', '-o', '/dev/null', '--max-time', '180', '-w', '%{time_total} %{size_download}', '-x', `socks5h://bulk:x@127.0.0.1:${socksPort}`, url], { encoding: 'utf8' }, (err, stdout) => {
      if (err !== null) return reject(err);
      const [t, b] = stdout.trim().split(' ');
      resolve({ totalMs: Number(t) * 1000, bytes: Number(b) });
    });
  });
}

const tn = await startTestnetProcess(undefined, {
  relays: 3,
  exits: 1,
  keepDataDir: true,
  extraArgs: ['--link-delay', String(delay), ...(rate > 0 ? ['--link-rate', String(rate)] : []), '--param', `cc_alg=${alg}`, ...extra],
  readyTimeoutMs: 120_000,
});
const dest = await startDestination('127.0.0.3', 0);
try {
  process.stdout.write(`data dir ${tn.dataDir}\n`);
  const base = `http://${dest.address}:${dest.port}`;
  await curl(tn.socksPort, `${base}/hello`);
  const procs = descendants(tn.pid).filter((p) => p.cmd.includes('.js'));
  if (!Number.isNaN(rt)) {
    const { execFileSync } = await import('node:child_process');
    for (const p of [...procs, { pid: tn.pid }, { pid: process.pid }]) execFileSync('chrt', ['-a', '-r', '-p', String(rt), String(p.pid)]);
    process.stdout.write(`SCHED_RR ${rt} for ${procs.length + 2} processes\n`);
  }
  for (let i = 0; i < runs; i++) {
    const before = procs.map((p) => cpuTicks(p.pid));
    const self0 = process.cpuUsage();
    const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
    const r = await curl(tn.socksPort, `${base}/bytes/${mb * 1_000_000}`);
    const secs = r.totalMs / 1000;
    const cpu = procs.map((p, j) => `${nickname(p.cmd)} ${Math.round((cpuTicks(p.pid) - before[j]!) / secs)}%`);
    const self = process.cpuUsage(self0);
    process.stdout.write(`run ${i}: ${(r.bytes / 1e6 / secs).toFixed(2)} MB/s in ${secs.toFixed(1)} s (load ${load}); cpu ${cpu.join(', ')}, bench+dest ${Math.round((self.user + self.system) / 1e4 / secs)}%\n`);
  }
} finally {
  await dest.close();
  await tn.stop();
}
