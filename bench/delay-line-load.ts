/**
 * The delay line alone under bulk load (diagnostic for issue 10): a sender
 * writes --mbps MB/s in 498-byte records, each carrying its send time, through
 * --hops chained forwarders (src/link/forwarder.ts) of --delay ms one way and
 * --rate Mbit/s; the receiver records each record's one-way latency (same
 * process, same clock). Prints throughput and latency percentiles against the
 * ideal hops × delay, and the event-loop lag of this process.
 *
 *   node dist/bench/delay-line-load.js [--hops 3] [--delay 20] [--rate 100] [--mbps 10] [--secs 5]
 */
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { once } from 'node:events';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startForwarder } from '../src/link/forwarder.js';

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = argv.indexOf(`--${name}`);
  return i < 0 ? dflt : Number(argv[i + 1]);
};
const hops = opt('hops', 3);
const delayMs = opt('delay', 20);
const rateMbit = opt('rate', 100);
const mbps = opt('mbps', 10);
const secs = opt('secs', 5);
const RECORD = 498;

const latencies: number[] = [];
let received = 0;
const sink = createServer((s: Socket) => {
  s.setNoDelay(true);
  let pending: Buffer = Buffer.alloc(0);
  s.on('data', (chunk: Buffer) => {
    const now = performance.now();
    pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
    let off = 0;
    while (pending.length - off >= RECORD) {
      latencies.push(now - pending.readDoubleLE(off));
      off += RECORD;
      received += RECORD;
    }
    pending = pending.subarray(off);
  });
});
sink.listen(0, '127.0.0.1');
await once(sink, 'listening');
let port = (sink.address() as AddressInfo).port;
const fwds = [];
for (let i = 0; i < hops; i++) {
  const f = await startForwarder({
    listen: { host: '127.0.0.1', port: 0 },
    target: { host: '127.0.0.1', port },
    shape: { delayMs, rateBps: rateMbit > 0 ? rateMbit * 1e6 : null },
  });
  fwds.push(f);
  port = (f.address as { port: number }).port;
}
const sock = connect(port, '127.0.0.1');
sock.setNoDelay(true);
await once(sock, 'connect');
const lag = monitorEventLoopDelay({ resolution: 1 });
lag.enable();
const t0 = performance.now();
const perTick = Math.max(1, Math.round((mbps * 1e6) / RECORD / 1000)); // records per ms
let sent = 0;
let blocked = 0;
await new Promise<void>((resolve) => {
  const tick = () => {
    const now = performance.now();
    if (now - t0 > secs * 1000) return resolve();
    // Catch up to the target rate (the timer may be late).
    const due = Math.floor(((now - t0) * perTick));
    const n = Math.min(due - sent, 50 * perTick);
    if (n > 0) {
      const buf = Buffer.alloc(n * RECORD);
      for (let i = 0; i < n; i++) buf.writeDoubleLE(performance.now(), i * RECORD);
      if (!sock.write(buf)) blocked++;
      sent += n;
    }
    setTimeout(tick, 1);
  };
  tick();
});
await new Promise((r) => setTimeout(r, 2 * hops * delayMs + 500));
lag.disable();
const s = [...latencies].sort((a, b) => a - b);
const pct = (p: number) => s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!.toFixed(1);
const load = (await import('node:fs')).readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
process.stdout.write(
  `${hops} hops × ${delayMs} ms, ${rateMbit} Mbit/s, offered ${mbps} MB/s for ${secs} s: delivered ${(received / 1e6 / secs).toFixed(2)} MB/s; ` +
    `one-way latency ms p0 ${pct(0)} p50 ${pct(50)} p90 ${pct(90)} p99 ${pct(99)} max ${pct(100)} (ideal ${hops * delayMs}); ` +
    `write() false ${blocked}×; event-loop lag p50 ${(lag.percentile(50) / 1e6).toFixed(1)} p99 ${(lag.percentile(99) / 1e6).toFixed(1)} ms; load ${load}\n`,
);
sock.destroy();
for (const f of fwds) await f.close();
sink.close();
