/**
 * The relay under test for bench/relay-load: a non-exit relay on 127.0.0.1
 * with no authority (it publishes nothing), run as its own process.
 *
 *   node dist/bench/relay-target.js DATA_DIR WORKERS
 *
 * Prints one JSON line {"port": N} once it listens; closes and exits on
 * SIGTERM, SIGINT or the end of stdin.
 */
import { startRelay } from '../relay/relay.js';
import { tuneV8ForCells } from '../cli/v8-tuning.js';

async function main(): Promise<void> {
  const [dataDir, workersText] = process.argv.slice(2);
  const workers = Number(workersText);
  if (dataDir === undefined || !Number.isInteger(workers) || workers < 1) {
    throw new Error('usage: node dist/bench/relay-target.js DATA_DIR WORKERS');
  }
  // As `allium relay` runs (cli/v8-tuning.ts).
  tuneV8ForCells();
  const relay = await startRelay({ nickname: 'loadtarget', dataDir, address: '127.0.0.1', port: 0, authorities: [], exit: false, workers });
  process.stdout.write(`${JSON.stringify({ port: relay.port })}\n`);
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    const force = setTimeout(() => process.exit(1), 10_000);
    relay.close().then(() => {
      clearTimeout(force);
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
