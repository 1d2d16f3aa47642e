/**
 * The circuit machinery without the kernel: a client and three relays in one
 * process, joined by real Noise links over in-memory pipes, the exit reading
 * from a real TCP source on 127.0.0.1. Measures circuit builds per second and
 * MB/s of one stream through three hops (all roles share one core here, so
 * this is the CPU cost of the whole path, not a network figure), and the
 * process CPU time (user + system) per 100 MB over each download.
 *
 *   node dist/bench/circuit.bench.js
 */
import { createServer, type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { memoryCircuit, memoryNetwork } from '../test/support/memory-network.js';

const BUILDS = 30;
const DOWNLOAD_BYTES = 50_000_000;
const RUNS = 3;

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

async function main(): Promise<void> {
  const network = memoryNetwork(3);
  const chunk = Buffer.alloc(64 * 1024, 0x5a);
  const source = createServer((socket) => {
    socket.on('error', () => {});
    let left = DOWNLOAD_BYTES;
    const pump = () => {
      while (left > 0) {
        const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= piece.length;
        if (!socket.write(piece)) {
          socket.once('drain', pump);
          return;
        }
      }
      socket.end();
    };
    pump();
  });
  source.listen(0, '127.0.0.1');
  await once(source, 'listening');
  const port = (source.address() as AddressInfo).port;
  try {
    const buildMs: number[] = [];
    for (let i = 0; i < BUILDS; i++) {
      const started = performance.now();
      const { channel } = await memoryCircuit(network.relays);
      buildMs.push(performance.now() - started);
      channel.destroy();
    }
    const rates: number[] = [];
    const cpuPer100MB: number[] = [];
    for (let run = 0; run < RUNS; run++) {
      const { circuit, channel } = await memoryCircuit(network.relays);
      const started = performance.now();
      const cpuBefore = process.cpuUsage();
      const stream = await circuit.openStream('127.0.0.1', port, 10_000);
      let received = 0;
      stream.on('data', (c: Buffer) => (received += c.length));
      await once(stream, 'end');
      const seconds = (performance.now() - started) / 1000;
      const cpu = process.cpuUsage(cpuBefore);
      cpuPer100MB.push(((cpu.user + cpu.system) / 1e6) * (100e6 / DOWNLOAD_BYTES));
      if (received !== DOWNLOAD_BYTES) throw new Error(`received ${received} of ${DOWNLOAD_BYTES} bytes`);
      rates.push(DOWNLOAD_BYTES / 1e6 / seconds);
      channel.destroy();
    }
    const table = [
      ['measure', 'median', 'min', 'max'],
      ['3-hop circuit build, in memory (ms)', median(buildMs).toFixed(2), Math.min(...buildMs).toFixed(2), Math.max(...buildMs).toFixed(2)],
      [`one stream, 3 hops, ${DOWNLOAD_BYTES / 1e6} MB (MB/s)`, median(rates).toFixed(1), Math.min(...rates).toFixed(1), Math.max(...rates).toFixed(1)],
      ['CPU s per 100 MB, client + 3 relays + source in this process', median(cpuPer100MB).toFixed(2), Math.min(...cpuPer100MB).toFixed(2), Math.max(...cpuPer100MB).toFixed(2)],
    ];
    const memory = process.memoryUsage();
    table.push(['process RSS after the runs: client + 3 relays (MiB)', (memory.rss / 2 ** 20).toFixed(0), '', '']);
    table.push(['V8 heap used after the runs (MiB)', (memory.heapUsed / 2 ** 20).toFixed(0), '', '']);
    for (const row of table) console.log(`| ${row.join(' | ')} |`);
    console.log(JSON.stringify({ bench: 'circuit', buildMsMedian: median(buildMs), streamMBpsMedian: median(rates), cpuSecondsPer100MBMedian: median(cpuPer100MB), rssMiB: memory.rss / 2 ** 20, heapUsedMiB: memory.heapUsed / 2 ** 20 }));
  } finally {
    source.close();
    network.cleanup();
  }
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(error);
    process.exit(1);
  },
);
